//! How long a change takes to reach every live proxy: from the moment a version is published
//! to the report that shows the last live proxy serving it (the proxy reports right after it
//! applies, so this includes one report's trip).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Versions whose publication time is kept.
const PUBLISHED: usize = 4096;
/// Samples kept for the quantiles.
const SAMPLES: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Propagation {
    /// `(version, published at)`, oldest first.
    published: VecDeque<(u64, Instant)>,
    /// Every version up to this one reached every live proxy (and was measured).
    complete: u64,
    samples: VecDeque<Duration>,
    count: u64,
    sum: Duration,
}

impl Propagation {
    pub(crate) fn published(&mut self, version: u64, at: Instant) {
        self.published.push_back((version, at));
        while self.published.len() > PUBLISHED {
            self.published.pop_front();
        }
    }

    /// Every live proxy serves `acknowledged` or later, as of `now`: measures the versions that
    /// just got there.
    pub(crate) fn reached(&mut self, acknowledged: u64, now: Instant) {
        if acknowledged <= self.complete {
            return;
        }
        let newly: Vec<Duration> = self
            .published
            .iter()
            .filter(|(v, _)| *v > self.complete && *v <= acknowledged)
            .map(|(_, at)| now.saturating_duration_since(*at))
            .collect();
        for d in newly {
            self.samples.push_back(d);
            self.count += 1;
            self.sum += d;
        }
        while self.samples.len() > SAMPLES {
            self.samples.pop_front();
        }
        self.complete = acknowledged;
    }

    /// `(p50, p99, count, sum)` of the recent samples; `None` before the first.
    pub(crate) fn summary(&self) -> Option<(Duration, Duration, u64, Duration)> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        Some((at(0.5), at(0.99), self.count, self.sum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_is_measured_once_when_the_last_proxy_has_it() {
        let t0 = Instant::now();
        let mut p = Propagation::default();
        p.published(1, t0);
        p.published(2, t0 + Duration::from_millis(10));
        p.reached(2, t0 + Duration::from_millis(30));
        p.reached(2, t0 + Duration::from_millis(90));
        let (p50, p99, count, sum) = p.summary().unwrap();
        assert_eq!(count, 2);
        assert_eq!(
            (p50, p99),
            (Duration::from_millis(20), Duration::from_millis(30))
        );
        assert_eq!(sum, Duration::from_millis(50));
    }
}
