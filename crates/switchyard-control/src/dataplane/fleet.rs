//! The proxies as their reports show them, and their counters summed.
//!
//! Each proxy reports, per release, totals that only grow while its epoch (process) and the
//! release's incarnation (in that process) stay the same. The fleet keeps the last totals of
//! each and adds only the difference of each new report, so a report sent twice, a proxy that
//! reconnects, or one that restarts (a new epoch, counting from zero) never counts a request
//! twice. The differences also go into a ring of one-second slots, which answers windows.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use switchyard_core::dataplane::{AppListeners, ProxyReport, ReleaseCounters};
use switchyard_core::{AppName, ReleaseTotals, Version, WindowStats};
use tokio::time::Instant;

/// Seconds of per-second differences kept: the longest window the fleet answers.
pub const WINDOW_CAPACITY: Duration = Duration::from_secs(300);

/// A proxy that has not reported for this long is not waited for: it is gone, or cut off.
pub const LIVE_FOR: Duration = Duration::from_secs(10);

type ReleaseKey = (AppName, Version);

/// What the fleet knows of one proxy.
#[derive(Debug, Clone)]
pub(crate) struct ProxyState {
    pub(crate) epoch: u64,
    pub(crate) seq: u64,
    pub(crate) generation: u64,
    pub(crate) version: u64,
    pub(crate) refused: Option<(u64, String)>,
    pub(crate) listeners: BTreeMap<AppName, AppListeners>,
    pub(crate) draining: Vec<(AppName, SocketAddr)>,
    pub(crate) unhealthy: Vec<(AppName, SocketAddr)>,
    pub(crate) last_seen: Instant,
    /// The last totals of each release in this epoch.
    counters: HashMap<ReleaseKey, ReleaseCounters>,
}

impl ProxyState {
    pub(crate) fn live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_seen) < LIVE_FOR
    }
}

/// One release's traffic across the fleet.
#[derive(Debug, Default)]
struct Series {
    total: ReleaseTotals,
    /// `(second, what arrived in it)`, oldest first.
    ring: VecDeque<(u64, ReleaseTotals)>,
}

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error(
        "proxy `{proxy}` reported epoch {epoch}, older than its epoch {current}: another \
         process runs with this id since"
    )]
    StaleEpoch {
        proxy: String,
        epoch: u64,
        current: u64,
    },
}

/// Every proxy's state, and every release's traffic summed over them.
#[derive(Debug)]
pub(crate) struct Fleet {
    pub(crate) proxies: BTreeMap<String, ProxyState>,
    series: HashMap<ReleaseKey, Series>,
    started: Instant,
}

impl Fleet {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            proxies: BTreeMap::new(),
            series: HashMap::new(),
            started: now,
        }
    }

    /// The proxies that reported lately, by id.
    pub(crate) fn live(&self, now: Instant) -> impl Iterator<Item = (&String, &ProxyState)> {
        self.proxies.iter().filter(move |(_, p)| p.live(now))
    }

    /// [`Fleet::live`] without the ids.
    pub(crate) fn live_proxies(&self, now: Instant) -> impl Iterator<Item = &ProxyState> {
        self.live(now).map(|(_, p)| p)
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs()
    }

    /// Takes `report`; `Ok(true)` when it is new (not a retry of one already taken).
    ///
    /// # Errors
    /// [`ReportError::StaleEpoch`]: a process older than the one that reports under this id.
    pub(crate) fn accept(
        &mut self,
        report: &ProxyReport,
        now: Instant,
    ) -> Result<bool, ReportError> {
        let second = self.second(now);
        let state = self
            .proxies
            .entry(report.proxy.clone())
            .or_insert_with(|| ProxyState {
                epoch: report.epoch,
                seq: 0,
                generation: 0,
                version: 0,
                refused: None,
                listeners: BTreeMap::new(),
                draining: Vec::new(),
                unhealthy: Vec::new(),
                last_seen: now,
                counters: HashMap::new(),
            });
        if report.epoch < state.epoch {
            return Err(ReportError::StaleEpoch {
                proxy: report.proxy.clone(),
                epoch: report.epoch,
                current: state.epoch,
            });
        }
        if report.epoch > state.epoch {
            // A new process: its counters start from zero.
            state.epoch = report.epoch;
            state.seq = 0;
            state.counters.clear();
        } else if report.seq <= state.seq && state.seq > 0 {
            state.last_seen = now;
            return Ok(false);
        }
        state.seq = report.seq;
        state.generation = report.generation;
        state.version = report.version;
        state.refused.clone_from(&report.refused);
        state.listeners.clone_from(&report.listeners);
        state.draining.clone_from(&report.draining);
        state.unhealthy.clone_from(&report.unhealthy);
        state.last_seen = now;
        let mut seen = HashMap::with_capacity(state.counters.len());
        for (app, releases) in &report.totals {
            for (version, counters) in releases {
                let key = (app.clone(), version.clone());
                let delta = match state.counters.get(&key) {
                    Some(last) if last.incarnation == counters.incarnation => {
                        counters.totals.since(&last.totals)
                    }
                    _ => counters.totals.clone(),
                };
                if delta.requests > 0 {
                    let series = self.series.entry(key.clone()).or_default();
                    series.total.add(&delta);
                    match series.ring.back_mut() {
                        Some((s, slot)) if *s == second => slot.add(&delta),
                        _ => series.ring.push_back((second, delta)),
                    }
                    let capacity = WINDOW_CAPACITY.as_secs();
                    while series
                        .ring
                        .front()
                        .is_some_and(|(s, _)| s + capacity <= second)
                    {
                        series.ring.pop_front();
                    }
                } else {
                    self.series.entry(key.clone()).or_default();
                }
                seen.insert(key, counters.clone());
            }
        }
        // A release the proxy no longer reports starts a new incarnation if it comes back.
        state.counters = seen;
        Ok(true)
    }

    /// Everything `release` of `app` answered through every proxy.
    pub(crate) fn totals(&self, app: &str, release: &str) -> Option<ReleaseTotals> {
        self.find(app, release).map(|s| s.total.clone())
    }

    /// What arrived for `release` of `app` in the trailing `window`.
    pub(crate) fn window_totals(
        &self,
        app: &str,
        release: &str,
        window: Duration,
        now: Instant,
    ) -> Option<(Duration, ReleaseTotals)> {
        let series = self.find(app, release)?;
        let window = window.min(WINDOW_CAPACITY);
        let seconds = window.as_secs_f64().ceil() as u64;
        let now = self.second(now);
        let oldest = now.saturating_sub(seconds.saturating_sub(1));
        let mut sum = ReleaseTotals::default();
        for (_, slot) in series.ring.iter().filter(|(s, _)| *s >= oldest) {
            sum.add(slot);
        }
        Some((window, sum))
    }

    /// Every release's totals, by app and release.
    pub(crate) fn all_totals(&self) -> BTreeMap<(AppName, Version), ReleaseTotals> {
        self.series
            .iter()
            .map(|(k, s)| (k.clone(), s.total.clone()))
            .collect()
    }

    fn find(&self, app: &str, release: &str) -> Option<&Series> {
        let app = AppName::new(app).ok()?;
        let release = Version::new(release).ok()?;
        self.series.get(&(app, release))
    }

    /// Forgets the traffic of releases no proxy reported for longer than the window ring.
    pub(crate) fn sweep(&mut self, now: Instant) {
        let second = self.second(now);
        let reported: std::collections::HashSet<&ReleaseKey> = self
            .proxies
            .values()
            .flat_map(|p| p.counters.keys())
            .collect();
        let horizon = second.saturating_sub(WINDOW_CAPACITY.as_secs());
        let stale: Vec<ReleaseKey> = self
            .series
            .iter()
            .filter(|(k, s)| {
                !reported.contains(k) && s.ring.back().is_none_or(|(s, _)| *s < horizon)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            self.series.remove(&key);
        }
    }
}

/// The statistics of a window's totals.
pub(crate) fn window_stats(window: Duration, t: &ReleaseTotals) -> WindowStats {
    let q = |q: f64| t.latency_quantile(q);
    WindowStats {
        window,
        requests: t.requests,
        status_classes: t.status_classes,
        upstream_failures: t.upstream_failures,
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
        p999: q(0.999),
        mean: (t.requests > 0).then(|| t.latency_sum_micros as f64 / 1e6 / t.requests as f64),
    }
}
