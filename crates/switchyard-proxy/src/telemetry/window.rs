//! A ring of one-second slots, each with status-class counts and an HDR latency histogram.
//! Queries merge the slots of the trailing window exactly (no decay, no approximation beyond
//! the histogram's two significant digits).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use switchyard_core::{ReleaseTotals, WindowStats};

/// Latencies are recorded in microseconds, from 1 µs up to this many (10 minutes); longer
/// latencies are clamped to it.
const MAX_LATENCY_MICROS: u64 = 600_000_000;
/// Two significant digits keep a slot's histogram around 10 KiB.
const SIGNIFICANT_DIGITS: u8 = 2;

#[derive(Debug, Default)]
struct Slot {
    second: u64,
    status_classes: [u64; 5],
    upstream_failures: u64,
    latency_sum_micros: u64,
    // Allocated on the first request of a slot and reused after, so idle releases cost little.
    latency: Option<Histogram<u32>>,
}

impl Slot {
    fn reset(&mut self, second: u64) {
        self.second = second;
        self.status_classes = [0; 5];
        self.upstream_failures = 0;
        self.latency_sum_micros = 0;
        if let Some(h) = &mut self.latency {
            h.reset();
        }
    }

    fn requests(&self) -> u64 {
        self.status_classes.iter().sum()
    }
}

/// One release's recent traffic, one slot per second.
#[derive(Debug)]
pub struct WindowRing {
    slots: Vec<Slot>,
    /// Everything recorded since creation, never reset: the judge reads differences of it.
    totals: Totals,
}

/// Monotonic counts of a release.
#[derive(Debug, Default)]
struct Totals {
    requests: u64,
    errors: u64,
    status_classes: [u64; 5],
    upstream_failures: u64,
    latency_sum_micros: u64,
    latency: Option<Histogram<u32>>,
}

/// Merged slots of a window.
#[derive(Debug)]
pub struct WindowSnapshot {
    pub stats: WindowStats,
    pub latency: Option<Histogram<u32>>,
}

fn new_histogram() -> Option<Histogram<u32>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, SIGNIFICANT_DIGITS).ok()
}

impl WindowRing {
    /// A ring that can answer windows of up to `seconds` seconds.
    pub fn new(seconds: usize) -> Self {
        let seconds = seconds.max(1);
        WindowRing {
            slots: (0..seconds)
                .map(|_| Slot {
                    second: u64::MAX,
                    ..Slot::default()
                })
                .collect(),
            totals: Totals::default(),
        }
    }

    /// Everything recorded since creation.
    pub fn totals(&self) -> ReleaseTotals {
        merged_totals([self])
    }

    /// Longest window this ring answers.
    pub fn capacity(&self) -> Duration {
        Duration::from_secs(self.slots.len() as u64)
    }

    /// Records one answered request in second `now`.
    pub fn record(&mut self, now: u64, status: u16, upstream_failure: bool, latency: Duration) {
        let len = self.slots.len() as u64;
        // The index is below the ring length, which is a usize.
        let slot = &mut self.slots[(now % len) as usize];
        if slot.second != now {
            slot.reset(now);
        }
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        slot.status_classes[class] += 1;
        self.totals.requests += 1;
        self.totals.errors += u64::from(class == 4);
        self.totals.status_classes[class] += 1;
        self.totals.upstream_failures += u64::from(upstream_failure);
        slot.upstream_failures += u64::from(upstream_failure);
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_LATENCY_MICROS);
        self.totals.latency_sum_micros = self.totals.latency_sum_micros.saturating_add(micros);
        slot.latency_sum_micros = slot.latency_sum_micros.saturating_add(micros);
        if slot.latency.is_none() {
            slot.latency = new_histogram();
        }
        if let Some(h) = &mut slot.latency {
            // Cannot fail: the value is clamped into the histogram's bounds.
            let _ = h.record(micros);
        }
        if self.totals.latency.is_none() {
            self.totals.latency = new_histogram();
        }
        if let Some(h) = &mut self.totals.latency {
            // Cannot fail, as above; a u32 bucket of the totals holds four billion requests.
            let _ = h.record(micros);
        }
    }

    /// Merges the slots of seconds `(now - window, now]`; the window is clamped to the capacity.
    pub fn query(&self, now: u64, window: Duration) -> WindowSnapshot {
        merged_query([self], window.min(self.capacity()), now)
    }
}

/// Adds `h` into `merged` (histograms of the same bounds: adding cannot fail).
fn add_into(merged: &mut Option<Histogram<u32>>, h: &Histogram<u32>) {
    match merged {
        Some(m) => {
            let _ = m.add(h);
        }
        None => *merged = Some(h.clone()),
    }
}

/// [`WindowRing::query`] over the slots of several rings (the shards of one release, see
/// [`Shards`]) as if they were one; `window` is already clamped to their capacity.
fn merged_query<'a>(
    rings: impl IntoIterator<Item = &'a WindowRing>,
    window: Duration,
    now: u64,
) -> WindowSnapshot {
    let mut stats = WindowStats {
        window,
        ..WindowStats::default()
    };
    let mut merged: Option<Histogram<u32>> = None;
    let mut sum_micros = 0u64;
    let seconds = window.as_secs_f64().ceil() as u64;
    let oldest = now.saturating_sub(seconds.saturating_sub(1));
    for ring in rings {
        for slot in ring
            .slots
            .iter()
            .filter(|s| s.second != u64::MAX && (oldest..=now).contains(&s.second))
        {
            for (total, n) in stats.status_classes.iter_mut().zip(slot.status_classes) {
                *total += n;
            }
            stats.requests += slot.requests();
            stats.upstream_failures += slot.upstream_failures;
            sum_micros = sum_micros.saturating_add(slot.latency_sum_micros);
            if let Some(h) = slot.latency.as_ref().filter(|_| slot.requests() > 0) {
                add_into(&mut merged, h);
            }
        }
    }
    if let Some(h) = merged.as_ref().filter(|h| !h.is_empty()) {
        let q = |q: f64| Some(h.value_at_quantile(q) as f64 / 1e6);
        (stats.p50, stats.p95, stats.p99, stats.p999) = (q(0.5), q(0.95), q(0.99), q(0.999));
        stats.mean = Some(sum_micros as f64 / 1e6 / stats.requests as f64);
    }
    WindowSnapshot {
        stats,
        latency: merged,
    }
}

/// The totals of several rings (the shards of one release) added up.
fn merged_totals<'a>(rings: impl IntoIterator<Item = &'a WindowRing>) -> ReleaseTotals {
    let mut sum = ReleaseTotals::default();
    let mut merged: Option<Histogram<u32>> = None;
    for ring in rings {
        let t = &ring.totals;
        sum.requests += t.requests;
        sum.errors += t.errors;
        for (total, n) in sum.status_classes.iter_mut().zip(t.status_classes) {
            *total += n;
        }
        sum.upstream_failures += t.upstream_failures;
        sum.latency_sum_micros = sum.latency_sum_micros.saturating_add(t.latency_sum_micros);
        if let Some(h) = &t.latency {
            add_into(&mut merged, h);
        }
    }
    if let Some(h) = merged {
        sum.latency = h
            .iter_recorded()
            .map(|v| {
                (
                    h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6,
                    v.count_since_last_iteration(),
                )
            })
            .collect();
    }
    sum
}

/// How many shards a release's telemetry has: worker threads beyond this share them.
const SHARDS: usize = 8;

/// One release's rings, one per worker thread ([`crate::workers`]; threads that are no worker
/// share one): a request is recorded under its own thread's lock, which the other workers'
/// requests never contend for, and queries add the shards up. A shard's ring is made on its
/// first request, so the workers that serve no traffic of a release cost it nothing.
#[derive(Debug)]
pub struct Shards {
    seconds: usize,
    rings: [Mutex<Option<WindowRing>>; SHARDS],
}

impl Shards {
    /// Shards answering windows of up to `seconds` seconds.
    pub fn new(seconds: usize) -> Self {
        Shards {
            seconds,
            rings: std::array::from_fn(|_| Mutex::new(None)),
        }
    }

    /// Records one answered request in second `now`, in this thread's shard.
    pub fn record(&self, now: u64, status: u16, upstream_failure: bool, latency: Duration) {
        let shard = &self.rings[crate::workers::current() % SHARDS];
        let mut ring = shard.lock().unwrap_or_else(PoisonError::into_inner);
        ring.get_or_insert_with(|| WindowRing::new(self.seconds))
            .record(now, status, upstream_failure, latency);
    }

    /// The shards' slots of seconds `(now - window, now]` merged, as [`WindowRing::query`].
    pub fn query(&self, now: u64, window: Duration) -> WindowSnapshot {
        let capacity = Duration::from_secs(self.seconds.max(1) as u64);
        let locked = self.lock_all();
        merged_query(
            locked.iter().filter_map(|r| r.as_ref()),
            window.min(capacity),
            now,
        )
    }

    /// Everything recorded since creation, all shards added up.
    pub fn totals(&self) -> ReleaseTotals {
        let locked = self.lock_all();
        merged_totals(locked.iter().filter_map(|r| r.as_ref()))
    }

    fn lock_all(&self) -> Vec<MutexGuard<'_, Option<WindowRing>>> {
        self.rings
            .iter()
            .map(|r| r.lock().unwrap_or_else(PoisonError::into_inner))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_covers_exactly_the_trailing_seconds() {
        let mut r = WindowRing::new(60);
        r.record(10, 200, false, Duration::from_millis(1));
        r.record(11, 503, true, Duration::from_millis(100));
        r.record(12, 200, false, Duration::from_millis(2));
        let s = r.query(12, Duration::from_secs(2)).stats;
        assert_eq!(
            (
                s.requests,
                s.status_classes[1],
                s.errors(),
                s.upstream_failures
            ),
            (2, 1, 1, 1)
        );
        let s = r.query(12, Duration::from_secs(3)).stats;
        assert_eq!(s.requests, 3);
        let p50 = s.p50.unwrap_or_default();
        assert!((p50 - 0.002).abs() < 0.0001, "{p50}");
        let s = r.query(80, Duration::from_secs(60)).stats;
        assert_eq!((s.requests, s.p50), (0, None));
    }

    /// Requests recorded by two worker threads and by a thread that is no worker land in three
    /// shards, and the shards answer what one ring given every request answers.
    #[tokio::test]
    async fn shards_of_worker_threads_add_up_to_one_ring() {
        #![allow(clippy::unwrap_used)]
        let pool = crate::workers::Workers::start(2).unwrap();
        let shards = std::sync::Arc::new(Shards::new(60));
        let mut one = WindowRing::new(60);
        let requests = |worker: u64| {
            (1..=100u64).map(move |n| {
                let failed = n % 10 == 0;
                let status = if failed { 503 } else { 200 };
                (
                    6 + n % 2,
                    status,
                    failed,
                    Duration::from_micros(n * 900 + worker * 7000),
                )
            })
        };
        for (worker, handle) in (1..).zip(pool.workers().handles()) {
            let shards = shards.clone();
            let recorded = requests(worker).collect::<Vec<_>>();
            handle
                .spawn(async move {
                    for (now, status, failed, latency) in recorded {
                        shards.record(now, status, failed, latency);
                    }
                })
                .await
                .unwrap();
            for (now, status, failed, latency) in requests(worker) {
                one.record(now, status, failed, latency);
            }
        }
        for (now, status, failed, latency) in requests(0) {
            shards.record(now, status, failed, latency);
            one.record(now, status, failed, latency);
        }
        let used = shards.rings.iter().filter(|r| r.lock().unwrap().is_some());
        assert_eq!(used.count(), 3);
        for window in [1, 2, 60, 600] {
            let window = Duration::from_secs(window);
            assert_eq!(shards.query(7, window).stats, one.query(7, window).stats);
        }
        assert_eq!(shards.totals(), one.totals());
        assert_eq!(shards.totals().requests, 300);
        let empty = Shards::new(60).query(7, Duration::from_secs(90)).stats;
        assert_eq!((empty.requests, empty.window), (0, Duration::from_secs(60)));
    }

    #[test]
    fn slots_are_reused_after_a_lap() {
        let mut r = WindowRing::new(3);
        r.record(1, 200, false, Duration::from_millis(5));
        r.record(4, 404, false, Duration::from_millis(7));
        let s = r.query(4, Duration::from_secs(10)).stats;
        assert_eq!(
            (s.requests, s.status_classes[3], s.window),
            (1, 1, Duration::from_secs(3))
        );
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut r = WindowRing::new(10);
        for ms in 1..=1000u64 {
            r.record(5, 200, false, Duration::from_micros(ms * 1000));
        }
        let s = r.query(5, Duration::from_secs(1)).stats;
        let near =
            |got: Option<f64>, want: f64| (got.unwrap_or_default() - want).abs() / want < 0.01;
        assert!(
            near(s.p50, 0.5) && near(s.p95, 0.95) && near(s.p99, 0.99) && near(s.p999, 0.999),
            "{s:?}"
        );
        assert!(near(s.mean, 0.5005));
    }
}
