//! One request through the proxy: route, pick an instance, send (retrying instances that could
//! not be connected to), and stream the answer back with telemetry recorded.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use crate::app::{ActiveRelease, ActiveTable, AppState};
use crate::balancer::{self, NoEndpoint};
use crate::body::{ProxyBody, Replayable, Watched};
use crate::endpoint::{Endpoint, EndpointGuard};
use crate::exposure::PendingExposure;
use crate::failure::ProxyFailure;
use crate::headers;
use crate::mirror;
use crate::route::{RouteDecision, RouteReason};
use crate::tunnel;
use crate::upstream::{UpstreamError, classify};

/// The request head that every attempt (and a mirror copy) is built from.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
}

impl RequestHead {
    pub fn to_request<B>(&self, endpoint: SocketAddr, body: B) -> Result<Request<B>, http::Error> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(endpoint.to_string())
            .path_and_query(self.path_and_query.as_str())
            .build()?;
        let mut req = Request::builder()
            .method(self.method.clone())
            .uri(uri)
            .version(Version::HTTP_11)
            .body(body)?;
        *req.headers_mut() = self.headers.clone();
        Ok(req)
    }
}

/// Serves one request of `app`; every failure becomes a response here.
pub async fn serve(
    app: Arc<AppState>,
    mut req: Request<Incoming>,
    client: SocketAddr,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let table = app.active.load_full();
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let decision = match table.router.decide(req.headers(), req.uri(), &mut rng) {
        Ok(d) => d,
        Err(e) => return ProxyFailure::from(e).into_response(),
    };
    let release = &table.releases[decision.release];
    let in_flight = release.stats.in_flight();
    let exposure = exposure(&app, &table, &decision, &req);
    let limit = app.config.max_body_bytes;
    if let Some(limit) = limit.filter(|l| declared_length(req.headers()).is_some_and(|n| n > *l)) {
        let too_large = Err(ProxyFailure::BodyTooLarge { limit });
        return finish(release, started, too_large, exposure);
    }
    let upgrade =
        headers::requested_upgrade(req.headers()).filter(|_| req.version() == Version::HTTP_11);
    let on_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut head = RequestHead {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        headers: parts.headers,
    };
    let request_id = prepare_headers(&app, &mut head, &parts.uri, client, upgrade, &mut rng);
    let mut body = Watched::new(body, app.config.idle_timeout, limit, None, ()).boxed_unsync();
    if let Some(target) = decision.mirror {
        let cap = table
            .router
            .table()
            .mirror
            .as_ref()
            .map_or(0, |m| m.max_body_bytes);
        body = mirror::spawn(&app, &table.releases[target], cap, &head, body, &mut rng);
    }
    let sent = send(&app, release, &head, body, &mut rng).await;
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
        let cut = Some(endpoint.removed.clone());
        let body = Watched::new(body, app.config.idle_timeout, None, cut, (guard, in_flight));
        Response::from_parts(parts, body.boxed_unsync())
    });
    finish(release, started, response, exposure)
}

/// The exposure this request will be, if its table feeds an experiment and the weighted split
/// placed it by its stickiness key (see [`crate::exposure`]).
fn exposure(
    app: &AppState,
    table: &ActiveTable,
    decision: &RouteDecision,
    req: &Request<Incoming>,
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
    let upgrade = headers::requested_upgrade(headers).filter(|_| status.as_u16() == 101);
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
    let (status, latency) = (resp.status().as_u16(), started.elapsed());
    release.stats.record(status, latency, reason);
    if let Some(exposure) = exposure {
        exposure.record(&release.name, status, latency);
    }
    resp
}

fn prepare_headers(
    app: &AppState,
    head: &mut RequestHead,
    uri: &Uri,
    client: SocketAddr,
    upgrade: Option<HeaderValue>,
    rng: &mut SmallRng,
) -> HeaderValue {
    headers::strip_hop_by_hop(&mut head.headers, upgrade);
    // HTTP/2 clients send the host as :authority; HTTP/1 upstreams need it as Host.
    if !head.headers.contains_key(header::HOST)
        && let Some(v) = uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        head.headers.insert(header::HOST, v);
    }
    let host = head
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    headers::add_forwarded(&mut head.headers, client, host.as_deref());
    headers::ensure_request_id(&mut head.headers, &app.config.request_id_header, rng)
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

type Sent = (Response<Incoming>, Arc<Endpoint>, EndpointGuard);

/// Sends to an instance of `release`, trying others while connecting fails.
async fn send(
    app: &AppState,
    release: &ActiveRelease,
    head: &RequestHead,
    mut body: ProxyBody,
    rng: &mut SmallRng,
) -> Result<Sent, ProxyFailure> {
    let name = || release.name.clone();
    let mut tried = Vec::new();
    let mut last_failure = None;
    loop {
        let endpoint = match balancer::pick(&release.endpoints, &tried, Instant::now(), rng) {
            Ok(e) => e,
            Err(NoEndpoint::Empty) => return Err(ProxyFailure::NoEndpoints { release: name() }),
            Err(NoEndpoint::NoneAvailable) => {
                return Err(
                    last_failure.unwrap_or(ProxyFailure::NoHealthyEndpoint { release: name() })
                );
            }
        };
        let guard = endpoint.start_request();
        let (lent, slot) = Replayable::new(body);
        let result = app.upstream.send(head, &endpoint, lent).await;
        match result {
            Ok(resp) => {
                app.observe(&endpoint, !resp.status().is_server_error());
                return Ok((resp, endpoint, guard));
            }
            Err(e) => {
                app.observe(&endpoint, false);
                let failure = classify(&e, name(), tried.len() as u32 + 1);
                let retryable = matches!(e, UpstreamError::Connect { .. });
                match slot.take_back() {
                    Some(b) if retryable && tried.len() < app.config.connect_retries as usize => {
                        tried.push(endpoint.addr);
                        last_failure = Some(failure);
                        body = b;
                    }
                    _ => return Err(failure),
                }
            }
        }
    }
}
