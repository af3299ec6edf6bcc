//! [`DataPlane`]: the control plane's side of the table protocol.
//!
//! It keeps every app's routing table ([`AppTable`]) under one version that grows with each
//! change, and serves proxies what changed since the version they have
//! ([`DataPlane::wait_update`]: a delta, or a snapshot when they are too far behind or were fed
//! by an earlier start of the control plane). Proxies report back ([`DataPlane::report`]) what
//! they serve, the version they applied, what is still draining, and monotonic counters that the
//! fleet sums into the per-release traffic the judge reads ([`ReleaseMetrics`]).
//!
//! It is the adapter behind the ports the application layer routes through
//! ([`TrafficRouter`], [`ListenerRegistry`]). A change is in force once every live proxy
//! acknowledged its version: [`DataPlane::acknowledged`] waits for that, and `drained` waits
//! for it and then for the endpoint's requests to finish on every proxy, so an instance is
//! only stopped when no proxy can send it a request.
//!
//! Until [`DataPlane::open`] (the daemon calls it once releases, rollouts and experiments are
//! restored), proxies are sent nothing and keep serving what they have: a control plane that
//! restarts never hands them the half-built tables of its recovery.

mod fleet;
mod propagation;
mod tables;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use switchyard_core::dataplane::{
    AppListeners, ListenerState, ProxyReport, ProxyStatus, TableProblem, TableUpdate,
};
use switchyard_core::manifest::App;
use switchyard_core::{AppName, ReleaseMetrics, ReleaseTotals, WindowStats};
use tokio::sync::watch;
use tokio::time::Instant;

pub use fleet::{LIVE_FOR, ReportError, WINDOW_CAPACITY};

use crate::ports::{
    ExperimentRoutes, ListenerError, ListenerRegistry, RouteError, RoutePlan, TrafficRouter,
};
use crate::traffic_experiments::{ExposureRelay, RequestExposure};
use fleet::Fleet;
use tables::{ListenSpec, Routing, Tables};

/// How long an apply waits for the live proxies to bind the apps it changes; a proxy slower
/// than that does not fail the apply (its listeners show in `switchyard proxies`).
pub const BIND_WAIT: Duration = Duration::from_secs(10);

/// How long `drained` waits for an endpoint, acknowledgement and requests included, before
/// it gives up and lets the instance stop.
pub const DRAIN_WAIT: Duration = Duration::from_secs(30);

/// After the tables open, how long acknowledgements wait at least: proxies that served an
/// earlier start of the control plane report within a second or two (they report every
/// second and reconnect within one), and until they did, this control plane does not know
/// them.
pub const SETTLE: Duration = Duration::from_secs(3);

/// The tables, the fleet, and the signal that wakes whoever waits on either. Cheap to clone:
/// clones share everything.
#[derive(Clone)]
pub struct DataPlane {
    inner: Arc<Inner>,
}

struct Inner {
    generation: u64,
    state: Mutex<State>,
    /// Bumped on every table change and every report.
    changed: watch::Sender<u64>,
    relay: Mutex<Option<Arc<ExposureRelay>>>,
}

struct State {
    open: bool,
    propagation: propagation::Propagation,
    /// When the tables opened: proxies that served an earlier start report within
    /// [`SETTLE`] of it, and are waited for only once they did.
    opened_at: Option<Instant>,
    /// The control plane stops: waiting table requests end now.
    closed: bool,
    /// Proxies that must serve the current tables before the control plane is ready (the
    /// local proxy of `switchyard serve`).
    expected: Vec<String>,
    tables: Tables,
    fleet: Fleet,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("generation", &self.inner.generation)
            .finish_non_exhaustive()
    }
}

impl DataPlane {
    /// A data plane of control-plane generation `generation` (pick a new one at every start:
    /// the proxies' versions of an earlier start are then replaced by a snapshot).
    pub fn new(generation: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                generation,
                state: Mutex::new(State {
                    open: false,
                    propagation: propagation::Propagation::default(),
                    opened_at: None,
                    closed: false,
                    expected: Vec::new(),
                    tables: Tables::default(),
                    fleet: Fleet::new(Instant::now()),
                }),
                changed: watch::Sender::new(0),
                relay: Mutex::new(None),
            }),
        }
    }

    pub fn generation(&self) -> u64 {
        self.inner.generation
    }

    /// Starts sending tables to proxies; before, they keep what they serve.
    pub fn open(&self) {
        {
            let mut state = self.inner.lock();
            state.open = true;
            state.opened_at = Some(Instant::now());
        }
        self.inner.notify();
    }

    /// Waits up to `wait` until proxy `id` reported that it serves the current version;
    /// `true` when it did.
    pub async fn caught_up(&self, id: &str, wait: Duration) -> bool {
        let generation = self.inner.generation;
        self.inner
            .until(wait, |state, _| {
                state.fleet.proxies.get(id).is_some_and(|p| {
                    p.generation == generation && p.version >= state.tables.version
                })
            })
            .await
    }

    /// `Ok` once the tables are open and every live proxy serves the current version; why not
    /// otherwise.
    ///
    /// # Errors
    /// What is not ready yet, in words.
    pub fn ready(&self) -> Result<(), String> {
        let now = Instant::now();
        let state = self.inner.lock();
        if !state.open {
            return Err("restoring releases, rollouts and experiments".into());
        }
        let version = state.tables.version;
        if let Some(id) = state
            .expected
            .iter()
            .find(|id| !state.fleet.proxies.get(*id).is_some_and(|p| p.live(now)))
        {
            return Err(format!("proxy `{id}` has not reported yet"));
        }
        match state.fleet.proxies.iter().find(|(_, p)| {
            p.live(now) && (p.generation != self.inner.generation || p.version < version)
        }) {
            Some((id, _)) => Err(format!(
                "proxy `{id}` has not applied table version {version} yet"
            )),
            None => Ok(()),
        }
    }

    /// Makes proxy `id` part of readiness: [`DataPlane::ready`] waits for it to serve the
    /// current tables.
    pub fn expect(&self, id: &str) {
        self.inner.lock().expected.push(id.to_owned());
    }

    /// Ends every waiting table request (the control plane stops; proxies keep serving).
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.notify();
    }

    /// Sends the exposures proxies report to `relay`.
    pub fn relay_exposures(&self, relay: Arc<ExposureRelay>) {
        *self
            .inner
            .relay
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(relay);
    }

    /// The current table version.
    pub fn version(&self) -> u64 {
        self.inner.lock().tables.version
    }

    /// What a proxy serving `(generation, version)` needs; `None` when it is current or the
    /// data plane is not open yet.
    pub fn update_since(&self, generation: u64, version: u64) -> Option<TableUpdate> {
        let state = self.inner.lock();
        if !state.open {
            return None;
        }
        state
            .tables
            .update_since(self.inner.generation, generation, version)
    }

    /// [`DataPlane::update_since`], waiting up to `wait` for there to be one.
    pub async fn wait_update(
        &self,
        generation: u64,
        version: u64,
        wait: Duration,
    ) -> Option<TableUpdate> {
        let mut changed = self.inner.changed.subscribe();
        let deadline = Instant::now() + wait;
        loop {
            if let Some(update) = self.update_since(generation, version) {
                return Some(update);
            }
            if self.inner.lock().closed {
                return None;
            }
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// Takes a proxy's report: its state, its counters (summed across proxies), its
    /// experiments' exposures (passed to the relay).
    ///
    /// # Errors
    /// [`ReportError::StaleEpoch`] when a newer process reports under the same id.
    pub fn report(&self, report: ProxyReport) -> Result<(), ReportError> {
        let now = Instant::now();
        let fresh = {
            let mut state = self.inner.lock();
            let fresh = state.fleet.accept(&report, now)?;
            state.fleet.sweep(now);
            let generation = self.inner.generation;
            let served = state
                .fleet
                .live_proxies(now)
                .map(|p| {
                    if p.generation == generation {
                        p.version
                    } else {
                        0
                    }
                })
                .min();
            if let Some(version) = served {
                state.propagation.reached(version, now);
            }
            fresh
        };
        if fresh && report.exposures_dropped > 0 {
            tracing::warn!(proxy = %report.proxy, dropped = report.exposures_dropped,
                "the proxy dropped experiment exposures (its queue was full)");
        }
        let relay = self
            .inner
            .relay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let (true, Some(relay)) = (fresh, relay) {
            for e in report.exposures {
                relay.record(RequestExposure {
                    experiment: e.experiment.into(),
                    unit: e.unit,
                    release: e.release,
                    status: e.status,
                    latency: Duration::from_secs_f64(e.latency_ms.max(0.0) / 1000.0),
                });
            }
        }
        self.inner.notify();
        Ok(())
    }

    /// Every proxy that ever reported to this control plane.
    pub fn proxies(&self) -> Vec<ProxyStatus> {
        let now = Instant::now();
        let state = self.inner.lock();
        let version = state.tables.version;
        state
            .fleet
            .proxies
            .iter()
            .map(|(id, p)| {
                let ours = p.generation == self.inner.generation;
                ProxyStatus {
                    id: id.clone(),
                    epoch: p.epoch,
                    live: p.live(now),
                    last_report_ms: u64::try_from(
                        now.saturating_duration_since(p.last_seen).as_millis(),
                    )
                    .unwrap_or(u64::MAX),
                    version: ours.then_some(p.version),
                    current: ours && p.version >= version,
                    refused: p.refused.clone(),
                    listeners: p.listeners.clone(),
                    draining: p.draining.len(),
                }
            })
            .collect()
    }

    /// The traffic every proxy reported, summed, in the OpenMetrics text format: requests by
    /// status class, upstream failures, and the live proxies. (Each proxy also serves its own
    /// metrics in full on `switchyard proxy --metrics-listen`.)
    pub fn encode_openmetrics(&self) -> String {
        let now = Instant::now();
        let (totals, live, known, propagation) = {
            let state = self.inner.lock();
            let live = state.fleet.live(now).count();
            (
                state.fleet.all_totals(),
                live,
                state.fleet.proxies.len(),
                state.propagation.summary(),
            )
        };
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "# HELP switchyard_proxy_requests Requests answered through every proxy, by status class.
# TYPE switchyard_proxy_requests counter"
        );
        for ((app, release), t) in &totals {
            for (class, n) in ["1xx", "2xx", "3xx", "4xx", "5xx"]
                .iter()
                .zip(t.status_classes)
            {
                let _ = writeln!(
                    out,
                    "switchyard_proxy_requests_total{{app=\"{app}\",release=\"{release}\",status_class=\"{class}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_proxy_upstream_failures Requests the proxies answered because no upstream did.
# TYPE switchyard_proxy_upstream_failures counter"
        );
        for ((app, release), t) in &totals {
            let _ = writeln!(
                out,
                "switchyard_proxy_upstream_failures_total{{app=\"{app}\",release=\"{release}\"}} {}",
                t.upstream_failures
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_proxies Proxies that reported to this control plane, by whether they are live.
# TYPE switchyard_proxies gauge
switchyard_proxies{{state=\"live\"}} {live}
switchyard_proxies{{state=\"gone\"}} {}
# EOF",
            known - live
        );
        // Before `# EOF`, which the line above ends with.
        if let Some((p50, p99, count, sum)) = propagation {
            out.truncate(out.len() - "# EOF\n".len());
            let _ = writeln!(
                out,
                "# HELP switchyard_dataplane_propagation_seconds From a table change to the report of the last live proxy serving it (recent changes).\n# TYPE switchyard_dataplane_propagation_seconds summary\nswitchyard_dataplane_propagation_seconds{{quantile=\"0.5\"}} {}\nswitchyard_dataplane_propagation_seconds{{quantile=\"0.99\"}} {}\nswitchyard_dataplane_propagation_seconds_count {count}\nswitchyard_dataplane_propagation_seconds_sum {}\n# EOF",
                p50.as_secs_f64(),
                p99.as_secs_f64(),
                sum.as_secs_f64()
            );
        }
        out
    }

    /// How far `app`'s last route change got: `(live proxies that serve it, live proxies)`.
    pub fn app_applied(&self, app: &AppName) -> (usize, usize) {
        let now = Instant::now();
        let state = self.inner.lock();
        let version = state.tables.changed_at.get(app).copied().unwrap_or(0);
        let live: Vec<_> = state.fleet.live_proxies(now).collect();
        let applied = live
            .iter()
            .filter(|p| p.generation == self.inner.generation && p.version >= version)
            .count();
        (applied, live.len())
    }

    /// The endpoints of `app` that some live proxy avoids (failed checks or ejected), or
    /// `None` when no live proxy serves the app (a cluster routes it).
    pub fn unhealthy_endpoints(&self, app: &AppName) -> Option<BTreeSet<SocketAddr>> {
        let now = Instant::now();
        let state = self.inner.lock();
        let mut serving = false;
        let mut out = BTreeSet::new();
        for p in state.fleet.live_proxies(now) {
            if p.listeners.contains_key(app) {
                serving = true;
                out.extend(
                    p.unhealthy
                        .iter()
                        .filter(|(a, _)| a == app)
                        .map(|(_, e)| *e),
                );
            }
        }
        serving.then_some(out)
    }

    /// The address `app`'s main listener is bound to, as the first live proxy reports it.
    pub fn app_addr(&self, app: &AppName) -> Option<SocketAddr> {
        self.bound(app, |l| Some(&l.main))
    }

    fn bound(
        &self,
        app: &AppName,
        which: impl Fn(&AppListeners) -> Option<&ListenerState>,
    ) -> Option<SocketAddr> {
        let now = Instant::now();
        let state = self.inner.lock();
        state
            .fleet
            .live_proxies(now)
            .filter_map(|p| p.listeners.get(app))
            .find_map(|l| match which(l) {
                Some(ListenerState::Bound(addr)) => Some(*addr),
                _ => None,
            })
    }

    /// Resolves once every live proxy serves `version` (or a later one), or after `wait`;
    /// `true` in the first case.
    pub async fn acknowledged(&self, version: u64, wait: Duration) -> bool {
        self.inner
            .until(wait, |state, now| {
                settled(state, now)
                    && state
                        .fleet
                        .live_proxies(now)
                        .all(|p| p.generation == self.inner.generation && p.version >= version)
            })
            .await
    }

    /// The problem of a live proxy with `app`'s listeners at or after `version`, if any.
    fn listener_problem(&self, app: &AppName, version: u64) -> Option<(String, String)> {
        let now = Instant::now();
        let state = self.inner.lock();
        state
            .fleet
            .live(now)
            .filter(|(_, p)| p.generation == self.inner.generation && p.version >= version)
            .find_map(|(id, p)| {
                let l = p.listeners.get(app)?;
                std::iter::once(&l.main)
                    .chain(l.preview.as_ref())
                    .find_map(|s| match s {
                        ListenerState::Failed(why) => Some(why.clone()),
                        ListenerState::Bound(_) => None,
                    })
                    .or_else(|| l.tls_problem.clone())
                    .map(|why| (id.clone(), why))
            })
    }

    fn change(
        &self,
        app: &AppName,
        change: impl FnOnce(&mut tables::AppEntry),
    ) -> Result<Option<u64>, TableProblem> {
        let changed = {
            let mut state = self.inner.lock();
            let changed = state.tables.change(app, change);
            if let Ok(Some(version)) = changed {
                state.propagation.published(version, Instant::now());
            }
            changed
        };
        if let Ok(Some(_)) = changed {
            self.inner.notify();
        }
        changed
    }

    fn totals_in(
        &self,
        app: &str,
        release: &str,
        window: Duration,
    ) -> Option<(Duration, ReleaseTotals)> {
        self.inner
            .lock()
            .fleet
            .window_totals(app, release, window, Instant::now())
    }
}

/// Whether proxies of an earlier start had the time to report (see [`SETTLE`]).
fn settled(state: &State, now: Instant) -> bool {
    state
        .opened_at
        .is_some_and(|at| now.saturating_duration_since(at) >= SETTLE)
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change under this lock is one assignment or one `Tables::change`, which
        // validates before it writes: a panic cannot leave half a change.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits up to `wait` for `done` to hold, checking it after every change.
    async fn until(&self, wait: Duration, done: impl Fn(&State, Instant) -> bool) -> bool {
        let mut changed = self.changed.subscribe();
        let deadline = Instant::now() + wait;
        loop {
            if done(&self.lock(), Instant::now()) {
                return true;
            }
            tokio::select! {
                _ = changed.changed() => {}
                // Proxies also stop being live with time, without any report.
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }
}

impl TrafficRouter for DataPlane {
    fn route(&self, app: &AppName, plan: RoutePlan) {
        if let Err(problem) = self.change(app, |e| e.routing = Routing::Plan(plan)) {
            // The controller builds plans from releases it checked: this is a bug, and the
            // proxies keep the previous routes.
            tracing::error!(%app, %problem, "routes not applied: the table would not serve");
        }
    }

    fn route_experiment(&self, app: &AppName, routes: ExperimentRoutes) -> Result<(), RouteError> {
        let has_listener = self
            .inner
            .lock()
            .tables
            .entries
            .get(app)
            .is_some_and(|e| e.spec.is_some());
        if !has_listener {
            return Err(RouteError::NoListener(app.clone()));
        }
        self.change(app, |e| e.routing = Routing::Experiment(routes))
            .map(drop)
            .map_err(|problem| RouteError::Invalid {
                app: app.clone(),
                source: Box::new(problem),
            })
    }

    fn preview_addr(&self, app: &AppName) -> Option<SocketAddr> {
        self.bound(app, |l| l.preview.as_ref())
    }

    fn applied(&self, app: &AppName) -> Pin<Box<dyn Future<Output = bool> + Send + 'static>> {
        let version = self
            .inner
            .lock()
            .tables
            .changed_at
            .get(app)
            .copied()
            .unwrap_or(0);
        let plane = self.clone();
        Box::pin(async move { plane.acknowledged(version, BIND_WAIT).await })
    }

    fn drained(
        &self,
        app: &AppName,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let version = self.version();
        let inner = Arc::clone(&self.inner);
        let app = app.clone();
        Box::pin(async move {
            let generation = inner.generation;
            let done = inner
                .until(DRAIN_WAIT, |state, now| {
                    settled(state, now)
                        && state.fleet.live_proxies(now).all(|p| {
                            p.generation == generation
                                && p.version >= version
                                && !p.draining.iter().any(|(a, e)| a == &app && *e == endpoint)
                        })
                })
                .await;
            if !done {
                tracing::warn!(%app, %endpoint, wait = ?DRAIN_WAIT,
                    "a proxy did not confirm the endpoint drained in time; stopping it anyway");
            }
        })
    }
}

#[async_trait::async_trait]
impl ListenerRegistry for DataPlane {
    async fn ensure(&self, apps: &[App]) -> Result<Vec<AppName>, ListenerError> {
        let mut newly = Vec::new();
        let mut before = Vec::new();
        let mut version = None;
        for app in apps {
            let name = &app.metadata.name;
            let Some(spec) = ListenSpec::of(app) else {
                continue;
            };
            let previous = self
                .inner
                .lock()
                .tables
                .entries
                .get(name)
                .and_then(|e| e.spec.clone());
            if previous.as_ref().is_some_and(|p| p.listen == spec.listen) {
                // Same address: the listener stays; its settings may change.
            } else {
                newly.push(name.clone());
            }
            let wanted = spec.listen;
            match self.change(name, |e| e.spec = Some(spec)) {
                Ok(v) => version = v.or(version),
                Err(problem) => {
                    self.restore(before);
                    return Err(ListenerError {
                        app: name.clone(),
                        address: wanted,
                        source: std::io::Error::other(problem),
                    });
                }
            }
            before.push((name.clone(), previous, wanted));
        }
        let Some(version) = version else {
            return Ok(newly);
        };
        if !self.inner.lock().open {
            return Ok(newly);
        }
        if !self.acknowledged(version, BIND_WAIT).await {
            tracing::warn!(version, wait = ?BIND_WAIT,
                "a live proxy did not acknowledge the new listeners in time");
        }
        for (app, _, address) in &before {
            if let Some((proxy, why)) = self.listener_problem(app, version) {
                self.restore(before.clone());
                return Err(ListenerError {
                    app: app.clone(),
                    address: *address,
                    source: std::io::Error::other(format!("on proxy `{proxy}`: {why}")),
                });
            }
        }
        Ok(newly)
    }

    async fn release(&self, apps: &[AppName]) {
        for app in apps {
            // Removing a listener always yields a valid table (none).
            let _ = self.change(app, |e| e.spec = None);
        }
    }
}

impl DataPlane {
    /// Puts back the listeners an `ensure` changed.
    fn restore(&self, before: Vec<(AppName, Option<ListenSpec>, SocketAddr)>) {
        for (app, previous, _) in before.into_iter().rev() {
            let _ = self.change(&app, |e| e.spec = previous);
        }
    }
}

impl ReleaseMetrics for DataPlane {
    fn window(&self, app: &str, release: &str, window: Duration) -> Option<WindowStats> {
        let (window, totals) = self.totals_in(app, release, window)?;
        Some(fleet::window_stats(window, &totals))
    }

    fn latency_buckets(&self, app: &str, release: &str, window: Duration) -> Vec<(f64, u64)> {
        self.totals_in(app, release, window)
            .map(|(_, t)| t.latency)
            .unwrap_or_default()
    }

    fn totals(&self, app: &str, release: &str) -> Option<ReleaseTotals> {
        self.inner.lock().fleet.totals(app, release)
    }

    fn complete_until(&self) -> Option<std::time::Instant> {
        let now = Instant::now();
        let state = self.inner.lock();
        state
            .fleet
            .live_proxies(now)
            .map(|p| p.last_seen.into_std())
            .min()
    }
}
