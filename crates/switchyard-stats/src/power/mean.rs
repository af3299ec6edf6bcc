//! Two-sample two-sided t test power, as R's `power.t.test(type =
//! "two.sample", alternative = "two.sided", strict = FALSE)`:
//! power = P(T'_{ν, ncp} > t_{1−α/2, ν}), ν = 2(n − 1), ncp = √(n/2)·δ/sd.

use crate::dist::t_quantile;
use crate::error::{Result, StatsError, finite, open_unit, positive};
use crate::power::noncentral_t;
use crate::power::{MAX_N, SOLVER_TOLERANCE};
use crate::zeroin::zeroin;

/// Power with `n` units per arm to detect a mean difference `delta`.
///
/// # Errors
/// sd ≤ 0, n < 2, alpha outside (0, 1), or a non-finite delta.
pub fn power(delta: f64, sd: f64, n: f64, alpha: f64) -> Result<f64> {
    finite("/delta", delta)?;
    positive("/sd", sd)?;
    open_unit("/alpha", alpha)?;
    if !crate::error::at_least(n, 2.0) {
        return Err(StatsError::OutOfRange {
            field: "/n_per_arm".to_owned(),
            value: n,
            range: "[2, inf)",
        });
    }
    let nu = 2.0 * (n - 1.0);
    let q = t_quantile("/alpha", 1.0 - alpha / 2.0, nu)?;
    noncentral_t::sf(q, nu, (n / 2.0).sqrt() * delta / sd)
}

fn solve(what: &'static str, lo: f64, hi: f64, f: impl Fn(f64) -> f64) -> Result<f64> {
    let (fa, fb) = (f(lo), f(hi));
    if !(fa.is_finite() && fb.is_finite()) || fa * fb > 0.0 {
        return Err(StatsError::NoSolution { what });
    }
    Ok(zeroin(lo, hi, fa, fb, f, SOLVER_TOLERANCE, 1000).root)
}

/// Units per arm (fractional, as R reports it) for the target power.
///
/// # Errors
/// Invalid inputs, delta = 0, or more than 10⁷ units needed.
pub fn sample_size(delta: f64, sd: f64, power_target: f64, alpha: f64) -> Result<f64> {
    open_unit("/power", power_target)?;
    power(delta, sd, 2.0, alpha)?;
    if delta == 0.0 {
        return Err(StatsError::NoSolution {
            what: "sample size when delta = 0",
        });
    }
    solve("sample size", 2.0, MAX_N, |n| {
        power(delta, sd, n, alpha).map_or(f64::NAN, |p| p - power_target)
    })
}

/// Smallest mean difference detectable with `n` per arm at the target power.
///
/// # Errors
/// Invalid inputs or no solution in [sd·1e−7, sd·1e7] (R's range).
pub fn minimum_detectable_delta(sd: f64, n: f64, power_target: f64, alpha: f64) -> Result<f64> {
    open_unit("/power", power_target)?;
    power(1.0, sd, n, alpha)?;
    solve("minimum detectable delta", sd * 1e-7, sd * 1e7, |d| {
        power(d, sd, n, alpha).map_or(f64::NAN, |p| p - power_target)
    })
}
