//! `kind: App`: one service behind one listener, how its releases run, how they are checked and
//! how a new release is rolled out.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AppMeta;
use super::numbers::{Percent, Rate, Ratio};
use super::one_of::one_of;
use crate::duration::{serde_humantime, serde_humantime_opt};
use crate::name::{ObjectName, Version};

mod kubernetes;
mod rolling;
mod tls;

pub use kubernetes::{
    GatewayApiRouting, IstioRouting, K8sName, KubernetesRuntime, Replicas, TrafficRouting,
    check_dns_label,
};
pub use rolling::{CanaryScale, InstancesOrPercent, RollingStrategy, Rounding};
pub use tls::{AbsolutePath, CertificateFiles, Certificates, ListenerTls, ServerName, UpstreamTls};

/// An app manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub metadata: AppMeta,
    pub spec: AppSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppSpec {
    /// Address the app's proxy listener binds, e.g. `127.0.0.1:8080`. Every app has one but
    /// those of the `kubernetes` runtime, whose traffic the cluster routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// How releases of the app run.
    pub runtime: RuntimeSpec,
    /// How an instance is judged ready to take traffic.
    #[serde(default)]
    pub health_check: HealthCheck,
    /// How a new release replaces the stable one.
    pub strategy: Strategy,
    /// Conditions under which a rollout is rolled back automatically, checked continuously.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_policy: Option<RollbackPolicy>,
    /// HTTP gates and notifications around a rollout, as Flagger's webhooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    /// The notifiers told about this app's rollouts (`kind: Notifier`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifiers: Vec<ObjectName>,
    /// TLS termination on the app's listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    /// TLS from the proxy to the app's instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_tls: Option<UpstreamTls>,
}

/// A webhook: an HTTP POST whose 2xx answer opens a gate (or, for `rollback`, asks for a
/// rollback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Webhook {
    pub name: ObjectName,
    #[serde(rename = "type")]
    pub kind: WebhookKind,
    pub url: crate::manifest::analysis::HttpUrl,
    /// Time allowed for one call.
    #[serde(default = "default_webhook_timeout", with = "serde_humantime")]
    pub timeout: Duration,
    /// Further attempts after a failed call, within one check.
    #[serde(default)]
    pub retries: u32,
    /// Sent along in the payload's `metadata`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(10)
}

/// When a webhook is called, and what its answer does (Flagger's semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookKind {
    /// Before the canary takes traffic; the rollout waits (polling) until every such hook
    /// answers 2xx.
    ConfirmRollout,
    /// Before the canary takes traffic, after the confirmations; a failure rolls back.
    PreRollout,
    /// Before promotion; the rollout waits (polling) until every such hook answers 2xx.
    ConfirmPromotion,
    /// Polled while the rollout runs; a 2xx answer rolls back.
    Rollback,
    /// After the rollout ends, whatever the outcome; its answer changes nothing.
    PostRollout,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::ConfirmRollout => "confirm-rollout",
            WebhookKind::PreRollout => "pre-rollout",
            WebhookKind::ConfirmPromotion => "confirm-promotion",
            WebhookKind::Rollback => "rollback",
            WebhookKind::PostRollout => "post-rollout",
        }
    }
}

/// `runtime:` — exactly one of `process`, `static` or `kubernetes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RuntimeSpec {
    Process(ProcessRuntime),
    Static(StaticRuntime),
    Kubernetes(KubernetesRuntime),
}

/// Releases run as local child processes started by Switchyard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessRuntime {
    /// Program and arguments. `{port}` is replaced by a free port chosen for each instance and
    /// `{version}` by the release's version.
    pub command: Command,
    /// Instances per release.
    #[serde(default = "default_instances")]
    pub instances: Instances,
    /// Extra environment variables. `PORT` and `SWITCHYARD_VERSION` are always set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of the processes (default: the daemon's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
    /// How long an instance may take to pass its first health check.
    #[serde(default = "default_start_timeout", with = "serde_humantime")]
    pub start_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when stopping an instance.
    #[serde(default = "default_stop_timeout", with = "serde_humantime")]
    pub stop_timeout: Duration,
}

fn default_instances() -> Instances {
    Instances(1)
}
fn default_start_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_stop_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A non-empty program and argument list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Command(Vec<String>);

impl Command {
    /// # Errors
    /// Returns a message when the list is empty or the program is blank.
    pub fn new(argv: Vec<String>) -> Result<Self, String> {
        match argv.first() {
            Some(program) if !program.trim().is_empty() => Ok(Command(argv)),
            _ => Err("expected a non-empty command: [program, args...]".into()),
        }
    }

    pub fn argv(&self) -> &[String] {
        &self.0
    }
}

impl TryFrom<Vec<String>> for Command {
    type Error = String;
    fn try_from(v: Vec<String>) -> Result<Self, String> {
        Command::new(v)
    }
}

impl From<Command> for Vec<String> {
    fn from(c: Command) -> Vec<String> {
        c.0
    }
}

/// A number of instances in `1..=64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Instances(u32);

impl Instances {
    /// # Errors
    /// Returns a message outside `1..=64`.
    pub fn new(n: i64) -> Result<Self, String> {
        u32::try_from(n)
            .ok()
            .filter(|n| (1..=64).contains(n))
            .map(Instances)
            .ok_or_else(|| format!("expected from 1 to 64 instances, got {n}"))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Instances {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        Instances::new(n)
    }
}

impl From<Instances> for u32 {
    fn from(i: Instances) -> u32 {
        i.0
    }
}

/// Releases that already run elsewhere; Switchyard only routes to them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticRuntime {
    /// Known releases and their addresses; `deploy --address` can name others.
    #[serde(default)]
    pub releases: BTreeMap<Version, Vec<SocketAddr>>,
}

/// `healthCheck:` — an HTTP GET that must answer 2xx.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(default = "default_health_path")]
    pub path: HealthPath,
    #[serde(default = "default_health_interval", with = "serde_humantime")]
    pub interval: Duration,
    #[serde(default = "default_health_timeout", with = "serde_humantime")]
    pub timeout: Duration,
    /// Consecutive successes before an instance takes traffic.
    #[serde(default = "one")]
    pub healthy_threshold: u32,
    /// Consecutive failures before an instance stops taking traffic.
    #[serde(default = "three")]
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: default_health_path(),
            interval: default_health_interval(),
            timeout: default_health_timeout(),
            healthy_threshold: 1,
            unhealthy_threshold: 3,
        }
    }
}

fn default_health_path() -> HealthPath {
    HealthPath("/health".into())
}
fn default_health_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_health_timeout() -> Duration {
    Duration::from_secs(1)
}
fn one() -> u32 {
    1
}
fn three() -> u32 {
    3
}

/// An absolute URL path such as `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HealthPath(String);

impl HealthPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HealthPath {
    type Error = String;
    fn try_from(p: String) -> Result<Self, String> {
        if p.starts_with('/') && !p.contains(char::is_whitespace) {
            Ok(HealthPath(p))
        } else {
            Err(format!(
                "expected an absolute path such as `/health`, got `{p}`"
            ))
        }
    }
}

impl From<HealthPath> for String {
    fn from(p: HealthPath) -> String {
        p.0
    }
}

/// `strategy:` — how a new release replaces the stable one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    Canary(CanaryStrategy),
    BlueGreen(BlueGreenStrategy),
    Rolling(RollingStrategy),
}

impl Strategy {
    /// Every analysis template the strategy names, with the field path that names it.
    pub fn template_refs(&self) -> Vec<(String, &ObjectName)> {
        match self {
            Strategy::Canary(c) => c.template_refs(),
            Strategy::BlueGreen(b) => b.template_refs(),
            Strategy::Rolling(r) => r
                .analysis
                .iter()
                .flat_map(|a| a.templates.iter().enumerate())
                .map(|(j, name)| {
                    (
                        format!("spec.strategy.rolling.analysis.templates[{j}]"),
                        name,
                    )
                })
                .collect(),
        }
    }

    /// Where sticky requests get their key from (canary only).
    pub fn stickiness(&self) -> Option<&Stickiness> {
        match self {
            Strategy::Canary(c) => c.stickiness.as_ref(),
            Strategy::BlueGreen(_) | Strategy::Rolling(_) => None,
        }
    }
}

/// Run the new release beside the old one, reachable only on a preview listener; switch all
/// traffic at once when it is approved; keep the old one warm for an instant switch back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// Address of the preview listener, which routes only to the new release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_listen: Option<SocketAddr>,
    /// HTTP checks against the preview before anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smoke_tests: Vec<SmokeTest>,
    /// Analysis of the preview before the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<AnalysisStep>,
    /// Switch by itself this long after the checks pass; without it, wait for
    /// `switchyard promote`.
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_promotion_after: Option<Duration>,
    /// Analysis after the switch; a failure switches back to the old release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<AnalysisStep>,
    /// How long the old release keeps running after the switch.
    #[serde(default = "default_scale_down_delay", with = "serde_humantime")]
    pub scale_down_delay: Duration,
}

fn default_scale_down_delay() -> Duration {
    Duration::from_secs(30)
}

impl BlueGreenStrategy {
    /// Every analysis template the strategy names, with the field path that names it.
    pub fn template_refs(&self) -> Vec<(String, &ObjectName)> {
        let mut refs = Vec::new();
        for (field, step) in [
            ("prePromotionAnalysis", &self.pre_promotion_analysis),
            ("postPromotionAnalysis", &self.post_promotion_analysis),
        ] {
            for (j, name) in step.iter().flat_map(|a| a.templates.iter()).enumerate() {
                refs.push((
                    format!("spec.strategy.blueGreen.{field}.templates[{j}]"),
                    name,
                ));
            }
        }
        refs
    }
}

/// An HTTP GET against the preview that must answer `expectStatus` (and contain `expectBody`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SmokeTest {
    pub path: HealthPath,
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
    /// A substring the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    #[serde(default = "default_smoke_timeout", with = "serde_humantime")]
    pub timeout: Duration,
}

fn default_expect_status() -> u16 {
    200
}
fn default_smoke_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Shift traffic to the new release step by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Keeps each user on one release; without it requests are split at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<Stickiness>,
    /// Steps run in order; after the last one the canary is promoted.
    pub steps: Vec<CanaryStep>,
    /// Analysis that runs in the background from a step on until the rollout ends; a failure
    /// rolls back whatever step the rollout is at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<BackgroundAnalysis>,
    /// How long the old stable release keeps running after promotion, so that a rollback in
    /// that window (by the rollback policy or `switchyard undo`) is instant.
    #[serde(
        default,
        with = "serde_humantime",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub scale_down_delay: Duration,
}

impl CanaryStrategy {
    /// Every analysis template the strategy names, with the field path that names it.
    pub fn template_refs(&self) -> Vec<(String, &ObjectName)> {
        let mut refs = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let (field, names) = match step {
                CanaryStep::Analysis(a) => ("analysis", &a.templates),
                CanaryStep::Bake(b) => ("bake", &b.templates),
                _ => continue,
            };
            for (j, name) in names.iter().enumerate() {
                refs.push((
                    format!("spec.strategy.canary.steps[{i}].{field}.templates[{j}]"),
                    name,
                ));
            }
        }
        if let Some(bg) = &self.analysis {
            for (j, name) in bg.templates.iter().enumerate() {
                refs.push((
                    format!("spec.strategy.canary.analysis.templates[{j}]"),
                    name,
                ));
            }
        }
        refs
    }
}

/// `analysis:` of a canary strategy: templates measured in the background.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackgroundAnalysis {
    /// Names of `AnalysisTemplate` objects.
    pub templates: Vec<ObjectName>,
    /// Index of the step from which the analysis runs (0 = from the start).
    #[serde(default)]
    pub starting_step: usize,
}

/// Where the stickiness key of a request comes from. Exactly one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Stickiness {
    Header(String),
    Cookie(String),
    Query(String),
}

/// A manual gate: the rollout waits for `switchyard approve APP --reason ...`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApprovalStep {
    /// Give up waiting after this long and do `onTimeout`.
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// What a timeout does: `abort` (default) or `approve`.
    #[serde(default)]
    pub on_timeout: ApprovalTimeout,
    /// Whether the approver must give a reason (default true).
    #[serde(default = "yes")]
    pub require_reason: bool,
}

fn yes() -> bool {
    true
}

/// What an approval gate does when its timeout passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalTimeout {
    #[default]
    Abort,
    Approve,
}

/// `adaptive:` — a canary step whose weight the judge chooses: it starts at `minWeight`, and
/// after every look sets the weight as high as the evidence allows (up to `maxWeight`) while
/// the extra failed requests the canary could cause, if it were as bad as the evidence still
/// permits, stay within `errorBudget`. It rolls back when the canary's error rate is shown
/// above `maxIncrease` × the baseline's, passes when it is shown below, and applies
/// `onTimeout` at `maxDuration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdaptiveStep {
    /// Largest canary weight, percent.
    #[serde(default = "AdaptiveStep::default_max_weight")]
    pub max_weight: Percent,
    /// Smallest canary weight, percent; the step starts there.
    #[serde(default = "AdaptiveStep::default_min_weight")]
    pub min_weight: Percent,
    /// Extra failed requests the canary may serve before its verdict.
    #[serde(default = "AdaptiveStep::default_error_budget")]
    pub error_budget: f64,
    /// Tolerated ratio of the canary's error rate to the baseline's.
    #[serde(default = "AdaptiveStep::default_max_increase")]
    pub max_increase: f64,
    /// Probability of a wrong verdict over the whole step.
    #[serde(default = "AdaptiveStep::default_alpha")]
    pub alpha: f64,
    /// Time between looks (and weight changes).
    #[serde(default = "AdaptiveStep::default_interval", with = "serde_humantime")]
    pub interval: Duration,
    /// How long the step may stay undecided.
    #[serde(
        default = "AdaptiveStep::default_max_duration",
        with = "serde_humantime"
    )]
    pub max_duration: Duration,
    /// What an undecided step becomes at `maxDuration`.
    #[serde(default = "AdaptiveStep::default_on_timeout")]
    pub on_timeout: super::analysis::judge::OnTimeout,
    /// Where both releases' traffic is read (the built-in proxy's telemetry when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<super::analysis::judge::JudgeSource>,
}

impl AdaptiveStep {
    /// Default `errorBudget`: extra failed requests.
    pub const DEFAULT_ERROR_BUDGET: f64 = 50.0;
    /// The name of the metric an adaptive step's analysis records its looks under.
    pub const METRIC: &'static str = "adaptive-canary";

    fn default_max_weight() -> Percent {
        Percent::new(20).unwrap_or(Percent::FULL)
    }
    fn default_min_weight() -> Percent {
        Percent::new(1).unwrap_or(Percent::FULL)
    }
    fn default_error_budget() -> f64 {
        Self::DEFAULT_ERROR_BUDGET
    }
    fn default_max_increase() -> f64 {
        super::analysis::judge::DEFAULT_MAX_INCREASE
    }
    fn default_alpha() -> f64 {
        super::analysis::judge::DEFAULT_ALPHA
    }
    fn default_interval() -> Duration {
        Duration::from_secs(5)
    }
    fn default_max_duration() -> Duration {
        Duration::from_secs(600)
    }
    fn default_on_timeout() -> super::analysis::judge::OnTimeout {
        super::analysis::judge::OnTimeout::Pass
    }

    /// The judge the step runs.
    pub fn judge(&self) -> super::analysis::judge::JudgeSpec {
        use super::analysis::judge::{AdaptivePlan, Compare, JudgeSpec};
        JudgeSpec {
            max_increase: self.max_increase,
            alpha: self.alpha,
            max_duration: Some(self.max_duration),
            on_timeout: self.on_timeout,
            source: self.source.clone(),
            adaptive: Some(AdaptivePlan {
                min_weight: self.min_weight.get(),
                max_weight: self.max_weight.get(),
                error_budget: self.error_budget,
            }),
            ..JudgeSpec::new(Compare::ErrorRate)
        }
    }

    /// The analysis the step runs: one judge metric looking every `interval`.
    pub fn template(&self) -> super::analysis::AnalysisTemplateSpec {
        let metric = super::analysis::MetricSpec {
            name: ObjectName::new(Self::METRIC).expect("a valid name"),
            provider: None,
            judge: Some(self.judge()),
            success_condition: None,
            failure_condition: None,
            interval: Some(self.interval),
            count: None,
            initial_delay: None,
            failure_limit: 0,
            inconclusive_limit: 0,
            consecutive_error_limit: super::analysis::default_consecutive_error_limit(),
            dry_run: false,
        };
        super::analysis::AnalysisTemplateSpec {
            metrics: vec![metric],
        }
    }

    /// The field whose value is out of range, with the value and the range, if any.
    pub fn out_of_range(&self) -> Option<(&'static str, f64, &'static str)> {
        let (min, max) = (self.min_weight.get(), self.max_weight.get());
        if min == 0 {
            return Some(("minWeight", 0.0, "in [1, maxWeight]"));
        }
        if max > 99 {
            return Some(("maxWeight", f64::from(max), "in [minWeight, 99]"));
        }
        if min > max {
            return Some(("minWeight", f64::from(min), "in [1, maxWeight]"));
        }
        if !(self.error_budget.is_finite() && self.error_budget > 0.0) {
            return Some((
                "errorBudget",
                self.error_budget,
                "a positive number of requests",
            ));
        }
        if self.interval.is_zero() {
            return Some(("interval", 0.0, "longer than 0 s"));
        }
        self.judge().out_of_range()
    }
}

/// `bake:` — hold at the current weight for `duration` while the templates are measured; the
/// step passes when the time is up and no analysis failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BakeStep {
    #[serde(with = "serde_humantime")]
    pub duration: Duration,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<ObjectName>,
}

/// `setHeaderRoute:` — requests matching every entry of `match` go to the canary whatever the
/// weight (evaluated before weights). An empty `match` removes the route.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderRouteStep {
    #[serde(default, rename = "match")]
    pub matches: Vec<RouteMatch>,
}

/// One condition of a header route: a header or a cookie, compared exactly, by prefix or by
/// regular expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRouteMatch", into = "RawRouteMatch")]
pub struct RouteMatch {
    pub source: MatchSource,
    pub value: MatchValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MatchSource {
    Header(String),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MatchValue {
    Exact(String),
    Prefix(String),
    /// A regular expression, checked when the manifest is read.
    Regex(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cookie: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
}

impl TryFrom<RawRouteMatch> for RouteMatch {
    type Error = String;
    fn try_from(raw: RawRouteMatch) -> Result<Self, String> {
        let source = match (raw.header, raw.cookie) {
            (Some(h), None) if is_header_name(&h) => MatchSource::Header(h.to_ascii_lowercase()),
            (Some(h), None) => return Err(format!("`{h}` is not a valid header name")),
            (None, Some(c)) if !c.is_empty() => MatchSource::Cookie(c),
            _ => return Err("expected exactly one of `header` or `cookie`".into()),
        };
        let value = match (raw.exact, raw.prefix, raw.regex) {
            (Some(v), None, None) => MatchValue::Exact(v),
            (None, Some(v), None) => MatchValue::Prefix(v),
            (None, None, Some(v)) => {
                regex::Regex::new(&v)
                    .map_err(|e| format!("invalid regular expression `{v}`: {e}"))?;
                MatchValue::Regex(v)
            }
            _ => return Err("expected exactly one of `exact`, `prefix` or `regex`".into()),
        };
        Ok(RouteMatch { source, value })
    }
}

impl From<RouteMatch> for RawRouteMatch {
    fn from(m: RouteMatch) -> Self {
        let mut raw = RawRouteMatch::default();
        match m.source {
            MatchSource::Header(h) => raw.header = Some(h),
            MatchSource::Cookie(c) => raw.cookie = Some(c),
        }
        match m.value {
            MatchValue::Exact(v) => raw.exact = Some(v),
            MatchValue::Prefix(v) => raw.prefix = Some(v),
            MatchValue::Regex(v) => raw.regex = Some(v),
        }
        raw
    }
}

/// Whether `name` is an HTTP header name (a token of RFC 9110).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `setMirror:` — copy `percent` of requests to the canary (responses discarded); 0 stops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MirrorStep {
    pub percent: Percent,
}

/// One canary step. Exactly one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CanaryStep {
    /// Send this percentage of traffic to the canary.
    SetWeight(Percent),
    /// Wait for `duration`, or until promoted when it is absent.
    Pause(PauseStep),
    /// Run analysis templates; the step passes when they all succeed.
    Analysis(AnalysisStep),
    /// Wait for an operator's approval.
    Approval(ApprovalStep),
    /// Hold at the current weight while analysis runs for a fixed time.
    Bake(BakeStep),
    /// Route matching requests to the canary whatever the weight.
    SetHeaderRoute(HeaderRouteStep),
    /// Copy a share of requests to the canary.
    SetMirror(MirrorStep),
    /// Run this many canary instances, whatever its weight.
    SetCanaryScale(CanaryScale),
    /// Let the judge choose the canary's weight within an error budget.
    Adaptive(AdaptiveStep),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PauseStep {
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalysisStep {
    /// Names of `AnalysisTemplate` objects.
    pub templates: Vec<ObjectName>,
}

/// `rollbackPolicy:` — thresholds checked continuously while a canary takes traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RollbackPolicy {
    /// Roll back when the canary's share of 5xx exceeds `max` (a rate, 0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<MaxRate>,
    /// Roll back when the canary's p99 latency exceeds `max` times the stable release's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_increase: Option<MaxRatio>,
    /// Roll back when the canary's share of non-5xx answers falls below `min` (a rate, 0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<MinRate>,
    /// Trailing window each check looks at.
    #[serde(default = "default_policy_window", with = "serde_humantime")]
    pub window: Duration,
    /// Time between checks.
    #[serde(default = "default_policy_interval", with = "serde_humantime")]
    pub interval: Duration,
    /// Breaches in a row that trigger a rollback.
    #[serde(default = "three")]
    pub consecutive_failures: u32,
    /// Canary requests the window needs before a check counts; fewer is "not enough data",
    /// never a breach.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// How long after promotion the checks go on; a breach in that time switches traffic back
    /// to the old stable release (kept running for at least this long).
    #[serde(
        default,
        with = "serde_humantime",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub bake_time: Duration,
}

fn default_policy_window() -> Duration {
    Duration::from_secs(60)
}
fn default_policy_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_min_requests() -> u64 {
    20
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxRatio {
    pub max: Ratio,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxRate {
    pub max: Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinRate {
    pub min: Rate,
}

one_of!(RuntimeSpec {
    "process" => Process(ProcessRuntime),
    "static" => Static(StaticRuntime),
    "kubernetes" => Kubernetes(KubernetesRuntime),
});
one_of!(Strategy {
    "canary" => Canary(CanaryStrategy),
    "blueGreen" => BlueGreen(BlueGreenStrategy),
    "rolling" => Rolling(RollingStrategy),
});
one_of!(Stickiness { "header" => Header(String), "cookie" => Cookie(String), "query" => Query(String) });
one_of!(CanaryStep {
    "setWeight" => SetWeight(Percent),
    "pause" => Pause(PauseStep),
    "analysis" => Analysis(AnalysisStep),
    "approval" => Approval(ApprovalStep),
    "bake" => Bake(BakeStep),
    "setHeaderRoute" => SetHeaderRoute(HeaderRouteStep),
    "setMirror" => SetMirror(MirrorStep),
    "setCanaryScale" => SetCanaryScale(CanaryScale),
    "adaptive" => Adaptive(AdaptiveStep),
});
