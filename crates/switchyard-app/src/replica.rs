//! Several daemons on one PostgreSQL database: one leads, the others follow.
//!
//! The leader is whoever holds the lease in the database (`PostgresStore::campaign`); it runs the
//! whole daemon (controller, experiments, tables for the proxies) and renews the lease every
//! quarter of its TTL. A follower serves the API's address too, and forwards every request to the
//! leader the lease names (so writes and reads see one state, and the flag stream and OFREP keep
//! answering through any replica); it campaigns every quarter TTL and becomes the leader — the
//! whole daemon, resuming every rollout from the store — once the lease runs out. Fencing in the
//! store refuses the writes of a leader that lost its lease without knowing it (paused past the
//! lease, then resumed); it learns so at its next renewal and steps down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchyard_store::PostgresStore;
use tokio_util::sync::CancellationToken;

/// How long a lease lasts unless renewed: a dead leader is replaced within about this long.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// The largest request body a follower forwards (the API's own limits are lower).
const MAX_FORWARDED_BODY: usize = 64 * 1024 * 1024;

/// Who this process is to the others: its name in the lease, and its API's address.
#[derive(Debug, Clone)]
pub struct Identity {
    pub holder: String,
    pub api: String,
}

impl Identity {
    /// `http://ADDR` and `ADDR/pid`, unless an address to advertise is given.
    pub fn new(api_listen: SocketAddr, advertise: Option<&str>) -> Self {
        let api = advertise.map_or_else(|| format!("http://{api_listen}"), str::to_owned);
        Self {
            holder: format!("{api} (pid {})", std::process::id()),
            api,
        }
    }
}

/// Binds the API's address, then campaigns; while another replica leads, serves the address as
/// a follower and campaigns every quarter TTL. Returns the epoch won and the listener, for the
/// daemon to serve the API on without a moment where nothing listens.
///
/// A lease naming this replica's own address is reclaimed at once: having bound the address,
/// this process knows that whoever holds that lease no longer serves there (a predecessor that
/// was killed). A paused predecessor still holds the socket, so binding fails instead.
///
/// # Errors
/// The API address cannot be bound.
pub async fn follow_until_leader(
    store: &PostgresStore,
    identity: &Identity,
    api_listen: SocketAddr,
    ttl: Duration,
) -> anyhow::Result<(i64, std::net::TcpListener)> {
    let listener = std::net::TcpListener::bind(api_listen)
        .with_context(|| format!("while binding the API on {api_listen}"))?;
    listener
        .set_nonblocking(true)
        .context("while setting up the API listener")?;
    if let Some(epoch) = campaign(store, identity, ttl).await {
        return Ok((epoch, listener));
    }
    tracing::info!(api = %api_listen, "another replica leads: following it, forwarding the API to it");
    let serving = tokio::net::TcpListener::from_std(
        listener
            .try_clone()
            .context("while setting up the API listener")?,
    )
    .context("while setting up the API listener")?;
    let stop = CancellationToken::new();
    let follower = Follower {
        store: store.clone(),
        me: identity.api.clone(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .build()
            .context("while building the forwarding client")?,
    };
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .fallback(forward)
        .with_state(Arc::new(follower))
        .into_make_service_with_connect_info::<SocketAddr>();
    let stopping = stop.clone();
    let server = tokio::spawn(async move {
        axum::serve(serving, app)
            .with_graceful_shutdown(async move { stopping.cancelled().await })
            .await
    });
    let mut every = tokio::time::interval(ttl / 4);
    let epoch = loop {
        every.tick().await;
        if let Some(epoch) = campaign(store, identity, ttl).await {
            break epoch;
        }
    };
    // Forwarded streams (the flag stream, proxies' table requests) would hold a graceful
    // shutdown: they are cut, and their clients reconnect to the new leader. Connections not
    // yet accepted wait in the socket's queue for the daemon.
    stop.cancel();
    server.abort();
    let _ = server.await;
    Ok((epoch, listener))
}

async fn campaign(store: &PostgresStore, identity: &Identity, ttl: Duration) -> Option<i64> {
    match store
        .campaign(&identity.holder, &identity.api, ttl, true)
        .await
    {
        Ok(won) => won,
        Err(e) => {
            tracing::warn!(error = %e, "campaign for the leader lease failed; retrying");
            None
        }
    }
}

/// Renews the lease every quarter TTL until `cancel`; cancels `deposed` when another replica
/// took it over, or when no renewal succeeded for a whole TTL (another may have by then).
pub async fn keep_leading(
    store: PostgresStore,
    ttl: Duration,
    cancel: CancellationToken,
    deposed: CancellationToken,
) {
    let mut every = tokio::time::interval(ttl / 4);
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        match store.renew(ttl).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                tracing::error!("another replica took the leader lease over: stepping down");
                deposed.cancel();
                return;
            }
            Err(e) if renewed.elapsed() >= ttl => {
                tracing::error!(error = %e, "the leader lease could not be renewed for a whole TTL: stepping down");
                deposed.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "renewing the leader lease failed; retrying"),
        }
    }
}

struct Follower {
    store: PostgresStore,
    /// This replica's own API: a lease naming it is not forwarded to (it would loop).
    me: String,
    client: reqwest::Client,
}

impl Follower {
    /// The leader's API, if a live lease names one other than this replica.
    async fn leader(&self) -> Option<String> {
        let lease = self.store.leader().await.ok().flatten()?;
        (lease.expires_in_ms > 0 && lease.api != self.me).then_some(lease.api)
    }
}

/// Ready while a live leader answers for this replica.
async fn ready(State(follower): State<Arc<Follower>>) -> Response {
    match follower.leader().await {
        Some(_) => (StatusCode::OK, "ok (following)").into_response(),
        None => no_leader(),
    }
}

fn no_leader() -> Response {
    let body = serde_json::json!({"error": {
        "code": "no_leader",
        "message": "no replica leads at the moment (a takeover is under way); retry shortly",
        "details": {},
    }});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// Headers that belong to one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::HOST,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for name in &HOP_BY_HOP {
        out.remove(name);
    }
    out.remove("keep-alive");
    out.remove("proxy-connection");
    out
}

/// Sends the request to the leader and streams its answer back.
async fn forward(State(follower): State<Arc<Follower>>, request: Request) -> Response {
    let Some(leader) = follower.leader().await else {
        return no_leader();
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_FORWARDED_BODY).await else {
        let body = serde_json::json!({"error": {
            "code": "payload_too_large",
            "message": format!("request bodies forwarded to the leader are limited to {MAX_FORWARDED_BODY} bytes"),
            "details": {},
        }});
        return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    let sent = follower
        .client
        .request(parts.method, format!("{leader}{path}"))
        .headers(forwardable(&parts.headers))
        .body(body)
        .send()
        .await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::warn!(leader = %leader, error = %e, "the leader did not answer a forwarded request");
            return no_leader();
        }
    };
    let mut response = Response::builder().status(upstream.status());
    if let Some(headers) = response.headers_mut() {
        *headers = forwardable(upstream.headers());
        headers.remove(header::CONTENT_LENGTH);
    }
    // The body as it arrives (the flag stream and proxies' table requests are long-lived); it
    // ends at the first error.
    let stream = futures_util::stream::unfold(Some(upstream), |upstream| async move {
        let mut upstream = upstream?;
        match upstream.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<Bytes, reqwest::Error>(chunk), Some(upstream))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
