//! Thin wrappers over `statrs` distributions: the quantities the tests need,
//! with argument checks done by the callers so these never panic.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

use crate::error::{Result, StatsError};

fn standard_normal() -> Normal {
    Normal::standard()
}

/// Standard normal CDF Φ(x).
pub fn norm_cdf(x: f64) -> f64 {
    standard_normal().cdf(x)
}

/// Standard normal survival function 1 − Φ(x), accurate in the upper tail.
pub fn norm_sf(x: f64) -> f64 {
    standard_normal().sf(x)
}

/// Standard normal density φ(x).
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal quantile Φ⁻¹(p).
///
/// # Errors
/// [`StatsError::OutOfRange`] naming `field` unless 0 < p < 1.
pub fn norm_quantile(field: &str, p: f64) -> Result<f64> {
    crate::error::open_unit(field, p)?;
    Ok(standard_normal().inverse_cdf(p))
}

fn students_t(df: f64) -> Result<StudentsT> {
    StudentsT::new(0.0, 1.0, df).map_err(|_| StatsError::OutOfRange {
        field: "df".to_owned(),
        value: df,
        range: "(0, inf]",
    })
}

/// Above this many degrees of freedom the t distribution is evaluated with
/// the Cornish–Fisher expansion: statrs' incomplete beta loses accuracy (and
/// its inverse may not terminate) for very large shape parameters.
const LARGE_DF: f64 = 1e4;

/// Cornish–Fisher expansion of the t quantile in powers of 1/ν (Abramowitz &
/// Stegun 26.7.5) and its derivative in z; truncation error O(ν⁻⁵).
fn cornish_fisher(z: f64, df: f64) -> (f64, f64) {
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    let d1 = (3.0 * z2 + 1.0) / 4.0;
    let d2 = ((25.0 * z2 + 48.0) * z2 + 3.0) / 96.0;
    let d3 = (((21.0 * z2 + 95.0) * z2 + 51.0) * z2 - 15.0) / 384.0;
    let d4 = ((((711.0 * z2 + 5432.0) * z2 + 7410.0) * z2 - 5760.0) * z2 - 945.0) / 92160.0;
    let v = 1.0 / df;
    (
        z + v * (g1 + v * (g2 + v * (g3 + v * g4))),
        1.0 + v * (d1 + v * (d2 + v * (d3 + v * d4))),
    )
}

/// The normal deviate z with Cornish–Fisher t(z) = x (Newton's method).
fn large_df_deviate(x: f64, df: f64) -> f64 {
    let mut z = x;
    for _ in 0..50 {
        let (t, dt) = cornish_fisher(z, df);
        let step = (t - x) / dt;
        z -= step;
        if step.abs() <= 1e-15 * z.abs().max(1.0) {
            break;
        }
    }
    z
}

/// Student t CDF with `df` degrees of freedom (df may be fractional or infinite).
///
/// # Errors
/// [`StatsError::OutOfRange`] when `df` is not positive.
pub fn t_cdf(x: f64, df: f64) -> Result<f64> {
    let dist = students_t(df)?;
    if df > LARGE_DF && x.abs() < 40.0 {
        return Ok(norm_cdf(large_df_deviate(x, df)));
    }
    Ok(dist.cdf(x))
}

/// Student t survival function.
///
/// # Errors
/// [`StatsError::OutOfRange`] when `df` is not positive.
pub fn t_sf(x: f64, df: f64) -> Result<f64> {
    let dist = students_t(df)?;
    if df > LARGE_DF && x.abs() < 40.0 {
        return Ok(norm_sf(large_df_deviate(x, df)));
    }
    Ok(dist.sf(x))
}

/// Student t quantile.
///
/// # Errors
/// [`StatsError::OutOfRange`] when `df` is not positive or p is not in (0, 1).
pub fn t_quantile(field: &str, p: f64, df: f64) -> Result<f64> {
    crate::error::open_unit(field, p)?;
    let dist = students_t(df)?;
    if df > LARGE_DF {
        return Ok(cornish_fisher(norm_quantile(field, p)?, df).0);
    }
    Ok(dist.inverse_cdf(p))
}

/// Chi-square survival function P(X > x) with `df` degrees of freedom.
///
/// # Errors
/// [`StatsError::OutOfRange`] when `df` is not positive.
pub fn chi2_sf(x: f64, df: f64) -> Result<f64> {
    let dist = ChiSquared::new(df).map_err(|_| StatsError::OutOfRange {
        field: "df".to_owned(),
        value: df,
        range: "(0, inf)",
    })?;
    Ok(dist.sf(x))
}

/// Regularised incomplete beta function I_x(a, b) (the Beta(a, b) CDF).
///
/// # Errors
/// [`StatsError::OutOfRange`] when a or b is not positive or x is outside [0, 1].
pub fn beta_cdf(x: f64, a: f64, b: f64) -> Result<f64> {
    statrs::function::beta::checked_beta_reg(a, b, x).map_err(|_| StatsError::OutOfRange {
        field: "x".to_owned(),
        value: x,
        range: "[0, 1] with a, b > 0",
    })
}

/// ln Γ(x).
pub fn ln_gamma(x: f64) -> f64 {
    statrs::function::gamma::ln_gamma(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_agrees_with_statrs_below_the_switch() {
        for df in [3000.0, 8000.0] {
            let exact = students_t(df).expect("df").inverse_cdf(0.975);
            let expanded = cornish_fisher(norm_quantile("p", 0.975).expect("p"), df).0;
            assert!(
                (exact - expanded).abs() < 1e-9,
                "{df}: {exact} vs {expanded}"
            );
            let exact_sf = students_t(df).expect("df").sf(2.5);
            let expanded_sf = norm_sf(large_df_deviate(2.5, df));
            assert!((exact_sf / expanded_sf - 1.0).abs() < 1e-8, "{df}");
        }
    }

    #[test]
    fn huge_df_is_fast_and_normal() {
        let q = t_quantile("p", 0.975, 2e7).expect("ok");
        assert!((q - 1.959_964_1).abs() < 1e-6);
        assert!((t_sf(2.5, f64::INFINITY).expect("ok") - norm_sf(2.5)).abs() < 1e-15);
    }
}
