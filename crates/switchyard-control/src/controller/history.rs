//! What the dashboard charts of a rollout: each release's request rate, error rate and latency
//! over the rollout's life, sampled from the data plane's trailing windows every few seconds.
//! Kept in memory for the most recent rollouts: a restarted control plane charts from its
//! start. Long rollouts keep their whole life at a coarser grain (every other sample is
//! dropped when a series is full).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use switchyard_core::ports::RolloutId;
use switchyard_core::{ReleaseMetrics, Timestamp};
use switchyard_rollout::machine::Rollout;

/// The trailing window each sample reads.
pub const SAMPLE_WINDOW: Duration = Duration::from_secs(10);

/// Samples kept per rollout before the series is thinned.
pub const MAX_SAMPLES: usize = 720;

/// Rollouts whose series are kept (the oldest ids go first).
pub const MAX_ROLLOUTS: usize = 64;

/// One release's traffic over the window ending at a sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseSample {
    pub version: String,
    pub rps: f64,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Every release of a rollout at one instant.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrafficSample {
    pub at: Timestamp,
    /// The canary's weight then, percent.
    pub weight: u8,
    pub releases: Vec<ReleaseSample>,
}

/// The series of the most recent rollouts.
#[derive(Debug, Default)]
pub struct TrafficHistory {
    series: Mutex<BTreeMap<RolloutId, Vec<TrafficSample>>>,
}

impl TrafficHistory {
    /// Samples `rollout` (of `app`) at `at` from `metrics`.
    pub fn sample(
        &self,
        id: RolloutId,
        app: &str,
        rollout: &Rollout,
        metrics: &dyn ReleaseMetrics,
        at: Timestamp,
    ) {
        let releases = [&rollout.stable, &rollout.canary]
            .into_iter()
            .chain(rollout.baseline.as_ref())
            .map(|release| {
                let w = metrics
                    .window(app, release.version.as_str(), SAMPLE_WINDOW)
                    .unwrap_or_default();
                ReleaseSample {
                    version: release.version.to_string(),
                    rps: w.rps(),
                    error_rate: w.error_rate(),
                    p50_ms: w.p50.map(|v| v * 1e3),
                    p99_ms: w.p99.map(|v| v * 1e3),
                }
            })
            .collect();
        self.record(
            id,
            TrafficSample {
                at,
                weight: rollout.weight,
                releases,
            },
        );
    }

    /// Appends `sample` to the series of `id`.
    pub fn record(&self, id: RolloutId, sample: TrafficSample) {
        let mut all = self.lock();
        let series = all.entry(id).or_default();
        series.push(sample);
        if series.len() > MAX_SAMPLES {
            // Thin to every other sample, keeping the newest.
            let keep_odd = series.len() % 2 == 0;
            let mut index = 0;
            series.retain(|_| {
                index += 1;
                (index % 2 == 0) == keep_odd
            });
        }
        while all.len() > MAX_ROLLOUTS {
            all.pop_first();
        }
    }

    /// The samples of rollout `id`, oldest first.
    pub fn series(&self, id: RolloutId) -> Vec<TrafficSample> {
        self.lock().get(&id).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<RolloutId, Vec<TrafficSample>>> {
        self.series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64) -> TrafficSample {
        TrafficSample {
            at: Timestamp::from_millis(ms),
            weight: 10,
            releases: Vec::new(),
        }
    }

    #[test]
    fn a_full_series_is_thinned_and_keeps_its_newest_sample() {
        let history = TrafficHistory::default();
        for i in 0..=MAX_SAMPLES as u64 {
            history.record(1, sample(i));
        }
        let series = history.series(1);
        assert_eq!(series.len(), (MAX_SAMPLES + 1).div_ceil(2));
        assert_eq!(
            series.last().unwrap().at,
            Timestamp::from_millis(MAX_SAMPLES as u64)
        );
        assert!(
            series
                .windows(2)
                .all(|w| w[1].at.since(w[0].at).as_millis() == 2)
        );
    }

    #[test]
    fn only_the_most_recent_rollouts_are_kept() {
        let history = TrafficHistory::default();
        for id in 1..=(MAX_ROLLOUTS as i64 + 1) {
            history.record(id, sample(0));
        }
        assert!(history.series(1).is_empty());
        assert_eq!(history.series(2).len(), 1);
    }
}
