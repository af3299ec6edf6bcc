//! The client side: keep-alive pools of HTTP/1.1 connections to upstream instances, plain or
//! TLS, with connect and response-header timeouts and errors sorted by whether the request ever
//! reached the instance.
//!
//! A request without a body to a plain-HTTP instance is exchanged inline by the request's own
//! task ([`crate::h1`]); every other request (a body to stream, an upgrade, a TLS instance) goes
//! through hyper's client connection API, whose connection is driven by a task of its own.
//!
//! Each worker thread has a pool of its own (see [`crate::workers`]): a request takes an idle
//! connection of its own thread, or connects one. The connection goes back to that pool when
//! the response body has ended and the connection is ready for the next request
//! ([`UpstreamBody`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use switchyard_core::manifest::app::UpstreamTls;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::body::{BodyError, ProxyBody, Replayable, empty};
use crate::config::ProxyConfig;
use crate::endpoint::Endpoint;
use crate::failure::ProxyFailure;
use crate::forward::RequestHead;
use crate::h1;
use crate::tls::{TlsError, client_config};

type Sender = SendRequest<Replayable<ProxyBody>>;

/// An error from either client: hyper's, or the inline exchange's I/O and protocol errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why an upstream exchange failed.
#[derive(Debug, Error)]
pub enum UpstreamError {
    /// Connecting failed; the request was not sent, so it may go to another instance.
    #[error("connecting failed")]
    Connect {
        timed_out: bool,
        #[source]
        source: ConnectError,
    },
    #[error("no response head within {0:?}")]
    ResponseTimeout(Duration),
    #[error("the instance was removed and its drain deadline passed")]
    Drained,
    #[error("the exchange failed after the request was sent")]
    Exchange(#[source] BoxError),
}

/// How connecting to an instance failed.
#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("TCP connect")]
    Tcp(#[source] std::io::Error),
    #[error("TLS handshake")]
    Tls(#[source] std::io::Error),
    #[error("no connection within {0:?}")]
    TimedOut(Duration),
    #[error("HTTP/1.1 connection setup")]
    Http(#[source] hyper::Error),
    /// A new connection closed before it took the request (the instance accepted and hung up).
    #[error("the new connection closed before the request was taken")]
    Closed(#[source] BoxError),
}

/// Maps an upstream error to the answer the client gets.
pub fn classify(e: &UpstreamError, release: String, attempts: u32) -> ProxyFailure {
    match e {
        UpstreamError::Connect {
            timed_out: true, ..
        } => ProxyFailure::ConnectTimeout { release },
        UpstreamError::Connect { .. } => ProxyFailure::ConnectFailed { release, attempts },
        UpstreamError::ResponseTimeout(_) => ProxyFailure::ResponseTimeout { release },
        UpstreamError::Drained => ProxyFailure::Drained { release },
        UpstreamError::Exchange(_) => ProxyFailure::UpstreamProtocol { release },
    }
}

/// Pooled connections to every instance of one app: one pool per worker thread, so that a
/// request uses connections its own thread drives.
#[derive(Clone)]
pub struct Upstream {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("pools", &self.shared.pools.len())
            .field("tls", &self.shared.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Response-header timers that a client connection keeps from one request to the next. A timer
/// entered into the runtime's timer wheel and re-armed for a later deadline only has its
/// deadline moved; a new timer per request is entered into the wheel and taken out again.
/// A kept timer may still fire at its earlier deadline: it then wakes its connection's task
/// once, for nothing.
#[derive(Default)]
pub struct Timers(Mutex<Vec<Pin<Box<tokio::time::Sleep>>>>);

/// Timers kept per connection: one per request in flight on it, up to this many.
const KEPT_TIMERS: usize = 16;

impl Timers {
    /// A timer for one request; [`give_back`](Self::give_back) keeps it for the next one. A
    /// request that is dropped half-way drops its timer instead.
    pub fn take(&self) -> Pin<Box<tokio::time::Sleep>> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        kept.unwrap_or_else(|| Box::pin(tokio::time::sleep(Duration::ZERO)))
    }

    pub fn give_back(&self, timer: Pin<Box<tokio::time::Sleep>>) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEPT_TIMERS {
            kept.push(timer);
        }
    }
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").finish_non_exhaustive()
    }
}

struct Shared {
    /// Index 0 for the threads that are no worker, then one per worker.
    pools: Box<[Mutex<Pool>]>,
    tls: Option<TlsConnect>,
    connect_timeout: Duration,
    response_header_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
}

struct TlsConnect {
    connector: TlsConnector,
    /// The name the instances' certificates are checked for; by default each instance's address.
    name: Option<ServerName<'static>>,
}

/// Idle connections of one kind by instance address. Hashed with foldhash rather than SipHash:
/// the keys are the instances of the tables, never a client's input, and each request looks
/// its instance up twice (checkout and return).
type Idles<C> = HashMap<SocketAddr, Vec<Idle<C>>, foldhash::fast::RandomState>;

/// Idle connections by instance, most recently used last: hyper's, and those of the inline
/// exchange.
#[derive(Default)]
struct Pool {
    hyper: Idles<Sender>,
    inline: Idles<h1::Conn>,
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

/// A connection that can wait in a [`Pool`].
trait Pooled: Sized {
    fn idle(pool: &mut Pool) -> &mut Idles<Self>;
    /// Whether it can take a request now.
    fn is_usable(&self) -> bool;
}

impl Pooled for Sender {
    fn idle(pool: &mut Pool) -> &mut Idles<Self> {
        &mut pool.hyper
    }

    fn is_usable(&self) -> bool {
        self.is_ready()
    }
}

impl Pooled for h1::Conn {
    fn idle(pool: &mut Pool) -> &mut Idles<Self> {
        &mut pool.inline
    }

    fn is_usable(&self) -> bool {
        h1::Conn::is_usable(self)
    }
}

impl Upstream {
    /// Plain HTTP to the instances.
    pub fn new(config: &ProxyConfig) -> Self {
        Self::build(config, None)
    }

    /// TLS to the instances when `tls` says so, verified against its CA for its server name
    /// (default: the instance's address).
    ///
    /// # Errors
    /// [`TlsError`] naming the CA file when it cannot be used.
    pub fn with_tls(config: &ProxyConfig, tls: Option<&UpstreamTls>) -> Result<Self, TlsError> {
        let Some(tls) = tls else {
            return Ok(Self::new(config));
        };
        let connector = TlsConnector::from(Arc::new(client_config(tls)?));
        let name = tls
            .server_name
            .as_ref()
            .map(|name| {
                ServerName::try_from(name.as_str().to_owned())
                    .map_err(|e| TlsError::Config(format!("server name `{}`: {e}", name.as_str())))
            })
            .transpose()?;
        Ok(Self::build(config, Some(TlsConnect { connector, name })))
    }

    fn build(config: &ProxyConfig, tls: Option<TlsConnect>) -> Self {
        let slots = config.workers.as_ref().map_or(1, |w| w.len() + 1);
        let shared = Arc::new(Shared {
            pools: (0..slots).map(|_| Mutex::default()).collect(),
            tls,
            connect_timeout: config.connect_timeout,
            response_header_timeout: config.response_header_timeout,
            idle_timeout: config.pool_idle_timeout,
            max_idle: config.pool_max_idle_per_host,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reap(Arc::downgrade(&shared)));
        }
        Upstream { shared }
    }

    /// Sends `head` with `body` to `endpoint` and waits for the response head.
    ///
    /// # Errors
    /// [`UpstreamError`]; `Connect` means the body was never read.
    pub async fn send(
        &self,
        mut head: RequestHead,
        endpoint: &Endpoint,
        body: Replayable<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let timer = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        let sent_at = Instant::now();
        self.send_within((&mut head, false), endpoint, body, (timer, sent_at))
            .await
    }

    /// [`send`](Self::send) of a head that stays with the caller: unchanged when `keep` (for
    /// another attempt), otherwise its fields may be taken. `timer` is re-armed for the
    /// response-header timeout from `sent_at`, a clock read the caller has already taken (see
    /// [`Timers`]).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_within(
        &self,
        (head, keep): (&mut RequestHead, bool),
        endpoint: &Endpoint,
        body: Replayable<ProxyBody>,
        (mut timer, sent_at): (Pin<&mut tokio::time::Sleep>, Instant),
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        // Either future, not an async function choosing one: one more state machine around
        // the exchange is moved and polled on every request. The inline exchange writes the
        // head from a reference, so no attempt of it copies the head.
        let exchange = if self.shared.takes_inline(head, &body) {
            Either::Left(self.shared.exchange_inline(endpoint, head))
        } else {
            let head = if keep { head.clone() } else { head.take() };
            let req = head.into_request(endpoint, body);
            Either::Right(self.shared.exchange(endpoint, req))
        };
        let timeout = self.shared.response_header_timeout;
        timer.as_mut().reset(sent_at + timeout);
        tokio::select! {
            biased;
            r = exchange => r,
            () = timer => Err(UpstreamError::ResponseTimeout(timeout)),
            () = endpoint.removed.cancelled() => Err(UpstreamError::Drained),
        }
    }

    /// One active health check: `GET path`, success on 2xx/3xx within `timeout`.
    pub async fn probe(&self, endpoint: &Endpoint, path: &str, timeout: Duration) -> bool {
        let Ok(path_and_query) = http::uri::PathAndQuery::try_from(path) else {
            return false;
        };
        let head = RequestHead::get(path_and_query);
        let check = async {
            let resp = self
                .send(head, endpoint, Replayable::owned(empty()))
                .await
                .ok()?;
            let ok = resp.status().is_success() || resp.status().is_redirection();
            // Read the body to its end, so that the connection goes back to the pool.
            let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
            Some(ok)
        };
        matches!(tokio::time::timeout(timeout, check).await, Ok(Some(true)))
    }
}

impl Shared {
    /// Whether a request goes by the inline exchange: no body, no upgrade, a plain-HTTP instance.
    fn takes_inline(&self, head: &RequestHead, body: &Replayable<ProxyBody>) -> bool {
        self.tls.is_none()
            && body.is_end_stream()
            && head.method != http::Method::CONNECT
            && !head.headers.contains_key(http::header::UPGRADE)
    }

    /// Sends `head` by the inline exchange on an idle connection to `endpoint` of this thread's
    /// pool, or on a new one.
    ///
    /// A pooled connection can close as the request reaches it (the instance closes idle
    /// connections when it likes). When one ends before any byte of a response, the request goes
    /// again on the next connection if repeating it is safe: its method is idempotent, or the
    /// request was never written. When a new connection does that, the request counts as not
    /// taken (a connect failure, which may go to another instance) under the same condition.
    async fn exchange_inline(
        self: &Arc<Self>,
        endpoint: &Endpoint,
        head: &RequestHead,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let slot = crate::workers::current().min(self.pools.len() - 1);
        let repeatable = head.method.is_idempotent();
        loop {
            let (conn, reused) = match self.checkout::<h1::Conn>(slot, endpoint.addr) {
                Some(conn) => (conn, true),
                None => {
                    let tcp = Box::pin(self.connect_tcp(endpoint)).await?;
                    (h1::Conn::new(tcp), false)
                }
            };
            match conn.exchange(head, endpoint.authority.as_str()).await {
                Ok((parts, body)) => {
                    let mut body = UpstreamBody {
                        kind: Kind::Inline(body),
                        home: Home {
                            addr: endpoint.addr,
                            slot,
                            pools: Arc::downgrade(self),
                        },
                    };
                    body.give_back_if_ended();
                    return Ok(Response::from_parts(parts, body));
                }
                Err(e) => {
                    let not_taken = match &e {
                        h1::ExchangeError::Unwritten(_) => true,
                        h1::ExchangeError::Unanswered(_) => repeatable,
                        _ => false,
                    };
                    if !not_taken {
                        return Err(UpstreamError::Exchange(Box::new(e)));
                    }
                    if !reused {
                        return Err(UpstreamError::Connect {
                            timed_out: false,
                            source: ConnectError::Closed(Box::new(e)),
                        });
                    }
                    // A pooled connection closed under the request: the next one takes it.
                }
            }
        }
    }

    /// Sends `req` on an idle connection to `endpoint` of this thread's pool, or on a new one.
    /// A pooled connection that closed before it took the request is dropped and the request
    /// goes on the next (the instance may close idle connections at any time).
    async fn exchange(
        self: &Arc<Self>,
        endpoint: &Endpoint,
        mut req: http::Request<Replayable<ProxyBody>>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let slot = crate::workers::current().min(self.pools.len() - 1);
        loop {
            let (mut sender, reused) = match self.checkout::<Sender>(slot, endpoint.addr) {
                Some(sender) => (sender, true),
                // Boxed: the connect future (a TLS handshake's state) is large, and this one
                // would otherwise be copied with every request's future.
                None => (Box::pin(self.connect(endpoint)).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let home = Home {
                        addr: endpoint.addr,
                        slot,
                        pools: Arc::downgrade(self),
                    };
                    return Ok(resp.map(|body| UpstreamBody {
                        kind: Kind::Hyper {
                            inner: body,
                            sender: Some(sender),
                        },
                        home,
                    }));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    Some(_) => {
                        return Err(UpstreamError::Connect {
                            timed_out: false,
                            source: ConnectError::Closed(Box::new(e.into_error())),
                        });
                    }
                    None => return Err(UpstreamError::Exchange(Box::new(e.into_error()))),
                },
            }
        }
    }

    fn checkout<C: Pooled>(&self, slot: usize, addr: SocketAddr) -> Option<C> {
        let now = Instant::now();
        let mut pool = self.pools[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let idle = C::idle(&mut pool).get_mut(&addr)?;
        while let Some(idle) = idle.pop() {
            if idle.conn.is_usable() && now.duration_since(idle.since) < self.idle_timeout {
                return Some(idle.conn);
            }
        }
        None
    }

    fn put_back<C: Pooled>(&self, slot: usize, addr: SocketAddr, conn: C) {
        let mut pool = self.pools[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let idle = C::idle(&mut pool).entry(addr).or_default();
        if idle.len() < self.max_idle {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// A new hyper connection to `endpoint`, driven by a task on this thread's runtime. The
    /// connect timeout covers the TCP connect and, to TLS instances, the handshake.
    async fn connect(&self, endpoint: &Endpoint) -> Result<Sender, UpstreamError> {
        self.within_connect_timeout(async {
            let tcp = tcp_connect(endpoint).await?;
            match &self.tls {
                None => handshake(TokioIo::new(tcp)).await,
                Some(tls) => {
                    let name = tls
                        .name
                        .clone()
                        .unwrap_or_else(|| ServerName::IpAddress(endpoint.addr.ip().into()));
                    let stream = tls
                        .connector
                        .connect(name, tcp)
                        .await
                        .map_err(ConnectError::Tls)?;
                    handshake(TokioIo::new(stream)).await
                }
            }
        })
        .await
    }

    /// A new plain TCP connection to `endpoint`, for the inline exchange.
    async fn connect_tcp(&self, endpoint: &Endpoint) -> Result<TcpStream, UpstreamError> {
        self.within_connect_timeout(tcp_connect(endpoint)).await
    }

    async fn within_connect_timeout<T>(
        &self,
        connecting: impl Future<Output = Result<T, ConnectError>>,
    ) -> Result<T, UpstreamError> {
        let result = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .unwrap_or(Err(ConnectError::TimedOut(self.connect_timeout)));
        result.map_err(|source| UpstreamError::Connect {
            timed_out: match &source {
                ConnectError::TimedOut(_) => true,
                ConnectError::Tcp(io) => io.kind() == std::io::ErrorKind::TimedOut,
                _ => false,
            },
            source,
        })
    }

    /// Drops idle connections past the idle timeout or closed by the instance.
    fn sweep(&self) {
        let now = Instant::now();
        for pool in &self.pools {
            let mut pool = pool.lock().unwrap_or_else(PoisonError::into_inner);
            let fresh = |since: Instant| now.duration_since(since) < self.idle_timeout;
            pool.hyper.retain(|_, idle| {
                idle.retain(|c| !c.conn.is_closed() && fresh(c.since));
                !idle.is_empty()
            });
            pool.inline.retain(|_, idle| {
                idle.retain(|c| c.conn.is_usable() && fresh(c.since));
                !idle.is_empty()
            });
        }
    }
}

async fn tcp_connect(endpoint: &Endpoint) -> Result<TcpStream, ConnectError> {
    let tcp = TcpStream::connect(endpoint.addr)
        .await
        .map_err(ConnectError::Tcp)?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn handshake<T>(io: T) -> Result<Sender, ConnectError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(ConnectError::Http)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// Sweeps the pools of an [`Upstream`] until it is dropped.
async fn reap(shared: Weak<Shared>) {
    let period = shared
        .upgrade()
        .map_or(Duration::from_secs(1), |s| s.idle_timeout / 2)
        .max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.sweep();
    }
}

/// The pool a connection lent to one exchange goes back to.
#[derive(Clone)]
struct Home {
    addr: SocketAddr,
    slot: usize,
    pools: Weak<Shared>,
}

impl Home {
    fn put_back<C: Pooled>(&self, conn: C) {
        if let Some(shared) = self.pools.upgrade() {
            shared.put_back(self.slot, self.addr, conn);
        }
    }
}

/// An upstream response body; its connection goes back to the pool when the body ends (or, for
/// a hyper connection, when the body is dropped and the connection is ready again).
pub struct UpstreamBody {
    kind: Kind,
    home: Home,
}

enum Kind {
    /// `sender` goes back to the pool once its connection is ready for another request: at
    /// once if it is when the body ends or is dropped, else when it becomes ready (a request
    /// body still being sent), unless it closes first.
    Hyper {
        inner: Incoming,
        sender: Option<Sender>,
    },
    /// Read by the inline exchange; the connection goes back when the body has ended cleanly.
    Inline(h1::Body),
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody").finish_non_exhaustive()
    }
}

impl UpstreamBody {
    /// Puts an inline connection back in the pool if its body has ended.
    fn give_back_if_ended(&mut self) {
        if let Kind::Inline(body) = &mut self.kind
            && let Some(conn) = body.reusable()
        {
            self.home.put_back(conn);
        }
    }

    /// Lets a hyper connection go back to the pool.
    fn release_sender(&mut self) {
        let Kind::Hyper { sender, .. } = &mut self.kind else {
            return;
        };
        let Some(mut sender) = sender.take() else {
            return;
        };
        if sender.is_closed() {
            return;
        }
        if sender.is_ready() {
            self.home.put_back(sender);
            return;
        }
        let home = self.home.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if sender.ready().await.is_ok() {
                    home.put_back(sender);
                }
            });
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        self.release_sender();
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match &mut this.kind {
            Kind::Hyper { inner, .. } => {
                let polled = Pin::new(inner).poll_frame(cx);
                if let Poll::Ready(None) = polled {
                    this.release_sender();
                }
                polled.map_err(BodyError::Transport)
            }
            Kind::Inline(body) => {
                let polled = Pin::new(body).poll_frame(cx);
                this.give_back_if_ended();
                polled.map_err(BodyError::Upstream)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Hyper { inner, .. } => inner.is_end_stream(),
            Kind::Inline(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Hyper { inner, .. } => inner.size_hint(),
            Kind::Inline(body) => body.size_hint(),
        }
    }
}
