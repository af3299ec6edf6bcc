//! Percentiles with R's default (type 7) definition: linear interpolation
//! between order statistics at h = (n − 1)·p.

/// The `p`-quantile (p in [0, 1]) of an ascending-sorted, non-empty slice.
/// Returns `None` for an empty slice or p outside [0, 1].
pub fn percentile_r7(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor();
    let i = lo as usize;
    let below = sorted[i];
    let above = sorted.get(i + 1).copied().unwrap_or(below);
    Some(below + (h - lo) * (above - below))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_r_quantile_type_7() {
        // R: quantile(c(1, 2, 4, 7, 11), c(.25, .5, .9)) = 2, 4, 9.4
        let xs = [1.0, 2.0, 4.0, 7.0, 11.0];
        assert_eq!(percentile_r7(&xs, 0.25), Some(2.0));
        assert_eq!(percentile_r7(&xs, 0.5), Some(4.0));
        assert!((percentile_r7(&xs, 0.9).expect("some") - 9.4).abs() < 1e-12);
        assert_eq!(percentile_r7(&[], 0.5), None);
    }
}
