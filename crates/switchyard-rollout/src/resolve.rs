//! Turning an app manifest and a deploy request into the release to start.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec};
use serde::{Deserialize, Serialize};
use switchyard_core::manifest::App;
use switchyard_core::manifest::app::RuntimeSpec;
use switchyard_core::{Release, Version, Workload};

/// What `switchyard deploy` asks for: a version and optional runtime overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The release's version (letters, digits, `-`, `_`, `.`; at most 128).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub version: Option<Version>,
    /// Replaces the manifest's command (process runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Added to (and overriding) the manifest's environment (process runtime).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Replaces the instance count (process runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// Addresses of the release (static runtime).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub addresses: Vec<SocketAddr>,
}

/// Why a deploy request does not describe a release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("`version` is required")]
    NoVersion,
    #[error("`command` must not be empty")]
    EmptyCommand,
    #[error("`instances` must be from 1 to 64, got {0}")]
    Instances(u32),
    #[error("`instances` (the release's replicas) must be from 1 to 10000, got {0}")]
    Replicas(u32),
    #[error("`{field}` applies to the {applies_to} runtime, but app uses the {actual} runtime")]
    WrongRuntime {
        field: &'static str,
        applies_to: &'static str,
        actual: &'static str,
    },
    #[error(
        "static release `{0}` has no addresses: list it under spec.runtime.static.releases or pass addresses"
    )]
    NoAddresses(Version),
}

/// Resolves the release `request` describes for `app`.
///
/// # Errors
/// A missing version, an override that does not fit the app's runtime, or a static release
/// without addresses.
pub fn resolve(app: &App, request: &DeployRequest) -> Result<Release, ResolveError> {
    let version = request.version.clone().ok_or(ResolveError::NoVersion)?;
    let workload = match &app.spec.runtime {
        RuntimeSpec::Process(p) => {
            if !request.addresses.is_empty() {
                return Err(ResolveError::WrongRuntime {
                    field: "addresses",
                    applies_to: "static",
                    actual: "process",
                });
            }
            let argv = match &request.command {
                Some(c) if c.first().is_none_or(|p| p.trim().is_empty()) => {
                    return Err(ResolveError::EmptyCommand);
                }
                Some(c) => c.clone(),
                None => p.command.argv().to_vec(),
            };
            let instances = match request.instances {
                Some(n) if !(1..=64).contains(&n) => return Err(ResolveError::Instances(n)),
                Some(n) => n,
                None => p.instances.get(),
            };
            let mut env = p.env.clone();
            env.extend(request.env.clone());
            Workload::Process {
                argv: argv
                    .iter()
                    .map(|a| a.replace("{version}", version.as_str()))
                    .collect(),
                env,
                working_dir: p.working_dir.clone(),
                instances,
                start_timeout: p.start_timeout,
                stop_timeout: p.stop_timeout,
            }
        }
        RuntimeSpec::Static(s) => {
            for (field, set) in [
                ("command", request.command.is_some()),
                ("env", !request.env.is_empty()),
                ("instances", request.instances.is_some()),
            ] {
                if set {
                    return Err(ResolveError::WrongRuntime {
                        field,
                        applies_to: "process",
                        actual: "static",
                    });
                }
            }
            let addresses = if request.addresses.is_empty() {
                s.releases.get(&version).cloned().unwrap_or_default()
            } else {
                request.addresses.clone()
            };
            if addresses.is_empty() {
                return Err(ResolveError::NoAddresses(version));
            }
            Workload::Static {
                addresses,
                start_timeout: std::time::Duration::from_secs(30),
            }
        }
        RuntimeSpec::Kubernetes(k) => {
            for (field, set) in [
                ("command", request.command.is_some()),
                ("addresses", !request.addresses.is_empty()),
            ] {
                if set {
                    return Err(ResolveError::WrongRuntime {
                        field,
                        applies_to: if field == "command" {
                            "process"
                        } else {
                            "static"
                        },
                        actual: "kubernetes",
                    });
                }
            }
            let replicas = match request.instances {
                Some(n) if !(1..=10_000).contains(&n) => return Err(ResolveError::Replicas(n)),
                Some(n) => n,
                None => k.replicas.get(),
            };
            Workload::Kubernetes {
                namespace: k.namespace.to_string(),
                replicas,
                port: k.port,
                template: Box::new(pod_template(&k.template, &version, &request.env)),
                start_timeout: k.start_timeout,
                scale_down_delay: k.scale_down_delay,
                sized_by_weight: k.traffic_routing.is_none()
                    && matches!(
                        app.spec.strategy,
                        switchyard_core::manifest::Strategy::Canary(_)
                    ),
            }
        }
    };
    Ok(Release {
        app: app.metadata.name.clone(),
        version,
        workload,
        health_check: app.spec.health_check.clone(),
    })
}

/// The release's pod template: `{version}` in the images replaced, the deploy's variables added
/// to every container (after the template's own, so they win).
fn pod_template(
    template: &PodTemplateSpec,
    version: &Version,
    env: &BTreeMap<String, String>,
) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(spec) = template.spec.as_mut() {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            if let Some(image) = c.image.as_mut() {
                *image = image.replace("{version}", version.as_str());
            }
            if !env.is_empty() {
                let vars = c.env.get_or_insert_with(Vec::new);
                vars.retain(|v| !env.contains_key(&v.name));
                vars.extend(env.iter().map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: Some(value.clone()),
                    value_from: None,
                }));
            }
        }
    }
    template
}
