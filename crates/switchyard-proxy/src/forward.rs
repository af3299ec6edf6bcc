//! One request through the proxy: route, pick an instance, send (retrying instances that could
//! not be connected to), and stream the answer back with telemetry recorded.

use std::cell::Cell;
use std::pin::Pin;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body::Body;
use http_body_util::BodyExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::{Instant, Sleep};

use crate::app::{ActiveRelease, ActiveTable, AppState};
use crate::balancer::{self, NoEndpoint};
use crate::body::{Attributed, FaultCell, ProxyBody, Replayable, RequestBody, Watched, empty};
use crate::endpoint::{Endpoint, EndpointGuard};
use crate::exposure::PendingExposure;
use crate::failure::ProxyFailure;
use crate::headers::{self, Added, ClientIp};
use crate::mirror;
use crate::route::{RouteDecision, RouteReason};
use crate::server::OverTls;
use crate::tunnel;
use crate::upstream::{Timers, UpstreamBody, UpstreamError, classify};

/// A generator for one request's random choices (its split, its request id, its instance).
/// Seeded from a per-thread sequence that the thread's OS-seeded generator starts: filling a
/// generator's whole state from that one for every request costs more than the request's
/// routing.
fn request_rng() -> SmallRng {
    thread_local! {
        static NEXT: Cell<u64> = Cell::new(rand::rng().random());
    }
    NEXT.with(|next| {
        // The SplitMix64 increment; `seed_from_u64` mixes the seed with SplitMix64 too.
        let seed = next.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        next.set(seed);
        SmallRng::seed_from_u64(seed)
    })
}

/// The request head that every attempt (and a mirror copy) is built from.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Method,
    /// Shares the client's bytes: cloning it copies nothing.
    pub path_and_query: PathAndQuery,
    /// The client's fields, without those of one hop.
    pub headers: HeaderMap,
    /// The fields the proxy adds, written after `headers`.
    pub added: Added,
}

impl RequestHead {
    /// `GET path_and_query` with no fields: the proxy's own requests (health checks).
    pub fn get(path_and_query: PathAndQuery) -> RequestHead {
        RequestHead {
            method: Method::GET,
            path_and_query,
            headers: HeaderMap::new(),
            added: Added::default(),
        }
    }

    /// This head, leaving `GET /` with no fields in its place.
    pub fn take(&mut self) -> RequestHead {
        std::mem::replace(self, RequestHead::get(PathAndQuery::from_static("/")))
    }

    /// The HTTP/1.1 request for `endpoint`, in origin form, with a `Host` header (the
    /// instance's address when the client sent none).
    pub fn into_request<B>(mut self, endpoint: &Endpoint, body: B) -> Request<B> {
        let mut headers = std::mem::take(&mut self.headers);
        std::mem::take(&mut self.added).insert_into(&mut headers);
        if !headers.contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(endpoint.authority.as_str())
        {
            headers.insert(header::HOST, host);
        }
        let mut req = Request::new(body);
        *req.method_mut() = std::mem::take(&mut self.method);
        *req.uri_mut() = Uri::from(self.path_and_query.clone());
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers;
        req
    }
}

/// A head that was not made into a request (the inline exchange writes it from a reference)
/// gives its map back for the next request on this thread.
impl Drop for RequestHead {
    fn drop(&mut self) {
        headers::recycle(std::mem::take(&mut self.headers));
    }
}

/// Serves one request of `app`; every failure becomes a response here.
pub async fn serve(
    app: Arc<AppState>,
    mut req: Request<RequestBody>,
    (client, timers): (&ClientIp, &Timers),
) -> Response<ProxyBody> {
    let started = Instant::now();
    let table = app.active.load_full();
    let mut rng = request_rng();
    let decision = match table.router.decide(req.headers(), req.uri(), &mut rng) {
        Ok(d) => d,
        Err(e) => return ProxyFailure::from(e).into_response(),
    };
    let release = &table.releases[decision.release];
    let in_flight = release.stats.in_flight();
    let exposure = exposure(&app, &table, &decision, &req);
    let limit = app.config.max_body_bytes;
    // A request of the proxy's own reader has no body and asks for no upgrade (it leaves those
    // to hyper): its fields need not be looked up for either.
    let from_reader = matches!(req.body(), RequestBody::Empty);
    let too_large = |l: &u64| declared_length(req.headers()).is_some_and(|n| n > *l);
    if let Some(limit) = limit.filter(|l| !from_reader && too_large(l)) {
        let too_large = Err(ProxyFailure::BodyTooLarge { limit });
        return finish(release, started, too_large, exposure);
    }
    let upgrade = (!from_reader && req.version() == Version::HTTP_11)
        .then(|| headers::requested_upgrade(req.headers()))
        .flatten();
    let on_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let proto = if req.extensions().get::<OverTls>().is_some() {
        "https"
    } else {
        "http"
    };
    let (parts, body) = req.into_parts();
    let mut head = RequestHead {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
        headers: parts.headers,
        added: Added::default(),
    };
    let request_id = prepare_headers(
        &app,
        &mut head,
        &parts.uri,
        (client, proto),
        upgrade,
        &mut rng,
    );
    let (mut body, fault) = upstream_body(&app, body, limit);
    if let Some(target) = decision.mirror {
        let cap = table.router.table().mirror.as_ref();
        let cap = cap.map_or(0, |m| m.max_body_bytes);
        body = mirror::spawn(&app, &table.releases[target], cap, &head, body, &mut rng);
    }
    let mut timer = timers.take();
    let sent = send(
        &app,
        release,
        (head, body),
        fault.as_deref(),
        (timer.as_mut(), started),
        &mut rng,
    )
    .await;
    timers.give_back(timer);
    let response = sent.map(|(mut resp, endpoint, guard)| {
        if let Some(down) =
            on_upgrade.filter(|_| resp.status() == http::StatusCode::SWITCHING_PROTOCOLS)
        {
            tunnel::spawn(&app, down, hyper::upgrade::on(&mut resp));
        }
        let affinity = decision
            .set_affinity
            .as_deref()
            .and_then(|k| affinity_cookie(&table.router, k));
        let (mut parts, body) = resp.into_parts();
        downstream_headers(&app, &mut parts.headers, parts.status, request_id, affinity);
        let body = Watched::new(
            body,
            app.config.idle_timeout,
            None,
            Some(endpoint),
            (guard, in_flight),
        );
        Response::from_parts(parts, body.boxed_unsync())
    });
    finish(release, started, response, exposure)
}

/// The request body as sent upstream, watched for idleness and `limit`, and the cell where it
/// records how the client broke it; unless it has ended already (no body at all), when there is
/// nothing to watch and no fault the client can make.
fn upstream_body(
    app: &AppState,
    body: RequestBody,
    limit: Option<u64>,
) -> (ProxyBody, Option<Arc<FaultCell>>) {
    let body = match body {
        RequestBody::Hyper(body) if !body.is_end_stream() => body,
        _ => return (empty(), None),
    };
    let fault = Arc::new(FaultCell::default());
    let watched = Watched::new(body, app.config.idle_timeout, limit, None, ());
    let body = Attributed::new(watched, Arc::clone(&fault)).boxed_unsync();
    (body, Some(fault))
}

/// The exposure this request will be, if its table feeds an experiment and the weighted split
/// placed it by its stickiness key (see [`crate::exposure`]).
fn exposure(
    app: &AppState,
    table: &ActiveTable,
    decision: &RouteDecision,
    req: &Request<RequestBody>,
) -> Option<PendingExposure> {
    let experiment = &table.experiment.as_ref()?.experiment;
    if !matches!(decision.reason, RouteReason::Sticky(_)) {
        return None;
    }
    let unit = table.router.sticky_unit(req.headers(), req.uri())?;
    app.exposures.start(experiment, unit)
}

/// Response headers as the client sees them: hop-by-hop removed (upgrade kept on a 101), the
/// request id echoed, the affinity cookie set.
fn downstream_headers(
    app: &AppState,
    headers: &mut HeaderMap,
    status: http::StatusCode,
    request_id: HeaderValue,
    affinity: Option<HeaderValue>,
) {
    let upgrade = (status == http::StatusCode::SWITCHING_PROTOCOLS)
        .then(|| headers::requested_upgrade(headers))
        .flatten();
    headers::strip_hop_by_hop(headers, upgrade);
    headers.insert(app.config.request_id_header.clone(), request_id);
    if let Some(cookie) = affinity {
        headers.append(header::SET_COOKIE, cookie);
    }
}

/// Records the outcome (telemetry, and the exposure if any) and turns failures into responses.
fn finish(
    release: &ActiveRelease,
    started: Instant,
    outcome: Result<Response<ProxyBody>, ProxyFailure>,
    exposure: Option<PendingExposure>,
) -> Response<ProxyBody> {
    let (resp, reason) = match outcome {
        Ok(resp) => (resp, None),
        Err(f) => {
            let reason = f.upstream_reason();
            (f.into_response(), reason)
        }
    };
    let now = Instant::now();
    let (status, latency) = (resp.status().as_u16(), now.duration_since(started));
    release.stats.record_at(now, status, latency, reason);
    if let Some(exposure) = exposure {
        exposure.record(&release.name, status, latency);
    }
    resp
}

fn prepare_headers(
    app: &AppState,
    head: &mut RequestHead,
    uri: &Uri,
    (client, proto): (&ClientIp, &'static str),
    upgrade: Option<HeaderValue>,
    rng: &mut SmallRng,
) -> HeaderValue {
    headers::strip_hop_by_hop(&mut head.headers, upgrade);
    // HTTP/2 clients send the host as :authority; HTTP/1 upstreams need it as Host.
    if let Some(v) = uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        && !head.headers.contains_key(header::HOST)
    {
        head.headers.insert(header::HOST, v);
    }
    let id_name = &app.config.request_id_header;
    let (added, request_id) = Added::for_request(&head.headers, (client, proto), id_name, rng);
    head.added = added;
    request_id
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn affinity_cookie(router: &crate::route::Router, key: &str) -> Option<HeaderValue> {
    let cookie = router
        .table()
        .stickiness
        .as_ref()?
        .affinity_cookie
        .as_ref()?;
    let max_age = cookie
        .max_age
        .map(|d| format!("; Max-Age={}", d.as_secs()))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{}={key}; Path=/; HttpOnly; SameSite=Lax{max_age}",
        cookie.name
    ))
    .ok()
}

type Sent = (Response<UpstreamBody>, Arc<Endpoint>, EndpointGuard);

/// Sends to an instance of `release`, trying others while connecting fails. A failure the
/// client caused (its body, in `fault` when it has one) is the client's: it neither ejects the
/// instance nor counts against the release.
async fn send(
    app: &AppState,
    release: &ActiveRelease,
    (mut head, mut body): (RequestHead, ProxyBody),
    fault: Option<&FaultCell>,
    (mut timer, started): (Pin<&mut Sleep>, Instant),
    rng: &mut SmallRng,
) -> Result<Sent, ProxyFailure> {
    let name = || release.name.clone();
    let retries = app.config.connect_retries as usize;
    // An ended body is sent as a fresh empty body each time, with nothing to lend and take back.
    let ended = body.is_end_stream();
    let client_fault = || fault.and_then(FaultCell::get);
    // Given to an attempt that may take its fields, after which no attempt follows.
    let mut given = false;
    let mut tried = Vec::new();
    let mut last_failure = None;
    // The request's own clock read serves its first attempt; a retry reads the clock again.
    let mut now = started;
    loop {
        let endpoint = match balancer::pick(&release.endpoints, &tried, now, rng) {
            Ok(e) => e,
            Err(NoEndpoint::Empty) => return Err(ProxyFailure::NoEndpoints { release: name() }),
            Err(NoEndpoint::NoneAvailable) => {
                return Err(
                    last_failure.unwrap_or(ProxyFailure::NoHealthyEndpoint { release: name() })
                );
            }
        };
        if given {
            // Unreachable: an attempt without a retry left ends the loop or finds no instance.
            return Err(last_failure.unwrap_or(ProxyFailure::NoHealthyEndpoint { release: name() }));
        }
        // Retries left and an instance not tried yet besides this one: the head is kept for
        // them (copied only if this attempt goes by hyper's client, which takes it).
        let may_retry = tried.len() < retries && release.endpoints.len() > tried.len() + 1;
        given = !may_retry;
        let guard = endpoint.start_request();
        let (lent, slot) = if ended {
            (Replayable::owned(empty()), None)
        } else {
            let (lent, slot) = Replayable::new(body);
            (lent, Some(slot))
        };
        let result = app
            .upstream
            .load_full()
            .send_within(
                (&mut head, may_retry),
                &endpoint,
                lent,
                (timer.as_mut(), now),
            )
            .await;
        match result {
            // The upstream answered a request whose body the client broke: the answer is to a
            // request the client never completed, so the client's fault decides it.
            Ok(_) if let Some(client) = client_fault() => {
                return Err(ProxyFailure::Client(client));
            }
            Ok(resp) => {
                app.observe(&endpoint, !resp.status().is_server_error());
                return Ok((resp, endpoint, guard));
            }
            Err(e) => {
                if let Some(client) = client_fault() {
                    return Err(ProxyFailure::Client(client));
                }
                app.observe(&endpoint, false);
                let failure = classify(&e, name(), tried.len() as u32 + 1);
                let retryable = matches!(e, UpstreamError::Connect { .. }) && tried.len() < retries;
                let unread = match &slot {
                    Some(slot) => slot.take_back(),
                    None => Some(empty()),
                };
                match unread {
                    Some(b) if retryable => {
                        tried.push(endpoint.addr);
                        last_failure = Some(failure);
                        body = b;
                        now = Instant::now();
                    }
                    _ => return Err(failure),
                }
            }
        }
    }
}
