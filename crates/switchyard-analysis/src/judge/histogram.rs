//! Running latency totals of one arm on a fixed log-scale grid: 16 buckets per doubling (each
//! bucket 4.4 % wide), so quantiles are resolved far more finely than any sensible
//! `maxIncrease`, and the state stays small (at most a few hundred buckets) whatever the
//! proxy's histogram resolution.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Buckets per factor of two.
pub const BUCKETS_PER_DOUBLING: f64 = 16.0;
/// Latencies below this are counted as this (a zero latency has no logarithm).
pub const MIN_LATENCY_S: f64 = 1e-6;

/// Grid index of the bucket holding `seconds`: bucket `k` covers `(2^((k−1)/16), 2^(k/16)]`.
pub fn bucket_index(seconds: f64) -> i32 {
    // Bounded: log2 of [1e-6, f64::MAX] lies in [-20, 1024], times 16.
    (seconds.max(MIN_LATENCY_S).log2() * BUCKETS_PER_DOUBLING).ceil() as i32
}

/// Upper bound of bucket `k`, seconds.
pub fn upper_bound(k: i32) -> f64 {
    (f64::from(k) / BUCKETS_PER_DOUBLING).exp2()
}

/// A latency histogram on the grid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogHistogram {
    /// Count per grid index.
    buckets: BTreeMap<i32, u64>,
    /// Sum of the counts.
    total: u64,
}

impl LogHistogram {
    /// Adds `count` requests with latency up to `upper_bound_s`.
    pub fn add(&mut self, upper_bound_s: f64, count: u64) {
        if count == 0 {
            return;
        }
        *self.buckets.entry(bucket_index(upper_bound_s)).or_default() += count;
        self.total += count;
    }

    /// Requests counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The `p`-quantile in seconds, interpolated log-linearly inside its bucket; `None` when
    /// empty.
    pub fn quantile(&self, p: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let target = p.clamp(0.0, 1.0) * self.total as f64;
        let mut below = 0.0;
        let mut last = None;
        for (&k, &c) in &self.buckets {
            let c = c as f64;
            last = Some(k);
            if below + c >= target {
                let frac = ((target - below) / c).clamp(0.0, 1.0);
                return Some(((f64::from(k) - 1.0 + frac) / BUCKETS_PER_DOUBLING).exp2());
            }
            below += c;
        }
        last.map(upper_bound)
    }

    /// How many requests were slower than `threshold_s` (fractional: the bucket holding the
    /// threshold contributes the log-linear share above it).
    pub fn count_above(&self, threshold_s: f64) -> f64 {
        let t = threshold_s.max(MIN_LATENCY_S).log2() * BUCKETS_PER_DOUBLING;
        self.buckets
            .range(t.floor() as i32..)
            .map(|(&k, &c)| {
                let (lo, hi) = (f64::from(k) - 1.0, f64::from(k));
                c as f64 * ((hi - t) / (hi - lo)).clamp(0.0, 1.0)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_and_exceedance_are_consistent() {
        let mut h = LogHistogram::default();
        for i in 1..=1000 {
            h.add(f64::from(i) / 1000.0, 1);
        }
        let median = h.quantile(0.5).unwrap();
        assert!((median - 0.5).abs() < 0.5 * 0.05, "{median}");
        let above = h.count_above(median);
        assert!((above - 500.0).abs() < 30.0, "{above}");
        assert_eq!(h.count_above(10.0), 0.0);
        assert_eq!(h.count_above(0.0), 1000.0);
        assert!(LogHistogram::default().quantile(0.5).is_none());
    }

    #[test]
    fn grid_bounds() {
        assert_eq!(bucket_index(1.0), 0);
        assert_eq!(bucket_index(upper_bound(-37)), -37);
        assert_eq!(bucket_index(0.0), bucket_index(MIN_LATENCY_S));
    }
}
