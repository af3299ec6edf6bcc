//! The proxy process against a scripted control plane (real HTTP on 127.0.0.1): a version gap
//! answered by asking for a snapshot, a table that does not validate refused while the previous
//! one serves, and reports that say both.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use switchyard_core::dataplane::{AppTable, ListenerState, ProxyReport, TableTarget, TableUpdate};
use switchyard_core::manifest::app::HealthCheck;
use switchyard_core::{AppName, Version};
use tokio_util::sync::CancellationToken;

use super::*;

/// The control plane's side of the script: updates to send, in order, and what it was asked
/// and told.
#[derive(Default)]
struct Script {
    updates: Mutex<VecDeque<TableUpdate>>,
    asked: Mutex<Vec<(u64, u64)>>,
    reports: Mutex<Vec<ProxyReport>>,
}

#[derive(serde::Deserialize)]
struct Asked {
    generation: u64,
    version: u64,
}

async fn tables(State(script): State<Arc<Script>>, Query(q): Query<Asked>) -> Response {
    script.asked.lock().unwrap().push((q.generation, q.version));
    let next = script.updates.lock().unwrap().pop_front();
    match next {
        Some(update) => axum::Json(update).into_response(),
        None => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

async fn reports(State(script): State<Arc<Script>>, body: axum::body::Bytes) -> StatusCode {
    let report: ProxyReport = serde_json::from_slice(&body).unwrap();
    script.reports.lock().unwrap().push(report);
    StatusCode::NO_CONTENT
}

async fn control_plane(script: Arc<Script>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/api/v1/dataplane/tables", get(tables))
        .route("/api/v1/dataplane/reports", post(reports))
        .with_state(script);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A backend answering every request with `name`.
async fn backend(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || async move { name });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn table(listen: SocketAddr, targets: &[(&str, SocketAddr)]) -> AppTable {
    AppTable {
        listen,
        preview_listen: None,
        targets: targets
            .iter()
            .map(|(release, addr)| TableTarget {
                release: Version::new(*release).unwrap(),
                weight: 1,
                endpoints: vec![*addr],
            })
            .collect(),
        header_routes: Vec::new(),
        mirror: None,
        stickiness: None,
        health_check: HealthCheck::default(),
        preview: None,
        experiment: None,
        tls: None,
        upstream_tls: None,
    }
}

fn update(version: u64, base: Option<u64>, apps: Vec<(&str, Option<AppTable>)>) -> TableUpdate {
    TableUpdate {
        generation: 7,
        version,
        base,
        apps: apps
            .into_iter()
            .map(|(a, t)| (AppName::new(a).unwrap(), t))
            .collect::<BTreeMap<_, _>>(),
    }
}

async fn fetch(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out: {what}");
}

#[tokio::test]
async fn a_version_gap_gets_a_snapshot_and_an_invalid_table_is_refused_while_the_last_serves() {
    let (a, b) = (backend("a").await, backend("b").await);
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let script = Arc::new(Script::default());
    script.updates.lock().unwrap().extend([
        update(3, None, vec![("shop", Some(table(listen, &[("v1", a)])))]),
        // A delta on version 5, which this proxy never saw: it must ask for everything.
        update(
            6,
            Some(5),
            vec![("shop", Some(table(listen, &[("v2", b)])))],
        ),
        update(6, None, vec![("shop", Some(table(listen, &[("v2", b)])))]),
        // One release twice: refused, version 6 keeps serving.
        update(
            7,
            Some(6),
            vec![("shop", Some(table(listen, &[("v2", a), ("v2", b)])))],
        ),
    ]);
    let control = control_plane(Arc::clone(&script)).await;
    let dir = tempfile::tempdir().unwrap();
    let options = ProxyOptions {
        control: format!("http://{control}"),
        id: "edge".into(),
        state_dir: dir.path().to_path_buf(),
        token: TokenSource::None,
        report_interval: Duration::from_millis(100),
        grace: Duration::from_millis(100),
        metrics_listen: None,
        takeover: false,
        proxy: ProxyConfig::default(),
    };
    let stop = CancellationToken::new();
    let running = tokio::spawn(run(options, stop.clone()));

    until("the refused version to be reported", || {
        script
            .reports
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.refused.as_ref().is_some_and(|(v, _)| *v == 7))
    })
    .await;
    let asked = script.asked.lock().unwrap().clone();
    assert_eq!(&asked[..4], &[(0, 0), (7, 3), (0, 0), (7, 6)], "{asked:?}");
    let last = script.reports.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.generation, last.version), (7, 6));
    let (_, why) = last.refused.unwrap();
    assert!(why.contains("more than one target"), "{why}");
    assert_eq!(
        last.listeners[&AppName::new("shop").unwrap()].main,
        ListenerState::Bound(listen)
    );
    assert_eq!(fetch(listen).await, "b", "version 6 serves");
    assert_eq!(cache::load(dir.path()).unwrap().unwrap().version, 6);

    stop.cancel();
    running.await.unwrap().unwrap();
    assert!(
        !handoff::path(dir.path()).exists(),
        "a proxy that stops for good removes its handover socket"
    );
}
