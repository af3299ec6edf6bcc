//! The client side: keep-alive pools of HTTP/1.1 connections to upstream instances, plain or
//! TLS, over hyper's connection API, with connect and response-header timeouts and errors sorted
//! by whether the request ever reached the instance.
//!
//! Each worker thread has a pool of its own (see [`crate::workers`]): a request takes an idle
//! connection that its own thread drives, or connects one, and hands the request straight to
//! it. The connection goes back to that pool when the response body has ended and the
//! connection is ready for the next request ([`UpstreamBody`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
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

use crate::body::{ProxyBody, Replayable, empty};
use crate::config::ProxyConfig;
use crate::endpoint::Endpoint;
use crate::failure::ProxyFailure;
use crate::forward::RequestHead;
use crate::tls::{TlsError, client_config};

type Sender = SendRequest<Replayable<ProxyBody>>;

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
    Exchange(#[source] hyper::Error),
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
    #[error("the new connection closed before the request was sent")]
    Closed(#[source] hyper::Error),
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

/// Idle connections by instance, most recently used last.
#[derive(Default)]
struct Pool(HashMap<SocketAddr, Vec<Idle>>);

struct Idle {
    sender: Sender,
    since: Instant,
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
        head: RequestHead,
        endpoint: &Endpoint,
        body: Replayable<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let req = head.into_request(endpoint, body);
        let exchange = tokio::time::timeout(
            self.shared.response_header_timeout,
            self.shared.exchange(endpoint, req),
        );
        tokio::select! {
            r = exchange => r.unwrap_or(Err(UpstreamError::ResponseTimeout(self.shared.response_header_timeout))),
            () = endpoint.removed.cancelled() => Err(UpstreamError::Drained),
        }
    }

    /// One active health check: `GET path`, success on 2xx/3xx within `timeout`.
    pub async fn probe(&self, endpoint: &Endpoint, path: &str, timeout: Duration) -> bool {
        let Ok(path_and_query) = http::uri::PathAndQuery::try_from(path) else {
            return false;
        };
        let head = RequestHead {
            method: http::Method::GET,
            path_and_query,
            headers: http::HeaderMap::new(),
        };
        let req = head.into_request(endpoint, Replayable::owned(empty()));
        let check = async {
            let resp = self.shared.exchange(endpoint, req).await.ok()?;
            let ok = resp.status().is_success() || resp.status().is_redirection();
            // Read the body to its end, so that the connection goes back to the pool.
            let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
            Some(ok)
        };
        matches!(tokio::time::timeout(timeout, check).await, Ok(Some(true)))
    }
}

impl Shared {
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
            let (mut sender, reused) = match self.checkout(slot, endpoint.addr) {
                Some(sender) => (sender, true),
                // Boxed: the connect future (a TLS handshake's state) is large, and this one
                // would otherwise be copied with every request's future.
                None => (Box::pin(self.connect(endpoint)).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let lease = Lease {
                        sender: Some(sender),
                        addr: endpoint.addr,
                        slot,
                        pools: Arc::downgrade(self),
                    };
                    return Ok(resp.map(|body| UpstreamBody {
                        inner: body,
                        lease: Some(lease),
                    }));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    Some(_) => {
                        return Err(UpstreamError::Connect {
                            timed_out: false,
                            source: ConnectError::Closed(e.into_error()),
                        });
                    }
                    None => return Err(UpstreamError::Exchange(e.into_error())),
                },
            }
        }
    }

    fn checkout(&self, slot: usize, addr: SocketAddr) -> Option<Sender> {
        let now = Instant::now();
        let mut pool = self.pools[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let idle = pool.0.get_mut(&addr)?;
        while let Some(conn) = idle.pop() {
            if conn.sender.is_ready() && now.duration_since(conn.since) < self.idle_timeout {
                return Some(conn.sender);
            }
        }
        None
    }

    fn put_back(&self, slot: usize, addr: SocketAddr, sender: Sender) {
        let mut pool = self.pools[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let idle = pool.0.entry(addr).or_default();
        if idle.len() < self.max_idle {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// A new connection to `endpoint`, driven by a task on this thread's runtime. The connect
    /// timeout covers the TCP connect and, to TLS instances, the handshake.
    async fn connect(&self, endpoint: &Endpoint) -> Result<Sender, UpstreamError> {
        let connecting = async {
            let tcp = TcpStream::connect(endpoint.addr)
                .await
                .map_err(ConnectError::Tcp)?;
            let _ = tcp.set_nodelay(true);
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
        };
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
            pool.0.retain(|_, idle| {
                idle.retain(|c| {
                    !c.sender.is_closed() && now.duration_since(c.since) < self.idle_timeout
                });
                !idle.is_empty()
            });
        }
    }
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

/// A connection lent to one exchange; it goes back to its pool when dropped, at once if it is
/// ready for another request, else once it is (a response body still streaming, a request body
/// still being sent), unless it closes first.
struct Lease {
    sender: Option<Sender>,
    addr: SocketAddr,
    slot: usize,
    pools: Weak<Shared>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut sender) = self.sender.take() else {
            return;
        };
        if sender.is_closed() {
            return;
        }
        let (addr, slot, pools) = (self.addr, self.slot, self.pools.clone());
        if sender.is_ready() {
            if let Some(shared) = pools.upgrade() {
                shared.put_back(slot, addr, sender);
            }
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if sender.ready().await.is_ok()
                    && let Some(shared) = pools.upgrade()
                {
                    shared.put_back(slot, addr, sender);
                }
            });
        }
    }
}

/// An upstream response body; its connection goes back to the pool when the body ends or is
/// dropped.
pub struct UpstreamBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody").finish_non_exhaustive()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.lease = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
