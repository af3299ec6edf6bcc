//! Test backends and clients.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use switchyard_proxy::{AppProxy, Backend, ProxyConfig, RoutingTable, Telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub type TestBody = BoxBody<Bytes, hyper::Error>;

/// A backend answering with its name (`fail*` backends answer 500 to everything, `sick*`
/// backends 503 to `/health`, `hold*` backends answer nothing until [`TestBackend::release`]);
/// paths: `/echo` streams the body back, `/record` reads the whole body, keeps it (see
/// [`TestBackend::bodies`]) and sends it back, `/status/N` answers N, `/slow/MS` waits,
/// `/stall` sends the head and one chunk then nothing, `/headers` returns the request headers,
/// `/ws` upgrades.
#[derive(Debug)]
pub struct TestBackend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// What the request handlers of one backend share with the test.
#[derive(Debug, Default)]
struct Shared {
    /// Bodies read by `/record`; `!cut` when the body failed midway.
    bodies: Mutex<Vec<String>>,
    /// Answers sent (a `hold*` backend sends none before its release).
    answered: AtomicUsize,
    /// Opens the gate of `hold*` backends.
    release: CancellationToken,
}

impl TestBackend {
    pub async fn start(name: &str) -> TestBackend {
        Self::start_on("127.0.0.1:0".parse().unwrap(), name).await
    }

    pub async fn start_on(addr: SocketAddr, name: &str) -> TestBackend {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let (name, hits2, shared2, stop2) =
            (name.to_owned(), hits.clone(), shared.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    r = listener.accept() => r.unwrap(),
                    () = stop2.cancelled() => return,
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (name, hits, stop) = (name.clone(), hits2.clone(), stop2.clone());
                let shared = shared2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let (name, shared) = (name.clone(), shared.clone());
                        async move {
                            let resp = backend_answer(&name, &shared, req).await;
                            shared.answered.fetch_add(1, Ordering::SeqCst);
                            resp
                        }
                    });
                    let conn = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .into_owned();
                    tokio::select! { _ = conn => {}, () = stop.cancelled() => {} }
                });
            }
        });
        TestBackend {
            addr,
            hits,
            connections,
            shared,
            stop,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Requests answered so far.
    pub fn answered(&self) -> usize {
        self.shared.answered.load(Ordering::SeqCst)
    }

    /// Bodies received on `/record`, in arrival order.
    pub fn bodies(&self) -> Vec<String> {
        self.shared.bodies.lock().unwrap().clone()
    }

    /// Waits until `/record` has received `n` bodies and returns them.
    pub async fn wait_bodies(&self, n: usize) -> Vec<String> {
        for _ in 0..1000 {
            if self.bodies().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.bodies()
    }

    /// Lets a `hold*` backend answer.
    pub fn release(&self) {
        self.shared.release.cancel();
    }

    /// Stops accepting and closes open connections.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn text(status: StatusCode, s: String) -> Response<TestBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(s))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

async fn backend_answer(
    name: &str,
    shared: &Shared,
    mut req: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    let name = name.to_owned();
    let path = req.uri().path().to_owned();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    if name.starts_with("fail") {
        return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, name));
    }
    let first = parts.next().unwrap_or("");
    let recorded = match first {
        "record" => Some(record(shared, req.body_mut()).await),
        _ => None,
    };
    if name.starts_with("hold") {
        shared.release.cancelled().await;
    }
    let resp = match (first, parts.next()) {
        ("health", _) if name.starts_with("sick") => text(StatusCode::SERVICE_UNAVAILABLE, name),
        ("record", _) => match recorded.flatten() {
            Some(body) => text(StatusCode::OK, body),
            None => text(StatusCode::BAD_REQUEST, "cut".to_owned()),
        },
        ("stall", _) => Response::new(StallBody(false).boxed()),
        ("echo", _) => {
            let mut r = Response::new(req.into_body().boxed());
            r.headers_mut().insert("x-release", name.parse().unwrap());
            r
        }
        ("status", Some(code)) => text(StatusCode::from_u16(code.parse().unwrap()).unwrap(), name),
        ("slow", Some(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            text(StatusCode::OK, name)
        }
        ("headers", _) => {
            let mut s = String::new();
            for (k, v) in req.headers() {
                s.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
            }
            text(StatusCode::OK, s)
        }
        ("ws", _) => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let mut io = TokioIo::new(on.await.unwrap());
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
            let mut r = text(StatusCode::SWITCHING_PROTOCOLS, String::new());
            r.headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            r.headers_mut().insert("upgrade", "echo".parse().unwrap());
            r
        }
        _ => text(StatusCode::OK, name),
    };
    Ok(resp)
}

/// Reads a whole request body and keeps it in `shared.bodies` (`!cut` if it failed midway).
async fn record(shared: &Shared, body: &mut Incoming) -> Option<String> {
    let got = match body.collect().await {
        Ok(b) => Some(String::from_utf8_lossy(&b.to_bytes()).into_owned()),
        Err(_) => None,
    };
    let kept = got.clone().unwrap_or_else(|| "!cut".to_owned());
    shared.bodies.lock().unwrap().push(kept);
    got
}

/// A response body that sends one chunk and then never another byte.
struct StallBody(bool);

impl http_body::Body for StallBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        if self.0 {
            return std::task::Poll::Pending;
        }
        self.0 = true;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
            b"first",
        )))))
    }
}

/// A request body of `chunks` sent one by one with no declared length (chunked on HTTP/1.1).
pub struct Chunked(pub std::collections::VecDeque<Bytes>);

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(http_body::Frame::data(c))))
    }
}

/// A request body fed by the test, chunk by chunk, through a channel.
pub struct Fed(pub tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Fed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|c| c.map(|c| Ok(http_body::Frame::data(c))))
    }
}

/// POSTs `body` to `path` (`Content-Length` when `chunks` is 1, chunked otherwise);
/// returns (status, body).
pub async fn post(
    proxy: SocketAddr,
    path: &str,
    body: &str,
    chunks: usize,
) -> (StatusCode, String) {
    let size = body.len().div_ceil(chunks.max(1)).max(1);
    let parts = body
        .as_bytes()
        .chunks(size)
        .map(Bytes::copy_from_slice)
        .collect();
    let req = Request::post(format!("http://{proxy}{path}"));
    let resp = if chunks <= 1 {
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        client().request(req).await.unwrap()
    } else {
        let c = Client::builder(TokioExecutor::new()).build_http::<Chunked>();
        c.request(req.body(Chunked(parts)).unwrap()).await.unwrap()
    };
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn h2_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// GET `path` through `proxy`; returns (status, body).
pub async fn get(
    c: &Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    path: &str,
) -> (StatusCode, String) {
    get_with(c, proxy, path, &[]).await
}

pub async fn get_with(
    c: &Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut b = Request::get(format!("http://{proxy}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = c
        .request(b.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub fn table(backends: &[(&str, u32, &[SocketAddr])]) -> RoutingTable {
    RoutingTable {
        backends: backends
            .iter()
            .map(|(r, w, e)| Backend::new(*r, *w, e.to_vec()))
            .collect(),
        ..Default::default()
    }
}

pub async fn proxy(config: ProxyConfig) -> (AppProxy, Arc<Telemetry>) {
    let telemetry = Arc::new(Telemetry::new());
    let p = AppProxy::bind(
        "shop",
        "127.0.0.1:0".parse().unwrap(),
        config,
        telemetry.clone(),
    )
    .await
    .unwrap();
    (p, telemetry)
}

/// Outcome of a load run.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub ok: usize,
    pub failed: Vec<String>,
    pub bodies: std::collections::HashMap<String, usize>,
}

/// Runs `concurrency` closed-loop clients against `path` until `stop` is cancelled.
pub async fn load(
    proxy: SocketAddr,
    path: &str,
    concurrency: usize,
    stop: CancellationToken,
) -> LoadReport {
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let stop = stop.clone();
        let path = path.to_owned();
        // Half the clients use HTTP/2 to cover both protocols through the switch.
        let c = if i % 2 == 0 { client() } else { h2_client() };
        tasks.push(tokio::spawn(async move {
            let mut r = LoadReport::default();
            while !stop.is_cancelled() {
                let req = Request::get(format!("http://{proxy}{path}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                match c.request(req).await {
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.into_body().collect().await {
                            Ok(b) if status == StatusCode::OK => {
                                *r.bodies
                                    .entry(String::from_utf8_lossy(&b.to_bytes()).into_owned())
                                    .or_default() += 1;
                                r.ok += 1;
                            }
                            Ok(b) => r.failed.push(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&b.to_bytes())
                            )),
                            Err(e) => r.failed.push(format!("body: {e}")),
                        }
                    }
                    Err(e) => r.failed.push(format!("request: {e:?}")),
                }
            }
            r
        }));
    }
    let mut total = LoadReport::default();
    for t in tasks {
        let r = t.await.unwrap();
        total.ok += r.ok;
        total.failed.extend(r.failed);
        for (k, v) in r.bodies {
            *total.bodies.entry(k).or_default() += v;
        }
    }
    total
}

/// An address nothing listens on.
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Sends raw bytes on a fresh connection and reads until the proxy closes it or `limit` passes.
pub async fn raw(proxy: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A listener that never accepts: connections complete into its backlog and nothing is ever
/// read from them. Keep it alive for as long as it should stay deaf.
pub async fn deaf_listener() -> (tokio::net::TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// A loopback address where connecting hangs: a listener with a backlog of 1, never accepting,
/// whose accept queue is already full, so the kernel drops further SYNs and `connect` waits
/// until it times out. Keep the returned values alive.
pub async fn unconnectable() -> (
    tokio::net::TcpListener,
    Vec<tokio::net::TcpStream>,
    SocketAddr,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    // Fill the queue until a connect no longer completes; a bounded loop, not a timing check.
    for _ in 0..16 {
        let attempt = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(200), attempt).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => return (listener, fillers, addr),
        }
    }
    panic!("the accept queue of {addr} never filled");
}

/// The value of the Prometheus sample whose line starts with `series`, if any.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Reads one HTTP/1.1 response with a `Content-Length` body from `s`, leaving the connection
/// open for the next request; returns (head, body).
pub async fn read_response(s: &mut tokio::net::TcpStream) -> (String, String) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    while got.len() < head_end + length {
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed in the body: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&got[head_end..head_end + length]).into_owned();
    (head, body)
}
