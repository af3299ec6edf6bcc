//! One interval of traffic of the canary and its baseline: what the proxy's per-release
//! telemetry gives for the time since the previous look.
//!
//! Intervals must not overlap: each request is counted in exactly one observation. Feeding
//! overlapping trailing windows counts requests twice, makes the judge overconfident and voids
//! its false-rollback guarantee.

use serde::{Deserialize, Serialize};
use switchyard_core::WindowStats;

/// Traffic of one release over one interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmInterval {
    /// Requests answered in the interval.
    pub requests: u64,
    /// Of those, answered 5xx or never answered.
    pub errors: u64,
    /// Latency histogram of the interval, `(upper_bound_seconds, count)` as
    /// `ReleaseMetrics::latency_buckets` returns it. Only latency judges read it; buckets need
    /// not be sorted or cover a fixed grid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<(f64, u64)>,
}

impl ArmInterval {
    /// From the proxy's window of the interval and its latency buckets.
    pub fn from_window(stats: &WindowStats, latency: Vec<(f64, u64)>) -> Self {
        ArmInterval {
            requests: stats.requests,
            errors: stats.errors(),
            latency,
        }
    }
}

/// Both releases over the same interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalObservation {
    /// End of the interval, milliseconds since the Unix epoch (or any fixed origin shared with
    /// the `now_ms` given to [`crate::judge::JudgeState::verdict`]).
    pub at_ms: u64,
    /// The canary release.
    pub canary: ArmInterval,
    /// The baseline release (the stable one for `against: stable`).
    pub baseline: ArmInterval,
}
