//! The objects Switchyard owns in a namespace, their names and labels: one ReplicaSet per
//! release, and the app's stable, canary and preview Services.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use switchyard_core::{AppName, Version};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "switchyard";
/// Which app an object belongs to.
pub const APP_LABEL: &str = "switchyard.dev/app";
/// Which release a ReplicaSet and its pods belong to (the version, or a hash of it when the
/// version is not a valid label value).
pub const RELEASE_LABEL: &str = "switchyard.dev/release";
/// A hash of the release's version and pod template.
pub const TEMPLATE_HASH_LABEL: &str = "switchyard.dev/template-hash";
/// The role of a Service: `stable`, `canary` or `preview`.
pub const ROLE_LABEL: &str = "switchyard.dev/role";
/// The release's exact version.
pub const VERSION_ANNOTATION: &str = "switchyard.dev/version";

/// The Services of an app, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Stable,
    Canary,
    Preview,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Stable, Role::Canary, Role::Preview];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Stable => "stable",
            Role::Canary => "canary",
            Role::Preview => "preview",
        }
    }

    /// The Service's name: `APP-stable`, `APP-canary`, `APP-preview`.
    pub fn service(self, app: &AppName) -> String {
        format!("{app}-{}", self.as_str())
    }
}

/// The value of [`RELEASE_LABEL`] for a version: the version itself when it is a valid label
/// value (at most 63 characters, ending with a letter or digit), else `h` and a hash of it.
pub fn release_label(version: &Version) -> String {
    let v = version.as_str();
    if v.len() <= 63 && v.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        v.to_string()
    } else {
        format!("h{:016x}", fnv1a(v.as_bytes()))
    }
}

/// A stable hash of the release's version and pod template (10 hex digits).
pub fn template_hash(version: &Version, template: &PodTemplateSpec) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut bytes = version.as_str().as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(text.as_bytes());
    format!("{:010x}", fnv1a(&bytes) & 0xff_ffff_ffff)
}

/// The ReplicaSet's name: `APP-HASH`.
pub fn replica_set_name(app: &AppName, hash: &str) -> String {
    format!("{app}-{hash}")
}

/// The labels that select a release's pods.
pub fn release_selector(app: &AppName, version: &Version) -> BTreeMap<String, String> {
    BTreeMap::from([
        (APP_LABEL.to_string(), app.to_string()),
        (RELEASE_LABEL.to_string(), release_label(version)),
    ])
}

/// The label selector (`key=value,...`) of every object of an app.
pub fn app_selector(app: &AppName) -> String {
    format!("{APP_LABEL}={app}")
}

/// The ReplicaSet of a release, as Switchyard applies it.
pub fn replica_set(
    app: &AppName,
    version: &Version,
    replicas: u32,
    template: &PodTemplateSpec,
) -> ReplicaSet {
    let hash = template_hash(version, template);
    let mut labels = release_selector(app, version);
    labels.insert(TEMPLATE_HASH_LABEL.into(), hash.clone());
    let mut template = template.clone();
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .extend(labels.clone());
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(VERSION_ANNOTATION.into(), version.to_string());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(replica_set_name(app, &hash)),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                VERSION_ANNOTATION.to_string(),
                version.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(i32::try_from(replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(labels),
                ..LabelSelector::default()
            },
            template: Some(template),
            ..ReplicaSetSpec::default()
        }),
        status: None,
    }
}

/// One of the app's Services, selecting `release`'s pods (none when `None`).
pub fn service(
    app: &AppName,
    role: Role,
    release: Option<&Version>,
    port: u16,
    service_port: u16,
) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(role.service(app)),
            labels: Some(BTreeMap::from([
                (APP_LABEL.to_string(), app.to_string()),
                (ROLE_LABEL.to_string(), role.as_str().to_string()),
            ])),
            annotations: release
                .map(|v| BTreeMap::from([(VERSION_ANNOTATION.to_string(), v.to_string())])),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            // A Service without a release selects nothing rather than every pod of the app.
            selector: Some(match release {
                Some(v) => release_selector(app, v),
                None => BTreeMap::from([
                    (APP_LABEL.to_string(), app.to_string()),
                    (RELEASE_LABEL.to_string(), "none".to_string()),
                ]),
            }),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: i32::from(service_port),
                target_port: Some(IntOrString::Int(i32::from(port))),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// One of the app's Services selecting every pod of the app, whatever its release (the stable
/// Service when replica counts are the weights).
pub fn service_of_app(app: &AppName, role: Role, port: u16, service_port: u16) -> Service {
    let mut s = service(app, role, None, port, service_port);
    if let Some(spec) = s.spec.as_mut() {
        spec.selector = Some(BTreeMap::from([(APP_LABEL.to_string(), app.to_string())]));
    }
    s
}

/// The release a Service selects, read from its annotation (`None` for none).
pub fn service_release(service: &Service) -> Option<Version> {
    let meta = &service.metadata;
    let version = meta.annotations.as_ref()?.get(VERSION_ANNOTATION)?;
    let selects = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| s.get(RELEASE_LABEL));
    let version = Version::new(version.clone()).ok()?;
    (selects == Some(&release_label(&version))).then_some(version)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::new(s).expect("version")
    }

    #[test]
    fn a_version_is_its_own_label_when_it_can_be() {
        assert_eq!(release_label(&v("v2.1.0")), "v2.1.0");
        let long = v(&"a".repeat(64));
        assert!(release_label(&long).starts_with('h'));
        assert_eq!(release_label(&long).len(), 17);
        assert!(release_label(&v("v2-")).starts_with('h'));
    }

    #[test]
    fn a_release_has_one_name_whatever_its_replicas() {
        let app = AppName::new("shop").expect("app");
        let t = PodTemplateSpec::default();
        let a = replica_set(&app, &v("v1"), 1, &t);
        let b = replica_set(&app, &v("v1"), 5, &t);
        assert_eq!(a.metadata.name, b.metadata.name);
        assert_ne!(
            a.metadata.name,
            replica_set(&app, &v("v2"), 1, &t).metadata.name
        );
        let pod_labels = a
            .spec
            .and_then(|s| s.template)
            .and_then(|t| t.metadata)
            .and_then(|m| m.labels)
            .expect("labels");
        assert_eq!(pod_labels[RELEASE_LABEL], "v1");
    }

    #[test]
    fn a_service_says_which_release_it_selects() {
        let app = AppName::new("shop").expect("app");
        let s = service(&app, Role::Stable, Some(&v("v1")), 8080, 80);
        assert_eq!(service_release(&s), Some(v("v1")));
        assert_eq!(
            service_release(&service(&app, Role::Canary, None, 8080, 80)),
            None
        );
    }
}
