//! Two-sample test of proportions, as R's `power.prop.test` with
//! `alternative = "two.sided", strict = FALSE`:
//! power = Φ((√n |p1 − p2| − z_{1−α/2} √((p1 + p2)(1 − (p1 + p2)/2))) / √(p1q1 + p2q2)).

use crate::dist::{norm_cdf, norm_quantile};
use crate::error::{Result, StatsError, open_unit, positive};
use crate::power::SOLVER_TOLERANCE;
use crate::zeroin::zeroin;

fn validate(p1: f64, p2: f64, alpha: f64) -> Result<()> {
    open_unit("/p1", p1)?;
    open_unit("/p2", p2)?;
    open_unit("/alpha", alpha)?;
    Ok(())
}

fn z_alpha(alpha: f64) -> Result<f64> {
    norm_quantile("/alpha", 1.0 - alpha / 2.0)
}

/// Power with `n` units per arm.
///
/// # Errors
/// Probabilities outside (0, 1) or n ≤ 0.
pub fn power(p1: f64, p2: f64, n: f64, alpha: f64) -> Result<f64> {
    validate(p1, p2, alpha)?;
    positive("/n_per_arm", n)?;
    let pooled = ((p1 + p2) * (1.0 - (p1 + p2) / 2.0)).sqrt();
    let sd = (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    Ok(norm_cdf(
        (n.sqrt() * (p1 - p2).abs() - z_alpha(alpha)? * pooled) / sd,
    ))
}

/// Units per arm for the target `power` (closed form of the same equation).
///
/// # Errors
/// Probabilities outside (0, 1), p1 = p2, or power outside (0, 1).
pub fn sample_size(p1: f64, p2: f64, power: f64, alpha: f64) -> Result<f64> {
    validate(p1, p2, alpha)?;
    open_unit("/power", power)?;
    if p1 == p2 {
        return Err(StatsError::NoSolution {
            what: "sample size when p1 = p2",
        });
    }
    let pooled = ((p1 + p2) * (1.0 - (p1 + p2) / 2.0)).sqrt();
    let sd = (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    let root_n =
        (norm_quantile("/power", power)? * sd + z_alpha(alpha)? * pooled) / (p1 - p2).abs();
    Ok(root_n * root_n)
}

/// Smallest p2 > p1 detectable with `n` per arm at `power`.
///
/// # Errors
/// Invalid inputs, or no p2 in (p1, 1) reaches the power.
pub fn minimum_detectable_p2(p1: f64, n: f64, power_target: f64, alpha: f64) -> Result<f64> {
    validate(p1, 0.5, alpha)?;
    positive("/n_per_arm", n)?;
    open_unit("/power", power_target)?;
    let f = |p2: f64| power(p1, p2, n, alpha).map_or(f64::NAN, |p| p - power_target);
    let hi = 1.0 - 1e-10;
    let (fa, fb) = (f(p1 + 1e-10), f(hi));
    if !(fa < 0.0 && fb > 0.0) {
        return Err(StatsError::NoSolution {
            what: "minimum detectable p2",
        });
    }
    Ok(zeroin(p1 + 1e-10, hi, fa, fb, f, SOLVER_TOLERANCE, 1000).root)
}
