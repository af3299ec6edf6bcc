//! Two-sample t tests on means: Welch (unequal variances, Welch–Satterthwaite
//! df) on the absolute or relative difference, and Student's pooled test.
//!
//! Relative difference = (t − c)/|c| with delta-method variance
//! `v_t/(c² n_t) + v_c t²/(c⁴ n_c)` (as GrowthBook's gbstats).

use crate::arm::ArmSummary;
use crate::dist::{t_quantile, t_sf};
use crate::error::{Result, StatsError, open_unit};

/// Scale of the treatment − control comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Difference {
    /// treatment mean − control mean.
    #[default]
    Absolute,
    /// (treatment mean − control mean) / |control mean|.
    Relative,
}

/// The alternative hypothesis, about treatment − control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alternative {
    /// Difference ≠ 0.
    #[default]
    TwoSided,
    /// Difference > 0 (treatment greater).
    Greater,
    /// Difference < 0 (treatment less).
    Less,
}

/// A difference estimate with its standard error and degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffectEstimate {
    /// Estimated difference (absolute or relative).
    pub point_estimate: f64,
    /// Standard error of the estimate.
    pub std_error: f64,
    /// Degrees of freedom for t inference (∞ for a z test).
    pub df: f64,
}

/// Options of [`welch_t_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTestOptions {
    /// Absolute or relative difference.
    pub difference: Difference,
    /// Two-sided or one-sided.
    pub alternative: Alternative,
    /// Significance level; the interval has confidence 1 − alpha.
    pub alpha: f64,
}

impl Default for TTestOptions {
    fn default() -> Self {
        TTestOptions {
            difference: Difference::Absolute,
            alternative: Alternative::TwoSided,
            alpha: 0.05,
        }
    }
}

/// Result of a t test. One-sided intervals have an infinite bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTestResult {
    /// Estimated difference.
    pub point_estimate: f64,
    /// Its standard error.
    pub std_error: f64,
    /// t statistic = estimate / std_error.
    pub statistic: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// p-value for the chosen alternative.
    pub p_value: f64,
    /// Confidence interval `[lo, hi]` at level 1 − alpha.
    pub ci: [f64; 2],
}

/// Welch–Satterthwaite degrees of freedom of two arms (each needs n ≥ 2).
pub fn welch_df(control: &ArmSummary, treatment: &ArmSummary) -> f64 {
    let a = control.variance / control.n;
    let b = treatment.variance / treatment.n;
    let denom = a * a / (control.n - 1.0) + b * b / (treatment.n - 1.0);
    (a + b).powi(2) / denom
}

/// Estimates treatment − control (absolute or relative) with its standard error
/// and Welch–Satterthwaite degrees of freedom.
///
/// # Errors
/// An arm with n < 2, a zero control mean for a relative difference, or a zero
/// standard error.
pub fn difference_estimate(
    control: &ArmSummary,
    treatment: &ArmSummary,
    difference: Difference,
) -> Result<EffectEstimate> {
    control.require_n("/control", 2)?;
    treatment.require_n("/treatment", 2)?;
    let (point_estimate, variance) = match difference {
        Difference::Absolute => (
            treatment.mean - control.mean,
            treatment.variance / treatment.n + control.variance / control.n,
        ),
        Difference::Relative => relative_moments(control, treatment)?,
    };
    if !crate::error::is_positive(variance) {
        return Err(StatsError::ZeroStandardError);
    }
    Ok(EffectEstimate {
        point_estimate,
        std_error: variance.sqrt(),
        df: welch_df(control, treatment),
    })
}

/// Relative lift and its delta-method variance.
pub(crate) fn relative_moments(control: &ArmSummary, treatment: &ArmSummary) -> Result<(f64, f64)> {
    let c = control.mean;
    if c == 0.0 {
        return Err(StatsError::ZeroMean {
            field: "/control".to_owned(),
        });
    }
    let t = treatment.mean;
    let lift = (t - c) / c.abs();
    let variance = treatment.variance / (c * c * treatment.n)
        + control.variance * t * t / (c.powi(4) * control.n);
    Ok((lift, variance))
}

/// Turns an estimate into a t statistic, p-value and interval.
///
/// # Errors
/// `alpha` outside (0, 1), or a non-positive standard error or df.
pub fn t_inference(
    estimate: EffectEstimate,
    alternative: Alternative,
    alpha: f64,
) -> Result<TTestResult> {
    open_unit("/alpha", alpha)?;
    let EffectEstimate {
        point_estimate,
        std_error,
        df,
    } = estimate;
    if !crate::error::is_positive(std_error) {
        return Err(StatsError::ZeroStandardError);
    }
    let statistic = point_estimate / std_error;
    let (p_value, ci) = match alternative {
        Alternative::TwoSided => {
            let half = t_quantile("/alpha", 1.0 - alpha / 2.0, df)? * std_error;
            (
                2.0 * t_sf(statistic.abs(), df)?,
                [point_estimate - half, point_estimate + half],
            )
        }
        Alternative::Greater => {
            let half = t_quantile("/alpha", 1.0 - alpha, df)? * std_error;
            (t_sf(statistic, df)?, [point_estimate - half, f64::INFINITY])
        }
        Alternative::Less => {
            let half = t_quantile("/alpha", 1.0 - alpha, df)? * std_error;
            (
                t_sf(-statistic, df)?,
                [f64::NEG_INFINITY, point_estimate + half],
            )
        }
    };
    Ok(TTestResult {
        point_estimate,
        std_error,
        statistic,
        df,
        p_value: p_value.min(1.0),
        ci,
    })
}

/// Welch two-sample t test of treatment − control.
///
/// # Errors
/// See [`difference_estimate`] and [`t_inference`].
pub fn welch_t_test(
    control: &ArmSummary,
    treatment: &ArmSummary,
    options: &TTestOptions,
) -> Result<TTestResult> {
    let estimate = difference_estimate(control, treatment, options.difference)?;
    t_inference(estimate, options.alternative, options.alpha)
}

/// Student's two-sample t test with pooled variance (absolute difference,
/// df = n_c + n_t − 2). Provided for comparison with Welch.
///
/// # Errors
/// See [`t_inference`]; arms need n ≥ 2.
pub fn student_t_test(
    control: &ArmSummary,
    treatment: &ArmSummary,
    alternative: Alternative,
    alpha: f64,
) -> Result<TTestResult> {
    control.require_n("/control", 2)?;
    treatment.require_n("/treatment", 2)?;
    let df = control.n + treatment.n - 2.0;
    let pooled =
        ((control.n - 1.0) * control.variance + (treatment.n - 1.0) * treatment.variance) / df;
    let std_error = (pooled * (1.0 / control.n + 1.0 / treatment.n)).sqrt();
    let estimate = EffectEstimate {
        point_estimate: treatment.mean - control.mean,
        std_error,
        df,
    };
    t_inference(estimate, alternative, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(n: f64, mean: f64, variance: f64) -> ArmSummary {
        ArmSummary { n, mean, variance }
    }

    #[test]
    fn one_sided_p_values_split_the_two_sided_one() {
        let c = arm(50.0, 10.0, 4.0);
        let t = arm(60.0, 10.8, 5.0);
        let two = welch_t_test(&c, &t, &TTestOptions::default()).expect("ok");
        let greater = welch_t_test(
            &c,
            &t,
            &TTestOptions {
                alternative: Alternative::Greater,
                ..TTestOptions::default()
            },
        )
        .expect("ok");
        let less = welch_t_test(
            &c,
            &t,
            &TTestOptions {
                alternative: Alternative::Less,
                ..TTestOptions::default()
            },
        )
        .expect("ok");
        assert!((greater.p_value * 2.0 - two.p_value).abs() < 1e-12);
        assert!((greater.p_value + less.p_value - 1.0).abs() < 1e-12);
        assert!(greater.ci[1].is_infinite() && less.ci[0].is_infinite());
    }

    #[test]
    fn relative_needs_nonzero_control_mean() {
        let err = difference_estimate(
            &arm(5.0, 0.0, 1.0),
            &arm(5.0, 1.0, 1.0),
            Difference::Relative,
        );
        assert!(matches!(err, Err(StatsError::ZeroMean { .. })));
    }

    #[test]
    fn zero_variance_is_an_error() {
        let err = difference_estimate(
            &arm(5.0, 1.0, 0.0),
            &arm(5.0, 1.0, 0.0),
            Difference::Absolute,
        );
        assert_eq!(err, Err(StatsError::ZeroStandardError));
    }
}
