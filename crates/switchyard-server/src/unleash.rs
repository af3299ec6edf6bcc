//! Unleash's frontend API over the live flags, for browser SDKs such as `unleash-proxy-client`:
//!
//! - `GET /api/frontend?userId=…&sessionId=…&properties[plan]=pro` and
//!   `POST /api/frontend` `{"context": {...}}` → 200 `{"toggles": [...]}` with an `ETag`, 304
//!   when `If-None-Match` holds it.
//!
//! Evaluation happens here, as Unleash's own frontend API does it: the answer lists the flags
//! that are enabled for the context, each with its variant. A boolean flag is enabled when it
//! serves `true`, any other flag when it serves a value; flags imported from Unleash keep their
//! variants and payloads, other flags' values become string, number or JSON payloads. The
//! environment is the SDK key's (as an Unleash frontend token's), else the
//! `X-Switchyard-Environment` header, else `production`; it is put into the context as
//! `environment`, like OFREP does. Unleash SDKs send the token as the whole `Authorization`
//! header (no `Bearer`), which the guard accepts on these paths.

use std::hash::{DefaultHasher, Hash, Hasher};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use switchyard_control::auth::{Action, Scope};
use switchyard_control::flags::DEFAULT_ENVIRONMENT;
use switchyard_control::flags::edit::ENVIRONMENT_ATTRIBUTE;
use switchyard_flags::{EvaluationContext, EvaluationDetails, Timestamp, unleash_answer};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::ofrep::{ENVIRONMENT_HEADER, matches_etag};
use crate::router::ServerContext;

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
    State(ctx): State<ServerContext>,
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
    State(ctx): State<ServerContext>,
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
    ctx: &ServerContext,
    caller: &Caller,
    headers: &HeaderMap,
    mut context: Map<String, Value>,
) -> Result<Response, ApiError> {
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
    let body = json!({ "toggles": toggles });
    let bytes = serde_json::to_vec(&body)
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
