//! Request and response bodies of `/api/v1`.

use serde::{Deserialize, Serialize};
use switchyard_core::ports::EventRecord;

pub use switchyard_rollout::machine::Command;
pub use switchyard_rollout::policy::PolicyCheck;
pub use switchyard_rollout::resolve::DeployRequest;

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `not_found`, `conflict`, `invalid_manifest`, ...
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// One manifest file sent for validation or application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Shown in errors (`file:line:column`).
    pub name: String,
    pub content: String,
}

/// `POST /api/v1/apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    pub files: Vec<ManifestFile>,
    /// Check everything, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// One located manifest problem (in `details` of an `invalid_manifest` error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ManifestProblem {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub path: String,
    pub message: String,
}

/// `POST /api/v1/apply` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyResponse {
    pub dry_run: bool,
    pub results: Vec<ApplyResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyResult {
    pub kind: String,
    pub name: String,
    /// `created`, `configured`, `unchanged`, or `valid` in a dry run.
    pub result: String,
}

/// An app in `GET /api/v1/apps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppSummary {
    pub name: String,
    /// The address of the app's proxy listener, or `kubernetes/NAMESPACE` for an app its
    /// cluster routes.
    pub listen: String,
    pub generation: u64,
    pub stable: Option<String>,
    pub rollout: Option<RolloutBrief>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutBrief {
    pub id: i64,
    pub version: String,
    pub phase: String,
    pub weight: u8,
    /// Index of the current step (equal to `steps` once all ran).
    #[serde(default)]
    pub step: usize,
    /// Number of steps of the rollout's plan.
    #[serde(default)]
    pub steps: usize,
    /// When the rollout started (RFC 3339).
    #[serde(default)]
    pub started_at: String,
}

/// `GET /api/v1/apps/{app}/rollout` and the answer of deploy and commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutView {
    pub id: i64,
    pub app: String,
    pub version: String,
    pub stable_version: String,
    pub phase: String,
    pub active: bool,
    /// When a timed pause ends (RFC 3339).
    pub paused_until: Option<String>,
    /// Index of the current step (equal to `steps.len()` once all ran).
    pub step: usize,
    /// Each step in words.
    pub steps: Vec<String>,
    pub weight: u8,
    pub reason: Option<String>,
    pub started_at: String,
    pub traffic_since: Option<String>,
    pub finished_at: Option<String>,
    /// Seconds from the canary's first traffic to the end of the rollout.
    pub decided_after_s: Option<f64>,
    pub analysis: Vec<MetricView>,
    #[schema(value_type = Option<Object>)]
    pub policy: Option<PolicyCheck>,
    /// Live traffic of both releases.
    pub traffic: Vec<ReleaseTraffic>,
    /// How many live proxies serve the app's routes as last changed (a weight is in force once
    /// all of them do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<RoutesApplied>,
}

/// How far an app's last route change got across the proxies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoutesApplied {
    /// Live proxies that serve it.
    pub applied: usize,
    /// Live proxies.
    pub proxies: usize,
    /// For an app its cluster routes: which object holds the routes and how they stand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// Progress of one analysis metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MetricView {
    pub template: String,
    pub metric: String,
    pub status: String,
    pub taken: u32,
    pub count: u32,
    pub failed: u32,
    pub inconclusive: u32,
    pub errors: u32,
    pub last_value: Option<String>,
    pub last_message: Option<String>,
}

/// A release's traffic over the last window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseTraffic {
    pub version: String,
    /// What the release is to the rollout: `stable`, `canary` (and `baseline`) while it runs;
    /// `previous` and `current` once promoted; `current` and `rolled-back` once rolled back,
    /// aborted or failed.
    pub role: String,
    pub weight: u8,
    /// Instances the rollout runs of this release.
    #[serde(default)]
    pub instances: u32,
    /// The instances running now (pods on Kubernetes), with their health.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<InstanceView>,
    pub window_s: f64,
    pub requests: u64,
    pub rps: f64,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One running instance of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub address: String,
    /// `healthy`; `unhealthy` when a proxy avoids it (its health checks fail or passive checks
    /// ejected it); `unknown` when no proxy serves the app (its cluster routes it).
    pub health: String,
}

/// `POST /api/v1/apps/{app}/rollout/promote` etc.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// For promote: skip every remaining step.
    #[serde(default)]
    pub full: bool,
    /// For abort and emergency-stop: why. For approve: the approver's reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// For pause: how long (humantime, e.g. `10m`); until resumed when absent.
    #[serde(default)]
    pub duration: Option<String>,
    /// For resume: the canary weight to continue with.
    #[serde(default)]
    pub weight: Option<u8>,
    /// For resume: the analysis interval to continue with (humantime).
    #[serde(default)]
    pub interval: Option<String>,
    /// What the caller saw: the command is refused (409 `stale_command`, with the current
    /// rollout in `details`) unless the app's latest rollout is still this one, at this step.
    /// Absent: the command applies to whatever rollout is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
}

/// The rollout (and step) a command is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The rollout's `id`.
    pub rollout: i64,
    /// The rollout's `step`; any step of that rollout when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
}

/// `POST /api/v1/apps/{app}/deploy` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeployResponse {
    pub app: String,
    pub version: String,
    /// `rollout` when a canary rollout started, `initial` for an app's first release.
    pub kind: String,
    pub rollout: Option<RolloutView>,
}

/// `GET /api/v1/apps/{app}/events` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventList {
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<EventRecord>,
}

/// `GET /api/v1/apps/{app}/analysis`: every measurement of the app's latest rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalysisList {
    pub rollout: Option<i64>,
    pub measurements: Vec<MeasurementView>,
}

/// One measurement with the condition that judged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeasurementView {
    pub at: String,
    pub template: String,
    pub metric: String,
    pub phase: String,
    pub value: Option<String>,
    pub baseline: Option<String>,
    pub samples: Option<u64>,
    pub message: String,
    pub dry_run: bool,
    /// A judge's evidence: counts, estimates, interval, boundary, p-value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

/// `POST /api/v1/apps/{app}/emergency-stop` and `.../unfreeze` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FreezeView {
    pub app: String,
    pub frozen: bool,
    pub reason: Option<String>,
    pub rollout: Option<RolloutView>,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Who the token stands for: the actor of everything done with it.
    pub name: String,
    /// `viewer`, `operator`, `deployer`, `flag-editor`, `admin` or `sdk`.
    pub role: String,
    /// Limited to these apps; every app when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<String>>,
    /// Limited to these environments; every environment when absent (an `sdk` token needs
    /// exactly one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
}

/// A token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub apps: Option<Vec<String>>,
    pub environments: Option<Vec<String>>,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

/// `POST /api/v1/tokens` answer: the token, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedTokenView {
    /// `sy_<id>_<secret>`: send it as `Authorization: Bearer <token>`. Not shown again.
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

/// `POST /api/v1/tokens/{id}/revoke` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokedTokenView {
    pub id: String,
    /// `false` when it was revoked already.
    pub revoked: bool,
}

/// `GET /api/v1/audit/verify` answer: both hash chains checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditVerification {
    /// Neither chain has a problem.
    pub ok: bool,
    #[schema(value_type = Object)]
    pub events: switchyard_core::ports::EventLogVerification,
    #[schema(value_type = Object)]
    pub flags: switchyard_core::ports::FlagAuditVerification,
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditQuery {
    pub app: Option<String>,
    pub actor: Option<String>,
    /// Event kinds (`rollout_started`, `token_created`, ...).
    pub kinds: Vec<String>,
    pub after: Option<i64>,
    pub limit: Option<u32>,
}
