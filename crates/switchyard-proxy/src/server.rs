//! The listening side: accept loop, optional TLS termination, HTTP/1.1 and HTTP/2 (h2c by prior
//! knowledge, or ALPN `h2` over TLS) on one socket, request limits, idle connection timeout,
//! graceful shutdown. HTTP/1.1 requests without a body are read and answered by the proxy's own
//! reader ([`crate::h1::server`]); from the first request it does not take, hyper-util's auto
//! builder serves the connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::BytesMut;
use http::{HeaderMap, Request, Response, Version, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::AppState;
use crate::body::{ProxyBody, RequestBody};
use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::failure::ProxyFailure;
use crate::forward;
use crate::gate::WhenWoken;
use crate::h1;
use crate::h1::server::{HeadLimits, Rewind, Served};
use crate::headers::ClientIp;
use crate::idle::{Activity, IdleIo};
use crate::tls::Termination;
use crate::upstream::Timers;

/// Picks the app that serves a request on a listener.
pub trait Dispatch: Send + Sync + 'static {
    /// # Errors
    /// [`ProxyFailure::NoApp`] when no app matches.
    fn app_for(&self, req: &Request<RequestBody>) -> Result<Arc<AppState>, ProxyFailure>;
    /// Every app reachable through this listener, for shutdown.
    fn apps(&self) -> Vec<Arc<AppState>>;
}

/// Where a listener's socket comes from: bound now, or inherited from another process (a proxy
/// handing its listeners over, see `host::handoff`).
#[derive(Debug)]
pub enum ListenSource {
    Bind(SocketAddr),
    Inherited(std::net::TcpListener),
}

/// A running listener.
#[derive(Debug)]
pub struct Listener {
    local_addr: SocketAddr,
    /// A second handle of the listening socket, for handing it over to another process.
    socket: std::net::TcpListener,
    stop_accepting: CancellationToken,
    force: CancellationToken,
    connections: TaskTracker,
    /// The accept loops: one, or one per worker thread.
    accept: Vec<JoinHandle<()>>,
    /// TLS termination of new connections, if any (open connections keep theirs).
    tls: Arc<ArcSwapOption<Termination>>,
}

/// Marks a request that arrived over TLS (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

impl Listener {
    pub async fn bind(
        listen: SocketAddr,
        config: &ProxyConfig,
        dispatch: Arc<dyn Dispatch>,
    ) -> Result<Self, ProxyError> {
        Self::serve(ListenSource::Bind(listen), config, dispatch, None).await
    }

    /// Starts accepting on the socket `source` names; with `tls`, every connection is TLS.
    ///
    /// # Errors
    /// The address cannot be bound, or an inherited socket cannot be used.
    pub async fn serve(
        source: ListenSource,
        config: &ProxyConfig,
        dispatch: Arc<dyn Dispatch>,
        tls: Option<Arc<Termination>>,
    ) -> Result<Self, ProxyError> {
        let (socket, listen) = match source {
            ListenSource::Bind(listen) => {
                let socket = bind_socket(listen, config.reuse_port)
                    .await
                    .map_err(|source| ProxyError::Bind {
                        addr: listen,
                        source,
                    })?;
                (socket, listen)
            }
            ListenSource::Inherited(std) => {
                let addr = std.local_addr().map_err(|source| ProxyError::LocalAddr {
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    source,
                })?;
                let socket = std
                    .set_nonblocking(true)
                    .and_then(|()| TcpListener::from_std(std))
                    .map_err(|source| ProxyError::Bind { addr, source })?;
                (socket, addr)
            }
        };
        let local_addr = socket
            .local_addr()
            .map_err(|source| ProxyError::LocalAddr {
                addr: listen,
                source,
            })?;
        let dup = dup_socket(&socket).map_err(|source| ProxyError::Bind {
            addr: local_addr,
            source,
        })?;
        let stop_accepting = CancellationToken::new();
        let force = CancellationToken::new();
        let connections = TaskTracker::new();
        let builder = Arc::new(http_builder(config));
        let tls = Arc::new(ArcSwapOption::new(tls));
        let ctx = ConnContext {
            dispatch,
            builder,
            tls: tls.clone(),
            handshake_timeout: config.header_read_timeout,
            stop: stop_accepting.clone(),
            force: force.clone(),
            idle: config.idle_timeout,
            max_headers: config.max_headers,
            head_limits: HeadLimits {
                max_headers: config.max_headers,
                max_head_bytes: config.max_header_bytes.max(8192),
                read_timeout: config.header_read_timeout,
            },
        };
        let accept = match &config.workers {
            None => vec![tokio::spawn(accept_loop(socket, ctx, connections.clone()))],
            Some(pool) => {
                let std = socket.into_std().map_err(|source| ProxyError::Bind {
                    addr: local_addr,
                    source,
                })?;
                let mut loops = Vec::new();
                for worker in pool.workers().handles() {
                    let mine = std.try_clone().map_err(|source| ProxyError::Bind {
                        addr: local_addr,
                        source,
                    })?;
                    let (ctx, connections) = (ctx.clone(), connections.clone());
                    // Registered with the worker's own reactor: its connections stay there.
                    loops.push(worker.spawn(async move {
                        match TcpListener::from_std(mine) {
                            Ok(socket) => accept_loop(socket, ctx, connections).await,
                            Err(e) => tracing::error!(error = %e, "a worker cannot accept"),
                        }
                    }));
                }
                loops
            }
        };
        Ok(Listener {
            local_addr,
            socket: dup,
            stop_accepting,
            force,
            connections,
            accept,
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TLS termination of new connections.
    pub fn tls(&self) -> Option<Arc<Termination>> {
        self.tls.load_full()
    }

    /// Terminates TLS on new connections with `tls` (`None`: plain HTTP) from now on.
    pub fn set_tls(&self, tls: Option<Arc<Termination>>) {
        self.tls.store(tls);
    }

    /// Another handle of the listening socket (the same kernel socket: connections queued in
    /// it are not lost when this process stops accepting).
    ///
    /// # Errors
    /// The socket cannot be duplicated (out of file descriptors).
    pub fn socket(&self) -> std::io::Result<std::net::TcpListener> {
        self.socket.try_clone()
    }

    /// Stops accepting, lets open requests finish for up to `grace`, then closes what is left.
    /// Returns true when everything finished within the grace period.
    pub async fn shutdown(self, grace: Duration, apps: &[Arc<AppState>]) -> bool {
        self.stop_accepting.cancel();
        for accept in self.accept {
            let _ = accept.await;
        }
        // The last handle of this process: unless another process holds the socket (a
        // handover), it closes now, and new connections are refused instead of queued.
        drop(self.socket);
        self.connections.close();
        let drained = tokio::time::timeout(grace, async {
            self.connections.wait().await;
            for app in apps {
                app.stop();
                app.tasks.wait().await;
            }
        })
        .await
        .is_ok();
        if !drained {
            self.force.cancel();
            for app in apps {
                app.force.cancel();
                app.stop();
            }
            self.connections.wait().await;
            for app in apps {
                app.tasks.wait().await;
            }
        }
        if drained {
            tracing::info!(addr = %self.local_addr, "listener drained within the grace period");
        } else {
            tracing::warn!(addr = %self.local_addr, "grace period over: open connections were closed");
        }
        drained
    }
}

/// A second handle of `socket`, kept for handing the socket over.
fn dup_socket(socket: &TcpListener) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::AsFd as _;
    let fd = socket.as_fd().try_clone_to_owned()?;
    Ok(std::net::TcpListener::from(fd))
}

/// Backlog of listeners bound with `SO_REUSEPORT` (the plain path keeps tokio's default).
const REUSE_PORT_BACKLOG: u32 = 1024;

async fn bind_socket(listen: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    if !reuse_port {
        return TcpListener::bind(listen).await;
    }
    let socket = if listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(listen)?;
    socket.listen(REUSE_PORT_BACKLOG)
}

/// The header count hyper's HTTP/1.1 parser allows when none is set.
const HYPER_MAX_HEADERS: usize = 100;

fn http_builder(config: &ProxyConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    // hyper's own limit is 100 headers; setting it, even to 100, makes every request's parse
    // fill a 100-entry array element by element instead of leaving it uninitialised.
    if config.max_headers != HYPER_MAX_HEADERS {
        b.http1().max_headers(config.max_headers);
    }
    // HTTP/2 counts a header list as the sum of name + value + 32 bytes per field, pseudo-headers
    // included (RFC 9113 §6.5.2). `h2` answers a list at or above this size with 431 on that
    // stream (the connection lives on), and one above four times it with GOAWAY
    // ENHANCE_YOUR_CALM: it stops decoding, and an HPACK decoder that skipped a block cannot
    // decode the next one.
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(1024)
        .keep_alive_interval(None);
    b
}

#[derive(Clone)]
struct ConnContext {
    dispatch: Arc<dyn Dispatch>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tls: Arc<ArcSwapOption<Termination>>,
    handshake_timeout: Duration,
    stop: CancellationToken,
    force: CancellationToken,
    idle: Duration,
    max_headers: usize,
    head_limits: HeadLimits,
}

async fn accept_loop(socket: TcpListener, ctx: ConnContext, connections: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            r = socket.accept() => r,
            () = ctx.stop.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                connections.spawn(serve_connection(stream, peer, ctx.clone()));
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// How long an HTTP/1.1 connection must be quiet before a stopping listener closes it. Until
/// then its answers carry `Connection: close`, so a busy client leaves after an answer instead
/// of meeting a close in the middle of sending its next request.
const DRAIN_QUIET: Duration = Duration::from_millis(500);

async fn serve_connection(stream: TcpStream, peer: SocketAddr, ctx: ConnContext) {
    let _ = stream.set_nodelay(true);
    let io = IdleIo::new(stream);
    let activity = io.activity();
    let Some(tls) = ctx.tls.load_full() else {
        return serve_http(io, activity, peer, ctx, Protocol::Plain).await;
    };
    let acceptor = tls.acceptor();
    drop(tls);
    let handshake = tokio::time::timeout(ctx.handshake_timeout, acceptor.accept(io));
    let stream = tokio::select! {
        r = handshake => r,
        () = ctx.stop.cancelled() => return,
    };
    match stream {
        Ok(Ok(stream)) => {
            let protocol = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                Protocol::TlsH2
            } else {
                Protocol::Tls
            };
            serve_http(stream, activity, peer, ctx, protocol).await;
        }
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "no TLS handshake within the header read timeout"),
    }
}

/// What a connection speaks, as far as is known when it is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Plain TCP: HTTP/1.1, or HTTP/2 by prior knowledge.
    Plain,
    /// TLS without ALPN `h2`: HTTP/1.1.
    Tls,
    /// TLS with ALPN `h2`.
    TlsH2,
}

/// What serves each request of one connection, whichever reader read it.
pub struct Service {
    dispatch: Arc<dyn Dispatch>,
    client: ClientIp,
    timers: Timers,
    tls: bool,
    max_headers: usize,
    stop: CancellationToken,
    saw_http2: AtomicBool,
}

impl Service {
    /// Serves `req`; once the listener is stopping, an HTTP/1.1 answer says `Connection: close`.
    pub async fn call(&self, mut req: Request<RequestBody>) -> Response<ProxyBody> {
        if self.tls {
            req.extensions_mut().insert(OverTls);
        }
        let version = req.version();
        if version == Version::HTTP_2 {
            self.saw_http2.store(true, Ordering::Relaxed);
        }
        // One state machine, not one around another: this future is made for every request.
        let limit = self.max_headers;
        let mut response = if version == Version::HTTP_2 && header_fields(req.headers()) > limit {
            ProxyFailure::TooManyHeaders { limit }.into_response()
        } else {
            match self.dispatch.app_for(&req) {
                Ok(app) => forward::serve(app, req, (&self.client, &self.timers)).await,
                Err(failure) => failure.into_response(),
            }
        };
        let switching = response.status() == http::StatusCode::SWITCHING_PROTOCOLS;
        if self.stop.is_cancelled() && version < Version::HTTP_2 && !switching {
            response
                .headers_mut()
                .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        }
        response
    }
}

async fn serve_http<I>(
    io: I,
    activity: Activity,
    peer: SocketAddr,
    ctx: ConnContext,
    protocol: Protocol,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = Arc::new(Service {
        dispatch: ctx.dispatch.clone(),
        client: ClientIp::new(peer),
        timers: Timers::default(),
        tls: protocol != Protocol::Plain,
        max_headers: ctx.max_headers,
        stop: ctx.stop.clone(),
        saw_http2: AtomicBool::new(false),
    });
    // True while the connection waits for a request with nothing of one read.
    let waiting = AtomicBool::new(true);
    // Asks hyper, once it serves the connection, to finish the request in hand and close.
    let shutdown = CancellationToken::new();
    let conn = serve_requests(io, peer, &ctx, &service, &waiting, &shutdown, protocol);
    tokio::pin!(conn);
    let mut stopping = false;
    let mut shut = false;
    // The connection first; the signals beside it are polled only when they fire (`WhenWoken`),
    // not at every wake of a busy connection.
    loop {
        tokio::select! {
            biased;
            () = conn.as_mut() => return,
            () = WhenWoken::new(ctx.stop.cancelled()), if !stopping => {
                stopping = true;
                // HTTP/2 says GOAWAY, which clients handle cleanly; HTTP/1.1 waits for quiet.
                if service.saw_http2.load(Ordering::Relaxed) {
                    shut = true;
                    shutdown.cancel();
                }
            }
            () = WhenWoken::new(activity.idle_for(DRAIN_QUIET)), if stopping && !shut => {
                shut = true;
                // Between requests the connection just closes; in the middle of one, its answer
                // says `Connection: close`.
                if waiting.load(Ordering::Relaxed) {
                    return;
                }
                shutdown.cancel();
            }
            () = WhenWoken::new(activity.idle_for(ctx.idle)) => {
                tracing::debug!(%peer, "closing idle connection");
                return;
            }
            () = WhenWoken::new(ctx.force.cancelled()) => return,
        }
    }
}

/// The requests of one connection: read by the proxy's own HTTP/1.1 reader while they are ones
/// it takes, then (or from the start, for HTTP/2 over TLS) by hyper's server.
async fn serve_requests<I>(
    mut io: I,
    peer: SocketAddr,
    ctx: &ConnContext,
    service: &Arc<Service>,
    waiting: &AtomicBool,
    shutdown: &CancellationToken,
    protocol: Protocol,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::new();
    if protocol != Protocol::TlsH2 {
        let served = h1::server::serve(&mut io, &mut buf, ctx.head_limits, waiting, service).await;
        if served == Served::Closed {
            return;
        }
    }
    waiting.store(false, Ordering::Relaxed);
    let shared = service.clone();
    let hyper_service = service_fn(move |req: Request<Incoming>| {
        let service = shared.clone();
        async move {
            let response = service.call(req.map(RequestBody::Hyper)).await;
            Ok::<Response<ProxyBody>, Infallible>(response)
        }
    });
    let io = TokioIo::new(Rewind::new(buf.freeze(), io));
    let conn = ctx
        .builder
        .serve_connection_with_upgrades(io, hyper_service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Header fields of a request as the HTTP/1.1 parser would count its lines: HTTP/2 clients may
/// split `Cookie` into one field per cookie (RFC 9113 §8.2.3), which HTTP/1.1 sends as one line,
/// so the cookie fields count once. hyper limits the count only for HTTP/1.1; this applies
/// `max_headers` to HTTP/2 the same way.
fn header_fields(headers: &HeaderMap) -> usize {
    let cookies = headers.get_all(header::COOKIE).iter().count();
    headers.len() - cookies.saturating_sub(1)
}
