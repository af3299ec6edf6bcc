//! How instances' responses are read: every framing HTTP/1.1 allows, interim responses, bodies
//! that must not be read, responses that break the protocol, and connections an instance
//! closes under a request. The instances are written by hand so that each byte on the wire is
//! the test's choice; their answers are sent a few bytes at a time, so that heads, chunk-size
//! lines and bodies are split across reads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use switchyard_proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// What the instance does with one request.
enum Answer {
    /// Writes these bytes and keeps the connection for the next request.
    Keep(&'static [u8]),
    /// Writes these bytes and closes the connection.
    Close(&'static [u8]),
}

/// A hand-written instance: answers each request head by `answer(method, path)`. Counts the
/// connections it accepted and keeps the request heads it read.
struct Scripted {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(answer: fn(&str, &str) -> Answer) -> Scripted {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (accepted.clone(), heads.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                a.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, answer, h.clone()));
            }
        });
        Scripted {
            addr,
            accepted,
            heads,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// How many request heads started with `line`.
    fn seen(&self, line: &str) -> usize {
        let heads = self.heads.lock().unwrap();
        heads.iter().filter(|h| h.starts_with(line)).count()
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    answer: fn(&str, &str) -> Answer,
    heads: Arc<Mutex<Vec<String>>>,
) {
    stream.set_nodelay(true).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            seen.drain(..end + 4);
            let mut words = head.split(' ');
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let answer = answer(method, path);
            heads.lock().unwrap().push(head.clone());
            let (bytes, close) = match answer {
                Answer::Keep(b) => (b, false),
                Answer::Close(b) => (b, true),
            };
            for piece in bytes.chunks(3) {
                if stream.write_all(piece).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            if close {
                return;
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `method path` through `proxy` and reads the whole answer: its head, and its body or
/// how the body failed. Bounded, so that a response the proxy never ends fails the test instead
/// of hanging it.
async fn exchange(
    proxy: SocketAddr,
    method: &str,
    path: &str,
) -> (http::response::Parts, Result<Bytes, hyper::Error>) {
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{proxy}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let exchange = async {
        let (parts, body) = client().request(req).await.unwrap().into_parts();
        (parts, body.collect().await.map(|b| b.to_bytes()))
    };
    let limit = Duration::from_secs(30);
    match tokio::time::timeout(limit, exchange).await {
        Ok(answer) => answer,
        Err(_) => panic!("{method} {path}: no complete answer within {limit:?}"),
    }
}

/// (status, body) of a complete answer.
async fn request(proxy: SocketAddr, method: &str, path: &str) -> (StatusCode, String) {
    let (parts, body) = exchange(proxy, method, path).await;
    let body = body.unwrap();
    (parts.status, String::from_utf8_lossy(&body).into_owned())
}

async fn through(instance: &Scripted) -> switchyard_proxy::AppProxy {
    let (p, _) = proxy(ProxyConfig::default()).await;
    p.set_routes(table(&[("stable", 1, &[instance.addr])]));
    p
}

#[tokio::test]
async fn chunked_bodies_with_extensions_and_trailers_pass_and_keep_the_connection() {
    let instance = Scripted::start(|_, _| {
        Answer::Keep(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nset-cookie: a=1\r\n\
              set-cookie: b=2\r\n\r\n5;name=value\r\nhello\r\n6 \r\n world\r\n\
              0\r\nx-trailer: t\r\n\r\n",
        )
    })
    .await;
    let p = through(&instance).await;
    for i in 0..3 {
        let (parts, body) = exchange(p.local_addr(), "GET", "/").await;
        let cookies: Vec<_> = parts.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"], "request {i}");
        assert_eq!(body.unwrap(), "hello world", "request {i}");
    }
    assert_eq!(instance.accepted(), 1, "the connection was not reused");
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_body_delimited_by_closing_passes_whole_and_its_connection_is_not_reused() {
    let instance = Scripted::start(|_, _| {
        Answer::Close(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nread until the end")
    })
    .await;
    let p = through(&instance).await;
    for _ in 0..2 {
        let got = request(p.local_addr(), "GET", "/").await;
        assert_eq!(got, (StatusCode::OK, "read until the end".to_owned()));
    }
    assert_eq!(instance.accepted(), 2);
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let instance = Scripted::start(|_, _| {
        Answer::Keep(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n\
              HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\nmade",
        )
    })
    .await;
    let p = through(&instance).await;
    for _ in 0..2 {
        let got = request(p.local_addr(), "GET", "/").await;
        assert_eq!(got, (StatusCode::CREATED, "made".to_owned()));
    }
    assert_eq!(instance.accepted(), 1);
    p.shutdown(Duration::from_secs(1)).await;
}

/// A response to `HEAD`, a 204 and a 304 have no body whatever their headers say; reading one
/// would hang the request and take the next response's bytes as its body.
#[tokio::test]
async fn head_204_and_304_have_no_body_and_keep_the_connection() {
    let instance = Scripted::start(|method, path| match (method, path) {
        ("HEAD", _) => Answer::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"),
        (_, "/204") => Answer::Keep(b"HTTP/1.1 204 No Content\r\ncontent-length: 3\r\n\r\n"),
        (_, "/304") => Answer::Keep(b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n"),
        _ => Answer::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
    })
    .await;
    let p = through(&instance).await;
    let addr = p.local_addr();
    assert_eq!(
        request(addr, "HEAD", "/").await,
        (StatusCode::OK, String::new())
    );
    let none = (StatusCode::NO_CONTENT, String::new());
    assert_eq!(request(addr, "GET", "/204").await, none);
    let not_modified = (StatusCode::NOT_MODIFIED, String::new());
    assert_eq!(request(addr, "GET", "/304").await, not_modified);
    assert_eq!(
        request(addr, "GET", "/").await,
        (StatusCode::OK, "ok".to_owned())
    );
    assert_eq!(instance.accepted(), 1);
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_response_with_conflicting_lengths_is_the_instances_protocol_error() {
    let instance = Scripted::start(|_, _| {
        Answer::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok")
    })
    .await;
    let p = through(&instance).await;
    let (status, body) = request(p.local_addr(), "GET", "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("upstream_protocol"), "{body}");
    p.shutdown(Duration::from_secs(1)).await;
}

/// A chunk size that is not hex breaks the body after the head went out: the client's response
/// fails instead of ending as if complete.
#[tokio::test]
async fn a_malformed_chunk_fails_the_clients_response() {
    let instance = Scripted::start(|_, _| {
        Answer::Keep(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n")
    })
    .await;
    let p = through(&instance).await;
    let (parts, body) = exchange(p.local_addr(), "GET", "/").await;
    assert_eq!(parts.status, StatusCode::OK);
    assert!(body.is_err(), "{body:?}");
    p.shutdown(Duration::from_secs(1)).await;
}

/// An instance that reads a request and closes without a word: a request that is safe to repeat
/// goes again on a new connection; a `POST` is never sent twice.
#[tokio::test]
async fn a_request_the_instance_closed_on_is_repeated_only_when_that_is_safe() {
    let instance = Scripted::start(|_, path| match path {
        "/drop" => Answer::Close(b""),
        _ => Answer::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
    })
    .await;
    let p = through(&instance).await;
    let addr = p.local_addr();
    // A pooled connection first, so that the dropped request goes on a reused one.
    assert_eq!(request(addr, "GET", "/").await.0, StatusCode::OK);
    let (status, body) = request(addr, "POST", "/drop").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("upstream_protocol"), "{body}");
    assert_eq!(instance.seen("POST /drop"), 1);

    assert_eq!(request(addr, "GET", "/").await.0, StatusCode::OK);
    let (status, body) = request(addr, "GET", "/drop").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("connect_failed"), "{body}");
    // Once on the pooled connection, once on a new one.
    assert_eq!(instance.seen("GET /drop"), 2);
    p.shutdown(Duration::from_secs(1)).await;
}

/// The request head as the instance reads it: origin form, the client's `Host`, hop-by-hop
/// fields gone, forwarding fields added.
#[tokio::test]
async fn the_instance_reads_a_clean_request_head() {
    let instance =
        Scripted::start(|_, _| Answer::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
            .await;
    let p = through(&instance).await;
    let reply = raw(
        p.local_addr(),
        b"GET /a?b=c HTTP/1.1\r\nHost: shop.example\r\nConnection: close, x-secret\r\n\
          x-secret: 1\r\nkeep-alive: 5\r\nx-kept: yes\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    let head = instance.heads.lock().unwrap()[0].to_lowercase();
    assert!(head.starts_with("get /a?b=c http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nhost: shop.example"), "{head}");
    assert!(head.contains("\r\nx-kept: yes"), "{head}");
    assert!(head.contains("\r\nx-forwarded-for: 127.0.0.1"), "{head}");
    for gone in ["x-secret", "keep-alive", "connection"] {
        assert!(!head.contains(&format!("\r\n{gone}:")), "{gone} in {head}");
    }
    p.shutdown(Duration::from_secs(1)).await;
}
