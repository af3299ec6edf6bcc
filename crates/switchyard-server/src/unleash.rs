//! Unleash's APIs over the live flags, so that unmodified Unleash SDKs work pointed at
//! Switchyard:
//!
//! - the frontend API, for browser SDKs such as `unleash-proxy-client`:
//!   `GET /api/frontend?userId=…&sessionId=…&properties[plan]=pro` and `POST /api/frontend`
//!   `{"context": {...}}` → 200 `{"toggles": [...]}`; evaluation happens here, as Unleash's own
//!   frontend API does it: the answer lists the flags enabled for the context, each with its
//!   variant ([`unleash_answer`]);
//! - the client API, for server SDKs that evaluate locally: `GET /api/client/features` → the
//!   flags as Unleash features ([`switchyard_flags::FlagSet::to_unleash`]), so that the SDK
//!   answers what the frontend API and OFREP answer; flags Unleash cannot express are left out,
//!   listed with the reason under `leftOut`;
//! - usage reports: `POST /api/client/register`, `POST /api/client/metrics` and
//!   `POST /api/frontend/client/metrics` feed [`switchyard_control::flags::SdkUsage`], read back
//!   at `GET /api/v1/flags/clients`.
//!
//! Answers carry an `ETag` (304 when `If-None-Match` holds it). The environment is the SDK
//! key's (as an Unleash token's), else the `X-Switchyard-Environment` header, else
//! `production`; the frontend API puts it into the context as `environment`, like OFREP does.
//! Unleash SDKs send the token as the whole `Authorization` header (no `Bearer`), which the guard
//! accepts on these paths.

use std::hash::{DefaultHasher, Hash, Hasher};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use switchyard_control::auth::{Action, Scope};
use switchyard_control::flags::DEFAULT_ENVIRONMENT;
use switchyard_control::flags::edit::ENVIRONMENT_ATTRIBUTE;
use switchyard_control::flags::usage::{MetricsReport, Registration, UsageError};
use switchyard_flags::{EvaluationContext, EvaluationDetails, Timestamp, unleash_answer};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::ofrep::{ENVIRONMENT_HEADER, matches_etag};
use crate::router::FlagContext;

/// Unleash's context fields that are not properties.
const STANDARD_FIELDS: [&str; 6] = [
    "userId",
    "sessionId",
    "remoteAddress",
    "currentTime",
    "appName",
    "environment",
];

/// `GET /api/frontend`: the context from the query string.
#[utoipa::path(
    get,
    path = "/api/frontend",
    tag = "unleash",
    params(("userId" = Option<String>, Query, description = "and the other Unleash context fields; properties as properties[NAME]")),
    responses((status = 200, description = "the enabled toggles: {toggles: [{name, enabled, variant, impressionData}]}", body = Object), (status = 304, description = "unchanged since If-None-Match"), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn frontend_get(
    State(ctx): State<FlagContext>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut context = Map::new();
    let mut properties = Map::new();
    for (name, value) in query {
        match name
            .strip_prefix("properties[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            Some(property) => {
                properties.insert(property.to_owned(), Value::String(value));
            }
            None if STANDARD_FIELDS.contains(&name.as_str()) => {
                context.insert(name, Value::String(value));
            }
            // Unleash's frontend API also reads unknown parameters as properties.
            None => {
                properties.insert(name, Value::String(value));
            }
        }
    }
    context.insert("properties".into(), Value::Object(properties));
    answer(&ctx, &caller, &headers, context)
}

/// `POST /api/frontend`: the context as `{"context": {...}}`.
#[utoipa::path(
    post,
    path = "/api/frontend",
    tag = "unleash",
    request_body = Object,
    responses((status = 200, description = "the enabled toggles: {toggles: [{name, enabled, variant, impressionData}]}", body = Object), (status = 304, description = "unchanged since If-None-Match"), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn frontend_post(
    State(ctx): State<FlagContext>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let context = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        let request: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("request body is not JSON: {e}"),
            )
        })?;
        match request.get("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(context)) => context.clone(),
            Some(other) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_context",
                    format!("/context must be an object, got {other}"),
                ));
            }
        }
    };
    answer(&ctx, &caller, &headers, context)
}

fn answer(
    ctx: &FlagContext,
    caller: &Caller,
    headers: &HeaderMap,
    mut context: Map<String, Value>,
) -> Result<Response, ApiError> {
    let environment = environment(caller, headers)?;
    context.insert(
        ENVIRONMENT_ATTRIBUTE.into(),
        Value::String(environment.clone()),
    );
    let context = EvaluationContext::from_unleash(&Value::Object(context));
    let live = ctx.flags.live();
    let now =
        Timestamp::from_unix_millis(i64::try_from(ctx.clock.now().as_millis()).unwrap_or(i64::MAX));
    let toggles: Vec<Value> = live
        .compiled(&environment)
        .evaluate_all(&context, now)
        .filter_map(|details| toggle(&details))
        .collect();
    json_with_etag(headers, &json!({ "toggles": toggles }))
}

/// The environment a call answers for: the SDK key's, else the header's, else the default;
/// the caller must be allowed to evaluate there.
fn environment(caller: &Caller, headers: &HeaderMap) -> Result<String, ApiError> {
    let environment = caller
        .principal
        .only_environment()
        .or_else(|| {
            headers
                .get(ENVIRONMENT_HEADER)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or(DEFAULT_ENVIRONMENT)
        .to_owned();
    caller.may(Action::Evaluate, Scope::Environment(&environment))?;
    Ok(environment)
}

/// 200 with `body` and its `ETag`, or 304 when `If-None-Match` holds that tag.
fn json_with_etag(headers: &HeaderMap, body: &Value) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let etag_header = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    if matches_etag(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag_header),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// The toggle of one evaluation, when the flag is enabled for the context.
fn toggle(details: &EvaluationDetails<'_>) -> Option<Value> {
    let variant = unleash_answer(details)?;
    Some(json!({"name": details.key, "enabled": true, "impressionData": false, "variant": variant}))
}

/// `GET /api/client/features`: the live flags as Unleash client features, for server SDKs.
#[utoipa::path(
    get,
    path = "/api/client/features",
    tag = "unleash",
    params(("namePrefix" = Option<String>, Query, description = "only flags whose key starts with this")),
    responses((status = 200, description = "{version: 2, features: [...], segments: [], leftOut: [{flag, reason}]}: the flags as Unleash features; leftOut lists those Unleash cannot express", body = Object), (status = 304, description = "unchanged since If-None-Match"), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn client_features(
    State(ctx): State<FlagContext>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let environment = environment(&caller, &headers)?;
    let prefix = query
        .iter()
        .find(|(name, _)| name == "namePrefix")
        .map_or("", |(_, value)| value.as_str());
    let live = ctx.flags.live();
    let export = live.unleash(&environment);
    let wanted = |key: &str| key.starts_with(prefix);
    let features: Vec<&Value> = export
        .features
        .iter()
        .filter(|f| f["name"].as_str().is_some_and(wanted))
        .collect();
    let left_out: Vec<_> = export.left_out.iter().filter(|l| wanted(&l.flag)).collect();
    let body = json!({
        "version": 2,
        "features": features,
        "segments": [],
        "query": {"environment": environment, "namePrefix": prefix},
        "meta": {"revisionId": live.revision},
        "leftOut": left_out,
    });
    json_with_etag(&headers, &body)
}

/// `POST /api/client/register`: a server SDK announces itself.
#[utoipa::path(
    post,
    path = "/api/client/register",
    tag = "unleash",
    request_body = Object,
    responses((status = 202, description = "recorded; see GET /api/v1/flags/clients"), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn client_register(
    State(ctx): State<FlagContext>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let environment = environment(&caller, &headers)?;
    let registration: Registration = crate::body::parse(&body)?;
    ctx.flags
        .usage()
        .register(&environment, registration, ctx.clock.now())?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/client/metrics` and `POST /api/frontend/client/metrics`: how often each flag was
/// enabled, disabled and which variant, since the SDK's last report.
#[utoipa::path(
    post,
    path = "/api/client/metrics",
    tag = "unleash",
    request_body = Object,
    responses((status = 202, description = "recorded; see GET /api/v1/flags/clients"), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn client_metrics(
    State(ctx): State<FlagContext>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let environment = environment(&caller, &headers)?;
    let report: MetricsReport = crate::body::parse(&body)?;
    let live = ctx.flags.live();
    let keys: std::collections::HashSet<&str> =
        live.set.flags.iter().map(|f| f.key.as_str()).collect();
    let exists = |key: &str| keys.contains(key);
    ctx.flags
        .usage()
        .record(&environment, report, ctx.clock.now(), exists)?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /api/v1/flags/clients`: the Unleash SDK instances that reported to this replica.
#[utoipa::path(
    get,
    path = "/api/v1/flags/clients",
    tag = "flags",
    responses((status = 200, description = "{instances: [{environment, appName, instanceId, sdkVersion, registered, intervalMs, firstSeenMs, lastSeenMs, toggles: {flag: {yes, no, variants}}}]}", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn clients(
    State(ctx): State<FlagContext>,
    caller: Caller,
) -> Result<axum::Json<Value>, ApiError> {
    caller.may(Action::Read, Scope::Any)?;
    Ok(axum::Json(
        json!({ "instances": ctx.flags.usage().instances() }),
    ))
}

/// A usage report whose names are refused: 400, like any other bad body.
impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        ApiError::bad_request(format!("invalid request body: {e}"))
    }
}
