//! Per-release telemetry shared by every listener of a process: windowed histograms that the
//! analysis engine queries through [`ReleaseMetrics`], and the same traffic as Prometheus metrics.

pub mod names;
mod retention;
pub mod window;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use switchyard_core::{ReleaseMetrics, ReleaseTotals, WindowStats};
use tokio::time::Instant;

use names::*;
use retention::{LastActive, ReleaseKey, Retention};
use window::Shards;

/// Default length of the window ring: the longest window the analysis engine can query.
pub const DEFAULT_RING_SECONDS: usize = 300;

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 100 µs .. ~52 s in factors of 2.
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// Process-wide telemetry, keyed by (app, release).
#[derive(Debug)]
pub struct Telemetry {
    started: Instant,
    /// Numbers the (app, release) entries in the order they are created.
    incarnations: AtomicU64,
    ring_seconds: usize,
    /// Entries of releases that a table still serves, or served less than a ring ago.
    releases: Mutex<Retention<ReleaseStats>>,
    registry: Registry,
    requests: Family<Labels, Counter>,
    durations: HistogramFamily,
    failures: Family<Labels, Counter>,
    in_flight: Family<Labels, Gauge>,
    mirrored: Family<Labels, Counter>,
    mirror_skipped: Family<Labels, Counter>,
    endpoint_healthy: Family<Labels, Gauge>,
    ejections: Family<Labels, Counter>,
}

/// Recording handle of one (app, release), resolved once per routing table so that the hot path
/// takes one uncontended lock per request (its worker's shard of the window rings) and no map
/// lookups.
#[derive(Debug)]
pub struct ReleaseStats {
    started: Instant,
    /// Which entry of this (app, release) this is: its totals start from zero.
    incarnation: u64,
    /// Second (since `started`) of the last recorded request, or of creation.
    last_active: AtomicU64,
    ring: Shards,
    by_class: [Counter; 5],
    duration: Histogram,
    in_flight: Gauge,
    mirrored: Counter,
    mirror_skipped: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    labels: Labels,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Telemetry with a [`DEFAULT_RING_SECONDS`] window ring.
    pub fn new() -> Self {
        Self::with_ring_seconds(DEFAULT_RING_SECONDS)
    }

    /// Telemetry answering windows of up to `seconds`.
    pub fn with_ring_seconds(seconds: usize) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::default();
        let durations =
            HistogramFamily::new_with_constructor(duration_histogram as fn() -> Histogram);
        let failures = Family::default();
        let in_flight = Family::default();
        let mirrored = Family::default();
        let mirror_skipped = Family::default();
        let endpoint_healthy = Family::default();
        let ejections = Family::default();
        registry.register(
            REQUESTS,
            "Requests answered, by status class",
            requests.clone(),
        );
        registry.register_with_unit(
            REQUEST_DURATION,
            "Time from request received to response head sent",
            Unit::Seconds,
            durations.clone(),
        );
        registry.register(
            UPSTREAM_FAILURES,
            "Requests no upstream answered, by reason",
            failures.clone(),
        );
        registry.register(IN_FLIGHT, "Requests being served", in_flight.clone());
        registry.register(
            MIRRORED,
            "Request copies sent to a mirror release",
            mirrored.clone(),
        );
        registry.register(
            MIRROR_SKIPPED,
            "Requests chosen for mirroring whose copy was not made or was abandoned, by reason",
            mirror_skipped.clone(),
        );
        registry.register(
            ENDPOINT_HEALTHY,
            "1 if the instance receives traffic",
            endpoint_healthy.clone(),
        );
        registry.register(
            ENDPOINT_EJECTIONS,
            "Passive ejections of the instance",
            ejections.clone(),
        );
        Telemetry {
            started: Instant::now(),
            incarnations: AtomicU64::new(1),
            ring_seconds: seconds,
            releases: Mutex::new(Retention::new(seconds as u64)),
            registry,
            requests,
            durations,
            failures,
            in_flight,
            mirrored,
            mirror_skipped,
            endpoint_healthy,
            ejections,
        }
    }

    /// The recording handle of (`app`, `release`), created on first use. Telemetry keeps an
    /// entry while a handle is held and for one ring window after (see `retention`).
    pub fn release(&self, app: &str, release: &str) -> Arc<ReleaseStats> {
        let mut releases = self.sweep();
        let key = (app.to_owned(), release.to_owned());
        releases.get_or_insert_with(key, || self.new_release(app, release))
    }

    fn new_release(&self, app: &str, release: &str) -> ReleaseStats {
        let labels = release_labels(app, release);
        let by_class = STATUS_CLASSES.map(|class| {
            let mut l = labels.clone();
            l.push((LABEL_STATUS_CLASS, class.to_owned()));
            self.requests.get_or_create(&l).clone()
        });
        ReleaseStats {
            started: self.started,
            incarnation: self.incarnations.fetch_add(1, Ordering::Relaxed),
            last_active: AtomicU64::new(self.started.elapsed().as_secs()),
            ring: Shards::new(self.ring_seconds),
            by_class,
            duration: self.durations.get_or_create(&labels).clone(),
            in_flight: self.in_flight.get_or_create(&labels).clone(),
            mirrored: self.mirrored.get_or_create(&labels).clone(),
            mirror_skipped: self.mirror_skipped.clone(),
            failures: self.failures.clone(),
            labels,
        }
    }

    /// Drops entries past their retention, with their Prometheus series, and returns the
    /// locked map for the caller's use.
    fn sweep(&self) -> std::sync::MutexGuard<'_, Retention<ReleaseStats>> {
        let mut releases = self.releases.lock().unwrap_or_else(PoisonError::into_inner);
        for (app, release) in releases.sweep(self.started.elapsed().as_secs()) {
            self.remove_series(&app, &release);
        }
        releases
    }

    fn remove_series(&self, app: &str, release: &str) {
        let labels = release_labels(app, release);
        let with = |key: &'static str, value: &str| {
            let mut l = labels.clone();
            l.push((key, value.to_owned()));
            l
        };
        for class in STATUS_CLASSES {
            self.requests.remove(&with(LABEL_STATUS_CLASS, class));
        }
        for reason in UPSTREAM_FAILURE_REASONS {
            self.failures.remove(&with(LABEL_REASON, reason));
        }
        for reason in MIRROR_SKIP_REASONS {
            self.mirror_skipped.remove(&with(LABEL_REASON, reason));
        }
        self.durations.remove(&labels);
        self.in_flight.remove(&labels);
        self.mirrored.remove(&labels);
    }

    /// The monotonic totals of every release telemetry keeps, with their incarnation:
    /// `(app, release, incarnation, totals)`.
    pub fn all_totals(&self) -> Vec<(String, String, u64, ReleaseTotals)> {
        let releases = self.sweep();
        releases
            .iter()
            .map(|((app, release), stats)| {
                let totals = stats.ring.totals();
                (app.clone(), release.clone(), stats.incarnation, totals)
            })
            .collect()
    }

    /// Releases telemetry keeps an entry for (serving, or removed less than a ring ago).
    pub fn tracked_releases(&self) -> usize {
        self.sweep().len()
    }

    /// Marks an instance as receiving traffic or not.
    pub(crate) fn set_endpoint_healthy(&self, app: &str, endpoint: &str, healthy: bool) {
        self.endpoint_healthy
            .get_or_create(&endpoint_labels(app, endpoint))
            .set(i64::from(healthy));
    }

    /// Forgets an instance that left every routing table.
    pub(crate) fn remove_endpoint(&self, app: &str, endpoint: &str) {
        let labels = endpoint_labels(app, endpoint);
        self.endpoint_healthy.remove(&labels);
        self.ejections.remove(&labels);
    }

    pub(crate) fn count_ejection(&self, app: &str, endpoint: &str) {
        self.ejections
            .get_or_create(&endpoint_labels(app, endpoint))
            .inc();
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn encode_prometheus(&self) -> String {
        drop(self.sweep());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    fn lookup(&self, app: &str, release: &str) -> Option<Arc<ReleaseStats>> {
        let key: ReleaseKey = (app.to_owned(), release.to_owned());
        self.sweep().get(&key)
    }
}

fn release_labels(app: &str, release: &str) -> Labels {
    vec![
        (LABEL_APP, app.to_owned()),
        (LABEL_RELEASE, release.to_owned()),
    ]
}

fn endpoint_labels(app: &str, endpoint: &str) -> Labels {
    vec![
        (LABEL_APP, app.to_owned()),
        (LABEL_ENDPOINT, endpoint.to_owned()),
    ]
}

impl ReleaseStats {
    fn now_second(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Records one answered request. `failure` names why the proxy answered instead of an
    /// upstream, one of the `REASON_*` constants.
    pub fn record(&self, status: u16, latency: Duration, failure: Option<&'static str>) {
        self.record_at(Instant::now(), status, latency, failure);
    }

    /// [`record`](Self::record) of a request answered at `at`: the clock its latency was taken
    /// from, read once for both.
    pub fn record_at(
        &self,
        at: Instant,
        status: u16,
        latency: Duration,
        failure: Option<&'static str>,
    ) {
        let now = at.saturating_duration_since(self.started).as_secs();
        // Written once a second rather than by every request: the workers share its cache line.
        if self.last_active.load(Ordering::Relaxed) != now {
            self.last_active.store(now, Ordering::Relaxed);
        }
        self.ring.record(now, status, failure.is_some(), latency);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].inc();
        self.duration.observe(latency.as_secs_f64());
        if let Some(reason) = failure {
            let mut l = self.labels.clone();
            l.push((LABEL_REASON, reason.to_owned()));
            self.failures.get_or_create(&l).inc();
        }
    }

    /// Counts a request in flight until the guard drops.
    pub fn in_flight(self: &Arc<Self>) -> InFlightGuard {
        self.in_flight.inc();
        InFlightGuard(self.clone())
    }

    pub fn count_mirrored(&self) {
        self.mirrored.inc();
    }

    /// Counts a request chosen for mirroring to this release whose copy was not made or was
    /// abandoned; `reason` is one of the `MIRROR_SKIP_*` constants.
    pub fn count_mirror_skipped(&self, reason: &'static str) {
        let mut l = self.labels.clone();
        l.push((LABEL_REASON, reason.to_owned()));
        self.mirror_skipped.get_or_create(&l).inc();
    }

    fn snapshot(&self, window: Duration) -> window::WindowSnapshot {
        self.ring.query(self.now_second(), window)
    }
}

impl LastActive for ReleaseStats {
    fn last_active(&self) -> u64 {
        self.last_active.load(Ordering::Relaxed)
    }
}

/// Decrements the in-flight gauge on drop.
#[derive(Debug)]
pub struct InFlightGuard(Arc<ReleaseStats>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

impl ReleaseMetrics for Telemetry {
    fn window(&self, app: &str, release: &str, window: Duration) -> Option<WindowStats> {
        Some(self.lookup(app, release)?.snapshot(window).stats)
    }

    fn latency_buckets(&self, app: &str, release: &str, window: Duration) -> Vec<(f64, u64)> {
        let Some(h) = self
            .lookup(app, release)
            .and_then(|s| s.snapshot(window).latency)
        else {
            return Vec::new();
        };
        h.iter_recorded()
            .map(|v| {
                (
                    h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6,
                    v.count_since_last_iteration(),
                )
            })
            .collect()
    }

    fn totals(&self, app: &str, release: &str) -> Option<ReleaseTotals> {
        let stats = self.lookup(app, release)?;
        Some(stats.ring.totals())
    }
}

#[cfg(test)]
mod tests;
