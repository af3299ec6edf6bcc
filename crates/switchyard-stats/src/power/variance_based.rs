//! GrowthBook's planner: power or minimum detectable relative effect from a
//! metric's mean and variance, the total traffic and the number of
//! variations, optionally inflated for sequential testing (N* tuning).
//!
//! Per arm n = n_total / n_variations; the relative-lift standard error is the
//! delta-method one with the treatment mean at mean·(1 + effect). Sequential
//! inflation replaces a variance by the one whose normal interval matches the
//! confidence-sequence half-width over both arms' units (2n): for power, the
//! variance of the relative lift; for the minimum detectable effect, the
//! metric's variance. This follows GrowthBook's current planner
//! (`packages/shared/src/power/power.ts`), whose published tests this crate's
//! golden tests repeat (sequential power 0.20596 for mean 10, variance 3910,
//! effect 5 %, 400,000 users, 3 variations, N* 5000).

use crate::dist::{norm_cdf, norm_quantile};
use crate::error::{Result, StatsError, finite, open_unit, positive};
use crate::sequential::confidence_sequence;

/// A metric and the traffic it will get.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanningInput {
    /// Metric mean per unit (≠ 0).
    pub mean: f64,
    /// Metric variance per unit.
    pub variance: f64,
    /// Total units over all variations.
    pub n_total: f64,
    /// Number of variations including control (≥ 2).
    pub n_variations: f64,
    /// Significance level (two-sided).
    pub alpha: f64,
    /// N* for sequential testing, or `None` for a fixed-horizon test.
    pub sequential_tuning: Option<f64>,
}

impl PlanningInput {
    fn validate(&self) -> Result<f64> {
        let mean = finite("/mean", self.mean)?;
        if mean == 0.0 {
            return Err(StatsError::ZeroMean {
                field: "/mean".to_owned(),
            });
        }
        positive("/variance", self.variance)?;
        positive("/n_total", self.n_total)?;
        if !crate::error::at_least(self.n_variations, 2.0) {
            return Err(StatsError::OutOfRange {
                field: "/n_variations".to_owned(),
                value: self.n_variations,
                range: "[2, inf)",
            });
        }
        open_unit("/alpha", self.alpha)?;
        if let Some(t) = self.sequential_tuning {
            positive("/sequential_tuning", t)?;
        }
        Ok(self.n_total / self.n_variations)
    }

    /// The sequential inflation of a variance `variance` measured over `n` units: the
    /// variance whose fixed-horizon normal interval is as wide as the confidence sequence's
    /// at `n` (GrowthBook's `sequentialPowerSequentialVariance`).
    fn sequential_variance(&self, variance: f64, n: f64, tuning: f64) -> Result<f64> {
        let rho = confidence_sequence::rho(self.alpha, tuning, true);
        let nr2 = n * rho * rho;
        let radical =
            2.0 * (nr2 + 1.0) * ((nr2 + 1.0).sqrt() / self.alpha).ln() / (n * rho).powi(2);
        let z_star = norm_quantile("/alpha", 1.0 - self.alpha / 2.0)?;
        Ok(variance * n * radical / (z_star * z_star))
    }
}

/// Two-sided power to detect a relative `effect`.
///
/// # Errors
/// Invalid planning input or a non-finite effect.
pub fn power(input: &PlanningInput, effect: f64) -> Result<f64> {
    let n = input.validate()?;
    finite("/effect", effect)?;
    let (v, m) = (input.variance, input.mean);
    let treated = m * (1.0 + effect);
    let relative_variance = v / (m * m * n) + v * treated * treated / (m.powi(4) * n);
    let se = match input.sequential_tuning {
        None => relative_variance.sqrt(),
        // Inflated as a variance over both arms' units.
        Some(tuning) => input
            .sequential_variance(relative_variance, 2.0 * n, tuning)?
            .sqrt(),
    };
    let z_star = norm_quantile("/alpha", 1.0 - input.alpha / 2.0)?;
    let standardized = effect / se;
    Ok((1.0 - norm_cdf(z_star - standardized)) + norm_cdf(-z_star - standardized))
}

/// Minimum detectable relative effect at the target power (positive root of
/// GrowthBook's quadratic).
///
/// # Errors
/// Invalid input, power ≤ alpha, or too little traffic for any effect.
pub fn minimum_detectable_effect(input: &PlanningInput, power_target: f64) -> Result<f64> {
    let n = input.validate()?;
    open_unit("/power", power_target)?;
    if power_target <= input.alpha {
        return Err(StatsError::OutOfRange {
            field: "/power".to_owned(),
            value: power_target,
            range: "(alpha, 1)",
        });
    }
    let z = norm_quantile("/alpha", 1.0 - input.alpha / 2.0)?
        - norm_quantile("/power", 1.0 - power_target)?;
    let m = input.mean;
    let v = match input.sequential_tuning {
        None => input.variance,
        Some(tuning) => input.sequential_variance(input.variance, 2.0 * n, tuning)?,
    };
    if n <= v * z * z / (m * m) {
        return Err(StatsError::NoSolution {
            what: "minimum detectable effect (too few units)",
        });
    }
    let sigma2 = v / n;
    let a = 1.0 - z * z * sigma2 / (m * m);
    let b = -2.0 * m;
    let c = m * m - z * z * sigma2;
    let root = (-b + (b * b - 4.0 * a * c).sqrt()) / (2.0 * a);
    Ok((root - m) / m)
}
