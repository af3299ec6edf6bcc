//! CUPED variance reduction: the post-period metric is adjusted by a
//! pre-period covariate with one θ = cov(Y, X)/var(X) pooled over both arms,
//! then compared with a Welch t test on the adjusted per-arm variances
//! `var(Y) + θ² var(X) − 2θ cov(X, Y)` (as GrowthBook's regression adjustment).
//!
//! The relative difference divides by the unadjusted control mean; its
//! delta-method variance treats θ as fixed.

use crate::arm::{ArmSummary, covariance, mean_variance};
use crate::error::{Result, StatsError, pointer, sample};
use crate::t_test::{
    Alternative, Difference, EffectEstimate, TTestResult, difference_estimate, t_inference,
    welch_df,
};

/// One arm's pre-period covariate and post-period metric, unit by unit.
#[derive(Debug, Clone, Copy)]
pub struct CupedArm<'a> {
    /// Pre-period covariate X.
    pub pre: &'a [f64],
    /// Post-period metric Y.
    pub post: &'a [f64],
}

/// Result of [`cuped_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CupedResult {
    /// Pooled adjustment coefficient θ.
    pub theta: f64,
    /// The t test on the adjusted metric.
    pub test: TTestResult,
}

/// One arm summarised: units, means and (n − 1) variances of the pre-period covariate X and
/// the post-period metric Y, and their covariance. The experiment engine keeps these as running
/// sums; [`cuped_test`] computes them from the units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CupedMoments {
    pub n: f64,
    pub mean_x: f64,
    pub mean_y: f64,
    pub var_x: f64,
    pub var_y: f64,
    pub cov: f64,
}

impl CupedMoments {
    /// The arm's metric adjusted by `theta`: mean ȳ − θx̄, variance var(Y) + θ² var(X) −
    /// 2θ cov(X, Y).
    pub fn adjusted(&self, theta: f64) -> ArmSummary {
        ArmSummary {
            n: self.n,
            mean: self.mean_y - theta * self.mean_x,
            variance: (self.var_y + theta * theta * self.var_x - 2.0 * theta * self.cov).max(0.0),
        }
    }
}

fn moments(field: &str, arm: &CupedArm<'_>) -> Result<CupedMoments> {
    sample(&pointer(field, "pre"), arm.pre)?;
    sample(&pointer(field, "post"), arm.post)?;
    if arm.pre.len() != arm.post.len() {
        return Err(StatsError::LengthMismatch {
            field: pointer(field, "post"),
            other: pointer(field, "pre"),
            expected: arm.pre.len(),
            actual: arm.post.len(),
        });
    }
    if arm.pre.len() < 2 {
        return Err(StatsError::TooFewObservations {
            field: field.to_owned(),
            min: 2,
            actual: arm.pre.len() as f64,
        });
    }
    let (mean_x, var_x) = mean_variance(arm.pre);
    let (mean_y, var_y) = mean_variance(arm.post);
    Ok(CupedMoments {
        n: arm.pre.len() as f64,
        mean_x,
        mean_y,
        var_x,
        var_y,
        cov: covariance(arm.pre, arm.post),
    })
}

/// θ = cov(Y, X) / var(X) over both arms pooled (n − 1 denominators).
fn pooled_theta(control: &CupedArm<'_>, treatment: &CupedArm<'_>) -> f64 {
    let x: Vec<f64> = control.pre.iter().chain(treatment.pre).copied().collect();
    let y: Vec<f64> = control.post.iter().chain(treatment.post).copied().collect();
    let (_, var_x) = mean_variance(&x);
    if var_x == 0.0 {
        // A constant covariate carries no information: no adjustment.
        return 0.0;
    }
    covariance(&x, &y) / var_x
}

/// CUPED-adjusted comparison of treatment − control.
///
/// # Errors
/// Empty or mismatched `pre`/`post`, fewer than two units per arm, a zero
/// control mean for a relative difference, or a zero standard error.
pub fn cuped_test(
    control: &CupedArm<'_>,
    treatment: &CupedArm<'_>,
    difference: Difference,
    alternative: Alternative,
    alpha: f64,
) -> Result<CupedResult> {
    let c = moments("/control", control)?;
    let t = moments("/treatment", treatment)?;
    let theta = pooled_theta(control, treatment);
    let estimate = cuped_estimate(&c, &t, theta, difference)?;
    Ok(CupedResult {
        theta,
        test: t_inference(estimate, alternative, alpha)?,
    })
}

/// The CUPED estimate of treatment − control with `theta`: the difference of the adjusted
/// means, or for the relative difference that difference over the *unadjusted* control mean
/// (the adjustment removes noise from the difference; it must not move the baseline the lift
/// is a share of), with its delta-method variance treating θ as fixed. The experiment engine
/// and [`cuped_test`] both use it.
///
/// # Errors
/// A zero control mean for a relative difference, or a zero standard error.
pub fn cuped_estimate(
    c: &CupedMoments,
    t: &CupedMoments,
    theta: f64,
    difference: Difference,
) -> Result<EffectEstimate> {
    let (adj_c, adj_t) = (c.adjusted(theta), t.adjusted(theta));
    match difference {
        Difference::Absolute => difference_estimate(&adj_c, &adj_t, Difference::Absolute),
        Difference::Relative => relative_estimate(c, t, theta, &adj_c, &adj_t),
    }
}

/// (Δȳ − θΔx̄)/|ȳ_c| with its delta-method variance.
fn relative_estimate(
    c: &CupedMoments,
    t: &CupedMoments,
    theta: f64,
    adj_c: &ArmSummary,
    adj_t: &ArmSummary,
) -> Result<EffectEstimate> {
    let base = c.mean_y;
    if base == 0.0 {
        return Err(StatsError::ZeroMean {
            field: "/control/post".to_owned(),
        });
    }
    let delta = adj_t.mean - adj_c.mean;
    let lift = delta / base.abs();
    // Gradient of (ȳ_t − θx̄_t − ȳ_c + θx̄_c)/ȳ_c with respect to the control means.
    let d_mean_y = -(delta + base) / (base * base);
    let d_mean_x = theta / base;
    let var_t = adj_t.variance / (base * base * t.n);
    let var_c = (d_mean_y * d_mean_y * c.var_y
        + d_mean_x * d_mean_x * c.var_x
        + 2.0 * d_mean_y * d_mean_x * c.cov)
        / c.n;
    let variance = var_t + var_c;
    if !crate::error::is_positive(variance) {
        return Err(StatsError::ZeroStandardError);
    }
    Ok(EffectEstimate {
        point_estimate: lift,
        std_error: variance.sqrt(),
        df: welch_df(adj_c, adj_t),
    })
}
