//! Changes under load lose no request: weight changes, blue-green switches, instance
//! replacement; draining waits for in-flight requests; shutdown drains then forces.

use std::time::Duration;

use http::StatusCode;
use switchyard_proxy::ProxyConfig;
use tokio_util::sync::CancellationToken;

use crate::support::*;

async fn settle() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_changes_under_load_lose_nothing() {
    let stable = TestBackend::start("stable").await;
    let canary = TestBackend::start("canary").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[
        ("stable", 100, &[stable.addr]),
        ("canary", 0, &[canary.addr]),
    ]));
    let stop = CancellationToken::new();
    let run = tokio::spawn(load(p.local_addr(), "/", 8, stop.clone()));
    for step in [5, 10, 25, 50, 75, 100, 50, 0, 100] {
        settle().await;
        p.set_routes(table(&[
            ("stable", 100 - step, &[stable.addr]),
            ("canary", step, &[canary.addr]),
        ]));
    }
    settle().await;
    stop.cancel();
    let r = run.await.unwrap();
    assert!(
        r.failed.is_empty(),
        "{} failures: {:?}",
        r.failed.len(),
        &r.failed[..r.failed.len().min(5)]
    );
    assert!(
        r.ok > 0 && r.bodies.contains_key("canary") && r.bodies.contains_key("stable"),
        "{:?}",
        r.bodies
    );
    p.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switch_and_instance_replacement_lose_nothing() {
    let blue = TestBackend::start("blue").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[blue.addr])]));
    let stop = CancellationToken::new();
    let run = tokio::spawn(load(p.local_addr(), "/slow/2", 8, stop.clone()));
    let mut old = blue;
    for generation in 0..4 {
        settle().await;
        // Start the replacement, switch, wait for the old one to drain, then stop it.
        let new = TestBackend::start(&format!("gen{generation}")).await;
        p.set_routes(table(&[("stable", 1, &[new.addr])]));
        p.drained(old.addr).await;
        old.stop();
        old = new;
    }
    settle().await;
    stop.cancel();
    let r = run.await.unwrap();
    assert!(
        r.failed.is_empty(),
        "{} failures: {:?}",
        r.failed.len(),
        &r.failed[..r.failed.len().min(5)]
    );
    assert!(r.bodies.contains_key("gen3"), "{:?}", r.bodies);
    p.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_instance_finishes_in_flight_requests() {
    let old = TestBackend::start("old").await;
    let new = TestBackend::start("new").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[old.addr])]));
    let c = client();
    let addr = p.local_addr();
    let slow = tokio::spawn(async move { get(&c, addr, "/slow/300").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.set_routes(table(&[("stable", 1, &[new.addr])]));
    assert_eq!(get(&client(), addr, "/").await.1, "new");
    p.drained(old.addr).await;
    assert_eq!(slow.await.unwrap(), (StatusCode::OK, "old".to_owned()));
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_deadline_cuts_what_is_left() {
    let old = TestBackend::start("old").await;
    let new = TestBackend::start("new").await;
    let config = ProxyConfig {
        drain_timeout: Duration::from_millis(100),
        ..ProxyConfig::default()
    };
    let (p, telemetry) = proxy(config).await;
    p.set_routes(table(&[("stable", 1, &[old.addr])]));
    let addr = p.local_addr();
    let slow = tokio::spawn(async move { get(&client(), addr, "/slow/10000").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.set_routes(table(&[("stable", 1, &[new.addr])]));
    p.drained(old.addr).await;
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("drained"), "{body}");
    assert!(telemetry.encode_prometheus().contains("reason=\"drained\""));
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_then_refuses() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let addr = p.local_addr();
    let slow = tokio::spawn(async move { get(&client(), addr, "/slow/300").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.shutdown(Duration::from_secs(10)).await;
    assert_eq!(slow.await.unwrap(), (StatusCode::OK, "stable".to_owned()));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_forces_after_grace() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let addr = p.local_addr();
    let hung = tokio::spawn(async move {
        let req = http::Request::get(format!("http://{addr}/slow/60000"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        client().request(req).await.map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.shutdown(Duration::from_millis(200)).await;
    // The connection was closed under the request: the client sees an error, not a hang.
    assert!(hung.await.unwrap().is_err());
}
