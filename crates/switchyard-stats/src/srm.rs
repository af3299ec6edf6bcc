//! Sample-ratio mismatch: Pearson chi-square goodness of fit of observed arm
//! sizes against the configured weights, df = k − 1.

use crate::dist::chi2_sf;
use crate::error::{Result, StatsError, non_negative, pointer};

/// Result of [`sample_ratio_mismatch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrmResult {
    /// Pearson chi-square statistic.
    pub chi2: f64,
    /// Its p-value with k − 1 degrees of freedom.
    pub p_value: f64,
}

/// Tests whether `observed` counts match `weights` (normalised to sum 1).
///
/// # Errors
/// Fewer than two arms, lengths that differ, negative counts or weights,
/// weights or counts that do not sum to a positive number, or a zero weight
/// on an arm that has observations.
pub fn sample_ratio_mismatch(observed: &[f64], weights: &[f64]) -> Result<SrmResult> {
    if observed.len() < 2 {
        return Err(StatsError::TooFewObservations {
            field: "/observed".to_owned(),
            min: 2,
            actual: observed.len() as f64,
        });
    }
    if weights.len() != observed.len() {
        return Err(StatsError::LengthMismatch {
            field: "/weights".to_owned(),
            other: "/observed".to_owned(),
            expected: observed.len(),
            actual: weights.len(),
        });
    }
    for (i, (o, w)) in observed.iter().zip(weights).enumerate() {
        non_negative(&pointer("/observed", &i.to_string()), *o)?;
        non_negative(&pointer("/weights", &i.to_string()), *w)?;
    }
    let weight_sum: f64 = weights.iter().sum();
    if !crate::error::is_positive(weight_sum) {
        return Err(StatsError::OutOfRange {
            field: "/weights".to_owned(),
            value: weight_sum,
            range: "sum in (0, inf)",
        });
    }
    let total: f64 = observed.iter().sum();
    if !crate::error::is_positive(total) {
        return Err(StatsError::OutOfRange {
            field: "/observed".to_owned(),
            value: total,
            range: "sum in (0, inf)",
        });
    }
    let mut chi2 = 0.0;
    for (i, (o, w)) in observed.iter().zip(weights).enumerate() {
        let expected = total * w / weight_sum;
        if expected == 0.0 {
            if *o > 0.0 {
                return Err(StatsError::OutOfRange {
                    field: pointer("/weights", &i.to_string()),
                    value: *w,
                    range: "(0, inf) for an arm with observations",
                });
            }
            continue;
        }
        chi2 += (o - expected).powi(2) / expected;
    }
    let df = (observed.len() - 1) as f64;
    Ok(SrmResult {
        chi2,
        p_value: chi2_sf(chi2, df)?,
    })
}
