//! Two-proportion comparison: pooled z test, Pearson chi-square on the 2×2
//! table with and without Yates' continuity correction, and the Wald
//! interval of treatment − control.

use crate::dist::{chi2_sf, norm_quantile, norm_sf};
use crate::error::{Result, StatsError, non_negative, open_unit, pointer};

/// A count of successes out of n units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proportion {
    /// Units.
    pub n: f64,
    /// Units with the outcome.
    pub successes: f64,
}

impl Proportion {
    /// Validates the count; `field` is the pointer of the arm.
    ///
    /// # Errors
    /// n ≤ 0, negative successes, or successes > n.
    pub fn validate(&self, field: &str) -> Result<f64> {
        crate::error::positive(&pointer(field, "n"), self.n)?;
        let s = non_negative(&pointer(field, "successes"), self.successes)?;
        if s > self.n {
            return Err(StatsError::OutOfRange {
                field: pointer(field, "successes"),
                value: s,
                range: "[0, n]",
            });
        }
        Ok(s / self.n)
    }
}

/// Result of [`two_proportion_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoProportionResult {
    /// p_treatment − p_control.
    pub difference: f64,
    /// Pooled z statistic (positive when treatment is higher).
    pub z: f64,
    /// Two-sided p-value of z.
    pub p_value: f64,
    /// Pearson chi-square of the 2×2 table (= z²).
    pub chi2: f64,
    /// Its p-value (df = 1).
    pub chi2_p_value: f64,
    /// Chi-square with Yates' continuity correction.
    pub chi2_yates: f64,
    /// Its p-value (df = 1).
    pub chi2_yates_p_value: f64,
    /// Wald interval of the difference at level 1 − alpha.
    pub ci: [f64; 2],
}

/// Compares two proportions.
///
/// # Errors
/// Invalid counts, `alpha` outside (0, 1), or a degenerate table (no
/// successes or no failures at all), where the tests are undefined.
pub fn two_proportion_test(
    control: &Proportion,
    treatment: &Proportion,
    alpha: f64,
) -> Result<TwoProportionResult> {
    let p_c = control.validate("/control")?;
    let p_t = treatment.validate("/treatment")?;
    open_unit("/alpha", alpha)?;
    let (n_c, n_t) = (control.n, treatment.n);
    let pooled = (control.successes + treatment.successes) / (n_c + n_t);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t)).sqrt();
    if !crate::error::is_positive(se_pooled) {
        return Err(StatsError::ZeroStandardError);
    }
    let difference = p_t - p_c;
    let z = difference / se_pooled;
    let p_value = (2.0 * norm_sf(z.abs())).min(1.0);

    let (chi2, chi2_yates) = chi_square_2x2(control, treatment);
    let se_wald = (p_c * (1.0 - p_c) / n_c + p_t * (1.0 - p_t) / n_t).sqrt();
    let half = norm_quantile("/alpha", 1.0 - alpha / 2.0)? * se_wald;
    Ok(TwoProportionResult {
        difference,
        z,
        p_value,
        chi2,
        chi2_p_value: chi2_sf(chi2, 1.0)?,
        chi2_yates,
        chi2_yates_p_value: chi2_sf(chi2_yates, 1.0)?,
        ci: [difference - half, difference + half],
    })
}

/// Pearson chi-square of the 2×2 table, plain and with Yates' correction
/// `(|O − E| − min(0.5, |O − E|))²/E` (as R's `chisq.test` and scipy).
fn chi_square_2x2(control: &Proportion, treatment: &Proportion) -> (f64, f64) {
    let observed = [
        [control.successes, control.n - control.successes],
        [treatment.successes, treatment.n - treatment.successes],
    ];
    let total = control.n + treatment.n;
    let col = [
        control.successes + treatment.successes,
        total - control.successes - treatment.successes,
    ];
    let row = [control.n, treatment.n];
    let mut plain = 0.0;
    let mut yates = 0.0;
    let mut min_gap = f64::INFINITY;
    for (i, r) in row.iter().enumerate() {
        for (j, c) in col.iter().enumerate() {
            min_gap = min_gap.min((observed[i][j] - r * c / total).abs());
        }
    }
    let correction = min_gap.min(0.5);
    for (i, r) in row.iter().enumerate() {
        for (j, c) in col.iter().enumerate() {
            let expected = r * c / total;
            let gap = (observed[i][j] - expected).abs();
            plain += gap * gap / expected;
            yates += (gap - correction).powi(2) / expected;
        }
    }
    (plain, yates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi2_equals_z_squared() {
        let r = two_proportion_test(
            &Proportion {
                n: 500.0,
                successes: 40.0,
            },
            &Proportion {
                n: 480.0,
                successes: 55.0,
            },
            0.05,
        )
        .expect("ok");
        assert!((r.chi2 - r.z * r.z).abs() < 1e-9);
        assert!(r.chi2_yates < r.chi2);
    }

    #[test]
    fn successes_above_n_named() {
        let r = two_proportion_test(
            &Proportion {
                n: 5.0,
                successes: 6.0,
            },
            &Proportion {
                n: 5.0,
                successes: 1.0,
            },
            0.05,
        );
        assert!(
            matches!(r, Err(StatsError::OutOfRange { field, .. }) if field == "/control/successes")
        );
    }
}
