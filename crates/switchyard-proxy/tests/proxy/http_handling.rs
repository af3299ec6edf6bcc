//! HTTP handling through the proxy: bodies stream both ways chunk by chunk, upstream connections
//! are pooled and reused, and requests go to the instance with fewer requests in flight.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchyard_proxy::ProxyConfig;

use crate::support::*;

#[tokio::test]
async fn bodies_stream_both_ways_without_waiting_for_the_end() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    for http2 in [false, true] {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut builder = Client::builder(TokioExecutor::new());
        builder.http2_only(http2);
        let c = builder.build_http::<Fed>();
        let req = Request::post(format!("http://{}/echo", p.local_addr()))
            .body(Fed(rx))
            .unwrap();
        let pending = tokio::spawn(async move { c.request(req).await });
        // Each chunk comes back through proxy and backend before the next one is sent: had
        // anything waited for the whole body, this would never finish.
        tx.send(Bytes::from_static(b"ping-1")).await.unwrap();
        let resp = pending.await.unwrap().unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.into_body();
        for i in 1..=3 {
            if i > 1 {
                tx.send(Bytes::from(format!("ping-{i}"))).await.unwrap();
            }
            let frame = body.frame().await.unwrap().unwrap();
            assert_eq!(frame.into_data().unwrap(), format!("ping-{i}"));
        }
        drop(tx);
        assert!(body.collect().await.unwrap().to_bytes().is_empty());
    }
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    for _ in 0..50 {
        // A fresh client connection each time: reuse is the proxy's, not the client's.
        assert_eq!(get(&client(), p.local_addr(), "/").await.0, StatusCode::OK);
    }
    assert_eq!(b.hits(), 50);
    assert_eq!(b.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn requests_go_to_the_instance_with_fewer_in_flight() {
    let busy = TestBackend::start("hold-busy").await;
    let idle = TestBackend::start("idle").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[busy.addr, idle.addr])]));
    let addr = p.local_addr();
    // Send requests until one is stuck on the holding instance.
    let mut stuck = Vec::new();
    while busy.hits() == 0 {
        stuck.push(tokio::spawn(async move { get(&client(), addr, "/").await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // With one request in flight there and none on the other, power of two choices over two
    // instances always picks the idle one.
    let c = client();
    for _ in 0..30 {
        assert_eq!(
            get(&c, addr, "/").await,
            (StatusCode::OK, "idle".to_owned())
        );
    }
    assert_eq!(busy.hits(), 1);
    busy.release();
    for s in stuck {
        assert_eq!(s.await.unwrap().0, StatusCode::OK);
    }
    p.shutdown(Duration::from_secs(1)).await;
}
