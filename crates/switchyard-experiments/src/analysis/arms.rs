//! From moments to the `{n, mean, variance}` arms the statistics take.
//!
//! switchyard-stats tests CUPED and ratio metrics from per-unit samples; the store keeps
//! sufficient statistics instead, so this module computes the same arm summaries from the
//! sums (the tests check them against `cuped_test` and `ratio_summary` on the raw units). All
//! inference (t and z tests, confidence sequences, posteriors) stays in switchyard-stats.
//!
//! - conversions: `Arm::Proportion` (variance p(1 − p)), and the counts for the two-proportion test;
//! - continuous metrics: `Arm::Sums`;
//! - ratios: Σx/Σy with the delta-method per-unit variance
//!   `var_x/μ_y² + var_y μ_x²/μ_y⁴ − 2 cov μ_x/μ_y³`;
//! - CUPED (conversion and continuous metrics whose covariate varies): θ = cov(x, c)/var(c) pooled
//!   over both arms, each arm's mean `x̄ − θ(c̄ − c̄_pooled)` and variance
//!   `var_x + θ² var_c − 2θ cov(x, c)`. Centring the covariate at the pooled mean leaves the
//!   difference unchanged and keeps each adjusted mean on the metric's scale. Relative lifts
//!   (and their posteriors) come from `cuped_estimate` on [`Arms::cuped`], the estimator of
//!   `switchyard stats cuped`: the adjusted difference over control's *unadjusted* mean.

use switchyard_stats::{Arm, ArmSummary, CupedMoments, Proportion, StatsError};

use crate::experiment::MetricKind;
use crate::moments::Moments;

/// Fewest units per arm the comparisons need (sample variances have n − 1 in the denominator).
pub const MIN_UNITS: u64 = 2;

/// Why two arms cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArmsError {
    #[error("needs at least {MIN_UNITS} units in each variant")]
    TooFewUnits,
    #[error("the {arm} has no denominator events, so its ratio is undefined")]
    NoDenominator { arm: &'static str },
    #[error(transparent)]
    Stats(#[from] StatsError),
}

/// Two arms ready for a test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arms {
    pub control: ArmSummary,
    pub treatment: ArmSummary,
    /// Unadjusted conversions: the counts, for the two-proportion test.
    pub counts: Option<[Proportion; 2]>,
    /// The CUPED coefficient, when the adjustment was applied.
    pub theta: Option<f64>,
    /// With CUPED: control's and treatment's covariate and metric moments, for the relative
    /// estimate.
    pub cuped: Option<[CupedMoments; 2]>,
}

/// Builds the arms of one comparison.
///
/// # Errors
/// Too few units, a ratio without denominator, or moments the statistics refuse.
pub fn arms(
    kind: MetricKind,
    control: &Moments,
    treatment: &Moments,
    cuped: bool,
) -> Result<Arms, ArmsError> {
    if control.n < MIN_UNITS || treatment.n < MIN_UNITS {
        return Err(ArmsError::TooFewUnits);
    }
    if kind == MetricKind::Ratio {
        return Ok(Arms {
            control: ratio_summary(control, "control")?,
            treatment: ratio_summary(treatment, "treatment")?,
            counts: None,
            theta: None,
            cuped: None,
        });
    }
    if let Some(theta) = cuped.then(|| theta(control, treatment)).flatten() {
        let mut pooled = *control;
        pooled.merge(treatment);
        let centre = pooled.sum_c / pooled.count();
        return Ok(Arms {
            control: adjusted(control, theta, centre),
            treatment: adjusted(treatment, theta, centre),
            counts: None,
            theta: Some(theta),
            cuped: Some([cuped_moments(control), cuped_moments(treatment)]),
        });
    }
    Ok(match kind {
        MetricKind::Conversion => {
            let c = proportion(control);
            let t = proportion(treatment);
            Arms {
                control: Arm::Proportion {
                    n: c.n,
                    successes: c.successes,
                }
                .summarize("/control")?,
                treatment: Arm::Proportion {
                    n: t.n,
                    successes: t.successes,
                }
                .summarize("/treatment")?,
                counts: Some([c, t]),
                theta: None,
                cuped: None,
            }
        }
        _ => Arms {
            control: sums(control).summarize("/control")?,
            treatment: sums(treatment).summarize("/treatment")?,
            counts: None,
            theta: None,
            cuped: None,
        },
    })
}

/// One arm on its own (for estimates and sample-size planning).
///
/// # Errors
/// As [`arms`], for one arm (no CUPED).
pub fn single(kind: MetricKind, moments: &Moments) -> Result<ArmSummary, ArmsError> {
    if moments.n < MIN_UNITS {
        return Err(ArmsError::TooFewUnits);
    }
    Ok(match kind {
        MetricKind::Ratio => ratio_summary(moments, "control")?,
        MetricKind::Conversion => {
            let p = proportion(moments);
            Arm::Proportion {
                n: p.n,
                successes: p.successes,
            }
            .summarize("/control")?
        }
        MetricKind::Continuous => sums(moments).summarize("/control")?,
    })
}

fn proportion(m: &Moments) -> Proportion {
    Proportion {
        n: m.count(),
        successes: m.sum_x,
    }
}

fn sums(m: &Moments) -> Arm {
    Arm::Sums {
        n: m.count(),
        sum: m.sum_x,
        sum_squares: m.sum_x2,
    }
}

fn ratio_summary(m: &Moments, arm: &'static str) -> Result<ArmSummary, ArmsError> {
    let n = m.count();
    let (mean_x, mean_y) = (m.sum_x / n, m.sum_y / n);
    if mean_y == 0.0 {
        return Err(ArmsError::NoDenominator { arm });
    }
    let variance = m.var_x() / mean_y.powi(2) + m.var_y() * mean_x.powi(2) / mean_y.powi(4)
        - 2.0 * m.cov_xy() * mean_x / mean_y.powi(3);
    Ok(ArmSummary {
        n,
        mean: mean_x / mean_y,
        variance: variance.max(0.0),
    })
}

/// θ pooled over both arms, or `None` when the covariate does not vary (nothing to adjust by).
fn theta(control: &Moments, treatment: &Moments) -> Option<f64> {
    let mut pooled = *control;
    pooled.merge(treatment);
    let var_c = pooled.var_c();
    // Relative to the covariate's scale, so rounding of a constant covariate is not a variance.
    let scale = (pooled.sum_c2 / pooled.count()).max(f64::MIN_POSITIVE);
    (var_c > scale * 1e-12).then(|| pooled.cov_xc() / var_c)
}

/// The moments `cuped_estimate` takes: the covariate is CUPED's X, the metric its Y.
fn cuped_moments(m: &Moments) -> CupedMoments {
    let n = m.count();
    CupedMoments {
        n,
        mean_x: m.sum_c / n,
        mean_y: m.sum_x / n,
        var_x: m.var_c(),
        var_y: m.var_x(),
        cov: m.cov_xc(),
    }
}

fn adjusted(m: &Moments, theta: f64, centre: f64) -> ArmSummary {
    let n = m.count();
    ArmSummary {
        n,
        mean: m.sum_x / n - theta * (m.sum_c / n - centre),
        variance: (m.var_x() + theta * theta * m.var_c() - 2.0 * theta * m.cov_xc()).max(0.0),
    }
}
