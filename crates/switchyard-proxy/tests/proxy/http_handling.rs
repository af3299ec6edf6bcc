//! HTTP handling through the proxy: bodies stream both ways chunk by chunk, upstream connections
//! are pooled and reused, and requests go to the instance with fewer requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A keep-alive HTTP/1.1 backend written by hand: it answers `ok` to every request head and,
/// with `keep_alive`, closes a connection that has been idle that long after an answer (as an
/// instance's keep-alive timeout does, without saying so; a new connection waits for its first
/// request however long it takes). Counts connections accepted and connections that ended.
async fn plain_backend(
    keep_alive: Option<Duration>,
) -> (std::net::SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, e) = (accepted.clone(), ended.clone());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            a.fetch_add(1, Ordering::SeqCst);
            let e = e.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let mut answered = false;
                loop {
                    let read = match keep_alive.filter(|_| answered && seen.is_empty()) {
                        Some(idle) => tokio::time::timeout(idle, stream.read(&mut buf)).await,
                        None => Ok(stream.read(&mut buf).await),
                    };
                    match read {
                        Err(_) | Ok(Ok(0) | Err(_)) => break,
                        Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            break;
                        }
                        answered = true;
                    }
                }
                e.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, accepted, ended)
}

/// An instance may close an idle pooled connection at any moment: the next request never fails
/// for it (a connection seen closed is dropped; one that closes as the request is handed over
/// gives the request back, and it goes on a new connection).
#[tokio::test]
async fn pooled_connections_the_instance_closed_are_never_used() {
    let (backend, accepted, ended) = plain_backend(Some(Duration::from_millis(2))).await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[backend])]));
    let c = client();
    for i in 0..20 {
        assert_eq!(
            get(&c, p.local_addr(), "/").await,
            (StatusCode::OK, "ok".to_owned()),
            "request {i}"
        );
        // The pooled connection is closed by the instance before the next request.
        while ended.load(Ordering::SeqCst) <= i {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 20);
    p.shutdown(Duration::from_secs(1)).await;
}

/// An idle pooled connection is closed once it has been idle for the pool's idle timeout, also
/// when no request comes to find it.
#[tokio::test]
async fn idle_pooled_connections_are_closed_after_the_idle_timeout() {
    let (backend, accepted, ended) = plain_backend(None).await;
    let config = ProxyConfig {
        pool_idle_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let (p, _) = proxy(config).await;
    p.set_routes(table(&[("stable", 1, &[backend])]));
    assert_eq!(get(&client(), p.local_addr(), "/").await.0, StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while ended.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the idle connection was never closed");
    // The next request connects again.
    assert_eq!(get(&client(), p.local_addr(), "/").await.0, StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
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
