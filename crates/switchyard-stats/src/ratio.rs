//! Ratio metrics (Σ numerator / Σ denominator per arm, e.g. revenue per
//! session when units are users) with the delta-method per-unit variance
//! `var_m/μ_d² + var_d μ_m²/μ_d⁴ − 2 cov μ_m/μ_d³` (n − 1 denominators),
//! compared with a Welch t test, absolute or relative.

use crate::arm::{ArmSummary, covariance, mean_variance};
use crate::error::{Result, StatsError, pointer, sample};
use crate::t_test::{Difference, TTestOptions, TTestResult, welch_t_test};

/// One arm's per-unit numerator and denominator.
#[derive(Debug, Clone, Copy)]
pub struct RatioArm<'a> {
    /// Numerator per unit (e.g. revenue).
    pub numerator: &'a [f64],
    /// Denominator per unit (e.g. sessions).
    pub denominator: &'a [f64],
}

/// The ratio of one arm as a summary: mean = ratio, variance = delta-method
/// per-unit variance, so that variance / n is the variance of the ratio.
///
/// # Errors
/// Empty or mismatched lists, or a zero mean denominator.
pub fn ratio_summary(field: &str, arm: &RatioArm<'_>) -> Result<ArmSummary> {
    sample(&pointer(field, "numerator"), arm.numerator)?;
    sample(&pointer(field, "denominator"), arm.denominator)?;
    if arm.numerator.len() != arm.denominator.len() {
        return Err(StatsError::LengthMismatch {
            field: pointer(field, "denominator"),
            other: pointer(field, "numerator"),
            expected: arm.numerator.len(),
            actual: arm.denominator.len(),
        });
    }
    let (mean_m, var_m) = mean_variance(arm.numerator);
    let (mean_d, var_d) = mean_variance(arm.denominator);
    if mean_d == 0.0 {
        return Err(StatsError::ZeroMean {
            field: pointer(field, "denominator"),
        });
    }
    let cov = covariance(arm.numerator, arm.denominator);
    let variance = var_m / mean_d.powi(2) + var_d * mean_m.powi(2) / mean_d.powi(4)
        - 2.0 * cov * mean_m / mean_d.powi(3);
    Ok(ArmSummary {
        n: arm.numerator.len() as f64,
        mean: mean_m / mean_d,
        variance: variance.max(0.0),
    })
}

/// Compares the ratio metric of treatment with control.
///
/// # Errors
/// See [`ratio_summary`] and [`welch_t_test`].
pub fn ratio_test(
    control: &RatioArm<'_>,
    treatment: &RatioArm<'_>,
    options: &TTestOptions,
) -> Result<TTestResult> {
    let c = ratio_summary("/control", control)?;
    let t = ratio_summary("/treatment", treatment)?;
    if options.difference == Difference::Relative && c.mean == 0.0 {
        return Err(StatsError::ZeroMean {
            field: "/control/numerator".to_owned(),
        });
    }
    welch_t_test(&c, &t, options)
}
