//! One app's serving state: the active routing table (swapped atomically), the instances it
//! refers to, their pooled connections, and the swap logic that drains removed instances.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ProxyConfig;
use crate::endpoint::Endpoint;
use crate::exposure::{ExperimentTap, ExposureSlot};
use crate::health;
use crate::route::Router;
use crate::table::RoutingTable;
use crate::telemetry::{ReleaseStats, Telemetry};
use crate::upstream::Upstream;

/// A routing table resolved against live instances and telemetry handles. Requests load it once
/// and keep it until they finish, so a swap never changes a request's release midway.
#[derive(Debug)]
pub struct ActiveTable {
    pub router: Router,
    pub releases: Vec<ActiveRelease>,
    /// The experiment whose exposures this table's sticky requests report.
    pub experiment: Option<ExperimentTap>,
}

#[derive(Debug)]
pub struct ActiveRelease {
    pub name: String,
    pub endpoints: Vec<Arc<Endpoint>>,
    pub stats: Arc<ReleaseStats>,
}

#[derive(Debug, Default)]
struct Instances {
    live: HashMap<SocketAddr, Arc<Endpoint>>,
    draining: HashMap<SocketAddr, Arc<Endpoint>>,
}

/// Everything the request path of one app needs.
#[derive(Debug)]
pub struct AppState {
    pub app: String,
    pub config: ProxyConfig,
    pub telemetry: Arc<Telemetry>,
    pub active: ArcSwap<ActiveTable>,
    /// The client to the instances; replaced when the app's upstream TLS changes.
    pub upstream: ArcSwap<Upstream>,
    /// Where exposures go; shared by the apps of one listener.
    pub exposures: Arc<ExposureSlot>,
    instances: Mutex<Instances>,
    /// Bumped on every swap so health checkers pick up a changed configuration.
    pub table_changed: watch::Sender<u64>,
    /// Background work (health checks, drains, tunnels, mirrors) and its stop signals.
    pub tasks: TaskTracker,
    /// Stops health checks and drains: the app is shutting down.
    pub stop: CancellationToken,
    /// Cuts upgraded tunnels and mirrors: the grace period is over.
    pub force: CancellationToken,
}

impl AppState {
    pub fn new(
        app: &str,
        config: ProxyConfig,
        telemetry: Arc<Telemetry>,
        exposures: Arc<ExposureSlot>,
    ) -> Arc<Self> {
        let upstream = ArcSwap::from_pointee(Upstream::new(&config));
        let empty = ActiveTable {
            router: Router::new(RoutingTable::default()),
            releases: Vec::new(),
            experiment: None,
        };
        Arc::new(AppState {
            app: app.to_owned(),
            config,
            telemetry,
            active: ArcSwap::from_pointee(empty),
            upstream,
            exposures,
            instances: Mutex::default(),
            table_changed: watch::Sender::new(0),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
            force: CancellationToken::new(),
        })
    }

    /// Swaps in `table` with `experiment`; instances no longer listed drain in the background.
    pub fn set_routes(self: &Arc<Self>, table: RoutingTable, experiment: Option<ExperimentTap>) {
        let mut instances = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut wanted: HashMap<SocketAddr, Arc<Endpoint>> = HashMap::new();
        let releases = table
            .backends
            .iter()
            .map(|b| ActiveRelease {
                name: b.release.clone(),
                endpoints: b
                    .endpoints
                    .iter()
                    .map(|a| self.instance(&mut instances, &mut wanted, *a))
                    .collect(),
                stats: self.telemetry.release(&self.app, &b.release),
            })
            .collect();
        let removed: Vec<_> = instances
            .live
            .keys()
            .filter(|a| !wanted.contains_key(a))
            .copied()
            .collect();
        let removed: Vec<_> = removed
            .into_iter()
            .filter_map(|a| self.instances_remove(&mut instances, a))
            .collect();
        instances.live = wanted;
        let active = ActiveTable {
            router: Router::new(table),
            releases,
            experiment,
        };
        let previous = Arc::downgrade(&self.active.swap(Arc::new(active)));
        for e in removed {
            self.spawn_drain(e, previous.clone());
        }
        drop(instances);
        self.table_changed.send_modify(|g| *g += 1);
    }

    fn instance(
        self: &Arc<Self>,
        instances: &mut Instances,
        wanted: &mut HashMap<SocketAddr, Arc<Endpoint>>,
        addr: SocketAddr,
    ) -> Arc<Endpoint> {
        if let Some(e) = wanted.get(&addr) {
            return e.clone();
        }
        let e = match instances
            .live
            .get(&addr)
            .or_else(|| instances.draining.get(&addr))
        {
            Some(e) => e.clone(),
            None => {
                let e = Arc::new(Endpoint::new(addr));
                self.telemetry
                    .set_endpoint_healthy(&self.app, &e.label, true);
                health::spawn(self, e.clone());
                e
            }
        };
        // Re-listed while draining: it serves again and its drain no longer applies.
        instances.draining.remove(&addr);
        wanted.insert(addr, e.clone());
        e
    }

    fn instances_remove(
        &self,
        instances: &mut Instances,
        addr: SocketAddr,
    ) -> Option<Arc<Endpoint>> {
        let e = instances.live.get(&addr).cloned()?;
        instances.draining.insert(addr, e.clone());
        Some(e)
    }

    /// Waits until no request can still reach the removed instance, or the drain deadline
    /// passes, then cuts what is left. "No request" means: every request that loaded the
    /// previous table has finished routing (its `Arc` is gone) and the instance has nothing in
    /// flight; the first closes the gap between loading a table and picking an instance.
    /// Polling, because both conditions are plain reference counts.
    fn spawn_drain(self: &Arc<Self>, endpoint: Arc<Endpoint>, previous: Weak<ActiveTable>) {
        let app = self.clone();
        let deadline = Instant::now() + self.config.drain_timeout;
        self.tasks.spawn(async move {
            let busy = || previous.strong_count() > 0 || endpoint.in_flight() > 0;
            while busy() && Instant::now() < deadline && !app.stop.is_cancelled() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let mut instances = app.instances.lock().unwrap_or_else(PoisonError::into_inner);
            let still_removed = instances
                .draining
                .get(&endpoint.addr)
                .is_some_and(|e| Arc::ptr_eq(e, &endpoint));
            if still_removed {
                instances.draining.remove(&endpoint.addr);
                endpoint.cut();
                app.telemetry.remove_endpoint(&app.app, &endpoint.label);
            }
        });
    }

    /// Endpoints removed from the table whose requests are still finishing.
    pub fn draining(&self) -> Vec<SocketAddr> {
        let instances = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        instances.draining.keys().copied().collect()
    }

    /// Endpoints of the table that requests currently avoid (failed checks or ejected).
    pub fn unhealthy(&self) -> Vec<SocketAddr> {
        let now = Instant::now();
        let instances = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        instances
            .live
            .values()
            .filter(|e| !e.available(now))
            .map(|e| e.addr)
            .collect()
    }

    /// Resolves when `addr` is neither serving nor draining.
    pub async fn drained(&self, addr: SocketAddr) {
        let draining = {
            let instances = self
                .instances
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            instances.draining.get(&addr).cloned()
        };
        if let Some(e) = draining {
            e.removed.cancelled().await;
        }
    }

    /// Passive health: a success resets the failure streak, a failure may eject the instance.
    pub fn observe(&self, endpoint: &Endpoint, ok: bool) {
        if ok {
            endpoint.on_success();
            return;
        }
        let c = &self.config;
        if endpoint.on_failure(
            Instant::now(),
            c.eject_consecutive_failures,
            c.eject_duration,
        ) {
            tracing::warn!(app = %self.app, endpoint = %endpoint.label, "ejecting instance after consecutive failures");
            self.telemetry.count_ejection(&self.app, &endpoint.label);
        }
    }

    /// Stops background work of this app (health checks, drains).
    pub fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
    }
}
