//! Weighted split, atomic swap, per-release telemetry, zero-endpoint answers.

use std::time::Duration;

use http::StatusCode;
use switchyard_core::ReleaseMetrics;
use switchyard_proxy::{AppProxy, ProxyConfig, ProxyError, Telemetry};

use crate::support::*;

#[tokio::test]
async fn weighted_split_and_per_release_telemetry() {
    let stable = TestBackend::start("stable").await;
    let canary = TestBackend::start("canary").await;
    let (p, telemetry) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[
        ("stable", 80, &[stable.addr]),
        ("canary", 20, &[canary.addr]),
    ]));
    let c = client();
    let mut canary_hits = 0;
    for _ in 0..400 {
        let (status, body) = get(&c, p.local_addr(), "/").await;
        assert_eq!(status, StatusCode::OK);
        canary_hits += usize::from(body == "canary");
    }
    // 20 % of 400 = 80, sd = 8: a 6-sd band.
    assert!(
        (32..=128).contains(&canary_hits),
        "canary got {canary_hits}"
    );
    let w = telemetry
        .window("shop", "canary", Duration::from_secs(60))
        .unwrap();
    assert_eq!(w.requests as usize, canary_hits);
    assert_eq!(w.status_classes[1] as usize, canary_hits);
    assert!(w.p50.is_some() && w.p99.is_some());
    let s = telemetry
        .window("shop", "stable", Duration::from_secs(60))
        .unwrap();
    assert_eq!(s.requests as usize, 400 - canary_hits);
    assert!(
        telemetry
            .window("shop", "ghost", Duration::from_secs(60))
            .is_none()
    );
    assert!(
        !telemetry
            .latency_buckets("shop", "stable", Duration::from_secs(60))
            .is_empty()
    );
    let text = telemetry.encode_prometheus();
    assert!(text.contains(&format!(
        "switchyard_proxy_requests_total{{app=\"shop\",release=\"canary\",status_class=\"2xx\"}} {canary_hits}"
    )), "{text}");
    assert!(
        text.contains("switchyard_proxy_request_duration_seconds_bucket{"),
        "{text}"
    );
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn swap_moves_traffic_at_once() {
    let blue = TestBackend::start("blue").await;
    let green = TestBackend::start("green").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    let c = client();
    p.set_routes(table(&[
        ("stable", 100, &[blue.addr]),
        ("canary", 0, &[green.addr]),
    ]));
    for _ in 0..20 {
        assert_eq!(get(&c, p.local_addr(), "/").await.1, "blue");
    }
    p.set_routes(table(&[
        ("stable", 0, &[blue.addr]),
        ("canary", 100, &[green.addr]),
    ]));
    for _ in 0..20 {
        assert_eq!(get(&c, p.local_addr(), "/").await.1, "green");
    }
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn release_without_endpoints_is_503_naming_it() {
    let (p, telemetry) = proxy(ProxyConfig::default()).await;
    let c = client();
    let (status, body) = get(&c, p.local_addr(), "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("no_weight"), "{body}");
    p.set_routes(table(&[("canary", 1, &[])]));
    let (status, body) = get(&c, p.local_addr(), "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("release \\\"canary\\\" has no endpoints"),
        "{body}"
    );
    let w = telemetry
        .window("shop", "canary", Duration::from_secs(10))
        .unwrap();
    assert_eq!((w.requests, w.errors(), w.upstream_failures), (1, 1, 1));
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let (p, _) = proxy(ProxyConfig::default()).await;
    let addr = p.local_addr();
    let err = AppProxy::bind(
        "other",
        addr,
        ProxyConfig::default(),
        std::sync::Arc::new(Telemetry::new()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProxyError::Bind { addr: a, .. } if a == addr));
    assert!(err.to_string().contains(&addr.to_string()));
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn http2_prior_knowledge_and_streaming_echo() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let (status, body) = get(&h2_client(), p.local_addr(), "/").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "stable"));
    let payload = "x".repeat(1 << 20);
    let req = http::Request::post(format!("http://{}/echo", p.local_addr()))
        .body(http_body_util::Full::new(bytes::Bytes::from(
            payload.clone(),
        )))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.headers()["x-release"], "stable");
    let got = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(got.len(), payload.len());
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn forwarded_and_request_id_headers() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let (_, body) = get_with(
        &client(),
        p.local_addr(),
        "/headers",
        &[("connection", "keep-alive, x-drop"), ("x-drop", "1")],
    )
    .await;
    assert!(body.contains("x-forwarded-for: 127.0.0.1\n"), "{body}");
    assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
    assert!(body.contains("x-forwarded-host: 127.0.0.1:"), "{body}");
    assert!(body.contains("x-request-id: "), "{body}");
    assert!(!body.contains("x-drop"), "{body}");
    p.shutdown(Duration::from_secs(1)).await;
}

/// The client's own `X-Forwarded-*` and request id, on a request without a body (the proxy's
/// inline exchange writes the added fields) and one with a body (hyper's client gets them in
/// its map): the same fields reach the instance, once each.
#[tokio::test]
async fn forwarded_fields_of_the_client_are_extended_or_kept_on_both_paths() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let c = client();
    for body in ["", "a body"] {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let req = http::Request::builder()
            .method(method)
            .uri(format!("http://{}/headers", p.local_addr()))
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-forwarded-host", "first.example")
            .header("x-request-id", "client-id")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let resp = c.request(req).await.unwrap();
        assert_eq!(resp.headers()["x-request-id"], "client-id", "{method}");
        let seen = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let seen = String::from_utf8_lossy(&seen);
        let lines = |name: &str| {
            seen.lines()
                .filter(|l| l.starts_with(&format!("{name}: ")))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines("x-forwarded-for"),
            ["x-forwarded-for: 10.0.0.1, 127.0.0.1"],
            "{method}: {seen}"
        );
        assert_eq!(
            lines("x-forwarded-host"),
            ["x-forwarded-host: first.example"]
        );
        assert_eq!(lines("x-forwarded-proto"), ["x-forwarded-proto: http"]);
        assert_eq!(lines("x-request-id"), ["x-request-id: client-id"]);
    }
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn reuse_port_lets_workers_share_a_listener() {
    let b = TestBackend::start("stable").await;
    let config = ProxyConfig {
        reuse_port: true,
        ..ProxyConfig::default()
    };
    let (first, telemetry) = proxy(config.clone()).await;
    let second = AppProxy::bind("shop", first.local_addr(), config, telemetry.clone())
        .await
        .unwrap();
    for p in [&first, &second] {
        p.set_routes(table(&[("stable", 1, &[b.addr])]));
    }
    // Without the option the port is taken.
    let err = AppProxy::bind(
        "shop",
        first.local_addr(),
        ProxyConfig::default(),
        telemetry,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProxyError::Bind { .. }), "{err}");
    for _ in 0..20 {
        // Fresh connections, spread by the kernel over both listeners.
        assert_eq!(
            get(&client(), first.local_addr(), "/").await,
            (StatusCode::OK, "stable".to_owned())
        );
    }
    first.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        get(&client(), second.local_addr(), "/").await.0,
        StatusCode::OK
    );
    second.shutdown(Duration::from_secs(1)).await;
}
