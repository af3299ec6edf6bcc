//! The statistical canary judge: canary against baseline on the same intervals, with sequential
//! tests that may be looked at after every interval without inflating false rollbacks.
//!
//! - [`spec`]: what to compare (`error_rate`, `latency`, `latency_p50/p95/p99`), against which
//!   release, and the tolerances, as written in a manifest's `judge:` field.
//! - [`observation`]: one interval of traffic of both releases, as the proxy's telemetry gives it.
//! - [`state`]: [`JudgeState`], the running totals (serde, so a rollout persists it) and the
//!   verdict at any look.
//! - [`error_rate`], [`log_latency`], [`quantile`]: the three tests behind the verdict.
//! - [`bounds`]: the two one-sided always-valid bounds every decision is read from.
//! - [`risk_ratio`]: the risk-ratio martingale of an adaptive canary, and [`adaptive`], the
//!   weight it chooses within the error budget.
//! - [`needed`]: how much more canary traffic an undecided judge needs.
//! - [`histogram`]: the fixed log-scale latency histogram the totals are kept in.
//! - [`verdict`]: [`JudgeVerdict`] and the [`Evidence`] every verdict carries.
//!
//! Pure: no IO, no clock. Times are inputs in milliseconds. Method, guarantees and limits are
//! written for operators in `docs/decisions.md`.

pub mod adaptive;
pub mod bounds;
pub mod error;
pub mod error_rate;
pub mod histogram;
pub mod log_latency;
pub mod needed;
pub mod observation;
pub mod quantile;
pub mod risk_ratio;
pub mod spec;
pub mod state;
pub mod verdict;

#[cfg(test)]
mod tests;

pub use error::JudgeError;
pub use observation::{ArmInterval, IntervalObservation};
pub use spec::{Against, Compare, JudgeSpec, OnTimeout};
pub use state::JudgeState;
pub use verdict::{ArmEvidence, Evidence, JudgeMethod, JudgeOutcome, JudgeVerdict};
