//! Traffic mirroring: copies (bodies included) reach the mirror release, and nothing the mirror
//! does — answering late, never reading, failing — reaches the real request.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use switchyard_proxy::{Mirror, ProxyConfig, RoutingTable};

use crate::support::*;

const MIRRORED: &str = "switchyard_proxy_mirrored_requests_total{app=\"shop\",release=\"shadow\"}";
const SKIPPED_TOO_LARGE: &str = "switchyard_proxy_mirror_skipped_requests_total{app=\"shop\",release=\"shadow\",reason=\"body_too_large\"}";

fn mirrored(stable: &TestBackend, shadow: std::net::SocketAddr, cap: u64) -> RoutingTable {
    let mut t = table(&[("stable", 1, &[stable.addr]), ("shadow", 0, &[shadow])]);
    t.mirror = Some(Mirror {
        release: "shadow".into(),
        percent: 100.0,
        max_body_bytes: cap,
    });
    t
}

#[tokio::test]
async fn mirror_copies_without_changing_answers() {
    let stable = TestBackend::start("stable").await;
    let shadow = TestBackend::start("fail-shadow").await;
    let (p, telemetry) = proxy(ProxyConfig::default()).await;
    p.set_routes(mirrored(&stable, shadow.addr, 0));
    let c = client();
    for _ in 0..20 {
        assert_eq!(
            get(&c, p.local_addr(), "/").await,
            (StatusCode::OK, "stable".to_owned())
        );
    }
    // Mirrors run in the background; wait for them to land.
    for _ in 0..200 {
        if shadow.hits() == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(shadow.hits(), 20);
    assert_eq!(sample(&telemetry.encode_prometheus(), MIRRORED), Some(20.0));
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn post_bodies_reach_the_primary_and_the_mirror() {
    let stable = TestBackend::start("stable").await;
    let shadow = TestBackend::start("shadow").await;
    let (p, telemetry) = proxy(ProxyConfig::default()).await;
    p.set_routes(mirrored(&stable, shadow.addr, 1 << 20));
    let sent: Vec<String> = (0..3)
        .map(|i| format!("body-{i}-{}", "z".repeat(20_000 * i)))
        .collect();
    // Declared length, chunked, and HTTP/2 (no declared length either).
    assert_eq!(
        post(p.local_addr(), "/record", &sent[0], 1).await,
        (StatusCode::OK, sent[0].clone())
    );
    assert_eq!(
        post(p.local_addr(), "/record", &sent[1], 4).await,
        (StatusCode::OK, sent[1].clone())
    );
    let req = Request::post(format!("http://{}/record", p.local_addr()))
        .body(Full::new(Bytes::from(sent[2].clone())))
        .unwrap();
    let resp = h2_client().request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let echoed = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(echoed, sent[2].as_bytes());

    assert_eq!(stable.bodies(), sent);
    let mut copies = shadow.wait_bodies(3).await;
    copies.sort();
    assert_eq!(copies, sent);
    assert_eq!(sample(&telemetry.encode_prometheus(), MIRRORED), Some(3.0));
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn slow_mirror_never_delays_the_primary() {
    let stable = TestBackend::start("stable").await;
    // Reads the copy, then answers only when released.
    let holding = TestBackend::start("hold-shadow").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(mirrored(&stable, holding.addr, 16 << 20));
    let body = "h".repeat(64 * 1024);
    assert_eq!(
        post(p.local_addr(), "/record", &body, 4).await,
        (StatusCode::OK, body.clone())
    );
    // The primary answered while the mirror has not (it cannot before its release); the mirror
    // still gets the whole copy.
    assert_eq!(holding.answered(), 0);
    assert_eq!(holding.wait_bodies(1).await, vec![body]);
    holding.release();

    // A mirror that never reads: a body larger than the socket buffers between the proxy and
    // it still reaches the primary whole, so the copy never pushes back on the real request.
    let (_deaf, deaf_addr) = deaf_listener().await;
    p.set_routes(mirrored(&stable, deaf_addr, 16 << 20));
    let big = "d".repeat(8 << 20);
    let (status, echoed) = post(p.local_addr(), "/record", &big, 8).await;
    assert_eq!((status, echoed.len()), (StatusCode::OK, big.len()));
    assert_eq!(stable.bodies().last(), Some(&big));
    p.shutdown(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn mirror_failures_never_affect_the_primary() {
    let stable = TestBackend::start("stable").await;
    let failing = TestBackend::start("fail-shadow").await;
    let vanishing = TestBackend::start("hold-vanishing").await;
    let dead = dead_addr().await;
    let (p, telemetry) = proxy(ProxyConfig::default()).await;
    for (i, mirror) in [failing.addr, dead, vanishing.addr].into_iter().enumerate() {
        p.set_routes(mirrored(&stable, mirror, 1 << 20));
        for j in 0..6 {
            let body = format!("{i}-{j}-{}", "f".repeat(j * 5000));
            assert_eq!(
                post(p.local_addr(), "/record", &body, j % 3 + 1).await,
                (StatusCode::OK, body)
            );
        }
        if i == 2 {
            // The mirror drops every connection while holding its answers.
            vanishing.wait_bodies(6).await;
            vanishing.stop();
            assert_eq!(
                post(p.local_addr(), "/record", "after", 1).await.0,
                StatusCode::OK
            );
        }
    }
    let w = switchyard_core::ReleaseMetrics::window(
        telemetry.as_ref(),
        "shop",
        "stable",
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!((w.requests, w.errors()), (19, 0));
    p.shutdown(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn bodies_past_the_mirror_cap_are_not_copied_and_are_counted() {
    let stable = TestBackend::start("stable").await;
    let shadow = TestBackend::start("shadow").await;
    let (p, telemetry) = proxy(ProxyConfig::default()).await;
    p.set_routes(mirrored(&stable, shadow.addr, 1000));
    let declared = "a".repeat(5000);
    let chunked = "b".repeat(3000);
    assert_eq!(
        post(p.local_addr(), "/record", &declared, 1).await,
        (StatusCode::OK, declared.clone())
    );
    assert_eq!(
        post(p.local_addr(), "/record", &chunked, 3).await,
        (StatusCode::OK, chunked.clone())
    );
    let text = telemetry.encode_prometheus();
    assert_eq!(sample(&text, SKIPPED_TOO_LARGE), Some(2.0), "{text}");
    // A small body afterwards is copied; by then neither large body has arrived whole (the
    // chunked copy was cut at the cap, so it never can).
    assert_eq!(
        post(p.local_addr(), "/record", "small", 1).await.0,
        StatusCode::OK
    );
    for _ in 0..1000 {
        if shadow.bodies().iter().any(|b| b == "small") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let copies = shadow.bodies();
    assert!(copies.iter().any(|b| b == "small"), "{copies:?}");
    assert!(!copies.contains(&declared) && !copies.contains(&chunked));
    p.shutdown(Duration::from_secs(1)).await;
}
