//! How clients' HTTP/1.1 requests are read and answered: pipelined requests, heads split across
//! reads, a connection that changes readers at its first request with a body, answers that
//! stream, answers without a body. Each client is a raw socket, so that the bytes on the wire
//! are the test's choice.

use std::time::Duration;

use switchyard_proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The proxy in front of one `stable` backend.
async fn stable() -> (TestBackend, switchyard_proxy::AppProxy) {
    let b = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[b.addr])]));
    (b, p)
}

/// A connection to `addr` with `bytes` written on it.
async fn sent(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

/// Everything the proxy sends on `s` until it closes the connection, which it must: each
/// exchange here ends with `Connection: close` or the client's own close. Bounded, so that a
/// connection left open fails the test instead of hanging it.
async fn until_closed(mut s: TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(matches!(read, Ok(Ok(_))), "not closed: {read:?}: {answer}");
    answer
}

/// The status codes of the responses in `answer`, in order.
fn statuses(answer: &str) -> Vec<&str> {
    answer
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &answer[at + 9..at + 12])
        .collect()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_b, p) = stable().await;
    let answer = until_closed(
        sent(
            p.local_addr(),
            b"GET /status/404 HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /headers HTTP/1.1\r\nHost: x\r\nX-Mark: second\r\n\r\n\
              GET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await,
    )
    .await;
    assert_eq!(statuses(&answer), ["404", "200", "202"], "{answer}");
    assert!(answer.contains("x-mark: second"), "{answer}");
    assert!(answer.contains("\r\ndate: "), "{answer}");
}

#[tokio::test]
async fn a_head_arriving_a_byte_at_a_time_is_read_whole() {
    let (b, p) = stable().await;
    let head = b"GET /headers HTTP/1.1\r\nHost: x\r\nX-Split: yes\r\nConnection: close\r\n\r\n";
    let mut s = sent(p.local_addr(), &head[..1]).await;
    for byte in &head[1..] {
        s.write_all(&[*byte]).await.unwrap();
    }
    let answer = until_closed(s).await;
    assert_eq!(statuses(&answer), ["200"], "{answer}");
    assert!(answer.contains("x-split: yes"), "{answer}");
    assert_eq!(b.hits(), 1);
}

/// Requests without a body are the proxy's own reader's; the first with a body hands the
/// connection to hyper, which serves it from there on, and nothing read before is lost.
#[tokio::test]
async fn a_connection_changes_readers_at_its_first_request_with_a_body() {
    let (b, p) = stable().await;
    let answer = until_closed(
        sent(
            p.local_addr(),
            b"GET /status/203 HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
              GET /status/204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await,
    )
    .await;
    assert_eq!(statuses(&answer), ["203", "200", "204"], "{answer}");
    assert!(answer.contains("hello"), "{answer}");
    assert_eq!(b.hits(), 3);
}

#[tokio::test]
async fn an_answer_goes_out_as_it_streams() {
    let (_b, p) = stable().await;
    let mut s = sent(p.local_addr(), b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // The backend sends `first` and then nothing: it reaches the client in a chunk while the
    // body is still open.
    let mut answer = Vec::new();
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        let mut piece = [0u8; 1024];
        while !String::from_utf8_lossy(&answer).contains("\r\n5\r\nfirst\r\n") {
            let n = s.read(&mut piece).await.unwrap();
            assert_ne!(n, 0, "closed: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&piece[..n]);
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(seen.is_ok(), "{answer}");
    assert!(answer.contains("transfer-encoding: chunked"), "{answer}");
}

#[tokio::test]
async fn an_answer_to_head_has_no_body_and_the_connection_goes_on() {
    let (b, p) = stable().await;
    let answer = until_closed(
        sent(
            p.local_addr(),
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n\
              GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await,
    )
    .await;
    assert_eq!(statuses(&answer), ["200", "200"], "{answer}");
    // The body comes once: after the GET.
    assert_eq!(answer.matches("stable").count(), 1, "{answer}");
    assert!(answer.ends_with("\r\n\r\nstable"), "{answer}");
    assert_eq!(b.hits(), 2);
}

/// A client that closes its side after a request still gets the answer.
#[tokio::test]
async fn a_request_followed_by_the_clients_close_is_answered() {
    let (_b, p) = stable().await;
    let mut s = sent(
        p.local_addr(),
        b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    s.shutdown().await.unwrap();
    let answer = until_closed(s).await;
    assert_eq!(statuses(&answer), ["201"], "{answer}");
}
