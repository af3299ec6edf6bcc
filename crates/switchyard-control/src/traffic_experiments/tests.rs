//! The reconciler over a real store and experiment service, with a runtime and a router that
//! only record what they are asked to do.

use std::path::Path;

use switchyard_core::manifest::app::Stickiness;
use switchyard_core::manifest::load_str;
use switchyard_core::ports::{Author, StateStore};
use switchyard_core::{AppName, SystemClock, Timestamp, Version};
use switchyard_experiments::port::{ExperimentStatus, ExperimentStore};
use switchyard_rollout::resolve::resolve;
use switchyard_store::SqliteStore;

use super::*;
use crate::testing::{RecordingRouter, RecordingRuntime};

const APP: &str = "apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  listen: 127.0.0.1:0
  runtime: {process: {command: [shop, --version, '{version}']}}
  healthCheck: {path: /health}
  strategy: {canary: {steps: [{setWeight: 50}]}}
";

fn experiment(v2: &str) -> String {
    format!(
        "apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {{name: shop-ab}}
spec:
  split: {{traffic: {{app: shop, unit: {{header: x-user-id}}}}}}
  variants:
    - {{name: control, weight: 50, version: v1}}
    - {{name: treatment, weight: 50, version: {v2}}}
  metrics:
    - {{name: bought, conversion: {{event: purchase}}}}
"
    )
}

fn shop() -> AppName {
    AppName::new("shop").unwrap()
}

fn version(v: &str) -> Version {
    Version::new(v).unwrap()
}

struct World {
    store: SqliteStore,
    runtime: Arc<RecordingRuntime>,
    router: Arc<RecordingRouter>,
    experiments: Arc<ExperimentService>,
    traffic: TrafficExperiments,
}

/// App `shop` applied with `v1` deployed as its stable release (as the controller does it).
async fn world(broken: &[&str]) -> World {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let set = load_str(APP, Path::new("shop.yaml")).unwrap();
    store
        .apply(&set, &Author::system("test"), Timestamp::from_millis(1))
        .await
        .unwrap();
    let runtime = Arc::new(RecordingRuntime::broken(broken));
    let router = Arc::new(RecordingRouter::default());
    let v1 = resolve(
        &set.apps[0],
        &DeployRequest {
            version: Some(version("v1")),
            ..DeployRequest::default()
        },
    )
    .unwrap();
    let endpoints = runtime.start(&v1).await.unwrap();
    store.set_stable(&shop(), &v1, &[]).await.unwrap();
    let experiment_store: Arc<dyn ExperimentStore> = Arc::new(store.clone());
    let experiments = Arc::new(
        ExperimentService::load(experiment_store, Arc::new(SystemClock), false)
            .await
            .unwrap(),
    );
    let owner = Arc::new(TrafficOwner::new(router.clone(), experiments.clone()));
    owner
        .lock(&shop())
        .await
        .route(RoutePlan::single(version("v1"), endpoints));
    let traffic = TrafficExperiments::new(
        Arc::clone(&experiments),
        Arc::new(store.clone()),
        runtime.clone(),
        owner,
        Arc::new(SystemClock),
    );
    World {
        store,
        runtime,
        router,
        experiments,
        traffic,
    }
}

impl World {
    async fn apply(&self, text: &str) {
        let set = load_str(text, Path::new("e.yaml")).unwrap();
        self.store
            .apply(&set, &Author::system("test"), Timestamp::from_millis(2))
            .await
            .unwrap();
        self.experiments.refresh().await.unwrap();
    }

    /// The app's backends as (release, weight), and the experiment its routes serve.
    fn routes(&self) -> (Vec<(String, u32)>, Option<String>) {
        self.router.weights(&shop())
    }
}

#[tokio::test]
async fn a_running_experiment_splits_the_app_and_a_stop_restores_the_stable_release() {
    let mut w = world(&[]).await;
    w.apply(&experiment("v2")).await;
    w.traffic.reconcile().await.unwrap();

    assert_eq!(w.runtime.running(), ["v1", "v2"]);
    let routes = w.router.experiment(&shop()).unwrap();
    assert_eq!(routes.unit, Stickiness::Header("x-user-id".into()));
    assert_eq!(
        w.routes(),
        (
            vec![("v1".into(), 50), ("v2".into(), 50)],
            Some("shop-ab".into())
        )
    );
    assert_eq!(
        w.traffic.placed()[&shop()].unit,
        Stickiness::Header("x-user-id".into())
    );

    // Nothing changed: nothing happens.
    w.traffic.reconcile().await.unwrap();
    assert_eq!(w.runtime.log(), ["start v1", "start v2"]);

    w.experiments
        .stop("shop-ab", "done", &Author::system("test"))
        .await
        .unwrap();
    w.traffic.reconcile().await.unwrap();
    assert_eq!(w.routes(), (vec![("v1".into(), 100)], None));
    assert_eq!(w.runtime.running(), ["v1"]);
    assert_eq!(w.runtime.log(), ["start v1", "start v2", "stop v2"]);
    assert!(w.traffic.placed().is_empty());
}

#[tokio::test]
async fn a_new_version_of_a_variant_replaces_the_old_release() {
    let mut w = world(&[]).await;
    w.apply(&experiment("v2")).await;
    w.traffic.reconcile().await.unwrap();
    w.apply(&experiment("v3")).await;
    w.traffic.reconcile().await.unwrap();
    assert_eq!(
        w.routes(),
        (
            vec![("v1".into(), 50), ("v3".into(), 50)],
            Some("shop-ab".into())
        )
    );
    assert_eq!(w.runtime.running(), ["v1", "v3"]);
}

#[tokio::test]
async fn a_variant_that_cannot_run_stops_the_experiment_and_leaves_the_stable_routes() {
    let mut w = world(&["v2"]).await;
    w.apply(&experiment("v2")).await;
    w.traffic.reconcile().await.unwrap();

    let record = w.experiments.record("shop-ab").unwrap();
    let ExperimentStatus::Stopped { reason, actor, .. } = record.status else {
        panic!("still running: {record:?}");
    };
    assert_eq!(actor, ACTOR);
    assert!(
        reason.contains("variant `treatment` (shop v2) cannot run"),
        "{reason}"
    );
    assert_eq!(w.routes(), (vec![("v1".into(), 100)], None));
    assert_eq!(w.runtime.running(), ["v1"]);
    w.traffic.reconcile().await.unwrap();
    assert!(w.traffic.placed().is_empty());
}

#[tokio::test]
async fn a_restore_leaves_a_rollout_that_started_after_the_stop_alone() {
    let mut w = world(&[]).await;
    w.apply(&experiment("v2")).await;
    w.traffic.reconcile().await.unwrap();
    w.experiments
        .stop("shop-ab", "ship v2", &Author::system("test"))
        .await
        .unwrap();
    // `deploy shop --version v2` came first: the controller owns the routes and v2.
    w.store
        .create_rollout(
            &shop(),
            &version("v2"),
            "Pending",
            &serde_json::json!({}),
            &[],
        )
        .await
        .unwrap();
    w.traffic.reconcile().await.unwrap();
    assert_eq!(w.runtime.running(), ["v1", "v2"]);
    assert!(w.traffic.placed().is_empty());
}

#[tokio::test]
async fn an_experiment_of_an_app_with_a_rollout_in_progress_stops_without_routing() {
    let mut w = world(&[]).await;
    w.store
        .create_rollout(
            &shop(),
            &version("v3"),
            "Pending",
            &serde_json::json!({}),
            &[],
        )
        .await
        .unwrap();
    w.apply(&experiment("v2")).await;
    w.traffic.reconcile().await.unwrap();
    let record = w.experiments.record("shop-ab").unwrap();
    assert!(
        matches!(&record.status, ExperimentStatus::Stopped { reason, .. } if reason.contains("rollout in progress")),
        "{record:?}"
    );
    assert_eq!(w.routes(), (vec![("v1".into(), 100)], None));
    assert_eq!(w.runtime.log(), ["start v1"]);
}
