//! Mixture sequential probability ratio test (Johari, Koomen, Pekelis, Walsh
//! 2017) on a difference estimate with variance V = se² and a normal mixing
//! distribution N(0, τ), as Statsig documents it (two-sided, α split between
//! the tails):
//!
//! Λ = sqrt(V/(V + τ)) · exp(τ Δ² / (2V(V + τ))), p = min(1, 2/Λ),
//! interval Δ ± sqrt(V(V + τ)/τ · (2 ln(2/α) + ln((V + τ)/V))),
//!
//! so that p < α exactly when the interval excludes 0. Statsig's default
//! mixing variance is τ = z²₁₋α/₂ · (σ²_t + σ²_c)/(n_t + n_c): the per-unit
//! variances over all units ([`default_tau`]). With τ = σ̂²ρ² the interval is
//! the GrowthBook confidence sequence at α/2.

use crate::dist::norm_quantile;
use crate::error::Result;

/// One arm's part in the default mixing variance: its units and its share of
/// the estimate's variance V (σ²/n for an absolute difference).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmShare {
    /// Units in the arm.
    pub n: f64,
    /// The arm's term of V.
    pub variance: f64,
}

/// Statsig's default mixing variance, τ = z²₁₋α/₂ · Σ n·V_arm / Σ n (each arm's
/// per-unit variance, n·V_arm, summed, over the total units).
///
/// # Errors
/// `alpha` outside (0, 1).
pub fn default_tau(alpha: f64, arms: [ArmShare; 2]) -> Result<f64> {
    let z = norm_quantile("/alpha", 1.0 - alpha / 2.0)?;
    let units: f64 = arms.iter().map(|a| a.n).sum();
    let per_unit: f64 = arms.iter().map(|a| a.n * a.variance).sum();
    Ok(z * z * per_unit / units)
}

/// The default mixing variance when only V is known: [`default_tau`] with the
/// two arms of equal size, τ = z²₁₋α/₂ · V/2.
///
/// # Errors
/// `alpha` outside (0, 1).
pub fn default_tau_equal_arms(alpha: f64, se: f64) -> Result<f64> {
    let half = ArmShare {
        n: 1.0,
        variance: se * se / 2.0,
    };
    default_tau(alpha, [half, half])
}

/// log Λ, the log mixture likelihood ratio.
pub fn log_likelihood_ratio(point_estimate: f64, se: f64, tau: f64) -> f64 {
    let v = se * se;
    0.5 * (v / (v + tau)).ln() + tau * point_estimate * point_estimate / (2.0 * v * (v + tau))
}

/// Always-valid two-sided interval and p-value.
pub fn interval_and_p_value(point_estimate: f64, se: f64, alpha: f64, tau: f64) -> ([f64; 2], f64) {
    let v = se * se;
    let half = (v * (v + tau) / tau * (2.0 * (2.0 / alpha).ln() + ((v + tau) / v).ln())).sqrt();
    let p = (2.0_f64.ln() - log_likelihood_ratio(point_estimate, se, tau))
        .exp()
        .min(1.0);
    ([point_estimate - half, point_estimate + half], p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequential::confidence_sequence;

    #[test]
    fn equals_the_confidence_sequence_at_half_alpha_with_matching_tau() {
        let (pe, se, n, alpha) = (0.2, 0.1, 5000.0, 0.05);
        let rho = confidence_sequence::rho(alpha / 2.0, 5000.0, true);
        let tau = se * se * n * rho * rho;
        let (ci, p) = interval_and_p_value(pe, se, alpha, tau);
        let h = confidence_sequence::halfwidth(se, n, alpha / 2.0, rho);
        assert!((ci[1] - pe - h).abs() < 1e-12);
        let p_cs = confidence_sequence::p_value(pe, se, n, rho);
        assert!((p - (2.0 * p_cs).min(1.0)).abs() < 1e-12);
    }

    #[test]
    fn the_p_value_crosses_alpha_where_the_interval_reaches_zero() {
        let (se, alpha, tau) = (0.1, 0.05, 0.02);
        let (ci, _) = interval_and_p_value(0.0, se, alpha, tau);
        let edge = ci[1];
        let (_, p) = interval_and_p_value(edge, se, alpha, tau);
        assert!((p - alpha).abs() < 1e-12, "{p}");
    }
}
