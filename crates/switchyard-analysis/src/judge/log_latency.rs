//! `compare: latency`: the ratio of the canary's geometric-mean latency to the baseline's, by
//! always-valid one-sided confidence sequences ([`crate::judge::bounds`]) on the difference of
//! mean log-latencies.
//!
//! Logs turn the multiplicative question ("at most 20 % slower") into a difference and tame the
//! long right tail of latency, so the mean of logs is well estimated from a few hundred
//! requests. For log-normal latencies the ratio of geometric means is exactly the ratio of
//! medians (and of every quantile when the spread is unchanged).

use serde::{Deserialize, Serialize};
use switchyard_stats::t_test::difference_estimate;
use switchyard_stats::{ArmSummary, Difference};

use crate::judge::bounds;
use crate::judge::histogram::MIN_LATENCY_S;
use crate::judge::verdict::Decision;

/// Count, mean and sum of squared deviations of log-latency (Chan's parallel update, so
/// merging whole buckets loses no precision).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LogMoments {
    /// Requests.
    pub n: u64,
    /// Mean of ln(seconds).
    pub mean: f64,
    /// Σ (ln x − mean)².
    pub m2: f64,
}

impl LogMoments {
    /// Adds `count` requests of latency `seconds`.
    pub fn add(&mut self, seconds: f64, count: u64) {
        if count == 0 {
            return;
        }
        let x = seconds.max(MIN_LATENCY_S).ln();
        let (na, c) = (self.n as f64, count as f64);
        let n = na + c;
        let delta = x - self.mean;
        self.mean += delta * c / n;
        self.m2 += delta * delta * na * c / n;
        self.n += count;
    }

    /// Geometric mean latency in seconds, `None` without requests.
    pub fn geometric_mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.mean.exp())
    }

    fn summary(&self) -> ArmSummary {
        let n = self.n as f64;
        ArmSummary {
            n,
            mean: self.mean,
            variance: if n > 1.0 { self.m2 / (n - 1.0) } else { 0.0 },
        }
    }
}

/// Requests each release needs before the latency judge decides: below this the sample
/// variance of log-latency is too unreliable for the normal approximation the confidence
/// sequences rest on (with a handful of canary requests beside thousands of baseline ones, an
/// A/A canary was rolled back in 1.8 % of simulated runs instead of under 1 %).
pub const MIN_REQUESTS: u64 = 30;

/// Tests ln(canary/baseline) against ln(`max_increase`); `None` until both arms have
/// [`MIN_REQUESTS`] requests and some spread.
pub fn decide(
    canary: &LogMoments,
    baseline: &LogMoments,
    max_increase: f64,
    alpha: f64,
) -> Option<Decision> {
    if canary.n < MIN_REQUESTS || baseline.n < MIN_REQUESTS {
        return None;
    }
    // Errors here mean no spread yet (every request in one bucket): not decidable.
    let estimate =
        difference_estimate(&baseline.summary(), &canary.summary(), Difference::Absolute).ok()?;
    let n = (canary.n + baseline.n) as f64;
    bounds::decide(
        estimate.point_estimate,
        estimate.std_error,
        n,
        max_increase.ln(),
        alpha,
    )
}
