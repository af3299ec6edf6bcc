//! The state store on both backends: SQLite against real database files in temporary
//! directories, PostgreSQL against a real server (each test in a database of its own). Every
//! test written `async fn name(backend: Backend)` runs on both (`on_both_backends!` at the end);
//! the rest are about one backend's files, URLs or backups.

#![allow(clippy::unwrap_used)]

#[macro_use]
#[path = "store/fixture.rs"]
mod fixture;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fixture::{Backend, Fixture};
use serde_json::json;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use switchyard_core::manifest::{HealthCheck, ManifestSet, load_str};
use switchyard_core::ports::{
    Author, EventKind, EventQuery, NewEvent, RolloutUpdate, StateStore, StoreError,
};
use switchyard_core::{AppName, ObjectName, Release, Timestamp, Version, Workload};
use switchyard_store::{DB_FILE_NAME, PostgresStore, SqliteStore, StoreOpenError};

const APP: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: checkout}
spec:
  listen: 127.0.0.1:8080
  runtime: {process: {command: ["./checkout", "--port", "{port}"], instances: 2}}
  healthCheck: {path: /health, interval: 2s, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}
  strategy:
    canary:
      stickiness: {header: x-user-id}
      steps:
        - setWeight: 5
        - pause: {duration: 30s}
        - analysis: {templates: [error-budget]}
        - setWeight: 50
        - pause: {}
        - setWeight: 100
  rollbackPolicy: {errorRate: {max: 0.05}, latencyIncrease: {max: 1.5}, window: 1m, consecutiveFailures: 3}
"#;

const TEMPLATE: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-budget}
spec:
  metrics:
    - name: errors
      provider: {builtin: {metric: error_rate}}
      successCondition: result < 0.01
      interval: 10s
      count: 6
      failureLimit: 1
"#;

/// A pipeline of the app and a deployment window on it.
const PIPELINE: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Pipeline
metadata: {name: shop}
spec:
  stages:
    - name: prod
      targets: [checkout]
---
apiVersion: switchyard.dev/v1alpha1
kind: DeploymentWindow
metadata: {name: weekdays}
spec:
  timeZone: Europe/Berlin
  appliesTo: {pipelines: [shop]}
  allow: [{days: [mon, tue], start: "09:00", end: "17:00"}]
"#;

fn manifests(text: &str) -> ManifestSet {
    load_str(text, Path::new("test.yaml")).unwrap()
}

/// The app and its template, as one file.
fn both() -> ManifestSet {
    manifests(&format!("{APP}---\n{TEMPLATE}"))
}

/// Another app, with no analysis step.
fn payments() -> ManifestSet {
    manifests(
        &APP.replace("name: checkout", "name: payments")
            .replace("        - analysis: {templates: [error-budget]}\n", ""),
    )
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn app(name: &str) -> AppName {
    AppName::new(name).unwrap()
}

fn version(v: &str) -> Version {
    Version::new(v).unwrap()
}

fn release(app_name: &str, v: &str) -> Release {
    Release {
        app: app(app_name),
        version: version(v),
        workload: Workload::Static {
            addresses: vec!["127.0.0.1:9001".parse().unwrap()],
            start_timeout: Duration::from_secs(5),
        },
        health_check: HealthCheck::default(),
    }
}

fn event(kind: EventKind, ms: u64) -> NewEvent {
    NewEvent {
        at: at(ms),
        app: None,
        rollout: None,
        kind,
        actor: "controller".into(),
        source: None,
        reason: format!("{} at {ms}", kind.as_str()),
        data: json!({"ms": ms}),
    }
}

fn kinds(events: &[switchyard_core::ports::EventRecord]) -> Vec<EventKind> {
    events.iter().map(|e| e.event.kind).collect()
}

/// A fresh store on `backend`, and its state port.
async fn open(backend: Backend) -> (Fixture, Arc<dyn StateStore>) {
    let fx = Fixture::open(backend).await;
    let store = fx.state();
    (fx, store)
}

async fn all_events(store: &Arc<dyn StateStore>) -> Vec<switchyard_core::ports::EventRecord> {
    store.events(&EventQuery::default()).await.unwrap()
}

fn port(store: &SqliteStore) -> Arc<dyn StateStore> {
    Arc::new(store.clone())
}

fn outcome(results: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    results
        .iter()
        .map(|(k, n, r)| (k.to_string(), n.to_string(), r.to_string()))
        .collect()
}

#[tokio::test]
async fn open_creates_the_directory_and_a_wal_database() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested/data");
    let store = SqliteStore::open(&data_dir).await.unwrap();
    assert_eq!(store.path(), Some(data_dir.join(DB_FILE_NAME).as_path()));
    assert!(data_dir.join(DB_FILE_NAME).is_file());
    let mut conn = SqliteConnectOptions::new()
        .filename(data_dir.join(DB_FILE_NAME))
        .connect()
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn open_names_a_data_directory_it_cannot_create() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let error = SqliteStore::open(&file.join("data")).await.unwrap_err();
    assert!(
        matches!(error, StoreOpenError::CreateDir { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("a-file/data"), "{error}");
}

async fn apply_reports_created_configured_unchanged_and_logs_changes(backend: Backend) {
    let (_fx, store) = open(backend).await;

    let first = store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    assert_eq!(
        first.results,
        outcome(&[
            ("App", "checkout", "created"),
            ("AnalysisTemplate", "error-budget", "created")
        ])
    );
    let record = store.app(&app("checkout")).await.unwrap().unwrap();
    assert_eq!(record.generation, 1);
    assert_eq!(record.manifest, both().apps[0]);
    assert_eq!(record.stable, None);
    assert_eq!(record.updated_at, at(1_000));
    let template = ObjectName::new("error-budget").unwrap();
    assert_eq!(
        store.template(&template).await.unwrap(),
        Some(both().templates[0].clone())
    );
    assert_eq!(
        store
            .template_names()
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["error-budget".to_string()]
    );

    let same = store
        .apply(&both(), &Author::system("user:ann"), at(2_000))
        .await
        .unwrap();
    assert_eq!(
        same.results,
        outcome(&[
            ("App", "checkout", "unchanged"),
            ("AnalysisTemplate", "error-budget", "unchanged")
        ])
    );
    assert_eq!(
        store
            .app(&app("checkout"))
            .await
            .unwrap()
            .unwrap()
            .updated_at,
        at(1_000),
        "an unchanged document is not rewritten"
    );

    let changed = manifests(&APP.replace("instances: 2", "instances: 3"));
    let third = store
        .apply(&changed, &Author::system("user:bob"), at(3_000))
        .await
        .unwrap();
    assert_eq!(third.results, outcome(&[("App", "checkout", "configured")]));
    let record = store.app(&app("checkout")).await.unwrap().unwrap();
    assert_eq!(record.generation, 2);
    assert_eq!(record.manifest, changed.apps[0]);
    assert_eq!(record.updated_at, at(3_000));

    let events = all_events(&store).await;
    assert_eq!(
        events.len(),
        3,
        "one event per created or configured document"
    );
    assert!(
        events
            .iter()
            .all(|e| e.event.kind == EventKind::ManifestApplied)
    );
    let reasons: Vec<_> = events.iter().map(|e| e.event.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "App checkout created",
            "AnalysisTemplate error-budget created",
            "App checkout configured"
        ]
    );
    let last = &events[2].event;
    assert_eq!(last.actor, "user:bob");
    assert_eq!(last.at, at(3_000));
    assert_eq!(last.app, Some(app("checkout")));
    assert_eq!(
        last.data,
        json!({"kind": "App", "name": "checkout", "generation": 2, "result": "configured"})
    );
    assert_eq!(events[1].event.app, None, "templates belong to no app");

    store
        .apply(&payments(), &Author::system("user:ann"), at(4_000))
        .await
        .unwrap();
    let names: Vec<_> = store
        .apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.manifest.metadata.name.to_string())
        .collect();
    assert_eq!(names, ["checkout", "payments"]);
}

async fn a_failing_apply_stores_nothing(backend: Backend) {
    let (fx, store) = open(backend).await;
    // The app row is written first; the template insert then fails inside the same transaction.
    fx.break_inserts("templates").await;

    let error = store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
    assert_eq!(store.app(&app("checkout")).await.unwrap(), None);
    assert!(store.apps().await.unwrap().is_empty());
    assert!(store.template_names().await.unwrap().is_empty());
    assert!(all_events(&store).await.is_empty());

    fx.heal("templates").await;
    let outcome = store
        .apply(&both(), &Author::system("user:ann"), at(2_000))
        .await
        .unwrap();
    assert_eq!(outcome.results[0].2, "created");
    assert_eq!(all_events(&store).await.len(), 2);
}

async fn set_stable_records_the_release_with_its_events(backend: Backend) {
    let (_fx, store) = open(backend).await;
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();

    let v1 = release("checkout", "v1");
    store
        .set_stable(
            &app("checkout"),
            &v1,
            &[event(EventKind::ReleaseStarted, 2_000)],
        )
        .await
        .unwrap();
    let record = store.app(&app("checkout")).await.unwrap().unwrap();
    assert_eq!(record.stable, Some(v1));
    assert_eq!(record.updated_at, at(1_000), "the manifest did not change");
    let events = store
        .events(&EventQuery {
            kinds: vec![EventKind::ReleaseStarted],
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].event.app,
        Some(app("checkout")),
        "an event naming no app gets the one it concerns"
    );

    let error = store
        .set_stable(
            &app("nowhere"),
            &release("nowhere", "v1"),
            &[event(EventKind::ReleaseStarted, 3_000)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::UnknownApp(ref a) if a.as_str() == "nowhere"),
        "{error:?}"
    );
    assert_eq!(
        all_events(&store).await.len(),
        3,
        "the failed call appended nothing"
    );
}

async fn rollouts_are_created_updated_and_read_back(backend: Backend) {
    let (_fx, store) = open(backend).await;
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    store
        .apply(&payments(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    let checkout = app("checkout");

    assert_eq!(store.latest_rollout(&checkout).await.unwrap(), None);
    let state = json!({"step": 0, "weight": 5});
    let id = store
        .create_rollout(
            &checkout,
            &version("v2"),
            "progressing",
            &state,
            &[event(EventKind::RolloutStarted, 5_000)],
        )
        .await
        .unwrap();

    let record = store.rollout(id).await.unwrap().unwrap();
    assert_eq!(record.id, id);
    assert_eq!(record.app, checkout);
    assert_eq!(record.version, version("v2"));
    assert_eq!(record.phase, "progressing");
    assert!(record.active);
    assert_eq!(record.state, state);
    assert_eq!(
        record.created_at,
        at(5_000),
        "the rollout began with its first event"
    );
    assert_eq!(record.updated_at, at(5_000));
    assert_eq!(
        store.latest_rollout(&checkout).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.active_rollouts().await.unwrap(), vec![record]);

    let started = &store
        .events(&EventQuery {
            kinds: vec![EventKind::RolloutStarted],
            ..EventQuery::default()
        })
        .await
        .unwrap()[0];
    assert_eq!(
        started.event.rollout,
        Some(id),
        "events learn the new rollout's id"
    );
    assert_eq!(started.event.app, Some(checkout.clone()));

    let other = store
        .create_rollout(
            &app("payments"),
            &version("v7"),
            "progressing",
            &json!({}),
            &[],
        )
        .await
        .unwrap();
    assert!(other > id);

    let v2 = release("checkout", "v2");
    store
        .update_rollout(&RolloutUpdate {
            id,
            phase: "succeeded".into(),
            active: false,
            state: json!({"step": 6, "weight": 100}),
            stable: Some(v2.clone()),
            events: vec![
                event(EventKind::Promoted, 9_000),
                event(EventKind::Succeeded, 9_000),
            ],
            at: at(9_000),
        })
        .await
        .unwrap();
    let record = store.rollout(id).await.unwrap().unwrap();
    assert_eq!(record.phase, "succeeded");
    assert!(!record.active);
    assert_eq!(record.state, json!({"step": 6, "weight": 100}));
    assert_eq!(record.created_at, at(5_000));
    assert_eq!(record.updated_at, at(9_000));
    assert_eq!(
        store.app(&checkout).await.unwrap().unwrap().stable,
        Some(v2),
        "promotion sets the stable release in the same write"
    );
    let active: Vec<_> = store
        .active_rollouts()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active, [other]);
    let finished = store
        .events(&EventQuery {
            rollout: Some(id),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        kinds(&finished),
        [
            EventKind::RolloutStarted,
            EventKind::Promoted,
            EventKind::Succeeded
        ]
    );

    // With the first one finished, the app can start another, which becomes the latest.
    let next = store
        .create_rollout(&checkout, &version("v3"), "progressing", &json!({}), &[])
        .await
        .unwrap();
    assert_eq!(
        store.latest_rollout(&checkout).await.unwrap().unwrap().id,
        next
    );
    assert_eq!(store.active_rollouts().await.unwrap().len(), 2);
    let latest: Vec<_> = store
        .latest_rollouts()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.app.to_string(), r.id))
        .collect();
    assert_eq!(
        latest,
        [
            ("checkout".to_owned(), next),
            ("payments".to_owned(), other)
        ],
        "one per app, by name"
    );

    // What the deployment metrics count: every rollout, and first releases (a `promoted`
    // event outside any rollout), oldest first.
    let first = NewEvent {
        app: Some(app("payments")),
        ..event(EventKind::Promoted, 2_000)
    };
    store
        .set_stable(&app("payments"), &release("payments", "v6"), &[first])
        .await
        .unwrap();
    let deployments: Vec<_> = store
        .deployments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.app.to_string(), d.rollout, d.phase, d.active, d.ended_at))
        .collect();
    assert_eq!(deployments.len(), 4, "{deployments:?}");
    assert_eq!(
        deployments[0],
        ("payments".into(), None, None, false, None),
        "the first release, at 2 s, comes first"
    );
    assert_eq!(
        deployments[1],
        (
            "checkout".into(),
            Some(id),
            Some("succeeded".into()),
            false,
            Some(at(9_000))
        )
    );
    assert!(deployments[2..].iter().all(|d| d.3 && d.4.is_none()));
}

async fn an_app_has_at_most_one_active_rollout(backend: Backend) {
    let (_fx, store) = open(backend).await;
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    let checkout = app("checkout");
    let first = store
        .create_rollout(&checkout, &version("v2"), "progressing", &json!({}), &[])
        .await
        .unwrap();

    let error = store
        .create_rollout(
            &checkout,
            &version("v3"),
            "progressing",
            &json!({}),
            &[event(EventKind::RolloutStarted, 2_000)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::RolloutInProgress { ref app, rollout } if *app == checkout && rollout == first),
        "{error:?}"
    );
    assert_eq!(
        store.latest_rollout(&checkout).await.unwrap().unwrap().id,
        first
    );
    assert!(
        all_events(&store)
            .await
            .iter()
            .all(|e| e.event.kind == EventKind::ManifestApplied)
    );

    // Re-activating a finished rollout while another runs hits the unique index.
    let update = |id, active| RolloutUpdate {
        id,
        phase: "x".into(),
        active,
        state: json!({}),
        stable: None,
        events: vec![],
        at: at(3_000),
    };
    store.update_rollout(&update(first, false)).await.unwrap();
    let second = store
        .create_rollout(&checkout, &version("v3"), "progressing", &json!({}), &[])
        .await
        .unwrap();
    let error = store
        .update_rollout(&update(first, true))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::RolloutInProgress { rollout, .. } if rollout == second),
        "{error:?}"
    );
    assert!(!store.rollout(first).await.unwrap().unwrap().active);
}

async fn concurrent_writers_queue_and_only_one_rollout_wins(backend: Backend) {
    let (_fx, store) = open(backend).await;
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    let checkout = app("checkout");
    // Writers on separate connections race for the one write lock; each must either win or see
    // the winner's rollout, never fail with "database is locked".
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let (store, checkout) = (store.clone(), checkout.clone());
            tokio::spawn(async move {
                store
                    .create_rollout(
                        &checkout,
                        &version(&format!("v{i}")),
                        "progressing",
                        &json!({}),
                        &[event(EventKind::RolloutStarted, 2_000 + i)],
                    )
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(id) => won.push(id),
            Err(StoreError::RolloutInProgress { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(store.active_rollouts().await.unwrap()[0].id, won[0]);
    let started = store
        .events(&EventQuery {
            kinds: vec![EventKind::RolloutStarted],
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(started.len(), 1, "losers appended nothing");
}

async fn unknown_apps_and_rollouts_are_errors(backend: Backend) {
    let (_fx, store) = open(backend).await;
    let error = store
        .create_rollout(
            &app("ghost"),
            &version("v1"),
            "progressing",
            &json!({}),
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::UnknownApp(ref a) if a.as_str() == "ghost"),
        "{error:?}"
    );

    let error = store
        .update_rollout(&RolloutUpdate {
            id: 42,
            phase: "succeeded".into(),
            active: false,
            state: json!({}),
            stable: None,
            events: vec![event(EventKind::Succeeded, 1_000)],
            at: at(1_000),
        })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::UnknownRollout(42)), "{error:?}");
    assert!(all_events(&store).await.is_empty());

    assert_eq!(store.rollout(42).await.unwrap(), None);
    assert_eq!(store.app(&app("ghost")).await.unwrap(), None);
    assert_eq!(store.latest_rollout(&app("ghost")).await.unwrap(), None);
    assert_eq!(
        store
            .template(&ObjectName::new("ghost").unwrap())
            .await
            .unwrap(),
        None
    );
}

async fn a_failing_rollout_update_changes_nothing(backend: Backend) {
    let (fx, store) = open(backend).await;
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    let checkout = app("checkout");
    let id = store
        .create_rollout(
            &checkout,
            &version("v2"),
            "progressing",
            &json!({"step": 0}),
            &[],
        )
        .await
        .unwrap();
    let before = store.rollout(id).await.unwrap();
    fx.break_inserts("events").await;

    let error = store
        .update_rollout(&RolloutUpdate {
            id,
            phase: "succeeded".into(),
            active: false,
            state: json!({"step": 6}),
            stable: Some(release("checkout", "v2")),
            events: vec![event(EventKind::Succeeded, 2_000)],
            at: at(2_000),
        })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
    assert_eq!(store.rollout(id).await.unwrap(), before);
    assert_eq!(store.app(&checkout).await.unwrap().unwrap().stable, None);
}

async fn events_are_filtered_limited_and_followed(backend: Backend) {
    let (_fx, store) = open(backend).await;
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    store
        .apply(&payments(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    let checkout = app("checkout");
    let a = store
        .create_rollout(
            &checkout,
            &version("v2"),
            "progressing",
            &json!({}),
            &[event(EventKind::RolloutStarted, 2_000)],
        )
        .await
        .unwrap();
    let b = store
        .create_rollout(
            &app("payments"),
            &version("v2"),
            "progressing",
            &json!({}),
            &[event(EventKind::RolloutStarted, 2_100)],
        )
        .await
        .unwrap();
    let mut loose = event(EventKind::WeightChanged, 3_000);
    loose.app = Some(checkout.clone());
    loose.rollout = Some(a);
    store
        .append_events(&[
            loose.clone(),
            NewEvent {
                at: at(3_100),
                kind: EventKind::Measurement,
                ..loose.clone()
            },
            NewEvent {
                at: at(3_200),
                kind: EventKind::Verdict,
                ..loose.clone()
            },
            NewEvent {
                at: at(3_300),
                app: Some(app("payments")),
                rollout: Some(b),
                ..loose.clone()
            },
        ])
        .await
        .unwrap();

    let all = all_events(&store).await;
    assert_eq!(all.len(), 3 + 2 + 4);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(all[5].event, loose, "stored as given");

    let query = |q: EventQuery| {
        let store = Arc::clone(&store);
        async move { store.events(&q).await.unwrap() }
    };
    let for_checkout = query(EventQuery {
        app: Some(checkout.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        kinds(&for_checkout),
        [
            EventKind::ManifestApplied,
            EventKind::RolloutStarted,
            EventKind::WeightChanged,
            EventKind::Measurement,
            EventKind::Verdict
        ]
    );
    let for_b = query(EventQuery {
        rollout: Some(b),
        ..Default::default()
    })
    .await;
    assert_eq!(
        kinds(&for_b),
        [EventKind::RolloutStarted, EventKind::WeightChanged]
    );
    let picked = query(EventQuery {
        kinds: vec![EventKind::Verdict, EventKind::RolloutStarted],
        ..Default::default()
    })
    .await;
    assert_eq!(
        kinds(&picked),
        [
            EventKind::RolloutStarted,
            EventKind::RolloutStarted,
            EventKind::Verdict
        ]
    );

    let newest = query(EventQuery {
        limit: Some(2),
        ..Default::default()
    })
    .await;
    assert_eq!(
        newest,
        all[all.len() - 2..],
        "the most recent, oldest first"
    );
    let none = query(EventQuery {
        limit: Some(0),
        ..Default::default()
    })
    .await;
    assert!(none.is_empty());
    let more_than_all = query(EventQuery {
        limit: Some(100),
        ..Default::default()
    })
    .await;
    assert_eq!(more_than_all, all);

    let after = query(EventQuery {
        after: Some(all[6].id),
        ..Default::default()
    })
    .await;
    assert_eq!(after, all[7..]);
    let following = query(EventQuery {
        after: Some(all.last().unwrap().id),
        ..Default::default()
    })
    .await;
    assert!(following.is_empty(), "nothing new yet");

    let combined = query(EventQuery {
        app: Some(checkout.clone()),
        actor: None,
        rollout: Some(a),
        kinds: vec![
            EventKind::WeightChanged,
            EventKind::Measurement,
            EventKind::Verdict,
        ],
        after: Some(all[5].id),
        limit: Some(1),
    })
    .await;
    assert_eq!(kinds(&combined), [EventKind::Verdict]);
}

async fn everything_survives_a_restart(backend: Backend) {
    let (fx, store) = open(backend).await;
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    store
        .set_stable(&app("checkout"), &release("checkout", "v1"), &[])
        .await
        .unwrap();
    let id = store
        .create_rollout(
            &app("checkout"),
            &version("v2"),
            "paused",
            &json!({"step": 1, "resumeAt": 40_000}),
            &[event(EventKind::RolloutStarted, 10_000)],
        )
        .await
        .unwrap();
    let apps = store.apps().await.unwrap();
    let rollouts = store.active_rollouts().await.unwrap();
    let events = all_events(&store).await;
    fx.store.close().await;
    drop(store);

    let reopened = fx.reopen().await.state();
    assert_eq!(reopened.apps().await.unwrap(), apps);
    assert_eq!(reopened.active_rollouts().await.unwrap(), rollouts);
    assert_eq!(
        reopened.rollout(id).await.unwrap().unwrap().state["resumeAt"],
        40_000
    );
    assert_eq!(all_events(&reopened).await, events);
    let again = reopened
        .apply(&both(), &Author::system("user:ann"), at(2_000))
        .await
        .unwrap();
    assert!(again.results.iter().all(|r| r.2 == "unchanged"));
    // Ids keep growing across the restart.
    reopened
        .append_events(&[event(EventKind::Paused, 11_000)])
        .await
        .unwrap();
    assert!(all_events(&reopened).await.last().unwrap().id > events.last().unwrap().id);
}

async fn the_event_log_cannot_be_rewritten(backend: Backend) {
    let (fx, store) = open(backend).await;
    store
        .append_events(&[event(EventKind::Paused, 1_000)])
        .await
        .unwrap();
    let update = fx
        .execute("UPDATE events SET reason = 'nothing happened'")
        .await
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = fx.execute("DELETE FROM events").await.unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    if backend == Backend::Postgres {
        let truncate = fx.execute("TRUNCATE events").await.unwrap_err();
        assert!(truncate.to_string().contains("append-only"), "{truncate}");
    }
    assert_eq!(all_events(&store).await.len(), 1);
}

async fn unreadable_rows_are_reported_as_corrupt(backend: Backend) {
    let (fx, store) = open(backend).await;
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    fx.execute("UPDATE apps SET manifest_json = '{\"not\": \"an app\"}'")
        .await
        .unwrap();
    let error = store.app(&app("checkout")).await.unwrap_err();
    match error {
        StoreError::Corrupt { what, .. } => assert_eq!(what, "manifest of app `checkout`"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.apps().await,
        Err(StoreError::Corrupt { .. })
    ));
    // Applying the manifest again is how the row is repaired.
    let outcome = store
        .apply(&both(), &Author::system("user:ann"), at(2_000))
        .await
        .unwrap();
    assert_eq!(outcome.results[0].2, "configured");
    assert_eq!(
        store
            .app(&app("checkout"))
            .await
            .unwrap()
            .unwrap()
            .generation,
        2
    );
}

#[tokio::test]
async fn backups_are_complete_databases() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    store
        .create_rollout(
            &app("checkout"),
            &version("v2"),
            "progressing",
            &json!({"step": 2}),
            &[],
        )
        .await
        .unwrap();
    let backup_dir = dir.path().join("backup");
    std::fs::create_dir(&backup_dir).unwrap();
    let target = backup_dir.join(DB_FILE_NAME);
    store.backup_to(&target).await.unwrap();

    let error = store.backup_to(&target).await.unwrap_err();
    assert!(
        matches!(error, StoreOpenError::BackupTargetExists { .. }),
        "{error:?}"
    );

    let restored = SqliteStore::open(&backup_dir).await.unwrap();
    assert_eq!(restored.apps().await.unwrap(), store.apps().await.unwrap());
    assert_eq!(
        restored.active_rollouts().await.unwrap(),
        store.active_rollouts().await.unwrap()
    );
    assert_eq!(
        all_events(&port(&restored)).await,
        all_events(&port(&store)).await
    );
}

async fn a_database_from_a_newer_build_is_refused(backend: Backend) {
    let fx = Fixture::open(backend).await;
    fx.store.close().await;
    fx.execute(fx.pick(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
    ))
    .await
    .unwrap();

    let error = match &fx.place {
        fixture::Place::Sqlite(dir) => SqliteStore::open(dir.path()).await.unwrap_err(),
        fixture::Place::Postgres { url } => PostgresStore::connect(url).await.unwrap_err(),
    };
    assert!(
        matches!(
            error,
            StoreOpenError::NewerSchema {
                found: 9999,
                known: 8,
                ..
            }
        ),
        "{error:?}"
    );
    let names = fx.pick(DB_FILE_NAME, "postgres://");
    assert!(
        error.to_string().contains(names) && error.to_string().contains("schema version 9999"),
        "the error names the database and its version: {error}"
    );
}

#[tokio::test]
async fn an_in_memory_store_keeps_its_state_while_open() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    assert_eq!(store.path(), None);
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    let id = store
        .create_rollout(
            &app("checkout"),
            &version("v2"),
            "progressing",
            &json!({}),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(store.active_rollouts().await.unwrap()[0].id, id);
    assert_eq!(all_events(&port(&store)).await.len(), 2);
}

#[path = "store/backup.rs"]
mod backup;
#[path = "store/experiments.rs"]
mod experiments;
#[path = "store/flags.rs"]
mod flags;
#[path = "store/leadership.rs"]
mod leadership;
#[path = "store/notifications.rs"]
mod notifications;

async fn the_event_log_is_a_hash_chain_that_shows_edits_and_removals(backend: Backend) {
    let (fx, store) = open(backend).await;
    store
        .apply(
            &both(),
            &Author {
                actor: "ann".into(),
                source: Some("10.1.2.3".into()),
            },
            at(1_000),
        )
        .await
        .unwrap();
    store
        .append_events(&[
            event(EventKind::Verdict, 2_000),
            event(EventKind::Verdict, 3_000),
        ])
        .await
        .unwrap();
    let all = all_events(&store).await;
    assert_eq!(all[0].event.source.as_deref(), Some("10.1.2.3"));
    assert_eq!(all[0].event.actor, "ann");
    let check = store.verify_events().await.unwrap();
    assert!(check.ok, "{check:?}");
    assert_eq!(check.events, all.len() as u64);
    let by_ann = store
        .events(&EventQuery {
            actor: Some("ann".into()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_ann.len(), 2, "two manifests applied by ann");

    // Behind the triggers: an edited reason, then a removed event.
    fx.drop_trigger("events_are_never_updated", "events").await;
    fx.execute_all(&["UPDATE events SET actor = 'someone else' WHERE id = 2"])
        .await;
    let check = store.verify_events().await.unwrap();
    assert!(!check.ok);
    assert_eq!(check.problems.len(), 1, "{check:?}");
    assert_eq!(check.problems[0].id, 2);
    fx.drop_trigger("events_are_never_deleted", "events").await;
    fx.execute_all(&["DELETE FROM events WHERE id = 3"]).await;
    let check = store.verify_events().await.unwrap();
    assert!(
        check
            .problems
            .iter()
            .any(|p| p.id == 4 && p.message.contains("removed")),
        "{check:?}"
    );
}

async fn events_written_before_the_chain_are_covered_by_it(backend: Backend) {
    let (fx, store) = open(backend).await;
    // As a database of schema 4 had them: no hash.
    for id in 1..=3 {
        fx.execute(&format!(
            "INSERT INTO events (id, at, app, rollout, kind, actor, reason, data_json) \
             VALUES ({id}, {}, NULL, NULL, 'verdict', 'controller', 'old', '{{}}')",
            id * 1000
        ))
        .await
        .unwrap();
    }
    store
        .append_events(&[event(EventKind::Verdict, 4_000)])
        .await
        .unwrap();
    let check = store.verify_events().await.unwrap();
    assert!(check.ok, "{check:?}");
    assert_eq!(check.events, 4);
    // An old event edited now breaks the chain at the first event that has a hash.
    fx.drop_trigger("events_are_never_updated", "events").await;
    fx.execute_all(&["UPDATE events SET reason = 'rewritten' WHERE id = 2"])
        .await;
    let check = store.verify_events().await.unwrap();
    assert!(!check.ok, "{check:?}");
    assert_eq!(check.problems[0].id, 4);
}

async fn tokens_are_created_listed_revoked_and_never_deleted(backend: Backend) {
    let fx = Fixture::open(backend).await;
    let tokens = fx.tokens();
    let token = |id: &str, at_ms: u64| switchyard_core::ports::TokenRecord {
        id: id.into(),
        name: format!("ci-{id}"),
        role: "deployer".into(),
        apps: Some(["checkout".to_string()].into()),
        environments: None,
        secret_hash: "ab".repeat(32),
        created_at: at(at_ms),
        created_by: "admin".into(),
        revoked_at: None,
        revoked_by: None,
    };
    tokens
        .create_token(
            &token("t1", 1_000),
            &[event(EventKind::TokenCreated, 1_000)],
        )
        .await
        .unwrap();
    tokens.create_token(&token("t2", 2_000), &[]).await.unwrap();
    let taken = tokens.create_token(&token("t1", 3_000), &[]).await;
    assert!(matches!(taken, Err(StoreError::TokenExists(id)) if id == "t1"));
    assert_eq!(
        tokens.tokens().await.unwrap(),
        [token("t1", 1_000), token("t2", 2_000)]
    );

    assert!(
        tokens
            .revoke_token("t1", "admin", at(4_000), &[])
            .await
            .unwrap()
    );
    assert!(
        !tokens
            .revoke_token("t1", "admin", at(5_000), &[])
            .await
            .unwrap()
    );
    let unknown = tokens.revoke_token("t9", "admin", at(5_000), &[]).await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownToken(_))),
        "{unknown:?}"
    );
    let listed = tokens.tokens().await.unwrap();
    assert_eq!(listed[0].revoked_at, Some(at(4_000)));
    assert_eq!(listed[0].revoked_by.as_deref(), Some("admin"));

    let delete = fx.execute("DELETE FROM tokens").await.unwrap_err();
    assert!(delete.to_string().contains("never deleted"), "{delete}");
    assert_eq!(
        kinds(&all_events(&fx.state()).await),
        [EventKind::TokenCreated]
    );
}

/// Every PostgreSQL-only check that needs a server: bad credentials and a missing database are
/// named at startup, with the server and never the password; several replicas migrating one
/// database at once all come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
async fn postgres_connection_problems_are_named_and_replicas_share_a_database() {
    let admin = fixture::postgres_admin_url();
    let wrong_password = admin.replacen("switchyard:switchyard@", "switchyard:not-it@", 1);
    let error = PostgresStore::connect(&wrong_password).await.unwrap_err();
    let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(matches!(error, StoreOpenError::Connect { .. }), "{error:?}");
    assert!(text.contains("postgres://switchyard@127.0.0.1:"), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("not-it"), "the password never shows: {text}");

    let missing = fixture::with_database(&admin, "no_such_database");
    let error = PostgresStore::connect(&missing).await.unwrap_err();
    let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(text.contains("/no_such_database"), "{text}");
    assert!(text.contains("does not exist"), "{text}");

    let url = fixture::fresh_postgres_database().await;
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(&url),
        PostgresStore::connect(&url),
        PostgresStore::connect(&url)
    );
    let replicas = [a.unwrap(), b.unwrap(), c.unwrap()];
    replicas[0]
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    assert_eq!(replicas[2].apps().await.unwrap().len(), 1);
}

/// Addresses that cannot be PostgreSQL, or cannot be reached, fail fast with the reason.
#[tokio::test]
async fn unusable_database_urls_are_named() {
    let error = PostgresStore::connect("mysql://sy:secret@db/sy")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreOpenError::BadUrl { .. }), "{error:?}");
    assert!(!error.to_string().contains("secret"), "{error}");
    assert!(error.to_string().contains("postgres://"), "{error}");
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let error = PostgresStore::connect("postgres://sy:secret@127.0.0.1:1/sy")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreOpenError::Connect { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "cannot connect to the state database postgres://sy@127.0.0.1:1/sy"
    );
}

async fn pipelines_windows_and_runs_are_stored_and_read_back(backend: Backend) {
    let (_fx, store) = open(backend).await;
    let set = manifests(&format!("{APP}---\n{TEMPLATE}---\n{PIPELINE}"));
    let outcome = store
        .apply(&set, &Author::system("ann"), at(1_000))
        .await
        .unwrap();
    assert!(
        outcome
            .results
            .contains(&("Pipeline".into(), "shop".into(), "created".into()))
    );
    assert!(outcome.results.contains(&(
        "DeploymentWindow".into(),
        "weekdays".into(),
        "created".into()
    )));
    assert_eq!(store.pipelines().await.unwrap(), set.pipelines);
    assert_eq!(store.windows().await.unwrap(), set.windows);

    let first = store
        .create_run(
            "pipeline/shop",
            &version("v2"),
            "Running",
            &json!({"n": 1}),
            &[event(EventKind::PipelineStarted, 2_000)],
        )
        .await
        .unwrap();
    // One run in progress per subject; another subject is free.
    let err = store
        .create_run("pipeline/shop", &version("v3"), "Running", &json!({}), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::RunInProgress { subject, run } if subject == "pipeline/shop" && *run == first),
        "{err}"
    );
    let other = store
        .create_run("app/checkout", &version("v3"), "Running", &json!({}), &[])
        .await
        .unwrap();
    store
        .update_run(&switchyard_core::ports::RunUpdate {
            id: first,
            phase: "Succeeded".into(),
            active: false,
            state: json!({"n": 2}),
            events: vec![event(EventKind::PipelineFinished, 3_000)],
            at: at(3_000),
        })
        .await
        .unwrap();
    let read = store.run(first).await.unwrap().unwrap();
    assert_eq!(
        (read.phase.as_str(), read.active, read.state.clone()),
        ("Succeeded", false, json!({"n": 2}))
    );
    assert_eq!(read.updated_at, at(3_000));
    let again = store
        .create_run("pipeline/shop", &version("v4"), "Running", &json!({}), &[])
        .await
        .unwrap();
    let ids = |runs: Vec<switchyard_core::ports::RunRecord>| {
        runs.iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.runs(Some("pipeline/shop"), 10).await.unwrap()),
        [again, first]
    );
    assert_eq!(ids(store.runs(None, 2).await.unwrap()), [again, other]);
    assert_eq!(ids(store.active_runs().await.unwrap()), [other, again]);
    let missing = store
        .update_run(&switchyard_core::ports::RunUpdate {
            id: 999,
            phase: "Running".into(),
            active: true,
            state: json!({}),
            events: vec![],
            at: at(4_000),
        })
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::UnknownRun(999)), "{missing}");
    let kinds = kinds(&all_events(&store).await);
    assert!(
        kinds.contains(&EventKind::PipelineStarted) && kinds.contains(&EventKind::PipelineFinished),
        "{kinds:?}"
    );
}

on_both_backends!(
    pipelines_windows_and_runs_are_stored_and_read_back,
    tokens_are_created_listed_revoked_and_never_deleted,
    apply_reports_created_configured_unchanged_and_logs_changes,
    a_failing_apply_stores_nothing,
    set_stable_records_the_release_with_its_events,
    rollouts_are_created_updated_and_read_back,
    an_app_has_at_most_one_active_rollout,
    concurrent_writers_queue_and_only_one_rollout_wins,
    unknown_apps_and_rollouts_are_errors,
    a_failing_rollout_update_changes_nothing,
    events_are_filtered_limited_and_followed,
    everything_survives_a_restart,
    the_event_log_cannot_be_rewritten,
    unreadable_rows_are_reported_as_corrupt,
    a_database_from_a_newer_build_is_refused,
    the_event_log_is_a_hash_chain_that_shows_edits_and_removals,
    events_written_before_the_chain_are_covered_by_it,
);
