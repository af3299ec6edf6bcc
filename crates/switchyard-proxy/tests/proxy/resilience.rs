//! Instances: connect retries, passive ejection, active health checks, timeouts.

use std::time::Duration;

use http::StatusCode;
use switchyard_proxy::{HealthCheck, ProxyConfig};

use crate::support::*;

#[tokio::test]
async fn connect_failures_are_retried_on_another_instance() {
    let live = TestBackend::start("live").await;
    let dead = dead_addr().await;
    let (p, telemetry) = proxy(ProxyConfig {
        eject_consecutive_failures: 2,
        ..ProxyConfig::default()
    })
    .await;
    p.set_routes(table(&[("stable", 1, &[dead, live.addr])]));
    let c = client();
    for _ in 0..30 {
        assert_eq!(
            get(&c, p.local_addr(), "/").await,
            (StatusCode::OK, "live".to_owned())
        );
    }
    let text = telemetry.encode_prometheus();
    assert!(
        text.contains(&format!(
            "switchyard_proxy_endpoint_ejections_total{{app=\"shop\",endpoint=\"{dead}\"}} 1"
        )),
        "{text}"
    );
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn no_reachable_instance_is_502_naming_the_release() {
    let (p, telemetry) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[(
        "canary",
        1,
        &[dead_addr().await, dead_addr().await],
    )]));
    let (status, body) = get(&client(), p.local_addr(), "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        body.contains("connect_failed") && body.contains("canary"),
        "{body}"
    );
    assert!(telemetry.encode_prometheus().contains("reason=\"connect\""));
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn failing_instance_is_ejected_after_consecutive_5xx() {
    let good = TestBackend::start("good").await;
    let bad = TestBackend::start("fail").await;
    let (p, _) = proxy(ProxyConfig {
        eject_consecutive_failures: 3,
        ..ProxyConfig::default()
    })
    .await;
    p.set_routes(table(&[("stable", 1, &[good.addr, bad.addr])]));
    let c = client();
    let mut errors = 0;
    for _ in 0..100 {
        errors +=
            usize::from(get(&c, p.local_addr(), "/").await.0 == StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(errors, 3);
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn health_checks_take_sick_instances_out() {
    let healthy = TestBackend::start("healthy").await;
    let sick = TestBackend::start("sick").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    let mut t = table(&[("stable", 1, &[healthy.addr, sick.addr])]);
    t.health_check = Some(HealthCheck {
        path: "/health".into(),
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(1),
        healthy_threshold: 1,
        unhealthy_threshold: 2,
    });
    p.set_routes(t);
    let c = client();
    // Wait until checks have run (the sick one answers /health with 503).
    for _ in 0..500 {
        if sick.hits() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..30 {
        assert_eq!(get(&c, p.local_addr(), "/").await.1, "healthy");
    }
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn slow_response_head_is_504_naming_the_release() {
    let b = TestBackend::start("stable").await;
    let (p, telemetry) = proxy(ProxyConfig {
        response_header_timeout: Duration::from_millis(100),
        ..ProxyConfig::default()
    })
    .await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let (status, body) = get(&client(), p.local_addr(), "/slow/5000").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        body.contains("response_timeout") && body.contains("stable"),
        "{body}"
    );
    let w = switchyard_core::ReleaseMetrics::window(
        telemetry.as_ref(),
        "shop",
        "stable",
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!((w.errors(), w.upstream_failures), (1, 1));
    p.shutdown(Duration::from_secs(1)).await;
}
