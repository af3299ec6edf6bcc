//! A Flagger-style rule with Flagger's documented defaults: every `interval: 1m` check the
//! builtin metrics over the last minute, `request-success-rate` (non-5xx share, `min: 99`) and
//! `request-duration` (p99, `max: 500` ms); a check fails when either is out of range or has
//! no value (no traffic, Flagger #883); roll back once failed checks reach `threshold: 5`.

use crate::judge::histogram::BUCKETS_PER_DOUBLING;
use crate::sim::rule::{Signal, SimulatedJudge, WindowCounts};
use crate::sim::traffic::ArmTick;

/// Seconds between checks and the metrics' range.
pub const INTERVAL_S: u64 = 60;
/// Failed checks that trigger the rollback.
pub const THRESHOLD: u32 = 5;
/// Minimum success rate.
pub const MIN_SUCCESS_RATE: f64 = 0.99;
/// Maximum p99 latency, seconds.
pub const MAX_P99_S: f64 = 0.5;

/// The rule's running state.
#[derive(Debug, Clone, Default)]
pub struct FlaggerRule {
    window: WindowCounts,
    latency: Vec<i32>,
    failed_checks: u32,
}

impl SimulatedJudge for FlaggerRule {
    fn observe(&mut self, t: u64, canary: &ArmTick, _baseline: &ArmTick) -> Signal {
        self.window.add(canary);
        self.latency.extend_from_slice(&canary.latency);
        if t % INTERVAL_S != 0 {
            return Signal::Continue;
        }
        let success = self.window.error_rate().map(|e| 1.0 - e);
        let p99 = p99(&mut self.latency);
        self.window = WindowCounts::default();
        self.latency.clear();
        let ok =
            success.is_some_and(|s| s >= MIN_SUCCESS_RATE) && p99.is_some_and(|p| p <= MAX_P99_S);
        if !ok {
            self.failed_checks += 1;
            if self.failed_checks >= THRESHOLD {
                return Signal::Rollback;
            }
        }
        Signal::Continue
    }
}

/// Nearest-rank p99 of grid indices, at the bucket's geometric midpoint.
fn p99(latency: &mut [i32]) -> Option<f64> {
    if latency.is_empty() {
        return None;
    }
    let rank = ((0.99 * latency.len() as f64).ceil() as usize).clamp(1, latency.len()) - 1;
    let (_, k, _) = latency.select_nth_unstable(rank);
    Some(((f64::from(*k) - 0.5) / BUCKETS_PER_DOUBLING).exp2())
}
