//! Mixture sequential probability ratio test (Johari, Koomen, Pekelis, Walsh
//! 2017) on a difference estimate with variance V = se² and a normal mixing
//! distribution N(0, τ), as Statsig documents it:
//!
//! Λ = sqrt(V/(V + τ)) · exp(τ Δ² / (2V(V + τ))), p = min(1, 1/Λ),
//! interval Δ ± sqrt(V(V + τ)/τ · (2 ln(1/α) + ln((V + τ)/V))).
//!
//! With τ = σ̂²ρ² this is exactly the GrowthBook confidence sequence; our
//! default τ is the variance the estimate would have at N* total units.

/// Variance of the estimate at `tuning` total units: τ = se²·n / N*.
pub fn default_tau(se: f64, n: f64, tuning: f64) -> f64 {
    se * se * n / tuning
}

/// log Λ, the log mixture likelihood ratio.
pub fn log_likelihood_ratio(point_estimate: f64, se: f64, tau: f64) -> f64 {
    let v = se * se;
    0.5 * (v / (v + tau)).ln() + tau * point_estimate * point_estimate / (2.0 * v * (v + tau))
}

/// Always-valid interval and p-value.
pub fn interval_and_p_value(point_estimate: f64, se: f64, alpha: f64, tau: f64) -> ([f64; 2], f64) {
    let v = se * se;
    let half = (v * (v + tau) / tau * (-2.0 * alpha.ln() + ((v + tau) / v).ln())).sqrt();
    let p = (-log_likelihood_ratio(point_estimate, se, tau))
        .exp()
        .min(1.0);
    ([point_estimate - half, point_estimate + half], p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequential::confidence_sequence;

    #[test]
    fn equals_confidence_sequence_with_matching_tau() {
        let (pe, se, n, alpha) = (0.2, 0.1, 5000.0, 0.05);
        let rho = confidence_sequence::rho(alpha, 5000.0, true);
        let tau = se * se * n * rho * rho;
        let (ci, p) = interval_and_p_value(pe, se, alpha, tau);
        let h = confidence_sequence::halfwidth(se, n, alpha, rho);
        assert!((ci[1] - pe - h).abs() < 1e-12);
        assert!((p - confidence_sequence::p_value(pe, se, n, rho)).abs() < 1e-12);
    }
}
