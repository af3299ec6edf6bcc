//! Durable state: applied manifests, each app's stable release, rollouts and the event log.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::BoxError;
use crate::manifest::{AnalysisTemplate, App, DeploymentWindow, ManifestSet, Notifier, Pipeline};
use crate::name::{AppName, ObjectName, Version};
use crate::release::Release;
use crate::time::Timestamp;

/// Identifies a rollout.
pub type RolloutId = i64;

/// The durable state of Switchyard. Every write is atomic: it happens whole, with its events,
/// or not at all.
#[async_trait::async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Stores every manifest of `set` (insert or replace by kind and name) and appends one
    /// `ManifestApplied` event per document whose content changed, in one transaction.
    ///
    /// # Errors
    /// Backend failures; nothing is stored then.
    async fn apply(
        &self,
        set: &ManifestSet,
        by: &Author,
        at: Timestamp,
    ) -> Result<ApplyOutcome, StoreError>;

    /// # Errors
    /// Backend failures, or a stored document that no longer parses (`Corrupt`).
    async fn app(&self, name: &AppName) -> Result<Option<AppRecord>, StoreError>;

    /// All apps, by name.
    ///
    /// # Errors
    /// As [`StateStore::app`].
    async fn apps(&self) -> Result<Vec<AppRecord>, StoreError>;

    /// # Errors
    /// As [`StateStore::app`].
    async fn template(&self, name: &ObjectName) -> Result<Option<AnalysisTemplate>, StoreError>;

    /// Names of every applied analysis template.
    ///
    /// # Errors
    /// Backend failures.
    async fn template_names(&self) -> Result<BTreeSet<String>, StoreError>;

    /// Sets the stable release of an app outside any rollout (its first release) and appends
    /// `events`.
    ///
    /// # Errors
    /// `UnknownApp`, backend failures.
    async fn set_stable(
        &self,
        app: &AppName,
        release: &Release,
        events: &[NewEvent],
    ) -> Result<(), StoreError>;

    /// Creates an active rollout for `app` and appends `events`.
    ///
    /// # Errors
    /// `RolloutInProgress` when the app already has an active rollout; `UnknownApp`.
    async fn create_rollout(
        &self,
        app: &AppName,
        version: &Version,
        phase: &str,
        state: &serde_json::Value,
        events: &[NewEvent],
    ) -> Result<RolloutId, StoreError>;

    /// Replaces a rollout's state, optionally the app's stable release, and appends `events`,
    /// in one transaction.
    ///
    /// # Errors
    /// `UnknownRollout`, backend failures.
    async fn update_rollout(&self, update: &RolloutUpdate) -> Result<(), StoreError>;

    /// # Errors
    /// Backend failures.
    async fn rollout(&self, id: RolloutId) -> Result<Option<RolloutRecord>, StoreError>;

    /// The most recent rollout of an app, active or not.
    ///
    /// # Errors
    /// Backend failures.
    async fn latest_rollout(&self, app: &AppName) -> Result<Option<RolloutRecord>, StoreError>;

    /// The most recent rollout of every app that has one, by app name.
    ///
    /// # Errors
    /// Backend failures.
    async fn latest_rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError>;

    /// Every active rollout, oldest first.
    ///
    /// # Errors
    /// Backend failures.
    async fn active_rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError>;

    /// Every deployment so far: each rollout and each app's first release, oldest first.
    ///
    /// # Errors
    /// Backend failures.
    async fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError>;

    /// Appends events outside any other change.
    ///
    /// # Errors
    /// Backend failures.
    async fn append_events(&self, events: &[NewEvent]) -> Result<(), StoreError>;

    /// Events matching `query`, oldest first.
    ///
    /// # Errors
    /// Backend failures.
    async fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError>;

    /// Every applied pipeline, by name.
    ///
    /// # Errors
    /// As [`StateStore::app`].
    async fn pipelines(&self) -> Result<Vec<Pipeline>, StoreError>;

    /// Every applied notifier, by name.
    ///
    /// # Errors
    /// As [`StateStore::app`].
    async fn notifiers(&self) -> Result<Vec<Notifier>, StoreError>;

    /// Every applied deployment window, by name.
    ///
    /// # Errors
    /// As [`StateStore::app`].
    async fn windows(&self) -> Result<Vec<DeploymentWindow>, StoreError>;

    /// Creates an active run of `subject` (`pipeline/NAME` or `app/NAME`) and appends `events`.
    ///
    /// # Errors
    /// `RunInProgress` when the subject has an active run; backend failures.
    async fn create_run(
        &self,
        subject: &str,
        version: &Version,
        phase: &str,
        state: &serde_json::Value,
        events: &[NewEvent],
    ) -> Result<RunId, StoreError>;

    /// Replaces a run's state and appends `events`, in one transaction.
    ///
    /// # Errors
    /// `UnknownRun`, backend failures.
    async fn update_run(&self, update: &RunUpdate) -> Result<(), StoreError>;

    /// # Errors
    /// Backend failures.
    async fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError>;

    /// The runs of `subject` (every subject when `None`), newest first, at most `limit`.
    ///
    /// # Errors
    /// Backend failures.
    async fn runs(&self, subject: Option<&str>, limit: u32) -> Result<Vec<RunRecord>, StoreError>;

    /// Every active run, oldest first.
    ///
    /// # Errors
    /// Backend failures.
    async fn active_runs(&self) -> Result<Vec<RunRecord>, StoreError>;

    /// Recomputes the event log's hash chain. Tampering is reported in the result, not as an
    /// error.
    ///
    /// # Errors
    /// Backend failures.
    async fn verify_events(&self) -> Result<EventLogVerification, StoreError>;
}

/// The outcome of checking the event log's hash chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventLogVerification {
    /// No problem found.
    pub ok: bool,
    /// Events checked.
    pub events: u64,
    /// The hash of the last event; `None` for an empty log.
    pub head: Option<String>,
    pub problems: Vec<EventLogProblem>,
}

/// One break in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLogProblem {
    pub id: i64,
    pub message: String,
}

/// Identifies a pipeline run.
pub type RunId = i64;

/// A pipeline run as stored. `state` belongs to the pipeline runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    /// `pipeline/NAME` or `app/NAME`.
    pub subject: String,
    pub version: Version,
    pub phase: String,
    pub active: bool,
    pub state: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One atomic change to a pipeline run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunUpdate {
    pub id: RunId,
    pub phase: String,
    pub active: bool,
    pub state: serde_json::Value,
    pub events: Vec<NewEvent>,
    pub at: Timestamp,
}

/// What `apply` changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplyOutcome {
    /// `(kind, name, "created" | "configured" | "unchanged")` per document.
    pub results: Vec<(String, String, String)>,
}

/// An app as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    pub manifest: App,
    /// Bumped each time the manifest changes.
    pub generation: u64,
    /// The release taking traffic when no rollout runs; `None` before the first deploy.
    pub stable: Option<Release>,
    pub updated_at: Timestamp,
}

/// A rollout as stored. `state` belongs to the rollout engine; the store does not read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    pub id: RolloutId,
    pub app: AppName,
    pub version: Version,
    pub phase: String,
    pub active: bool,
    pub state: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A deployment as the deployment metrics count it: a rollout, or an app's first release
/// (which takes all traffic at once and has no rollout).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRecord {
    pub app: AppName,
    /// `None` for a first release.
    pub rollout: Option<RolloutId>,
    /// The rollout's phase (`Succeeded`, `RolledBack`, ...); `None` for a first release.
    pub phase: Option<String>,
    pub active: bool,
    pub started_at: Timestamp,
    /// When it ended (the rollout's last write); `None` while it runs and for a first release.
    pub ended_at: Option<Timestamp>,
}

/// One atomic change to a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutUpdate {
    pub id: RolloutId,
    pub phase: String,
    pub active: bool,
    pub state: serde_json::Value,
    /// When set, becomes the app's stable release in the same transaction.
    pub stable: Option<Release>,
    pub events: Vec<NewEvent>,
    pub at: Timestamp,
}

/// Kinds of events in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    ManifestApplied,
    ReleaseStarted,
    ReleaseFailed,
    ReleaseStopped,
    RolloutStarted,
    StepStarted,
    WeightChanged,
    Measurement,
    Verdict,
    PolicyBreach,
    Paused,
    Resumed,
    Promoted,
    Aborted,
    RolledBack,
    Failed,
    Succeeded,
    /// Emergency stop: the app takes no new rollout until unfrozen.
    Frozen,
    Unfrozen,
    /// An experiment stopped assigning units (guardrail, maximum duration or operator).
    ExperimentStopped,
    TokenCreated,
    TokenRevoked,
    /// A flag or segment was created, changed or deleted (its before and after are in the flag
    /// audit log).
    FlagChanged,
    /// A pipeline run (or one app's release) started.
    PipelineStarted,
    /// A stage of a run waits: soak, deployment window.
    StageWaiting,
    /// A stage of a run waits for a person's approval.
    AwaitingApproval,
    /// A stage was approved.
    Approved,
    /// An admin let a deployment start outside its deployment windows.
    WindowOverridden,
    StageStarted,
    StageSucceeded,
    /// A stage failed, or was rolled back by its failure policy.
    StageFailed,
    /// A run ended: succeeded, failed, halted, rolled back or cancelled.
    PipelineFinished,
}

impl EventKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [EventKind; 32] = [
        EventKind::ManifestApplied,
        EventKind::ReleaseStarted,
        EventKind::ReleaseFailed,
        EventKind::ReleaseStopped,
        EventKind::RolloutStarted,
        EventKind::StepStarted,
        EventKind::WeightChanged,
        EventKind::Measurement,
        EventKind::Verdict,
        EventKind::PolicyBreach,
        EventKind::Paused,
        EventKind::Resumed,
        EventKind::Promoted,
        EventKind::Aborted,
        EventKind::RolledBack,
        EventKind::Failed,
        EventKind::Succeeded,
        EventKind::Frozen,
        EventKind::Unfrozen,
        EventKind::ExperimentStopped,
        EventKind::TokenCreated,
        EventKind::TokenRevoked,
        EventKind::FlagChanged,
        EventKind::PipelineStarted,
        EventKind::StageWaiting,
        EventKind::AwaitingApproval,
        EventKind::Approved,
        EventKind::WindowOverridden,
        EventKind::StageStarted,
        EventKind::StageSucceeded,
        EventKind::StageFailed,
        EventKind::PipelineFinished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ManifestApplied => "manifest_applied",
            EventKind::ReleaseStarted => "release_started",
            EventKind::ReleaseFailed => "release_failed",
            EventKind::ReleaseStopped => "release_stopped",
            EventKind::RolloutStarted => "rollout_started",
            EventKind::StepStarted => "step_started",
            EventKind::WeightChanged => "weight_changed",
            EventKind::Measurement => "measurement",
            EventKind::Verdict => "verdict",
            EventKind::PolicyBreach => "policy_breach",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Promoted => "promoted",
            EventKind::Aborted => "aborted",
            EventKind::RolledBack => "rolled_back",
            EventKind::Failed => "failed",
            EventKind::Succeeded => "succeeded",
            EventKind::Frozen => "frozen",
            EventKind::Unfrozen => "unfrozen",
            EventKind::ExperimentStopped => "experiment_stopped",
            EventKind::TokenCreated => "token_created",
            EventKind::TokenRevoked => "token_revoked",
            EventKind::FlagChanged => "flag_changed",
            EventKind::PipelineStarted => "pipeline_started",
            EventKind::StageWaiting => "stage_waiting",
            EventKind::AwaitingApproval => "awaiting_approval",
            EventKind::Approved => "approved",
            EventKind::WindowOverridden => "window_overridden",
            EventKind::StageStarted => "stage_started",
            EventKind::StageSucceeded => "stage_succeeded",
            EventKind::StageFailed => "stage_failed",
            EventKind::PipelineFinished => "pipeline_finished",
        }
    }

    /// # Errors
    /// Returns the text back when it names no kind.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(text.into())).map_err(|_| text.to_string())
    }
}

/// Who causes a change: the principal (a token's name, or Switchyard itself: `controller`,
/// `policy`, `analysis`, ...) and the address its request came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub actor: String,
    /// The client's address; `None` for what Switchyard does by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Author {
    /// Switchyard itself, acting as `actor`.
    pub fn system(actor: &str) -> Self {
        Self {
            actor: actor.to_owned(),
            source: None,
        }
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub at: Timestamp,
    pub app: Option<AppName>,
    pub rollout: Option<RolloutId>,
    pub kind: EventKind,
    /// Who caused it: a token's name, or `controller`, `policy`, `analysis`, ...
    pub actor: String,
    /// The address of the request that caused it; `None` for what Switchyard did by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why, in a sentence.
    pub reason: String,
    /// Structured details (weights, measured values, evidence).
    pub data: serde_json::Value,
}

/// An event as stored, with its position in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: i64,
    #[serde(flatten)]
    pub event: NewEvent,
}

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    pub app: Option<AppName>,
    /// Only events of this actor.
    pub actor: Option<String>,
    pub rollout: Option<RolloutId>,
    pub kinds: Vec<EventKind>,
    /// Only events with a larger id (for following the log).
    pub after: Option<i64>,
    /// At most this many, the most recent ones (still returned oldest first).
    pub limit: Option<u32>,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("app `{0}` does not exist; apply its manifest first")]
    UnknownApp(AppName),
    #[error("rollout {0} does not exist")]
    UnknownRollout(RolloutId),
    #[error("app `{app}` already has a rollout in progress (rollout {rollout})")]
    RolloutInProgress { app: AppName, rollout: RolloutId },
    #[error("pipeline run {0} does not exist")]
    UnknownRun(RunId),
    #[error("`{subject}` already has a run in progress (run {run})")]
    RunInProgress { subject: String, run: RunId },
    #[error("token `{0}` does not exist")]
    UnknownToken(String),
    #[error("a token with id `{0}` exists already")]
    TokenExists(String),
    #[error("stored {what} cannot be read back: {source}")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A replica that does not hold the leader lease tried to write: it never led, or another
    /// replica took over (its fencing token moved on). Nothing was written.
    #[error(
        "this replica does not lead (its fencing token is {held}, the database's {}): the write is refused",
        current.map_or_else(|| "unset".to_owned(), |c| c.to_string())
    )]
    NotLeader { held: i64, current: Option<i64> },
    #[error("store backend failed while trying to {operation}: {source}")]
    Backend {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
}
