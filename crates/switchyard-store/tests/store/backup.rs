//! Backups: a store with every kind of row is exported while in use and restored into an empty
//! store, on each backend and from SQLite to PostgreSQL; what is restored reads back as the
//! original, its hash chains verify, and its ids continue. Bad files and non-empty targets are
//! refused with nothing kept.

use switchyard_core::ports::{FlagAuditQuery, TokenRecord};
use switchyard_store::Store;
use switchyard_store::backup::BackupError;

use super::experiments::{EXPERIMENT, batch, compiled};
use super::flags::history;
use super::*;

/// Fills a store with a row in every table.
async fn everything(fx: &Fixture) {
    let store = fx.state();
    let set = manifests(&format!(
        "{APP}---\n{TEMPLATE}---\n{EXPERIMENT}---\n{PIPELINE}"
    ));
    store
        .apply(&set, &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    store
        .create_run(
            "pipeline/shop",
            &version("v2"),
            "Running",
            &json!({"stages": []}),
            &[],
        )
        .await
        .unwrap();
    let notifier = manifests(
        "apiVersion: switchyard.dev/v1alpha1\nkind: Notifier\nmetadata: {name: ops}\nspec:\n  slack: {url: 'https://hooks.example/x'}\n",
    );
    store
        .apply(&notifier, &Author::system("user:ann"), at(1_500))
        .await
        .unwrap();
    fx.store
        .notifications()
        .enqueue_notifications(None, 1, &[super::notifications::row("ops-1")], at(1_600))
        .await
        .unwrap();
    store
        .set_stable(&app("checkout"), &release("checkout", "v1"), &[])
        .await
        .unwrap();
    let done = store
        .create_rollout(
            &app("checkout"),
            &version("v2"),
            "progressing",
            &json!({}),
            &[],
        )
        .await
        .unwrap();
    store
        .update_rollout(&RolloutUpdate {
            id: done,
            phase: "succeeded".into(),
            active: false,
            state: json!({"step": 6}),
            stable: Some(release("checkout", "v2")),
            events: vec![event(EventKind::Succeeded, 2_000)],
            at: at(2_000),
        })
        .await
        .unwrap();
    store
        .create_rollout(
            &app("checkout"),
            &version("v3"),
            "paused",
            &json!({"step": 1, "resumeAt": 40_000}),
            &[event(EventKind::RolloutStarted, 3_000)],
        )
        .await
        .unwrap();
    history(&fx.flags()).await;
    fx.tokens()
        .create_token(
            &TokenRecord {
                id: "t1".into(),
                name: "ci".into(),
                role: "deployer".into(),
                apps: None,
                environments: Some(["prod".to_string()].into()),
                secret_hash: "cd".repeat(32),
                created_at: at(4_000),
                created_by: "admin".into(),
                revoked_at: None,
                revoked_by: None,
            },
            &[event(EventKind::TokenCreated, 4_000)],
        )
        .await
        .unwrap();
    let lab = fx.experiments();
    let experiments = compiled(&set);
    let events = batch(
        &experiments,
        json!([
            {"id": "x1", "experiment": "checkout-redesign", "unit": "u1", "event": "$exposure", "variant": "control"},
            {"id": "e1", "experiment": "checkout-redesign", "unit": "u1", "event": "purchase", "value": 20.0, "timestamp": "1970-01-01T00:00:03Z"}
        ]),
    );
    lab.ingest(&experiments, &events, true, at(5_000))
        .await
        .unwrap();
    let snapshot = switchyard_experiments::Snapshot {
        at: at(6_000),
        units: vec![("control".into(), 1)],
        points: Vec::new(),
    };
    lab.add_snapshot("checkout-redesign", &snapshot)
        .await
        .unwrap();
}

/// Everything the ports read back, as JSON, to compare two stores.
async fn contents(store: &Store) -> serde_json::Value {
    let state = store.state();
    let flags = store.flags();
    let lab = store.experiments();
    let checkout = state.latest_rollout(&app("checkout")).await.unwrap();
    json!({
        "apps": state.apps().await.unwrap(),
        "templates": state.template_names().await.unwrap(),
        "pipelines": state.pipelines().await.unwrap(),
        "windows": state.windows().await.unwrap(),
        "runs": state.runs(None, 100).await.unwrap(),
        "notifiers": state.notifiers().await.unwrap(),
        "notifications": store.notifications().notifications(None, 100).await.unwrap(),
        "cursor": store.notifications().notification_cursor().await.unwrap(),
        "active": state.active_rollouts().await.unwrap(),
        "latest": checkout,
        "events": all_events(&state).await,
        "chain": state.verify_events().await.unwrap(),
        "flags": flags.flag_documents().await.unwrap(),
        "flagAudit": flags.flag_audit(&FlagAuditQuery::default()).await.unwrap(),
        "flagChain": flags.verify_flag_audit().await.unwrap(),
        "tokens": store.tokens().tokens().await.unwrap(),
        // Not serialisable: compared in their Debug form.
        "experiments": format!("{:?}", lab.experiments().await.unwrap()),
        "data": format!("{:?}", lab.data("checkout-redesign").await.unwrap()),
        "snapshots": format!("{:?}", lab.snapshots("checkout-redesign").await.unwrap()),
    })
}

async fn exported(store: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    store.export(&mut out).await.unwrap();
    out
}

async fn restores_into_an_empty_store(source: &Fixture, target: &Fixture) {
    everything(source).await;
    let bytes = exported(&source.store).await;
    let end = target.store.import(bytes.as_slice()).await.unwrap();
    let events = all_events(&source.state()).await.len() as u64;
    assert_eq!(end.rows["events"], events, "{end:?}");
    assert!(
        end.rows.values().all(|n| *n > 0),
        "a row in every table: {end:?}"
    );

    let original = contents(&source.store).await;
    let restored = contents(&target.store).await;
    assert_eq!(restored, original);
    assert_eq!(restored["chain"]["ok"], true);
    assert_eq!(restored["flagChain"]["ok"], true);

    // Ids continue after the restored ones, and the restored store takes writes.
    let state = target.state();
    let paused = state.active_rollouts().await.unwrap()[0].id;
    state
        .update_rollout(&RolloutUpdate {
            id: paused,
            phase: "aborted".into(),
            active: false,
            state: json!({}),
            stable: None,
            events: vec![event(EventKind::Aborted, 7_000)],
            at: at(7_000),
        })
        .await
        .unwrap();
    let next = state
        .create_rollout(
            &app("checkout"),
            &version("v4"),
            "progressing",
            &json!({}),
            &[],
        )
        .await
        .unwrap();
    assert!(next > paused, "{next} after {paused}");
    assert!(state.verify_events().await.unwrap().ok);

    // A second restore into the same store is refused, and changes nothing.
    let before = contents(&target.store).await;
    let error = target.store.import(bytes.as_slice()).await.unwrap_err();
    assert!(
        matches!(&error, BackupError::NotEmpty { table } if table == "apps"),
        "{error}"
    );
    assert_eq!(contents(&target.store).await, before);
}

async fn a_backup_restores_into_an_empty_store(backend: Backend) {
    let (source, target) = (Fixture::open(backend).await, Fixture::open(backend).await);
    restores_into_an_empty_store(&source, &target).await;
}

/// The move `switchyard migrate-store` makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
async fn a_sqlite_backup_restores_into_postgres() {
    let source = Fixture::open(Backend::Sqlite).await;
    let target = Fixture::open(Backend::Postgres).await;
    restores_into_an_empty_store(&source, &target).await;
}

async fn incomplete_or_foreign_backups_are_refused_and_leave_the_store_empty(backend: Backend) {
    let source = Fixture::open(backend).await;
    everything(&source).await;
    let bytes = exported(&source.store).await;
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let target = Fixture::open(backend).await;
    let empty = contents(&target.store).await;

    let truncated = lines[..lines.len() - 1].join("\n");
    let error = target.store.import(truncated.as_bytes()).await.unwrap_err();
    assert!(matches!(error, BackupError::Truncated { .. }), "{error}");
    assert_eq!(contents(&target.store).await, empty, "nothing kept");

    // A row the database refuses (a rollout of an app the file does not have) rolls it all back.
    let orphan = lines
        .iter()
        .filter(|l| !l.starts_with("{\"table\":\"apps\""))
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let error = target.store.import(orphan.as_bytes()).await.unwrap_err();
    assert!(matches!(error, BackupError::Store(_)), "{error}");
    assert_eq!(contents(&target.store).await, empty, "nothing kept");

    let newer = text.replacen("\"schema\":8", "\"schema\":9", 1);
    let error = target.store.import(newer.as_bytes()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the backup has schema version 9 and this store 8; restore it with the Switchyard \
         version that took it, then upgrade"
    );
    target.store.import(text.as_bytes()).await.unwrap();
}

/// Writes that commit while a backup is being read are wholly in it or wholly not: the event
/// log in the file always verifies and its rollouts match their events.
async fn a_backup_taken_during_writes_is_consistent(backend: Backend) {
    let fx = Fixture::open(backend).await;
    everything(&fx).await;
    let before = all_events(&fx.state()).await.len();
    let state = fx.state();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = Arc::clone(&stop);
    let writer = tokio::spawn(async move {
        let mut written = 0u64;
        while !writing.load(std::sync::atomic::Ordering::Relaxed) {
            state
                .append_events(&[event(EventKind::Measurement, 10_000 + written)])
                .await
                .unwrap();
            written += 1;
        }
        written
    });
    let mut backups = Vec::new();
    for _ in 0..5 {
        backups.push(exported(&fx.store).await);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    backups.push(exported(&fx.store).await);
    for bytes in &backups {
        let target = Fixture::open(Backend::Sqlite).await;
        target.store.import(bytes.as_slice()).await.unwrap();
        let check = target.state().verify_events().await.unwrap();
        assert!(check.ok, "{check:?}");
    }
    let last = Fixture::open(Backend::Sqlite).await;
    last.store
        .import(backups.last().unwrap().as_slice())
        .await
        .unwrap();
    let total = before + usize::try_from(written).unwrap();
    assert_eq!(all_events(&last.state()).await.len(), total);
}

on_both_backends!(
    a_backup_restores_into_an_empty_store,
    incomplete_or_foreign_backups_are_refused_and_leave_the_store_empty,
    a_backup_taken_during_writes_is_consistent,
);
