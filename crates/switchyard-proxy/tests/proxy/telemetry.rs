//! Telemetry through a running proxy: releases removed from every table are forgotten once their
//! window is empty, so memory follows live releases.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use switchyard_core::ReleaseMetrics;
use switchyard_proxy::{AppProxy, ProxyConfig, Telemetry};

use crate::support::*;

#[tokio::test]
async fn removed_release_leaves_telemetry_after_its_window() {
    let stable = TestBackend::start("stable").await;
    let canary = TestBackend::start("canary").await;
    // A one-second ring, so that the window passes quickly.
    let telemetry = Arc::new(Telemetry::with_ring_seconds(1));
    let p = AppProxy::bind(
        "shop",
        "127.0.0.1:0".parse().unwrap(),
        ProxyConfig::default(),
        telemetry.clone(),
    )
    .await
    .unwrap();
    p.set_routes(table(&[
        ("stable", 1, &[stable.addr]),
        ("canary", 1, &[canary.addr]),
    ]));
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, p.local_addr(), "/").await.0, StatusCode::OK);
    }
    assert_eq!(telemetry.tracked_releases(), 2);
    p.set_routes(table(&[("stable", 1, &[stable.addr])]));

    // Wait (bounded) for the canary's window to empty and a sweep to notice; the test asserts
    // the outcome, not how long it took.
    for _ in 0..100 {
        if telemetry.tracked_releases() == 1 {
            break;
        }
        assert_eq!(get(&c, p.local_addr(), "/").await.0, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(telemetry.tracked_releases(), 1);
    let text = telemetry.encode_prometheus();
    assert!(!text.contains("release=\"canary\""), "{text}");
    assert!(text.contains("release=\"stable\""), "{text}");
    let window = Duration::from_secs(1);
    assert!(telemetry.window("shop", "canary", window).is_none());
    assert!(telemetry.window("shop", "stable", window).is_some());
    p.shutdown(Duration::from_secs(1)).await;
}
