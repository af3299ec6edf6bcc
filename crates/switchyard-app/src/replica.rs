//! Several daemons on one PostgreSQL database: one leads, the others follow.
//!
//! The leader is whoever holds the lease in the database (`PostgresStore::campaign`); it runs the
//! whole daemon (controller, experiments, tables for the proxies) and renews the lease every
//! quarter of its TTL. A follower serves the API's address too: the paths SDKs call (OFREP, the
//! flag stream, Unleash's APIs) it answers itself from flags it reads from the store and reads
//! again when the leader's `NOTIFY` says they changed (and every few seconds, as a version
//! check), so flags keep being served while no replica leads; everything else it forwards to
//! the leader the lease names. It campaigns every quarter TTL and becomes the leader — the whole
//! daemon, resuming every rollout from the store — once the lease runs out. Fencing in the
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
use switchyard_control::auth::Tokens;
use switchyard_control::{ExperimentService, FlagService};
use switchyard_core::{Clock, SystemClock};
use switchyard_server::FlagContext;
use switchyard_store::{Heard, PostgresStore, Store, Topic};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::DaemonConfig;

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
/// The API address cannot be bound, or the follower's flags, experiments or tokens cannot be
/// loaded.
pub async fn follow_until_leader(
    store: &PostgresStore,
    identity: &Identity,
    config: &DaemonConfig,
) -> anyhow::Result<(i64, std::net::TcpListener)> {
    let (api_listen, ttl) = (config.api_listen, config.lease_ttl);
    let listener = std::net::TcpListener::bind(api_listen)
        .with_context(|| format!("while binding the API on {api_listen}"))?;
    listener
        .set_nonblocking(true)
        .context("while setting up the API listener")?;
    if let Some(epoch) = campaign(store, identity, ttl).await {
        return Ok((epoch, listener));
    }
    tracing::info!(api = %api_listen, "another replica leads: following it");
    let serving = tokio::net::TcpListener::from_std(
        listener
            .try_clone()
            .context("while setting up the API listener")?,
    )
    .context("while setting up the API listener")?;
    let stop = CancellationToken::new();
    let local = LocalFlags::load(store, config, stop.child_token()).await?;
    let refresher = tokio::spawn(local.clone().follow(store.clone(), stop.child_token()));
    let follower = Follower {
        store: store.clone(),
        me: identity.api.clone(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .build()
            .context("while building the forwarding client")?,
        sdk: switchyard_server::sdk_router(local.context.clone()),
        local,
    };
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .fallback(dispatch)
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
    let _ = refresher.await;
    Ok((epoch, listener))
}

/// What a follower serves itself: the flags, the flag experiments' flags and the tokens, read
/// from the store and read again whenever another replica says it changed them.
#[derive(Clone)]
struct LocalFlags {
    context: FlagContext,
    tokens: Arc<Tokens>,
}

/// How often a follower reads everything again, in case a change notification was missed.
const RECHECK: Duration = Duration::from_secs(5);

impl LocalFlags {
    async fn load(
        store: &PostgresStore,
        config: &DaemonConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<LocalFlags> {
        let ports = Store::Postgres(store.clone());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let flags = FlagService::load(ports.flags(), shutdown)
            .await
            .context("while loading the stored feature flags")?;
        let experiments = ExperimentService::load(
            ports.experiments(),
            Arc::clone(&clock),
            config.keep_raw_events,
        )
        .await
        .context("while loading the applied experiments")?;
        let tokens = Arc::new(
            Tokens::load(ports.tokens(), Arc::clone(&clock))
                .await
                .context("while loading the API tokens")?,
        );
        Ok(LocalFlags {
            context: FlagContext {
                flags: Arc::new(flags),
                experiments: Arc::new(experiments),
                clock,
                security: crate::daemon::security(&config.api, &tokens),
            },
            tokens,
        })
    }

    /// Reads again what the other replicas say they changed, everything after a lost
    /// connection, and everything every `RECHECK` (a version check: the flags are compiled
    /// again only when their revision moved on).
    async fn follow(self, store: PostgresStore, stop: CancellationToken) {
        let mut changes = None;
        let mut recheck = tokio::time::interval(RECHECK);
        loop {
            if changes.is_none() {
                match store.listen().await {
                    Ok(listening) => changes = Some(listening),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for changes; reading every {RECHECK:?}");
                    }
                }
            }
            let heard = async {
                match changes.as_mut() {
                    Some(c) => c.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                _ = recheck.tick() => self.refresh(None).await,
                heard = heard => match heard {
                    Heard::Changed(topic) => self.refresh(Some(topic)).await,
                    Heard::Lost => self.refresh(None).await,
                },
            }
        }
    }

    /// Reads `topic` again (everything when `None`); failures are logged and retried later.
    async fn refresh(&self, topic: Option<Topic>) {
        if topic.is_none_or(|t| t == Topic::Flags) {
            if let Err(e) = self.context.flags.refresh().await {
                tracing::warn!(error = %e, "the flags could not be read again");
            }
        }
        if topic.is_none_or(|t| t == Topic::Tokens) {
            if let Err(e) = self.tokens.reload().await {
                tracing::warn!(error = %e, "the tokens could not be read again");
            }
        }
        if topic.is_none_or(|t| t == Topic::Manifests) {
            if let Err(e) = self.context.experiments.refresh().await {
                tracing::warn!(error = %e, "the experiments could not be read again");
            }
        }
    }

    /// Whether a request is answered here rather than by the leader: the paths SDKs call,
    /// except evaluations that reach a flag experiment's flag (evaluating one records the
    /// unit's exposure, which only the leader writes).
    fn answers(&self, path: &str) -> bool {
        const LOCAL: [&str; 6] = [
            "/api/v1/flags/stream",
            "/api/frontend",
            "/api/frontend/client/metrics",
            "/api/client/features",
            "/api/client/register",
            "/api/client/metrics",
        ];
        if LOCAL.contains(&path) {
            return true;
        }
        let experiments = self.context.experiments.live();
        match path.strip_prefix("/ofrep/v1/evaluate/flags") {
            Some("") => experiments.flag_count == 0,
            Some(key) => key
                .strip_prefix('/')
                .is_some_and(|key| !key.contains('/') && !experiments.has_flag(key)),
            None => false,
        }
    }
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
    /// What it answers itself, and how.
    local: LocalFlags,
    sdk: axum::Router,
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

/// Answers the paths SDKs call here, forwards everything else to the leader.
async fn dispatch(State(follower): State<Arc<Follower>>, request: Request) -> Response {
    if follower.local.answers(request.uri().path()) {
        return match follower.sdk.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    forward(&follower, request).await
}

/// Sends the request to the leader and streams its answer back.
async fn forward(follower: &Follower, request: Request) -> Response {
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
