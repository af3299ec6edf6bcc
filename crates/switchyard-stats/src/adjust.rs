//! Multiple-testing adjustment of p-values, as R's `p.adjust`: Bonferroni,
//! Holm, Benjamini–Hochberg and Benjamini–Yekutieli. Results are in input order.

use crate::error::{Result, StatsError, pointer};

/// Adjustment method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustMethod {
    /// p · m (family-wise error).
    Bonferroni,
    /// Holm's step-down (family-wise error, uniformly better than Bonferroni).
    Holm,
    /// Benjamini–Hochberg step-up (false discovery rate, independent tests).
    BenjaminiHochberg,
    /// Benjamini–Yekutieli (false discovery rate under any dependence).
    BenjaminiYekutieli,
}

/// Adjusts `p_values` for multiple comparisons.
///
/// # Errors
/// An empty list, or a value outside [0, 1] (named by its index).
pub fn adjust_p_values(p_values: &[f64], method: AdjustMethod) -> Result<Vec<f64>> {
    if p_values.is_empty() {
        return Err(StatsError::Empty {
            field: "/p_values".to_owned(),
        });
    }
    for (i, p) in p_values.iter().enumerate() {
        if !(0.0..=1.0).contains(p) {
            return Err(StatsError::OutOfRange {
                field: pointer("/p_values", &i.to_string()),
                value: *p,
                range: "[0, 1]",
            });
        }
    }
    let m = p_values.len() as f64;
    // Indices sorted by p ascending (stable, like R's order()).
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; p_values.len()];
    match method {
        AdjustMethod::Bonferroni => {
            for (a, p) in adjusted.iter_mut().zip(p_values) {
                *a = (p * m).min(1.0);
            }
        }
        AdjustMethod::Holm => {
            let mut running_max = 0.0_f64;
            for (rank, &i) in order.iter().enumerate() {
                running_max = running_max.max((m - rank as f64) * p_values[i]);
                adjusted[i] = running_max.min(1.0);
            }
        }
        AdjustMethod::BenjaminiHochberg | AdjustMethod::BenjaminiYekutieli => {
            let q = if method == AdjustMethod::BenjaminiYekutieli {
                (1..=p_values.len()).map(|k| 1.0 / k as f64).sum::<f64>()
            } else {
                1.0
            };
            let mut running_min = f64::INFINITY;
            for (rank, &i) in order.iter().enumerate().rev() {
                let k = rank as f64 + 1.0;
                running_min = running_min.min(q * m / k * p_values[i]);
                adjusted[i] = running_min.min(1.0);
            }
        }
    }
    Ok(adjusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bonferroni_caps_at_one() {
        let a = adjust_p_values(&[0.01, 0.5], AdjustMethod::Bonferroni).expect("ok");
        assert_eq!(a, vec![0.02, 1.0]);
    }

    #[test]
    fn out_of_range_named_by_index() {
        let r = adjust_p_values(&[0.1, 1.5], AdjustMethod::Holm);
        assert!(matches!(r, Err(StatsError::OutOfRange { field, .. }) if field == "/p_values/1"));
    }
}
