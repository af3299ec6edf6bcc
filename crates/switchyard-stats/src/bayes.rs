//! Bayesian A/B comparison on the relative lift with a Gaussian posterior
//! (as GrowthBook's effect-based Bayesian engine): the data give the lift and
//! its delta-method variance; an optional normal prior on the lift is combined
//! by precision weighting; a flat prior leaves the data unchanged.

use crate::arm::ArmSummary;
use crate::dist::{norm_cdf, norm_pdf, norm_quantile};
use crate::error::{Result, StatsError, finite, open_unit, positive};
use crate::t_test::relative_moments;

/// Normal prior on the relative lift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalPrior {
    /// Prior mean of the lift.
    pub mean: f64,
    /// Prior variance of the lift (> 0).
    pub variance: f64,
}

/// Posterior summary of the relative lift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BayesResult {
    /// Posterior mean of the lift.
    pub posterior_mean: f64,
    /// Posterior standard deviation.
    pub posterior_sd: f64,
    /// Equal-tailed credible interval at level 1 − alpha.
    pub credible_interval: [f64; 2],
    /// P(lift > 0).
    pub chance_to_win: f64,
    /// Expected loss of shipping `[control, treatment]`:
    /// `[E max(0, lift), E max(0, −lift)]`.
    pub risk: [f64; 2],
}

/// Posterior of the relative lift of treatment over control.
///
/// # Errors
/// A zero control mean, a zero data variance, a prior with non-positive
/// variance, or `alpha` outside (0, 1).
pub fn bayesian_test(
    control: &ArmSummary,
    treatment: &ArmSummary,
    prior: Option<NormalPrior>,
    alpha: f64,
) -> Result<BayesResult> {
    let (lift, variance) = relative_moments(control, treatment)?;
    bayesian_from_estimate(lift, variance, prior, alpha)
}

/// The posterior of an effect whose data estimate is `estimate` with `variance` (the
/// delta-method moments of a relative lift, a CUPED estimate or an absolute difference),
/// combined with `prior` on the same scale.
///
/// # Errors
/// A zero data variance, a prior with non-positive variance, or `alpha` outside (0, 1).
pub fn bayesian_from_estimate(
    lift: f64,
    variance: f64,
    prior: Option<NormalPrior>,
    alpha: f64,
) -> Result<BayesResult> {
    open_unit("/alpha", alpha)?;
    if !crate::error::is_positive(variance) {
        return Err(StatsError::ZeroStandardError);
    }
    let (mean, var) = match prior {
        None => (lift, variance),
        Some(p) => {
            let prior_mean = finite("/prior/mean", p.mean)?;
            let prior_var = positive("/prior/variance", p.variance)?;
            let precision = 1.0 / variance + 1.0 / prior_var;
            (
                (lift / variance + prior_mean / prior_var) / precision,
                1.0 / precision,
            )
        }
    };
    let sd = var.sqrt();
    let z = norm_quantile("/alpha", 1.0 - alpha / 2.0)?;
    let standardized = mean / sd;
    // E[max(0, −X)] for X ~ N(mean, sd²).
    let loss_treatment = sd * norm_pdf(standardized) - mean * norm_cdf(-standardized);
    Ok(BayesResult {
        posterior_mean: mean,
        posterior_sd: sd,
        credible_interval: [mean - z * sd, mean + z * sd],
        chance_to_win: norm_cdf(standardized),
        risk: [loss_treatment + mean, loss_treatment],
    })
}
