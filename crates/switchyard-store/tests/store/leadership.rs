//! The leader lease and fencing on PostgreSQL: one replica leads at a time, a lease runs out by
//! the database's clock, a takeover raises the epoch, and a deposed leader's writes are refused
//! inside their transaction — whatever it believes.

use std::time::Duration;

use switchyard_store::PostgresStore;

use super::*;

const TTL: Duration = Duration::from_millis(300);

/// Three replicas of one database, fencing on.
async fn replicas() -> [PostgresStore; 3] {
    let url = fixture::fresh_postgres_database().await;
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(&url),
        PostgresStore::connect(&url),
        PostgresStore::connect(&url)
    );
    let replicas = [a.unwrap(), b.unwrap(), c.unwrap()];
    for r in &replicas {
        r.enable_fencing();
    }
    replicas
}

/// Campaigns with `replica` until it wins (the lease it waits for runs out by the database's
/// clock); gives up after 200 tries.
async fn win(replica: &PostgresStore, name: &str) -> i64 {
    for _ in 0..200 {
        if let Some(epoch) = replica
            .campaign(name, "http://x", TTL, false)
            .await
            .unwrap()
        {
            return epoch;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never won the lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
async fn one_replica_leads_and_a_deposed_leader_writes_nothing() {
    let [a, b, c] = replicas().await;
    // Before any campaign, nobody may write.
    let refused = a
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::NotLeader {
                held: 0,
                current: None
            })
        ),
        "{refused:?}"
    );

    let first = a.campaign("a", "http://a:7070", TTL, false).await.unwrap();
    assert_eq!(first, Some(1));
    assert_eq!(
        b.campaign("b", "http://b:7070", TTL, false).await.unwrap(),
        None
    );
    a.apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    let refused = b.append_events(&[event(EventKind::Paused, 2_000)]).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::NotLeader {
                held: 0,
                current: Some(1)
            })
        ),
        "a follower's write: {refused:?}"
    );
    let lease = c.leader().await.unwrap().unwrap();
    assert_eq!(
        (lease.holder.as_str(), lease.api.as_str(), lease.epoch),
        ("a", "http://a:7070", 1)
    );
    assert!(lease.expires_in_ms > 0, "{lease:?}");

    // A leader that stops renewing (SIGSTOP) loses the lease once it runs out; b takes over
    // with a new epoch, and a's writes are refused from then on, before and after it notices.
    let second = win(&b, "b").await;
    assert_eq!(second, 2);
    assert_eq!(a.epoch(), Some(1), "a still believes it leads");
    let refused = a
        .create_rollout(
            &app("checkout"),
            &version("v2"),
            "progressing",
            &json!({}),
            &[],
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::NotLeader {
                held: 1,
                current: Some(2)
            })
        ),
        "{refused:?}"
    );
    assert!(
        !a.renew(TTL).await.unwrap(),
        "renewing tells a it was deposed"
    );
    assert_eq!(a.epoch(), None);
    b.create_rollout(
        &app("checkout"),
        &version("v2"),
        "progressing",
        &json!({}),
        &[],
    )
    .await
    .unwrap();
    assert!(b.renew(TTL).await.unwrap());
    assert_eq!(
        c.campaign("c", "http://c", TTL, false).await.unwrap(),
        None,
        "b's lease is live"
    );

    // A clean shutdown hands over at once.
    b.resign().await.unwrap();
    assert_eq!(
        c.campaign("c", "http://c:7070", TTL, false).await.unwrap(),
        Some(3)
    );
    // A restarted replica listening where the leader's lease says reclaims it at once; one at
    // another address waits for it to run out.
    assert_eq!(
        a.campaign("a2", "http://b:7070", TTL, true).await.unwrap(),
        None
    );
    assert_eq!(
        a.campaign("a2", "http://c:7070", TTL, true).await.unwrap(),
        Some(4)
    );
    assert_eq!(
        c.epoch(),
        Some(3),
        "c believes it leads until it writes or renews"
    );
    assert!(!c.renew(TTL).await.unwrap());
    let events = all_events(&(Arc::new(c.clone()) as Arc<dyn StateStore>)).await;
    assert_eq!(
        kinds(&events),
        [EventKind::ManifestApplied, EventKind::ManifestApplied],
        "only the leaders' writes are in the log"
    );
}

/// Without fencing (one daemon, no leader protocol) writes go through as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
async fn writes_are_not_fenced_until_fencing_is_on() {
    let url = fixture::fresh_postgres_database().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    store
        .apply(&both(), &Author::system("user:ann"), at(1_000))
        .await
        .unwrap();
    assert_eq!(store.epoch(), None);
    store.enable_fencing();
    let refused = store
        .append_events(&[event(EventKind::Paused, 2_000)])
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotLeader { .. })),
        "{refused:?}"
    );
}

/// A newer build starting while replicas of the current schema hold a live lease migrates only
/// if every new migration says it is compatible with the schema before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
async fn a_newer_build_refuses_an_incompatible_upgrade_under_running_replicas() {
    let url = fixture::fresh_postgres_database().await;
    let running = PostgresStore::connect(&url).await.unwrap();
    running.enable_fencing();
    assert_eq!(
        running
            .campaign("old", "http://old", Duration::from_secs(60), false)
            .await
            .unwrap(),
        Some(1)
    );
    // The next build: this build's migrations and a 0009.
    let dir = tempfile::tempdir().unwrap();
    let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for entry in std::fs::read_dir(&ours).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let next = |sql: &str| {
        std::fs::write(dir.path().join("0009_widen_apps.sql"), sql).unwrap();
        let path = dir.path().to_path_buf();
        async move { sqlx::migrate::Migrator::new(path).await.unwrap() }
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let plain = next("ALTER TABLE apps RENAME COLUMN generation TO revision;\n").await;
    let error = switchyard_store::postgres::check_upgrade(&pool, &plain, "db")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "replicas of schema 8 are running on the state database db, and this build's schema 9 \
         needs migration 0009_widen_apps, which is not compatible with them; stop every replica \
         and start them all on this build"
    );
    let marked = next(&format!(
        "{}\nALTER TABLE apps ADD COLUMN note TEXT NULL;\n",
        switchyard_store::postgres::COMPATIBLE_MARKER
    ))
    .await;
    switchyard_store::postgres::check_upgrade(&pool, &marked, "db")
        .await
        .unwrap();
    // With no replica running (the lease given up), any upgrade goes.
    running.resign().await.unwrap();
    switchyard_store::postgres::check_upgrade(&pool, &plain, "db")
        .await
        .unwrap();
}
