//! `compare: error_rate`: the sequential two-proportion test of switchyard-stats on the running
//! totals, canary − baseline against the margin.
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

/// Tests canary − baseline error rate against `margin`; `None` while an arm has no requests.
///
/// # Errors
/// [`JudgeError::Stats`] when the configuration is refused (prevented by spec validation).
pub fn decide(
    canary: ProportionCounts,
    baseline: ProportionCounts,
    margin: f64,
    alpha: f64,
) -> Result<Option<Decision>, JudgeError> {
    if canary.trials == 0 || baseline.trials == 0 {
        return Ok(None);
    }
    let mut test = SequentialProportionTest::new(SequentialProportionConfig {
        alpha,
        margin,
        tuning: DEFAULT_TUNING,
        ..SequentialProportionConfig::default()
    })
    .map_err(JudgeError::Stats)?;
    test.record(baseline, canary).map_err(JudgeError::Stats)?;
    let s = test.evaluate().map_err(JudgeError::Stats)?;
    let n = (canary.trials + baseline.trials) as f64;
    Ok(bounds::decide(s.difference, s.std_error, n, margin, alpha))
}
