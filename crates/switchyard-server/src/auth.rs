//! The guard in front of every route: the `Host` allowlist (no DNS rebinding), CORS for
//! configured origins only, no cross-site mutations (a mutation needs a JSON content type or the
//! `X-Switchyard-Request` header, which a form cannot send and a cross-origin script cannot send
//! without a preflight we refuse), and authentication with a bearer token. What passes carries
//! its [`Caller`]; handlers ask it whether the principal may do what the request asks.
//!
//! The dashboard (`/ui/`) signs in once and sends a session cookie instead of the token
//! (`HttpOnly`, `SameSite=Strict`); the guard accepts it on every path but the SDKs'. A page
//! asked for without a session is redirected to the sign-in page.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchyard_control::auth::{Action, AuthError, Forbidden, Principal, Scope, Sessions, Tokens};
use switchyard_core::ports::Author;

use crate::error::ApiError;

/// The header a non-browser client may send instead of a JSON content type on a mutation.
pub const REQUEST_HEADER: &str = "x-switchyard-request";

/// How the API protects itself.
#[derive(Debug, Clone)]
pub struct Security {
    /// Tokens to authenticate with; `None`: no authentication, every caller is
    /// [`Principal::local`] (only allowed on loopback; the daemon refuses anything else).
    pub tokens: Option<Arc<Tokens>>,
    /// Host names (without port) the `Host` header may name besides IP addresses, which DNS
    /// rebinding cannot use.
    pub allowed_hosts: Vec<String>,
    /// Origins whose browser pages may call the API.
    pub cors_origins: Vec<String>,
    /// Origins whose browser pages may call OFREP and the flag stream (browser SDKs).
    pub ofrep_cors_origins: Vec<String>,
    /// The dashboard's sign-ins.
    pub sessions: Arc<Sessions>,
}

impl Security {
    /// The name every daemon answers to: `localhost`.
    pub fn loopback_hosts() -> Vec<String> {
        vec!["localhost".to_owned()]
    }
}

/// Who is asking, from where.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The client's address, as the connection shows it.
    pub source: Option<SocketAddr>,
}

impl Caller {
    /// The actor of the events this request causes.
    pub fn actor(&self) -> &str {
        self.principal.actor()
    }

    /// The principal and the client's address, as events record them.
    pub fn author(&self) -> Author {
        Author {
            actor: self.principal.actor().to_owned(),
            source: self.source.map(|s| s.ip().to_string()),
        }
    }

    /// 403 unless the principal may do `action` in `scope`.
    ///
    /// # Errors
    /// `forbidden`, naming who, the role, the action and where.
    pub fn may(&self, action: Action, scope: Scope<'_>) -> Result<(), ApiError> {
        self.principal.authorize(action, scope).map_err(forbidden)
    }
}

/// 403 `forbidden`.
pub fn forbidden(e: Forbidden) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                AuthError::Missing.to_string(),
            )
        })
    }
}

/// Paths anyone may ask: liveness, readiness, the API's description, and the dashboard's
/// sign-in page and assets.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/ready" | "/api/v1/openapi.json" | crate::ui::SIGN_IN_PATH
    ) || path.starts_with(crate::ui::ASSETS_PATH)
}

/// OFREP, the flag stream and Unleash's APIs: the paths SDKs call.
fn is_sdk_path(path: &str) -> bool {
    path.starts_with("/ofrep/") || path == "/api/v1/flags/stream" || is_unleash_path(path)
}

/// Unleash's APIs, whose SDKs send the token as the whole `Authorization` header.
fn is_unleash_path(path: &str) -> bool {
    path == "/api/frontend"
        || path.starts_with("/api/frontend/")
        || path.starts_with("/api/client/")
}

/// The middleware; see the module's documentation.
pub async fn guard(
    State(security): State<Arc<Security>>,
    mut request: Request,
    next: Next,
) -> Response {
    let security = &*security;
    let headers = request.headers();
    if let Err(e) = check_host(headers, &security.allowed_hosts) {
        return e.into_response();
    }
    let path = request.uri().path().to_owned();
    let origins = if is_sdk_path(&path) {
        &security.ofrep_cors_origins
    } else {
        &security.cors_origins
    };
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let allowed_origin = origin
        .as_deref()
        .filter(|o| origins.iter().any(|a| a == o))
        .map(str::to_owned);
    if request.method() == Method::OPTIONS {
        return match allowed_origin {
            Some(o) => preflight(&o),
            None => ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not call the API from a browser; see --cors-origin",
            )
            .into_response(),
        };
    }
    if let Err(e) = check_mutation(request.method(), headers) {
        return e.into_response();
    }
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let query_token = (path == STREAM_PATH)
        .then(|| request.uri().query().and_then(access_token))
        .flatten();
    // Read only when it can count: never on the SDKs' paths, never beside a bearer token.
    let session = if is_sdk_path(&path) || headers.contains_key(header::AUTHORIZATION) {
        None
    } else {
        crate::ui::session_cookie(headers)
    };
    let credentials = Credentials {
        query_token: query_token.as_deref(),
        session: session.as_deref(),
        bare_token: is_unleash_path(&path),
    };
    match authenticate(security, headers, &credentials) {
        Ok(principal) => {
            request
                .extensions_mut()
                .insert(Caller { principal, source });
        }
        Err(_) if crate::ui::is_page(&path) && !is_public(&path) => {
            return crate::ui::to_sign_in(request.uri());
        }
        Err(e) if !is_public(&path) => {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string())
                    .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return with_cors(response, allowed_origin.as_deref());
        }
        Err(_) => {}
    }
    let response = next.run(request).await;
    with_cors(response, allowed_origin.as_deref())
}

/// The flag change stream: a browser's `EventSource` cannot send headers, so its token may come
/// as the `access_token` query parameter (RFC 6750 §2.3).
const STREAM_PATH: &str = "/api/v1/flags/stream";

/// What a request may authenticate with besides its `Authorization` header.
struct Credentials<'a> {
    /// The flag stream's `access_token` query parameter.
    query_token: Option<&'a str>,
    /// The dashboard's session cookie.
    session: Option<&'a str>,
    /// Unleash's SDKs send the token as the whole header.
    bare_token: bool,
}

fn authenticate(
    security: &Security,
    headers: &HeaderMap,
    credentials: &Credentials<'_>,
) -> Result<Principal, AuthError> {
    let Some(tokens) = &security.tokens else {
        return Ok(Principal::local());
    };
    let token = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().map_err(|_| AuthError::Invalid)?;
            match value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
            {
                Some(token) => token,
                // Unleash SDKs send the token alone.
                None if credentials.bare_token => value,
                None => return Err(AuthError::Invalid),
            }
        }
        None => match (credentials.query_token, credentials.session) {
            (Some(token), _) => token,
            (None, Some(session)) => return security.sessions.principal(tokens, session),
            (None, None) => return Err(AuthError::Missing),
        },
    };
    tokens.authenticate(token.trim())
}

/// The bearer token of a request's `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// The `access_token` query parameter, percent-decoded.
fn access_token(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "access_token")
        .map(|(_, value)| value.into_owned())
}

/// 421 `host_not_allowed` unless the `Host` header names an IP address or an allowed host
/// (any port).
fn check_host(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = strip_port(host);
    let ip = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok();
    if ip || allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "host_not_allowed",
        format!(
            "this daemon does not answer to host `{host}` (a guard against DNS rebinding); \
             start it with --allowed-host {name} to allow it"
        ),
    ))
}

/// `host` without its port: `[::1]:7070` is `[::1]`, `example.com:80` is `example.com`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// 415 for a mutation that could come from another site: neither a JSON content type nor the
/// `X-Switchyard-Request` header.
fn check_mutation(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if json || headers.contains_key(REQUEST_HEADER) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "a request that changes something needs `Content-Type: application/json` (or an \
         `X-Switchyard-Request` header); this keeps other sites from sending it",
    ))
}

fn preflight(origin: &str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    if let Ok(o) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "authorization, content-type, if-none-match, x-switchyard-environment, x-switchyard-request, unleash-sdk, unleash-appname, unleash-connection-id",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn with_cors(mut response: Response, origin: Option<&str>) -> Response {
    if let Some(o) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("etag"),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_token_is_read_from_the_query() {
        assert_eq!(
            access_token("a=1&access_token=sk%2Fx_y").as_deref(),
            Some("sk/x_y")
        );
        assert_eq!(access_token("access_token=abc").as_deref(), Some("abc"));
        assert_eq!(access_token("token=abc"), None);
    }

    #[test]
    fn ports_are_not_part_of_the_host_name() {
        assert_eq!(strip_port("localhost:7070"), "localhost");
        assert_eq!(strip_port("[::1]:7070"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("127.0.0.1:80"), "127.0.0.1");
    }
}
