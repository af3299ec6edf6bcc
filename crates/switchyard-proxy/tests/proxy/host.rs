//! [`ProxyHost`]: the apps of a proxy process kept in line with the control plane's tables,
//! through real sockets: an invalid update refused whole while the previous tables serve,
//! listeners that move, cannot move, or close, and sockets handed to another host.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use switchyard_core::dataplane::{AppTable, ListenerState, TableTarget};
use switchyard_core::manifest::app::HealthCheck;
use switchyard_core::{AppName, Version};
use switchyard_proxy::host::ProxyHost;
use switchyard_proxy::{ProxyConfig, Telemetry};

use crate::support::*;

fn app_table(listen: SocketAddr, targets: &[(&str, &[SocketAddr])]) -> AppTable {
    AppTable {
        listen,
        preview_listen: None,
        targets: targets
            .iter()
            .map(|(release, endpoints)| TableTarget {
                release: Version::new(*release).unwrap(),
                weight: 100,
                endpoints: endpoints.to_vec(),
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

fn name(s: &str) -> AppName {
    AppName::new(s).unwrap()
}

fn host() -> ProxyHost {
    ProxyHost::new(
        ProxyConfig::default(),
        Arc::new(Telemetry::new()),
        None,
        Duration::from_millis(200),
    )
}

async fn bound(host: &ProxyHost, app: &str) -> ListenerState {
    host.listeners().await[&name(app)].main.clone()
}

async fn addr_of(host: &ProxyHost, app: &str) -> SocketAddr {
    match bound(host, app).await {
        ListenerState::Bound(addr) => addr,
        other => panic!("{app} is not bound: {other:?}"),
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn an_invalid_update_is_refused_whole_and_the_previous_tables_keep_serving() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    let host = host();
    let mut tables = BTreeMap::from([
        (name("shop"), app_table(any_port(), &[("v1", &[a.addr])])),
        (name("cart"), app_table(any_port(), &[("v1", &[b.addr])])),
    ]);
    host.sync(&tables).await.unwrap();
    let (shop, cart) = (addr_of(&host, "shop").await, addr_of(&host, "cart").await);
    let c = client();
    assert_eq!(get(&c, shop, "/").await.1, "a");
    assert_eq!(get(&c, cart, "/").await.1, "b");

    // Cart moves to backend a, but shop's new table lists one release twice: nothing of the
    // update applies.
    let mut bad = tables.clone();
    bad.insert(name("cart"), app_table(cart, &[("v1", &[a.addr])]));
    bad.insert(
        name("shop"),
        app_table(shop, &[("v1", &[a.addr]), ("v1", &[b.addr])]),
    );
    let err = host.sync(&bad).await.unwrap_err();
    assert_eq!(err.app, name("shop"));
    assert!(err.problem.contains("more than one target"), "{err}");
    assert_eq!(
        get(&c, cart, "/").await.1,
        "b",
        "cart's change was not applied"
    );
    assert_eq!(get(&c, shop, "/").await.1, "a");

    // A valid update applies; an unchanged app keeps its listener.
    tables.insert(name("cart"), app_table(cart, &[("v2", &[a.addr])]));
    tables.insert(name("shop"), app_table(shop, &[("v1", &[a.addr])]));
    host.sync(&tables).await.unwrap();
    assert_eq!(get(&c, cart, "/").await.1, "a");
    assert_eq!(addr_of(&host, "shop").await, shop);
}

#[tokio::test]
async fn listeners_move_stay_when_they_cannot_move_and_close_with_their_app() {
    let a = TestBackend::start("a").await;
    let host = host();
    let mut tables = BTreeMap::from([(name("shop"), app_table(any_port(), &[("v1", &[a.addr])]))]);
    host.sync(&tables).await.unwrap();
    let first = addr_of(&host, "shop").await;

    // Moved to an address in use: it stays where it was, and says why.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    tables.insert(name("shop"), app_table(taken_addr, &[("v1", &[a.addr])]));
    host.sync(&tables).await.unwrap();
    match bound(&host, "shop").await {
        ListenerState::Failed(why) => {
            assert!(
                why.contains(&format!("cannot move from {first} to {taken_addr}")),
                "{why}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let c = client();
    assert_eq!(get(&c, first, "/").await, (StatusCode::OK, "a".to_owned()));

    // Once the address is free, the next sync moves it; the old listener closes.
    drop(taken);
    host.sync(&tables).await.unwrap();
    assert_eq!(addr_of(&host, "shop").await, taken_addr);
    assert_eq!(get(&c, taken_addr, "/").await.1, "a");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        tokio::net::TcpStream::connect(first).await.is_err(),
        "the old listener closed"
    );

    // Removed: its listener closes.
    host.sync(&BTreeMap::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(tokio::net::TcpStream::connect(taken_addr).await.is_err());
    assert!(host.listeners().await.is_empty());
}

#[tokio::test]
async fn handed_over_sockets_serve_in_the_next_host_without_refusing_a_connection() {
    let a = TestBackend::start("a").await;
    let old = host();
    let tables = BTreeMap::from([(name("shop"), app_table(any_port(), &[("v1", &[a.addr])]))]);
    old.sync(&tables).await.unwrap();
    let addr = addr_of(&old, "shop").await;

    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(load(addr, "/", 4, stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new = host();
    new.inherit(old.sockets().await);
    new.sync(&tables).await.unwrap();
    assert_eq!(addr_of(&new, "shop").await, addr, "the same socket");
    old.shutdown(Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let report = running.await.unwrap();
    assert!(report.ok > 50, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(get(&client(), addr, "/").await.1, "a");
}

#[tokio::test]
async fn worker_threads_serve_every_connection_and_hand_the_socket_over() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    let config = ProxyConfig {
        workers: Some(switchyard_proxy::Workers::start(2).unwrap()),
        ..ProxyConfig::default()
    };
    let host = ProxyHost::new(
        config,
        Arc::new(Telemetry::new()),
        None,
        Duration::from_millis(200),
    );
    let tables = BTreeMap::from([(
        name("shop"),
        app_table(any_port(), &[("v1", &[a.addr]), ("v2", &[b.addr])]),
    )]);
    host.sync(&tables).await.unwrap();
    let shop = addr_of(&host, "shop").await;
    // Fresh connections (spread over the workers by the kernel) and kept-alive ones.
    let mut answers = Vec::new();
    for _ in 0..40 {
        answers.push(
            raw(
                shop,
                b"GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n",
            )
            .await,
        );
    }
    let c = client();
    for _ in 0..40 {
        let (status, body) = get(&c, shop, "/").await;
        assert_eq!(status, http::StatusCode::OK);
        assert!(body == "a" || body == "b", "{body}");
    }
    assert!(
        answers.iter().all(|a| a.starts_with("HTTP/1.1 200")),
        "{answers:?}"
    );
    assert!(a.hits() + b.hits() >= 80);
    // The listening socket can still be handed over, and a shutdown finishes.
    assert_eq!(host.sockets().await.len(), 1);
    host.shutdown(Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(shop).await.is_err(),
        "still accepting"
    );
}
