//! Fakes of the ports: a runtime and a router that only record what they are asked to do, a
//! clock the test moves, metrics without data, a provider the test holds up. The store in tests
//! is the real SQLite store, in memory. Test code: a poisoned lock is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_analysis::{MeasureError, MeasureRequest, MetricProvider, Observation};
use switchyard_core::manifest::app::{SmokeTest, Webhook};
use switchyard_core::ports::{RuntimeError, WorkloadRuntime};
use switchyard_core::{
    AppName, Clock, Release, ReleaseMetrics, ReleaseTotals, Timestamp, Value, Version, WindowStats,
};

use tokio::sync::Notify;

use switchyard_core::manifest::App;

use crate::ports::{
    ExperimentRoutes, ListenerError, ListenerRegistry, RouteError, RoutePlan, SmokeTestError,
    SmokeTester, TrafficRouter, WebhookCaller, WebhookError,
};

/// Runs nothing: hands out an address per instance and records starts, scales and stops.
#[derive(Debug, Default)]
pub struct RecordingRuntime {
    running: Mutex<BTreeMap<(AppName, Version), Vec<SocketAddr>>>,
    log: Mutex<Vec<String>>,
    broken: BTreeSet<String>,
    next_port: Mutex<u16>,
}

impl RecordingRuntime {
    /// Versions in `broken` fail to start.
    pub fn broken(broken: &[&str]) -> Self {
        Self {
            broken: broken.iter().map(|v| (*v).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// The running versions, in order.
    pub fn running(&self) -> Vec<String> {
        let running = self.running.lock().unwrap();
        let versions: BTreeSet<String> = running.keys().map(|(_, v)| v.to_string()).collect();
        versions.into_iter().collect()
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn addresses(&self, n: u32) -> Vec<SocketAddr> {
        let mut next = self.next_port.lock().unwrap();
        (0..n)
            .map(|_| {
                *next += 1;
                SocketAddr::from(([127, 0, 0, 1], 20_000 + *next))
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl WorkloadRuntime for RecordingRuntime {
    async fn start(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError> {
        let version = &release.version;
        if self.broken.contains(version.as_str()) {
            return Err(RuntimeError::Spawn {
                program: format!("{}-{version}", release.app),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let key = (release.app.clone(), version.clone());
        if let Some(endpoints) = self.running.lock().unwrap().get(&key) {
            return Ok(endpoints.clone());
        }
        let endpoints = self.addresses(release.instances());
        self.log.lock().unwrap().push(format!("start {version}"));
        self.running.lock().unwrap().insert(key, endpoints.clone());
        Ok(endpoints)
    }

    async fn stop(&self, app: &AppName, version: &Version) -> Result<(), RuntimeError> {
        let key = (app.clone(), version.clone());
        if self.running.lock().unwrap().remove(&key).is_some() {
            self.log.lock().unwrap().push(format!("stop {version}"));
        }
        Ok(())
    }

    async fn scale(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError> {
        let key = (release.app.clone(), release.version.clone());
        let want = release.instances() as usize;
        let have = self.running.lock().unwrap().get(&key).map_or(0, Vec::len);
        let more = self.addresses(u32::try_from(want.saturating_sub(have)).unwrap());
        let mut running = self.running.lock().unwrap();
        let endpoints = running.entry(key).or_default();
        endpoints.extend(more);
        endpoints.truncate(want);
        self.log
            .lock()
            .unwrap()
            .push(format!("scale {} to {want}", release.version));
        Ok(endpoints.clone())
    }

    fn endpoints(&self, app: &AppName, version: &Version) -> Vec<SocketAddr> {
        let key = (app.clone(), version.clone());
        self.running
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }

    async fn shutdown(&self) {}
}

/// What an app's routes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    Plan(RoutePlan),
    Experiment(ExperimentRoutes),
}

/// Keeps every app's routes; they count as applied at once, unless held.
#[derive(Debug)]
pub struct RecordingRouter {
    served: Mutex<BTreeMap<AppName, Served>>,
    /// While true, `applied` waits: the proxies have not acknowledged yet.
    held: Arc<tokio::sync::watch::Sender<bool>>,
    /// Why routes are not in force, as a cluster's router reports it.
    not_applied: Mutex<Option<String>>,
}

impl Default for RecordingRouter {
    fn default() -> Self {
        Self {
            served: Mutex::default(),
            held: Arc::new(tokio::sync::watch::Sender::new(false)),
            not_applied: Mutex::default(),
        }
    }
}

impl RecordingRouter {
    /// Routes count as applied only after [`RecordingRouter::acknowledge`].
    pub fn hold_acknowledgements(&self) {
        self.held.send_replace(true);
    }

    /// Routes are not in force, for `why` (`None`: they are again).
    pub fn fail_to_apply(&self, why: Option<&str>) {
        *self.not_applied.lock().unwrap() = why.map(str::to_owned);
    }

    /// The proxies acknowledge every route so far and from now on.
    pub fn acknowledge(&self) {
        self.held.send_replace(false);
    }

    /// The app's backends as (release, weight), and the experiment its routes serve.
    pub fn weights(&self, app: &AppName) -> (Vec<(String, u32)>, Option<String>) {
        match self.served.lock().unwrap().get(app) {
            Some(Served::Plan(plan)) => (
                plan.targets
                    .iter()
                    .map(|t| (t.version.to_string(), t.weight))
                    .collect(),
                None,
            ),
            Some(Served::Experiment(e)) => (
                e.targets
                    .iter()
                    .map(|t| (t.version.to_string(), t.weight))
                    .collect(),
                Some(e.experiment.clone()),
            ),
            None => (Vec::new(), None),
        }
    }

    /// The app's traffic experiment routes, if that is what it serves.
    pub fn experiment(&self, app: &AppName) -> Option<ExperimentRoutes> {
        match self.served.lock().unwrap().get(app) {
            Some(Served::Experiment(e)) => Some(e.clone()),
            _ => None,
        }
    }

    fn set(&self, app: &AppName, served: Served) {
        self.served.lock().unwrap().insert(app.clone(), served);
    }
}

impl TrafficRouter for RecordingRouter {
    fn route(&self, app: &AppName, plan: RoutePlan) {
        self.set(app, Served::Plan(plan));
    }

    fn route_experiment(&self, app: &AppName, routes: ExperimentRoutes) -> Result<(), RouteError> {
        self.set(app, Served::Experiment(routes));
        Ok(())
    }

    fn preview_addr(&self, _: &AppName) -> Option<SocketAddr> {
        None
    }

    fn drained(
        &self,
        _: &AppName,
        _: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(std::future::ready(()))
    }

    fn applied(&self, _: &AppName) -> Pin<Box<dyn Future<Output = bool> + Send + 'static>> {
        let mut held = self.held.subscribe();
        Box::pin(async move { held.wait_for(|held| !held).await.is_ok() })
    }

    fn not_applied(&self, _: &AppName) -> Option<String> {
        self.not_applied.lock().unwrap().clone()
    }
}

/// Every listen address binds (nothing is bound).
#[async_trait::async_trait]
impl ListenerRegistry for RecordingRouter {
    async fn ensure(&self, _: &[App]) -> Result<Vec<AppName>, ListenerError> {
        Ok(Vec::new())
    }

    async fn release(&self, _: &[AppName]) {}
}

/// A clock that moves only when the test says.
#[derive(Debug)]
pub struct TestClock(Mutex<Timestamp>);

impl TestClock {
    pub fn at(ms: u64) -> Self {
        Self(Mutex::new(Timestamp::from_millis(ms)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now = now.plus(by);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// No traffic has been seen.
#[derive(Debug)]
pub struct NoTraffic;

impl ReleaseMetrics for NoTraffic {
    fn window(&self, _: &str, _: &str, _: Duration) -> Option<WindowStats> {
        None
    }
    fn latency_buckets(&self, _: &str, _: &str, _: Duration) -> Vec<(f64, u64)> {
        Vec::new()
    }
    fn totals(&self, _: &str, _: &str) -> Option<ReleaseTotals> {
        None
    }
}

/// A metric provider whose every measurement waits until the test opens the gate, then
/// reports `value`.
#[derive(Debug)]
pub struct GatedProvider {
    pub gate: Arc<Notify>,
    pub value: f64,
}

#[async_trait::async_trait]
impl MetricProvider for GatedProvider {
    async fn measure(&self, _: &MeasureRequest<'_>) -> Result<Observation, MeasureError> {
        self.gate.notified().await;
        Ok(Observation {
            result: Value::Number(self.value),
            baseline: None,
            samples: None,
        })
    }
}

/// Webhooks and smoke tests that always pass.
#[derive(Debug)]
pub struct AlwaysPasses;

#[async_trait::async_trait]
impl WebhookCaller for AlwaysPasses {
    async fn call(&self, _: &Webhook, _: &serde_json::Value) -> Result<(), WebhookError> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl SmokeTester for AlwaysPasses {
    async fn run(&self, _: SocketAddr, _: &[SmokeTest]) -> Result<(), SmokeTestError> {
        Ok(())
    }
}

/// The policy of tests: `sh` may run (the fake runtime runs nothing, but the controller checks
/// a release's program before it starts); calls reach loopback.
pub fn policy() -> Arc<switchyard_policy::Policy> {
    let text = "run: [sh]\nreach: [127.0.0.0/8, localhost]\n";
    Arc::new(
        switchyard_policy::Policy::parse(text, std::path::Path::new("test-policy.yaml")).unwrap(),
    )
}
