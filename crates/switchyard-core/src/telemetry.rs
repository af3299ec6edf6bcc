//! What the data plane tells the control plane about a release: request counts by status class
//! and latency quantiles over a trailing window. The proxy produces it; analysis consumes it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Aggregated traffic of one release over a trailing window.
///
/// Quantiles are `None` when the window saw no request: an empty window has no latency, and
/// reporting zero would make a silent release look fast.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Length of the window these numbers cover.
    #[serde(with = "crate::duration::serde_secs_f64")]
    pub window: Duration,
    /// Every request answered (any status, including proxy-generated 5xx).
    pub requests: u64,
    /// Responses with status 1xx/2xx/3xx/4xx/5xx, in that order.
    pub status_classes: [u64; 5],
    /// Requests that never got an upstream response (connect failure, timeout), counted as 5xx too.
    pub upstream_failures: u64,
    /// Latency quantiles in seconds.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    /// Mean latency in seconds.
    pub mean: Option<f64>,
}

impl WindowStats {
    /// Responses with a 5xx status (which includes upstream failures).
    pub fn errors(&self) -> u64 {
        self.status_classes[4]
    }

    /// Share of requests answered 5xx, `None` without traffic.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors() as f64 / self.requests as f64)
    }

    /// Share of requests not answered 5xx, `None` without traffic.
    pub fn success_rate(&self) -> Option<f64> {
        self.error_rate().map(|e| 1.0 - e)
    }

    /// Requests per second over the window.
    pub fn rps(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }
}

/// Everything a release answered since the data plane first saw it. Monotonic, so the
/// difference of two readings is exactly the traffic between them, with nothing counted twice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleaseTotals {
    pub requests: u64,
    /// Answered 5xx (including the proxy's own answers when the upstream failed).
    pub errors: u64,
    /// Latency histogram: `(upper_bound_seconds, count)`.
    pub latency: Vec<(f64, u64)>,
    /// Requests by status class, 1xx to 5xx.
    #[serde(default)]
    pub status_classes: [u64; 5],
    /// Requests no upstream answered (counted as 5xx too).
    #[serde(default)]
    pub upstream_failures: u64,
    /// Sum of the latencies, in microseconds.
    #[serde(default)]
    pub latency_sum_micros: u64,
}

impl ReleaseTotals {
    /// Adds `other`'s counts to these (latency buckets merged by their bound).
    pub fn add(&mut self, other: &ReleaseTotals) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.upstream_failures += other.upstream_failures;
        self.latency_sum_micros = self
            .latency_sum_micros
            .saturating_add(other.latency_sum_micros);
        for (mine, theirs) in self.status_classes.iter_mut().zip(other.status_classes) {
            *mine += theirs;
        }
        for (bound, n) in &other.latency {
            match self
                .latency
                .iter_mut()
                .find(|(b, _)| b.to_bits() == bound.to_bits())
            {
                Some((_, m)) => *m += n,
                None => self.latency.push((*bound, *n)),
            }
        }
        self.latency.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    /// The latency below which a share `q` of the requests finished, from the buckets; `None`
    /// without requests.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bound, n) in &self.latency {
            seen += n;
            if seen >= rank {
                return Some(*bound);
            }
        }
        self.latency.last().map(|(b, _)| *b)
    }

    /// The traffic between `earlier` and `self`. A reading lower than `earlier` means the
    /// data plane restarted its counts; then all of `self` is new.
    pub fn since(&self, earlier: &ReleaseTotals) -> ReleaseTotals {
        if self.requests < earlier.requests || self.errors < earlier.errors {
            return self.clone();
        }
        let before: std::collections::HashMap<u64, u64> = earlier
            .latency
            .iter()
            .map(|(b, n)| (b.to_bits(), *n))
            .collect();
        let mut status_classes = [0; 5];
        for (i, n) in status_classes.iter_mut().enumerate() {
            *n = self.status_classes[i].saturating_sub(earlier.status_classes[i]);
        }
        ReleaseTotals {
            requests: self.requests - earlier.requests,
            errors: self.errors - earlier.errors,
            status_classes,
            upstream_failures: self
                .upstream_failures
                .saturating_sub(earlier.upstream_failures),
            latency_sum_micros: self
                .latency_sum_micros
                .saturating_sub(earlier.latency_sum_micros),
            latency: self
                .latency
                .iter()
                .map(|(b, n)| {
                    (
                        *b,
                        n.saturating_sub(before.get(&b.to_bits()).copied().unwrap_or(0)),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// Read access to per-release traffic, implemented by the proxy.
pub trait ReleaseMetrics: Send + Sync {
    /// Traffic of `release` of `app` over the trailing `window`; `None` when the app or release
    /// is unknown to the data plane.
    fn window(&self, app: &str, release: &str, window: Duration) -> Option<WindowStats>;

    /// Raw latency samples are not kept; this returns a latency histogram summary instead:
    /// `(upper_bound_seconds, count)` buckets of the window, for distribution comparisons.
    fn latency_buckets(&self, app: &str, release: &str, window: Duration) -> Vec<(f64, u64)>;

    /// Monotonic totals of `release` of `app`, for consumers that must not count a request
    /// twice (the statistical judge); `None` when the release is unknown.
    fn totals(&self, app: &str, release: &str) -> Option<ReleaseTotals>;

    /// The instant up to which every source of these numbers has reported (the oldest last
    /// report of the live proxies); `None` when they are always current (counted in process).
    /// A measurement asked at `t` is complete once this is at or after `t`.
    fn complete_until(&self) -> Option<std::time::Instant> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_difference_is_the_traffic_in_between() {
        let a = ReleaseTotals {
            requests: 10,
            errors: 1,
            latency: vec![(0.01, 6), (0.02, 4)],
            status_classes: [0, 9, 0, 0, 1],
            upstream_failures: 1,
            latency_sum_micros: 120_000,
        };
        let b = ReleaseTotals {
            requests: 15,
            errors: 3,
            latency: vec![(0.01, 8), (0.02, 4), (0.05, 3)],
            status_classes: [0, 12, 0, 0, 3],
            upstream_failures: 1,
            latency_sum_micros: 300_000,
        };
        let d = b.since(&a);
        assert_eq!((d.requests, d.errors), (5, 2));
        assert_eq!(d.latency, vec![(0.01, 2), (0.05, 3)]);
        assert_eq!(d.status_classes, [0, 3, 0, 0, 2]);
        assert_eq!((d.upstream_failures, d.latency_sum_micros), (0, 180_000));
        assert_eq!(a.since(&b), a, "a restart of the counts");
    }

    #[test]
    fn totals_add_up_bucket_by_bucket_and_give_quantiles() {
        let mut sum = ReleaseTotals {
            requests: 2,
            latency: vec![(0.01, 2)],
            ..ReleaseTotals::default()
        };
        sum.add(&ReleaseTotals {
            requests: 8,
            latency: vec![(0.005, 4), (0.01, 2), (0.1, 2)],
            ..ReleaseTotals::default()
        });
        assert_eq!(sum.requests, 10);
        assert_eq!(sum.latency, vec![(0.005, 4), (0.01, 4), (0.1, 2)]);
        assert_eq!(sum.latency_quantile(0.4), Some(0.005));
        assert_eq!(sum.latency_quantile(0.5), Some(0.01));
        assert_eq!(sum.latency_quantile(0.99), Some(0.1));
        assert_eq!(ReleaseTotals::default().latency_quantile(0.5), None);
    }
}
