//! The client side: keep-alive pools to upstream instances (hyper-util's pooled client over
//! HTTP/1.1), with connect and response-header timeouts and errors sorted by whether the request
//! ever reached the instance.

use std::error::Error as StdError;
use std::time::Duration;

use http::Response;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use thiserror::Error;

use crate::body::{ProxyBody, Replayable, empty};
use crate::config::ProxyConfig;
use crate::endpoint::Endpoint;
use crate::failure::ProxyFailure;
use crate::forward::RequestHead;

type PooledClient = Client<HttpConnector, Replayable<ProxyBody>>;

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

/// Pooled connections to every instance of one app.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: PooledClient,
    response_header_timeout: Duration,
}

impl Upstream {
    pub fn new(config: &ProxyConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Upstream {
            client,
            response_header_timeout: config.response_header_timeout,
        }
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
            .into_request(endpoint, body)
            .map_err(UpstreamError::BadRequest)?;
        let exchange = tokio::time::timeout(self.response_header_timeout, self.client.request(req));
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
        let Ok(req) = head.into_request(endpoint, Replayable::owned(empty())) else {
            return false;
        };
        match tokio::time::timeout(timeout, self.client.request(req)).await {
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
