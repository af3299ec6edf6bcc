//! Asymptotic confidence sequences (Waudby-Smith, Arnold, Wu, Ramdas, Howard
//! 2023, arXiv:2103.06476) with the normal-mixture boundary and ρ tuned so
//! that the sequence is tightest at N* total units, as GrowthBook computes it:
//!
//! ρ = sqrt((−2 ln α + ln(−2 ln α + 1)) / N*)
//! half-width = σ̂ · sqrt(2(nρ² + 1) ln(sqrt(nρ² + 1)/α) / (nρ)²), σ̂² = se²·n
//! p = min(1, 1/E), E = exp(ρ² z² n / (2(nρ² + 1))) / sqrt(nρ² + 1).
//!
//! Eppo's parametrisation (ρ from N_tune and the multiplier B(t)) is exposed
//! as [`eppo_rho`] and [`eppo_multiplier`].

use crate::t_test::Alternative;

/// GrowthBook's ρ for a two-sided sequence (`two_sided = false` uses 2α).
pub fn rho(alpha: f64, tuning: f64, two_sided: bool) -> f64 {
    let a = if two_sided { alpha } else { 2.0 * alpha };
    ((-2.0 * a.ln() + (-2.0 * a.ln() + 1.0).ln()) / tuning).sqrt()
}

/// Two-sided half-width for standard error `se` after `n` total units.
pub fn halfwidth(se: f64, n: f64, alpha: f64, rho: f64) -> f64 {
    let s2 = se * se * n;
    let nr2 = n * rho * rho;
    (s2 * 2.0 * (nr2 + 1.0) * ((nr2 + 1.0).sqrt() / alpha).ln() / (n * rho).powi(2)).sqrt()
}

/// One-sided half-width (GrowthBook's one-sided mixture boundary).
pub fn halfwidth_one_sided(se: f64, n: f64, alpha: f64, rho: f64) -> f64 {
    let s2 = se * se * n;
    let nr2 = n * rho * rho;
    let part = 2.0 * (nr2 + 1.0) / (n * rho).powi(2);
    (s2 * part * (1.0 + (nr2 + 1.0).sqrt() / (2.0 * alpha)).ln()).sqrt()
}

/// Two-sided always-valid p-value (1/e-value, capped at 1).
pub fn p_value(point_estimate: f64, se: f64, n: f64, rho: f64) -> f64 {
    let st2 = point_estimate * point_estimate * n / (se * se);
    let nr2p1 = n * rho * rho + 1.0;
    let log_e = rho * rho * st2 / (2.0 * nr2p1) - 0.5 * nr2p1.ln();
    (-log_e).exp().min(1.0)
}

/// Interval and p-value for the chosen alternative.
pub(crate) fn interval_and_p_value(
    pe: f64,
    se: f64,
    n: f64,
    alpha: f64,
    tuning: f64,
    alternative: Alternative,
) -> ([f64; 2], f64) {
    match alternative {
        Alternative::TwoSided => {
            let r = rho(alpha, tuning, true);
            let h = halfwidth(se, n, alpha, r);
            ([pe - h, pe + h], p_value(pe, se, n, r))
        }
        Alternative::Greater | Alternative::Less => {
            let greater = alternative == Alternative::Greater;
            let r = rho(alpha, tuning, false);
            let h = halfwidth_one_sided(se, n, alpha, r);
            let ci = if greater {
                [pe - h, f64::INFINITY]
            } else {
                [f64::NEG_INFINITY, pe + h]
            };
            (ci, one_sided_p_value(pe, se, n, r, greater))
        }
    }
}

/// Smallest α at which the one-sided bound excludes 0 (bisection, with ρ held
/// at its configured value as GrowthBook does); 1 if not rejected at α = 0.5.
fn one_sided_p_value(pe: f64, se: f64, n: f64, rho: f64, greater: bool) -> f64 {
    let signed = if greater { pe } else { -pe };
    let excludes_zero = |a: f64| signed - halfwidth_one_sided(se, n, a, rho) > 0.0;
    if !excludes_zero(0.5) {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0_f64, 0.5_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= 0.0 || mid == lo || mid == hi {
            break;
        }
        if excludes_zero(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Eppo's ρ = N_tune / (ln ln(e/(1 − c)²) − 2 ln(1 − c)) for confidence c.
pub fn eppo_rho(confidence: f64, tuning: f64) -> f64 {
    let a = 1.0 - confidence;
    tuning / ((std::f64::consts::E / (a * a)).ln().ln() - 2.0 * a.ln())
}

/// Eppo's multiplier B(t) = sqrt((t + ρ) ln((t + ρ)/(ρ(1 − c)²))) / sqrt(t):
/// the interval at t units is estimate ± se·B(t).
pub fn eppo_multiplier(t: f64, confidence: f64, rho: f64) -> f64 {
    let a = 1.0 - confidence;
    ((t + rho) * ((t + rho) / (rho * a * a)).ln()).sqrt() / t.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_value_and_interval_agree_at_alpha() {
        let (se, n, alpha) = (0.1, 4000.0, 0.05);
        let r = rho(alpha, 5000.0, true);
        let h = halfwidth(se, n, alpha, r);
        assert!((p_value(h, se, n, r) - alpha).abs() < 1e-12);
    }

    #[test]
    fn one_sided_p_value_matches_bound() {
        let (se, n) = (0.1, 3000.0);
        let r = rho(0.05, 5000.0, false);
        let p = one_sided_p_value(0.35, se, n, r, true);
        assert!((0.35 - halfwidth_one_sided(se, n, p, r)).abs() < 1e-9);
    }
}
