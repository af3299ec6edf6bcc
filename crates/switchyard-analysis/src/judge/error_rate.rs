//! `compare: error_rate`: the sequential two-proportion test of switchyard-stats on the running
//! totals: is the canary's error rate above `maxIncrease` × the baseline's + `margin`? The
//! boundary scales with the baseline (a tenfold regression of a 0.1 % service is caught as
//! surely as one of a 5 % service), and `margin` is the absolute floor that keeps a service with
//! no errors from failing a canary over its first one.
//!
//! The test runs on canary − maxIncrease × baseline against `margin`; the decision is reported
//! on the plain difference, canary − baseline, against the tolerated difference at the current
//! baseline, (maxIncrease − 1) × baseline + margin (the same shift applied to estimate, interval
//! and boundary, so where the interval lies relative to the boundary is unchanged).
//!
//! The estimate and its standard error come from the stats crate's
//! [`SequentialProportionTest`] (smoothed rates, so an arm without errors still has
//! uncertainty); the decision from the two one-sided confidence sequences of
//! [`crate::judge::bounds`], which stay valid however often the judge looks.

use switchyard_stats::{ProportionCounts, SequentialProportionConfig, SequentialProportionTest};

use crate::judge::bounds;
use crate::judge::error::JudgeError;
use crate::judge::spec::DEFAULT_TUNING;
use crate::judge::verdict::Decision;

/// Tests the canary's error rate against `ratio` × the baseline's + `margin`; `None` while an arm
/// has no requests.
///
/// # Errors
/// [`JudgeError::Stats`] when the configuration is refused (prevented by spec validation).
pub fn decide(
    canary: ProportionCounts,
    baseline: ProportionCounts,
    ratio: f64,
    margin: f64,
    alpha: f64,
) -> Result<Option<Decision>, JudgeError> {
    if canary.trials == 0 || baseline.trials == 0 {
        return Ok(None);
    }
    let mut test = SequentialProportionTest::new(SequentialProportionConfig {
        alpha,
        margin,
        ratio,
        tuning: DEFAULT_TUNING,
        ..SequentialProportionConfig::default()
    })
    .map_err(JudgeError::Stats)?;
    test.record(baseline, canary).map_err(JudgeError::Stats)?;
    let s = test.evaluate().map_err(JudgeError::Stats)?;
    let n = (canary.trials + baseline.trials) as f64;
    let shift = (ratio - 1.0) * baseline.successes as f64 / baseline.trials as f64;
    Ok(
        bounds::decide(s.difference, s.std_error, n, margin, alpha).map(|d| Decision {
            estimate: d.estimate + shift,
            interval: [d.interval[0] + shift, d.interval[1] + shift],
            boundary: d.boundary + shift,
            ..d
        }),
    )
}
