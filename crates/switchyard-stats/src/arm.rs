//! One arm of an experiment reduced to `{n, mean, variance}`, built from any of
//! the four accepted forms: raw samples, moments, sums, or a proportion.

use crate::error::{Result, StatsError, finite, non_negative, pointer, positive, sample};

/// Summary statistics of one arm.
///
/// `variance` is the per-unit variance: the sample variance with an n − 1
/// denominator for means, and p(1 − p) (no n − 1) for proportions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmSummary {
    /// Number of units.
    pub n: f64,
    /// Mean of the metric per unit.
    pub mean: f64,
    /// Per-unit variance.
    pub variance: f64,
}

/// An arm in one of the four accepted input forms.
#[derive(Debug, Clone, PartialEq)]
pub enum Arm {
    /// Raw per-unit observations.
    Samples(Vec<f64>),
    /// Already-computed moments (`variance` uses n − 1).
    Moments {
        /// Units.
        n: f64,
        /// Mean.
        mean: f64,
        /// Sample variance (n − 1 denominator).
        variance: f64,
    },
    /// Sum and sum of squares of the per-unit values.
    Sums {
        /// Units.
        n: f64,
        /// Σ x.
        sum: f64,
        /// Σ x².
        sum_squares: f64,
    },
    /// A conversion count: variance p(1 − p).
    Proportion {
        /// Units.
        n: f64,
        /// Units that converted.
        successes: f64,
    },
}

impl Arm {
    /// Reduces the arm to `{n, mean, variance}`, validating every field.
    ///
    /// `field` is the JSON pointer of the arm (e.g. `/control`), used in errors.
    ///
    /// # Errors
    /// Empty samples, `n ≤ 0`, negative variance, successes outside `[0, n]`,
    /// or any non-finite number.
    pub fn summarize(&self, field: &str) -> Result<ArmSummary> {
        match self {
            Arm::Samples(values) => ArmSummary::from_samples(field, values),
            Arm::Moments { n, mean, variance } => {
                let n = positive(&pointer(field, "n"), *n)?;
                let mean = finite(&pointer(field, "mean"), *mean)?;
                let variance = non_negative(&pointer(field, "variance"), *variance)?;
                Ok(ArmSummary { n, mean, variance })
            }
            Arm::Sums {
                n,
                sum,
                sum_squares,
            } => {
                let n = positive(&pointer(field, "n"), *n)?;
                let sum = finite(&pointer(field, "sum"), *sum)?;
                let sum_squares = non_negative(&pointer(field, "sum_squares"), *sum_squares)?;
                let mean = sum / n;
                let variance = if n > 1.0 {
                    // Rounding can push a true zero slightly negative.
                    ((sum_squares - sum * sum / n) / (n - 1.0)).max(0.0)
                } else {
                    0.0
                };
                Ok(ArmSummary { n, mean, variance })
            }
            Arm::Proportion { n, successes } => {
                let n = positive(&pointer(field, "n"), *n)?;
                let successes_field = pointer(field, "successes");
                let successes = non_negative(&successes_field, *successes)?;
                if successes > n {
                    return Err(StatsError::OutOfRange {
                        field: successes_field,
                        value: successes,
                        range: "[0, n]",
                    });
                }
                let p = successes / n;
                Ok(ArmSummary {
                    n,
                    mean: p,
                    variance: p * (1.0 - p),
                })
            }
        }
    }
}

impl ArmSummary {
    /// Mean and n − 1 sample variance of raw observations.
    ///
    /// # Errors
    /// [`StatsError::Empty`] for no observations, [`StatsError::NotFinite`] for NaN/inf.
    pub fn from_samples(field: &str, values: &[f64]) -> Result<ArmSummary> {
        let values = sample(field, values)?;
        let (mean, variance) = mean_variance(values);
        Ok(ArmSummary {
            n: values.len() as f64,
            mean,
            variance,
        })
    }

    /// Requires at least `min` units (for n − 1 denominators).
    pub(crate) fn require_n(&self, field: &str, min: u64) -> Result<()> {
        if self.n < min as f64 {
            return Err(StatsError::TooFewObservations {
                field: field.to_owned(),
                min,
                actual: self.n,
            });
        }
        Ok(())
    }
}

/// Mean and n − 1 variance, computed in two passes for accuracy.
pub(crate) fn mean_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (mean, ss / (n - 1.0))
}

/// n − 1 covariance of two equally long samples.
pub(crate) fn covariance(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if x.len() < 2 {
        return 0.0;
    }
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    x.iter()
        .zip(y)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / (n - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_samples_agree() {
        let xs = [1.0, 2.0, 4.0, 7.0];
        let s = ArmSummary::from_samples("/x", &xs).expect("valid");
        let sums = Arm::Sums {
            n: 4.0,
            sum: 14.0,
            sum_squares: 70.0,
        }
        .summarize("/x")
        .expect("ok");
        assert!((s.mean - sums.mean).abs() < 1e-12);
        assert!((s.variance - sums.variance).abs() < 1e-12);
    }

    #[test]
    fn proportion_uses_p_one_minus_p() {
        let s = Arm::Proportion {
            n: 10.0,
            successes: 3.0,
        }
        .summarize("/c")
        .expect("ok");
        assert!((s.variance - 0.21).abs() < 1e-15);
    }

    #[test]
    fn errors_name_the_field() {
        let err = Arm::Moments {
            n: 0.0,
            mean: 1.0,
            variance: 1.0,
        }
        .summarize("/control");
        assert!(matches!(err, Err(StatsError::OutOfRange { field, .. }) if field == "/control/n"));
        let err = Arm::Moments {
            n: 3.0,
            mean: 1.0,
            variance: -1.0,
        }
        .summarize("/treatment");
        assert!(
            matches!(err, Err(StatsError::OutOfRange { field, .. }) if field == "/treatment/variance")
        );
        let err = Arm::Samples(vec![]).summarize("/control");
        assert!(matches!(err, Err(StatsError::Empty { field }) if field == "/control"));
    }
}
