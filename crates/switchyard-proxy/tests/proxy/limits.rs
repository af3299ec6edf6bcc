//! Bad input and slow clients: answered or cut without reaching upstreams or wedging the proxy.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
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

/// The default limit of 100 header lines holds exactly: 100 are passed on, 101 get 431 from the
/// proxy. (The default is hyper's own, which the proxy leaves unset for speed.)
#[tokio::test]
async fn the_default_header_count_limit_is_one_hundred() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let request = |lines: usize| {
        let extra: String = (2..lines).map(|i| format!("x-h{i}: v\r\n")).collect();
        format!("GET / HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
    };
    // A hundred lines pass the proxy: its request path answers, with a request id (whatever
    // the backend, whose own limit is not the proxy's, made of them with the forwarding
    // headers added).
    let hundred = raw(p.local_addr(), request(100).as_bytes()).await;
    assert!(hundred.contains("x-request-id:"), "{hundred}");
    // A hundred and one are refused by the proxy's parser, before any request path.
    let over = raw(p.local_addr(), request(101).as_bytes()).await;
    assert!(over.starts_with("HTTP/1.1 431"), "{over}");
    assert!(!over.contains("x-request-id:"), "{over}");
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
    // An unfinished head, then silence: answered 408 and closed by the header read timeout
    // (200 ms from the head's first byte, before the connection's idle timeout of 300 ms).
    let partial = raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    assert!(partial.starts_with("HTTP/1.1 408 "), "{partial}");
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

/// One HTTP/2 (prior knowledge) connection to `addr`, and the task driving it, which ends when
/// the connection closes.
async fn h2_connection(
    addr: std::net::SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, driver)
}

fn h2_get(addr: std::net::SocketAddr, headers: &[(String, String)]) -> Request<Full<Bytes>> {
    let mut b = Request::get(format!("http://{addr}/")).version(http::Version::HTTP_2);
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

async fn answer(
    send: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (StatusCode, String) {
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// HTTP/2 header limits (`strict()`: 8 KiB, 20 fields): a header list over `max_header_bytes`
/// gets 431 on its stream and a request with too many fields gets 431 `too_many_headers`; neither
/// reaches the upstream, and a request in flight on the same connection, and the connection
/// itself, carry on.
#[tokio::test]
async fn http2_header_limits_answer_431_and_the_connection_lives_on() {
    let b = TestBackend::start("hold").await;
    let (p, _) = proxy(strict()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let addr = p.local_addr();
    let (mut send, driver) = h2_connection(addr).await;

    let mut in_flight = send.clone();
    let held = tokio::spawn(async move { answer(&mut in_flight, h2_get(addr, &[])).await });
    for _ in 0..1000 {
        if b.hits() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.hits(), 1, "the first request never reached the backend");

    // One HEADERS frame; then a block spanning CONTINUATION frames ('~' does not shrink under
    // HPACK's Huffman code, so 30 000 of them exceed the 16 KiB frame size), still under 4×.
    for big in ["a".repeat(10_000), "~".repeat(30_000)] {
        let big = vec![("x-big".to_owned(), big)];
        let (status, body) = answer(&mut send, h2_get(addr, &big)).await;
        assert_eq!(
            status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "{body}"
        );
    }

    let many: Vec<_> = (0..30)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    let (status, body) = answer(&mut send, h2_get(addr, &many)).await;
    assert_eq!(
        status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{body}"
    );
    assert!(body.contains("too_many_headers"), "{body}");

    // Cookies split into one field each (as browsers do over HTTP/2) count as one line.
    let crumbs: Vec<_> = (0..30)
        .map(|i| ("cookie".to_owned(), format!("c{i}=v")))
        .collect();
    let mut crumbs_sent = send.clone();
    let crumbs_answer =
        tokio::spawn(async move { answer(&mut crumbs_sent, h2_get(addr, &crumbs)).await });

    assert_eq!(b.hits(), 1, "a refused request reached the backend");
    b.release();
    assert_eq!(
        held.await.unwrap(),
        (StatusCode::OK, "hold".to_owned()),
        "the request in flight was disturbed"
    );
    assert_eq!(
        crumbs_answer.await.unwrap(),
        (StatusCode::OK, "hold".to_owned())
    );
    assert_eq!(
        answer(&mut send, h2_get(addr, &[])).await,
        (StatusCode::OK, "hold".to_owned())
    );
    assert!(!driver.is_finished(), "the connection was closed");
    assert_eq!(b.hits(), 3);
    drop(send);
    p.shutdown(Duration::from_secs(1)).await;
}

/// A header list more than four times `max_header_bytes` is abuse: `h2` stops decoding and closes
/// the connection (GOAWAY ENHANCE_YOUR_CALM). The request fails, nothing reaches the upstream,
/// and new connections are served.
#[tokio::test]
async fn http2_header_list_far_over_the_limit_closes_the_connection() {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(strict()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let addr = p.local_addr();
    let (mut send, driver) = h2_connection(addr).await;
    let huge = vec![("x-big".to_owned(), "a".repeat(40_000))];
    let refused = send.send_request(h2_get(addr, &huge)).await;
    assert!(refused.is_err(), "{refused:?}");
    tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("the connection stayed open")
        .unwrap();
    assert_eq!(b.hits(), 0);
    assert_eq!(
        get(&h2_client(), addr, "/").await,
        (StatusCode::OK, "stable".to_owned())
    );
    p.shutdown(Duration::from_secs(1)).await;
}

/// What a client breaks is the client's: 400/413/408, never a 5xx of the release, never an
/// ejection, and the release's next requests are served.
#[tokio::test]
async fn client_faults_are_answered_as_such_and_never_blamed_on_the_release() {
    use switchyard_core::ReleaseMetrics as _;
    let b = TestBackend::start("stable").await;
    let config = ProxyConfig {
        eject_consecutive_failures: 2,
        ..strict()
    };
    let (p, telemetry) = proxy(config).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    let addr = p.local_addr();

    // Malformed chunked framing, many times over (more than the ejection threshold).
    for _ in 0..5 {
        let malformed = raw(
            addr,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
        )
        .await;
        assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");
        assert!(malformed.contains("malformed_body"), "{malformed}");
    }
    // A body that streams past the limit without declaring its length.
    let mut big = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..4 {
        big.extend_from_slice(b"200\r\n");
        big.extend_from_slice(&[b'a'; 512]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b"0\r\n\r\n");
    let too_large = raw(addr, &big).await;
    assert!(too_large.starts_with("HTTP/1.1 413"), "{too_large}");
    // A body that stops arriving.
    let idle = raw(
        addr,
        b"POST /record HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly a few",
    )
    .await;
    // The body's idle timeout (408) and the connection's (closed without an answer) are the
    // same length; either may act first.
    assert!(
        idle.is_empty() || idle.starts_with("HTTP/1.1 408"),
        "{idle}"
    );

    let totals = telemetry.totals("shop", "stable").unwrap();
    assert_eq!(
        totals.errors, 0,
        "no 5xx counted against the release: {totals:?}"
    );
    let text = telemetry.encode_prometheus();
    assert!(
        !text.contains("endpoint_ejections_total{app=\"shop\""),
        "no ejection:\n{text}"
    );
    for _ in 0..10 {
        assert_eq!(
            get(&client(), addr, "/").await,
            (StatusCode::OK, "stable".to_owned())
        );
    }
}
