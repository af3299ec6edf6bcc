//! Interquartile-range outlier removal as Kayenta's `IQRDetector(factor = 3.0,
//! reduceSensitivity = true)`: quartiles by R-7, values outside
//! [Q1 − k·IQR, Q3 + k·IQR] are dropped.

use crate::kayenta::percentile::percentile_r7;

/// Kayenta's factor for the canary judge.
pub const DEFAULT_IQR_FACTOR: f64 = 3.0;

/// Returns the values inside the IQR fences, in their original order.
pub fn remove_outliers(values: &[f64], factor: f64) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (Some(q1), Some(q3)) = (percentile_r7(&sorted, 0.25), percentile_r7(&sorted, 0.75)) else {
        return Vec::new();
    };
    let iqr = q3 - q1;
    let (lo, hi) = (q1 - factor * iqr, q3 + factor * iqr);
    values
        .iter()
        .copied()
        .filter(|v| *v >= lo && *v <= hi)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_far_values_only() {
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0, 100.0];
        assert_eq!(remove_outliers(&xs, 3.0), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(remove_outliers(&xs[..5], 3.0), xs[..5].to_vec());
    }
}
