//! `kind: AnalysisTemplate`: metrics measured at intervals and the conditions that judge them,
//! with the semantics of Argo Rollouts' AnalysisTemplate.

mod http_url;
pub mod judge;
mod providers;
mod template;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use http_url::{HttpUrl, UrlTemplate};
pub use providers::{
    Argv, CommandProvider, DEFAULT_COMMAND_TIMEOUT, DEFAULT_PROMETHEUS_TIMEOUT,
    DEFAULT_WEB_TIMEOUT, EnvName, HeaderName, HeaderValue, HttpMethod, JsonPointer,
    PrometheusProvider, WebProvider,
};
pub use template::{PLACEHOLDERS, Template, TemplateVars};

use super::ObjectMeta;
use super::one_of::one_of;
use crate::duration::serde_humantime_opt;
use crate::expr::Condition;
use crate::name::ObjectName;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisTemplate {
    pub metadata: ObjectMeta,
    pub spec: AnalysisTemplateSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    pub metrics: Vec<MetricSpec>,
}

/// One metric of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricSpec {
    pub name: ObjectName,
    /// Where measurements come from; a `judge` metric reads the proxy's telemetry of both
    /// releases instead and takes no provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderSpec>,
    /// Compare canary with baseline statistically instead of checking conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<judge::JudgeSpec>,
    /// A measurement succeeds when this holds (and fails when it does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<Condition>,
    /// A measurement fails when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<Condition>,
    /// Time between measurements.
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    /// Measurements to take (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Wait before the first measurement.
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_delay: Option<Duration>,
    /// Failed measurements tolerated; one more fails the analysis.
    #[serde(default)]
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated; one more makes the analysis inconclusive.
    #[serde(default)]
    pub inconclusive_limit: u32,
    /// Provider errors in a row tolerated; one more fails the analysis.
    #[serde(default = "default_consecutive_error_limit")]
    pub consecutive_error_limit: u32,
    /// Measured and recorded, but never affects the outcome.
    #[serde(default)]
    pub dry_run: bool,
}

pub(crate) fn default_consecutive_error_limit() -> u32 {
    4
}

impl MetricSpec {
    /// Measurements to take.
    pub fn count(&self) -> u32 {
        self.count.unwrap_or(1)
    }
}

/// Where a metric's value comes from. Exactly one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProviderSpec {
    /// The proxy's own per-release telemetry.
    Builtin(BuiltinProvider),
    /// An instant PromQL query.
    Prometheus(PrometheusProvider),
    /// An HTTP request answered with JSON.
    Web(WebProvider),
    /// A program that prints the value.
    Command(CommandProvider),
}

impl ProviderSpec {
    /// The manifest key of the provider (`builtin`, `prometheus`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderSpec::Builtin(_) => "builtin",
            ProviderSpec::Prometheus(_) => "prometheus",
            ProviderSpec::Web(_) => "web",
            ProviderSpec::Command(_) => "command",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuiltinProvider {
    pub metric: BuiltinMetric,
    /// Which release `result` describes; `baseline` is always the stable release.
    #[serde(default)]
    pub release: ReleaseRole,
    /// Trailing window (default: the metric's interval, or 1 minute).
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
}

/// A built-in metric, computed from the proxy's windowed telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinMetric {
    /// Share of requests answered 5xx (0..1).
    ErrorRate,
    /// Share of requests not answered 5xx (0..1).
    SuccessRate,
    /// Latency quantiles, in seconds.
    LatencyP50,
    LatencyP95,
    LatencyP99,
    LatencyP999,
    LatencyMean,
    /// Requests per second.
    Rps,
    /// Requests in the window.
    Requests,
}

/// A release's role in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseRole {
    #[default]
    Canary,
    Stable,
}

one_of!(ProviderSpec {
    "builtin" => Builtin(BuiltinProvider),
    "prometheus" => Prometheus(PrometheusProvider),
    "web" => Web(WebProvider),
    "command" => Command(CommandProvider),
});
