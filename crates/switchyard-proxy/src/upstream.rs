//! The client side: keep-alive pools to upstream instances (hyper-util's pooled client over
//! HTTP/1.1, plain or TLS through hyper-rustls), with connect and response-header timeouts and
//! errors sorted by whether the request ever reached the instance.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use http::uri::Scheme;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use switchyard_core::manifest::app::UpstreamTls;
use thiserror::Error;

use crate::body::{ProxyBody, Replayable, empty};
use crate::config::ProxyConfig;
use crate::endpoint::Endpoint;
use crate::failure::ProxyFailure;
use crate::forward::RequestHead;
use crate::tls::{TlsError, client_config};

/// Pooled connections, plain or TLS.
#[derive(Debug, Clone)]
enum PooledClient {
    Plain(Client<HttpConnector, Replayable<ProxyBody>>),
    Tls(Client<HttpsConnector<HttpConnector>, Replayable<ProxyBody>>),
}

impl PooledClient {
    fn request(&self, req: http::Request<Replayable<ProxyBody>>) -> ResponseFuture {
        match self {
            PooledClient::Plain(c) => c.request(req),
            PooledClient::Tls(c) => c.request(req),
        }
    }

    fn scheme(&self) -> Scheme {
        match self {
            PooledClient::Plain(_) => Scheme::HTTP,
            PooledClient::Tls(_) => Scheme::HTTPS,
        }
    }
}

/// Why an upstream exchange failed.
#[derive(Debug, Error)]
pub enum UpstreamError {
    /// Connecting failed; the request was not sent, so it may go to another instance.
    #[error("connecting failed")]
    Connect {
        timed_out: bool,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("no response head within {0:?}")]
    ResponseTimeout(Duration),
    #[error("the instance was removed and its drain deadline passed")]
    Drained,
    #[error("the exchange failed after the request was sent")]
    Exchange(#[source] hyper_util::client::legacy::Error),
    #[error("could not build the upstream request")]
    BadRequest(#[source] http::Error),
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
        UpstreamError::Exchange(_) | UpstreamError::BadRequest(_) => {
            ProxyFailure::UpstreamProtocol { release }
        }
    }
}

/// Pooled connections to every instance of one app: one pool per worker thread (see
/// [`crate::workers`]), so that a request uses connections its own thread drives.
#[derive(Debug, Clone)]
pub struct Upstream {
    clients: Arc<[PooledClient]>,
    response_header_timeout: Duration,
}

impl Upstream {
    /// Plain HTTP to the instances.
    pub fn new(config: &ProxyConfig) -> Self {
        let clients = (0..slots(config))
            .map(|_| PooledClient::Plain(builder(config).build(connector(config))))
            .collect();
        Upstream {
            clients,
            response_header_timeout: config.response_header_timeout,
        }
    }

    /// The pool of the calling thread.
    fn client(&self) -> &PooledClient {
        let i = crate::workers::current();
        self.clients.get(i).unwrap_or(&self.clients[0])
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
        let tls_config = client_config(tls)?;
        let name = tls
            .server_name
            .as_ref()
            .map(|name| {
                rustls_pki_types::ServerName::try_from(name.as_str().to_owned())
                    .map_err(|e| TlsError::Config(format!("server name `{}`: {e}", name.as_str())))
            })
            .transpose()?;
        let clients = (0..slots(config))
            .map(|_| {
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls_config.clone())
                    .https_only();
                let https = match &name {
                    Some(name) => https.with_server_name_resolver(
                        hyper_rustls::FixedServerNameResolver::new(name.clone()),
                    ),
                    None => https,
                };
                let https = https.enable_http1().wrap_connector(connector(config));
                PooledClient::Tls(builder(config).build(https))
            })
            .collect();
        Ok(Upstream {
            clients,
            response_header_timeout: config.response_header_timeout,
        })
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
    ) -> Result<Response<Incoming>, UpstreamError> {
        let req = head
            .into_request(self.client().scheme(), endpoint, body)
            .map_err(UpstreamError::BadRequest)?;
        let exchange =
            tokio::time::timeout(self.response_header_timeout, self.client().request(req));
        let result = tokio::select! {
            r = exchange => r,
            () = endpoint.removed.cancelled() => return Err(UpstreamError::Drained),
        };
        match result {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect {
                timed_out: is_timeout(&e),
                source: e,
            }),
            Ok(Err(e)) => Err(UpstreamError::Exchange(e)),
            Err(_) => Err(UpstreamError::ResponseTimeout(self.response_header_timeout)),
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
        let Ok(req) =
            head.into_request(self.client().scheme(), endpoint, Replayable::owned(empty()))
        else {
            return false;
        };
        match tokio::time::timeout(timeout, self.client().request(req)).await {
            Ok(Ok(resp)) => {
                let ok = resp.status().is_success() || resp.status().is_redirection();
                // Drain the body so the connection goes back to the pool.
                let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                ok
            }
            _ => false,
        }
    }
}

/// One pool for the threads that are no worker, one per worker.
fn slots(config: &ProxyConfig) -> usize {
    config.workers.as_ref().map_or(1, |w| w.len() + 1)
}

fn connector(config: &ProxyConfig) -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(config.connect_timeout));
    connector.set_nodelay(true);
    // The TLS connector wraps this one and asks for `https` URIs.
    connector.enforce_http(false);
    connector
}

fn builder(config: &ProxyConfig) -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(config.pool_idle_timeout)
        .pool_max_idle_per_host(config.pool_max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new());
    b
}

fn is_timeout(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    false
}
