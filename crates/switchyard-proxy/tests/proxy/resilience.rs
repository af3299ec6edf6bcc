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

/// A client connection keeps its response-header timer from one request to the next: the
/// timeout holds after answered requests and after a timeout on the same connection.
#[tokio::test]
async fn the_response_head_timeout_holds_on_every_request_of_a_connection() {
    let b = TestBackend::start("stable").await;
    // Long enough that an answered request never meets it on a busy machine.
    let (p, _) = proxy(ProxyConfig {
        response_header_timeout: Duration::from_secs(5),
        ..ProxyConfig::default()
    })
    .await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    // One client: its requests, one after another, go over one kept-alive connection.
    let c = client();
    let expected = [
        ("/", StatusCode::OK),
        ("/slow/60000", StatusCode::GATEWAY_TIMEOUT),
        ("/", StatusCode::OK),
        ("/", StatusCode::OK),
        ("/slow/60000", StatusCode::GATEWAY_TIMEOUT),
    ];
    for (path, status) in expected {
        assert_eq!(get(&c, p.local_addr(), path).await.0, status, "{path}");
    }
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn connect_timeout_is_504_naming_the_release() {
    let (_listener, _fillers, hanging) = unconnectable().await;
    let (p, telemetry) = proxy(ProxyConfig {
        connect_timeout: Duration::from_millis(200),
        ..ProxyConfig::default()
    })
    .await;
    p.set_routes(table(&[("canary", 1, &[hanging])]));
    let (status, body) = get(&client(), p.local_addr(), "/").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        body.contains("connect_timeout") && body.contains("canary"),
        "{body}"
    );
    let text = telemetry.encode_prometheus();
    assert!(text.contains("reason=\"connect_timeout\""), "{text}");
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn connect_timeout_on_one_instance_is_retried_on_another() {
    let (_listener, _fillers, hanging) = unconnectable().await;
    let live = TestBackend::start("live").await;
    let (p, _) = proxy(ProxyConfig {
        connect_timeout: Duration::from_millis(200),
        ..ProxyConfig::default()
    })
    .await;
    p.set_routes(table(&[("stable", 1, &[hanging, live.addr])]));
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            get(&c, p.local_addr(), "/").await,
            (StatusCode::OK, "live".to_owned())
        );
    }
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn upstream_body_that_stops_moving_is_cut_at_the_idle_timeout() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig {
        idle_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    })
    .await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let c = client();
    let req = http::Request::get(format!("http://{}/stall", p.local_addr()))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = http_body_util::BodyExt::frame(&mut body)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap().as_ref(), b"first");
    // The upstream never sends another byte: the proxy cuts the body instead of hanging.
    let rest = http_body_util::BodyExt::collect(body).await;
    assert!(rest.is_err(), "the stalled body must end in an error");
    assert_eq!(
        get(&c, p.local_addr(), "/").await,
        (StatusCode::OK, "stable".to_owned())
    );
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn request_body_that_stops_moving_is_cut_at_the_idle_timeout() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig {
        idle_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    })
    .await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    // A declared body of 100 bytes of which 5 arrive, then silence.
    let answer = raw(
        p.local_addr(),
        b"POST /record HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhello",
    )
    .await;
    assert!(!answer.contains("200 OK"), "{answer}");
    // The upstream saw the body fail instead of waiting forever for the rest.
    assert_eq!(b.wait_bodies(1).await, vec!["!cut".to_owned()]);
    p.shutdown(Duration::from_secs(1)).await;
}
