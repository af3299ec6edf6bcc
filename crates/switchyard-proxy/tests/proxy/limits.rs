//! Bad input and slow clients: answered or cut without reaching upstreams or wedging the proxy.

use std::time::Duration;

use http::StatusCode;
use switchyard_proxy::ProxyConfig;

use crate::support::*;

fn strict() -> ProxyConfig {
    ProxyConfig {
        max_header_bytes: 8192,
        max_headers: 20,
        max_body_bytes: Some(1024),
        header_read_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    }
}

#[tokio::test]
async fn bad_requests_never_reach_upstreams() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(strict()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let addr = p.local_addr();

    let garbage = raw(addr, b"GARBAGE\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");

    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let big = raw(addr, big.as_bytes()).await;
    assert!(big.starts_with("HTTP/1.1 431"), "{big}");

    let many: String = (0..50).map(|i| format!("x-h{i}: v\r\n")).collect();
    let many = raw(
        addr,
        format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert!(many.starts_with("HTTP/1.1 431"), "{many}");

    let declared = raw(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(declared.contains("body_too_large"), "{declared}");

    assert_eq!(b.hits(), 0);
    assert_eq!(
        get(&client(), addr, "/").await,
        (StatusCode::OK, "stable".to_owned())
    );
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_cut() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(strict()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let chunk = "a".repeat(600);
    let req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let answer = raw(p.local_addr(), req.as_bytes()).await;
    // The echo may have started; either way the full 1200 bytes never come back.
    assert!(!answer.contains(&format!("{chunk}{chunk}")), "{answer}");
    assert_eq!(get(&client(), p.local_addr(), "/").await.0, StatusCode::OK);
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn slowloris_and_idle_clients_are_closed() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(strict()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let addr = p.local_addr();
    // An unfinished head, then silence: closed by the header read timeout.
    let partial = raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    assert!(!partial.contains("200 OK"), "{partial}");
    // A connection that sends nothing: closed by the idle timeout.
    assert_eq!(raw(addr, b"").await, "");
    // Many of them at once do not wedge the proxy.
    let clients: Vec<_> = (0..50)
        .map(|_| tokio::spawn(raw(addr, b"GET / HTTP/1.1\r\n")))
        .collect();
    assert_eq!(
        get(&client(), addr, "/").await,
        (StatusCode::OK, "stable".to_owned())
    );
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(b.hits(), 1);
    p.shutdown(Duration::from_secs(1)).await;
}
