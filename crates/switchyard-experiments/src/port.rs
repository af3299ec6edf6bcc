//! What the experiment service needs from storage, as a trait the store implements.
//!
//! Events change per-unit values and per-variant [`Moments`](crate::Moments) in one transaction
//! per batch; an idempotency key already stored makes its event a duplicate that changes
//! nothing. Results read the aggregates, never the raw events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::Experiment;
use switchyard_core::ports::{Author, StoreError};

use crate::data::{ExperimentData, ExposedUnits};
use crate::event::ValidEvent;
use crate::experiment::CompiledExperiment;
use crate::snapshot::Snapshot;

/// An applied experiment and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRecord {
    pub manifest: Experiment,
    pub generation: u64,
    pub started_at: Timestamp,
    pub status: ExperimentStatus,
}

/// Whether an experiment still assigns units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ExperimentStatus {
    Running,
    /// Stopped by a guardrail, its maximum duration or an operator; everyone gets control.
    Stopped {
        reason: String,
        actor: String,
        at: Timestamp,
    },
}

/// What became of one valid event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Ingested {
    /// Counted in the aggregates (or, before the unit's exposure, in its covariate).
    Counted,
    /// Its idempotency key was stored before: nothing changed.
    Duplicate,
    /// It contradicts what is stored (e.g. an exposure to another variant than the unit's).
    Rejected { message: String },
}

/// Storage of experiments' units, aggregates, idempotency keys and result snapshots.
#[async_trait::async_trait]
pub trait ExperimentStore: Send + Sync + 'static {
    /// Every applied experiment.
    async fn experiments(&self) -> Result<Vec<ExperimentRecord>, StoreError>;

    /// One applied experiment.
    async fn experiment(&self, key: &str) -> Result<Option<ExperimentRecord>, StoreError>;

    /// Applies a batch of validated events, in order, in one transaction. `experiments` holds
    /// the compiled experiments the events name. With `keep_raw`, each counted event is kept
    /// beside its idempotency key.
    async fn ingest(
        &self,
        experiments: &BTreeMap<String, CompiledExperiment>,
        events: &[ValidEvent],
        keep_raw: bool,
        received_at: Timestamp,
    ) -> Result<Vec<Ingested>, StoreError>;

    /// The aggregates of an experiment, per variant and metric.
    async fn data(&self, key: &str) -> Result<Option<ExperimentData>, StoreError>;

    /// The exposed units per variant and, per metric in `metrics`, each exposed unit's value
    /// (for caps at a percentile), from one consistent read.
    async fn exposed_units(
        &self,
        key: &str,
        metrics: &[String],
    ) -> Result<ExposedUnits, StoreError>;

    /// How many events of the experiment have been counted: every change to its units counts
    /// one, so while this stays the same so do they (results cache their percentile caps on it).
    async fn counted_events(&self, key: &str) -> Result<u64, StoreError>;

    /// Stops a running experiment and records why. Returns `false` when it was not running.
    async fn stop(
        &self,
        key: &str,
        reason: &str,
        by: &Author,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Keeps a point of the results over time (for the report's cumulative plot).
    async fn add_snapshot(&self, key: &str, snapshot: &Snapshot) -> Result<(), StoreError>;

    /// Every snapshot of an experiment, oldest first.
    async fn snapshots(&self, key: &str) -> Result<Vec<Snapshot>, StoreError>;
}
