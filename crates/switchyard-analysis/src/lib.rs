//! Analysis: taking measurements of metrics and judging them.
//!
//! - [`run`]: the state of one analysis (a set of metrics measured at intervals) and the
//!   Argo Rollouts semantics of conditions and limits. Pure.
//! - [`provider`]: where measurements come from, behind [`MetricProvider`].
//! - [`builtin`]: the proxy's own per-release telemetry as a provider.
//!
//! It does not decide what a verdict does to a rollout; the rollout engine does.

pub mod builtin;
pub mod provider;
pub mod run;

pub use builtin::BuiltinProvider;
pub use provider::{MeasureError, MeasureRequest, MetricProvider, Observation};
pub use run::{AnalysisRun, Measurement, MeasurementPhase, MetricRun, RunStatus};
