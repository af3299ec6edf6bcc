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

/// Student t CDF with `df` degrees of freedom (df may be fractional or infinite).
///
/// # Errors
/// [`StatsError::OutOfRange`] when `df` is not positive.
pub fn t_cdf(x: f64, df: f64) -> Result<f64> {
    Ok(students_t(df)?.cdf(x))
}

/// Student t survival function.
///
/// # Errors
/// [`StatsError::OutOfRange`] when `df` is not positive.
pub fn t_sf(x: f64, df: f64) -> Result<f64> {
    Ok(students_t(df)?.sf(x))
}

/// Student t quantile.
///
/// # Errors
/// [`StatsError::OutOfRange`] when `df` is not positive or p is not in (0, 1).
pub fn t_quantile(field: &str, p: f64, df: f64) -> Result<f64> {
    crate::error::open_unit(field, p)?;
    if df.is_infinite() {
        return norm_quantile(field, p);
    }
    Ok(students_t(df)?.inverse_cdf(p))
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
