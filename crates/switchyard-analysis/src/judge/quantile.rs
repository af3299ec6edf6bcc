//! `compare: latency_p50 | latency_p95 | latency_p99`: is the canary's p-quantile more than
//! `maxIncrease` times the baseline's?
//!
//! The question is turned into a proportion so that the two-proportion confidence sequence
//! applies. With q the baseline's p-quantile and T = maxIncrease · q, the canary's p-quantile
//! exceeds T exactly when more than a share 1 − p of canary requests are slower than T. So the
//! judge compares
//!
//! - canary: the share of canary requests slower than T, with
//! - baseline: the share of baseline requests slower than q, which is 1 − p by definition,
//!
//! with margin 0. The baseline arm's binomial variance p(1 − p)/n_b is the variance that the
//! estimate of q carries into the comparison (Bahadur's representation of a sample quantile);
//! it is exact at the decision boundary when the canary is the baseline slowed down by a
//! constant factor near the quantile, and approximate otherwise (see docs/decisions.md).

use switchyard_stats::ProportionCounts;

use crate::judge::error::JudgeError;
use crate::judge::error_rate;
use crate::judge::histogram::LogHistogram;
use crate::judge::verdict::Decision;

/// The decision and the latencies behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileDecision {
    /// The test on exceedance shares (estimate = canary share above T − (1 − p), boundary 0).
    pub decision: Decision,
    /// Canary p-quantile, seconds.
    pub canary_quantile: f64,
    /// Baseline p-quantile, seconds.
    pub baseline_quantile: f64,
    /// T = maxIncrease · baseline quantile, seconds.
    pub threshold: f64,
}

/// Tests canary p-quantile against `max_increase` × baseline p-quantile; `None` while an arm
/// has no latency.
///
/// # Errors
/// As [`error_rate::decide`].
pub fn decide(
    canary: &LogHistogram,
    baseline: &LogHistogram,
    p: f64,
    max_increase: f64,
    alpha: f64,
) -> Result<Option<QuantileDecision>, JudgeError> {
    let (Some(canary_quantile), Some(baseline_quantile)) =
        (canary.quantile(p), baseline.quantile(p))
    else {
        return Ok(None);
    };
    let threshold = max_increase * baseline_quantile;
    let (nc, nb) = (canary.total(), baseline.total());
    let above = canary.count_above(threshold).round().min(nc as f64) as u64;
    let expected = ((1.0 - p) * nb as f64).round() as u64;
    let decision = error_rate::decide(
        ProportionCounts {
            trials: nc,
            successes: above,
        },
        ProportionCounts {
            trials: nb,
            successes: expected,
        },
        1.0,
        0.0,
        alpha,
    )?;
    Ok(decision.map(|decision| QuantileDecision {
        decision,
        canary_quantile,
        baseline_quantile,
        threshold,
    }))
}
