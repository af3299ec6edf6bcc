//! switchyard-experiments: the pure engine behind A/B experiments.
//!
//! What it does: compiles an `Experiment` manifest ([`CompiledExperiment`]); validates batches of
//! events for `POST /api/v1/events` with per-event errors ([`event`]); defines the per-unit values
//! and per-variant sufficient statistics the store keeps, updated by exact deltas ([`moments`]);
//! analyses the aggregates into estimates, lifts, p-values or chances to win, the
//! multiple-testing correction, the sample-ratio-mismatch check, guardrails, the sample still
//! needed and a recommendation ([`analysis`]); and renders a self-contained HTML report with
//! inline SVG plots ([`report`]).
//!
//! What it does not do: IO. Storing events and aggregates, deduplicating idempotency keys across
//! batches, serving the API, assigning units (the flag engine and the proxy do) and stopping an
//! experiment all happen elsewhere and call this crate. Statistics come from `switchyard-stats`.
//!
//! See `docs/experiments.md`.

pub mod analysis;
pub mod data;
pub mod event;
pub mod experiment;
pub mod moments;
pub mod port;
pub mod report;
pub mod snapshot;

pub use analysis::{
    AnalysisError, Comparison, GuardrailStatus, MetricResult, Recommendation, Results, StopReason,
    Verdict, analyze,
};
pub use data::{ExperimentData, VariantData};
pub use event::{
    BatchError, EventError, EventKind, ExperimentCatalog, ValidEvent, ValidatedBatch,
    validate_batch,
};
pub use experiment::{CompiledExperiment, Metric, MetricKind, MetricRole, Split, Variant};
pub use moments::{EarlyEvent, Moments, StoredValue, UnitEvent, UnitValue};
pub use report::render_html;
pub use snapshot::{Snapshot, SnapshotPoint};
