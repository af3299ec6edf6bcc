//! Analysis: taking measurements of metrics and judging them.
//!
//! - [`run`]: the state of one analysis (a set of metrics measured at intervals) and the
//!   Argo Rollouts semantics of conditions and limits. Pure.
//! - [`provider`]: where measurements come from, behind [`MetricProvider`].
//! - [`builtin`]: the proxy's own per-release telemetry as a provider.
//! - [`prometheus`], [`web`], [`command`]: external providers (PromQL instant queries, JSON
//!   over HTTP, programs that print a number); [`router`] dispatches to each by spec.
//! - [`judge`]: the statistical canary judge: canary against baseline with sequential tests
//!   that stay valid under continuous monitoring. Pure.
//! - [`sim`]: a seeded simulator that feeds identical traffic to the judge and to Argo-,
//!   Flagger- and Kayenta-style rules and reports rollback rates and times. Pure.
//!
//! It does not decide what a verdict does to a rollout; the rollout engine does.

pub mod builtin;
pub mod command;
mod http;
mod json_value;
pub mod judge;
pub mod prometheus;
pub mod provider;
pub mod router;
pub mod run;
pub mod sim;
pub mod web;

pub use builtin::BuiltinProvider;
pub use command::CommandRunner;
pub use http::ProviderBuildError;
pub use judge::{
    ArmInterval, Compare, Evidence, IntervalObservation, JudgeError, JudgeOutcome, JudgeSpec,
    JudgeState, JudgeVerdict, OnTimeout,
};
pub use prometheus::PrometheusClient;
pub use provider::{JudgeTotalsRequest, MeasureError, MeasureRequest, MetricProvider, Observation};
pub use router::ProviderRouter;
pub use run::{AnalysisRun, Measurement, MeasurementPhase, MetricRun, RunStatus};
pub use sim::{JudgeReport, SimConfig, SimError, SimReport, simulate_canary};
pub use web::WebClient;
