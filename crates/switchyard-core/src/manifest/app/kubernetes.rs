//! `runtime: {kubernetes: ...}`: releases as ReplicaSets in a namespace, routed by Services and
//! a Gateway API HTTPRoute or an Istio VirtualService.

use std::time::Duration;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::{Deserialize, Serialize};

use super::super::one_of::one_of;
use crate::duration::serde_humantime;

/// Releases run as one ReplicaSet each in a Kubernetes namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesRuntime {
    /// Namespace of the ReplicaSets, Services and routes.
    pub namespace: K8sName,
    /// Pods per release at full size.
    #[serde(default = "one_replica")]
    pub replicas: Replicas,
    /// The containers' port the Services send traffic to.
    pub port: u16,
    /// The port the Services expose.
    #[serde(default = "default_service_port")]
    pub service_port: u16,
    /// The pods of every release. `{version}` in a container's `image` is replaced by the
    /// release's version. Fields Kubernetes does not know are refused, not dropped.
    #[serde(deserialize_with = "strict_template")]
    pub template: Box<PodTemplateSpec>,
    /// What sends traffic to the stable and canary Services; without it, weights are
    /// approximated by the releases' replica counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
    /// How long a release may take until all its pods are Ready.
    #[serde(default = "default_start_timeout", with = "serde_humantime")]
    pub start_timeout: Duration,
    /// How long a replaced release's ReplicaSet stays after its traffic is gone.
    #[serde(default = "default_scale_down_delay", with = "serde_humantime")]
    pub scale_down_delay: Duration,
}

fn one_replica() -> Replicas {
    Replicas(1)
}
fn default_service_port() -> u16 {
    80
}
fn default_start_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_scale_down_delay() -> Duration {
    Duration::from_secs(30)
}

/// `trafficRouting:` — exactly one of `gatewayAPI` or `istio`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TrafficRouting {
    #[serde(rename = "gatewayAPI")]
    GatewayApi(GatewayApiRouting),
    Istio(IstioRouting),
}

one_of!(TrafficRouting { "gatewayAPI" => GatewayApi(GatewayApiRouting), "istio" => Istio(IstioRouting) });

/// Weights on the rules of an HTTPRoute that send traffic to the stable Service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayApiRouting {
    pub http_route: K8sName,
}

/// Weights on the named http routes of an Istio VirtualService.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IstioRouting {
    pub virtual_service: K8sName,
    /// The names of the http routes whose destinations are weighted (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
}

/// A DNS-1123 label: what Kubernetes accepts as a namespace or object name here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct K8sName(String);

impl K8sName {
    /// # Errors
    /// What keeps `text` from being a DNS-1123 label.
    pub fn new(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        check_dns_label(&text)?;
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a DNS-1123 label: 1 to 63 lower-case letters, digits and `-`, starting and ending
/// with a letter or digit.
///
/// # Errors
/// What is wrong with `text`.
pub fn check_dns_label(text: &str) -> Result<(), String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a DNS-1123 label (1 to 63 lower-case letters, digits and `-`, \
             starting and ending with a letter or digit)"
        ))
    }
}

impl TryFrom<String> for K8sName {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::new(text)
    }
}

impl From<K8sName> for String {
    fn from(name: K8sName) -> String {
        name.0
    }
}

impl std::fmt::Display for K8sName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A number of pods in `0..=10000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Replicas(u32);

impl Replicas {
    /// # Errors
    /// Returns a message outside `1..=10000`.
    pub fn new(n: i64) -> Result<Self, String> {
        u32::try_from(n)
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .map(Replicas)
            .ok_or_else(|| format!("expected from 1 to 10000 replicas, got {n}"))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Replicas {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        Replicas::new(n)
    }
}

impl From<Replicas> for u32 {
    fn from(r: Replicas) -> u32 {
        r.0
    }
}

/// Reads a pod template, refusing the fields its Kubernetes types would drop silently (a
/// misspelt `readinessProbe` would otherwise vanish).
fn strict_template<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Box<PodTemplateSpec>, D::Error> {
    use serde::de::Error;
    let written = serde_json::Value::deserialize(d)?;
    let template: PodTemplateSpec = serde_path_to_error::deserialize(&written)
        .map_err(|e| D::Error::custom(format!("at `{}`: {}", e.path(), e.inner())))?;
    let typed = serde_json::to_value(&template).map_err(D::Error::custom)?;
    if let Some(path) = unknown_field(&written, &typed, String::new()) {
        return Err(D::Error::custom(format!(
            "`{}` is not a field of a Kubernetes PodTemplateSpec",
            path.trim_start_matches('.')
        )));
    }
    Ok(Box::new(template))
}

impl KubernetesRuntime {
    /// Checks what the types alone do not: a template without containers, labels in
    /// Switchyard's own prefix. Returns the field path under the runtime and the problem.
    pub fn check(&self) -> Result<(), (String, String)> {
        let containers = self.template.spec.as_ref().map(|s| s.containers.len());
        if containers.unwrap_or(0) == 0 {
            return Err((
                "template.spec.containers".into(),
                "the pod template needs at least one container".into(),
            ));
        }
        if let Some(labels) = self
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
        {
            if let Some(key) = labels.keys().find(|k| k.starts_with("switchyard.dev/")) {
                return Err((
                    format!("template.metadata.labels.{key}"),
                    "labels under `switchyard.dev/` are Switchyard's own".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The path of the first key of `written` that is not in `typed` (the same document after a
/// round trip through the Kubernetes types), as `.a.b[0].c`.
fn unknown_field(
    written: &serde_json::Value,
    typed: &serde_json::Value,
    path: String,
) -> Option<String> {
    use serde_json::Value;
    match (written, typed) {
        (Value::Object(w), Value::Object(t)) => w.iter().find_map(|(k, v)| match t.get(k) {
            Some(tv) => unknown_field(v, tv, format!("{path}.{k}")),
            // Empty values are dropped by the round trip without being unknown.
            None if is_empty(v) => None,
            None => Some(format!("{path}.{k}")),
        }),
        (Value::Array(w), Value::Array(t)) => w
            .iter()
            .zip(t)
            .enumerate()
            .find_map(|(i, (wv, tv))| unknown_field(wv, tv, format!("{path}[{i}]"))),
        _ => None,
    }
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Object(m) => m.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(template: serde_json::Value) -> Result<KubernetesRuntime, serde_json::Error> {
        serde_json::from_value(serde_json::json!({
            "namespace": "shop", "port": 8080, "template": template,
        }))
    }

    fn runtime(template: serde_json::Value) -> KubernetesRuntime {
        parse(template).expect("parses")
    }

    #[test]
    fn a_misspelt_field_of_the_template_is_named_with_its_path() {
        let e = parse(serde_json::json!({
            "spec": {"containers": [{"name": "web", "image": "shop:{version}",
                "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSecond": 2}}]}
        }))
        .expect_err("unknown field");
        assert!(
            e.to_string().contains(
                "`spec.containers[0].readinessProbe.periodSecond` is not a field of a Kubernetes PodTemplateSpec"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_with_its_path() {
        let e = parse(serde_json::json!({
            "spec": {"containers": [{"name": "web", "ports": [{"containerPort": "http"}]}]}
        }))
        .expect_err("wrong type");
        assert!(
            e.to_string()
                .contains("spec.containers[0].ports[0].containerPort"),
            "{e}"
        );
    }

    #[test]
    fn a_template_of_known_fields_passes() {
        let rt = runtime(serde_json::json!({
            "metadata": {"labels": {"team": "shop"}},
            "spec": {"containers": [{"name": "web", "image": "shop:{version}",
                "ports": [{"containerPort": 8080}], "env": [{"name": "A", "value": "1"}],
                "resources": {"requests": {"cpu": "100m"}},
                "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 2}}]}
        }));
        rt.check().expect("valid");
    }

    #[test]
    fn a_template_without_containers_is_refused() {
        let rt = runtime(serde_json::json!({"spec": {"containers": []}}));
        let (path, _) = rt.check().expect_err("no containers");
        assert_eq!(path, "template.spec.containers");
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(K8sName::new("shop-1").is_ok());
        for bad in ["Shop", "-a", "a-", "a_b", "", &"a".repeat(64)] {
            assert!(K8sName::new(bad).is_err(), "{bad}");
        }
    }
}
