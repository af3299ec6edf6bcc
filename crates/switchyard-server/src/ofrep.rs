//! The OpenFeature Remote Evaluation Protocol (OFREP) over the live flags.
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}` → 200 `{key, value, reason, variant, metadata}`;
//!   404 `{key, errorCode: FLAG_NOT_FOUND, errorDetails}`; 400 `{key, errorCode:
//!   PARSE_ERROR | INVALID_CONTEXT, errorDetails}` for a body or context that cannot be used.
//! - `POST /ofrep/v1/evaluate/flags` → 200 `{flags: [...], eventStreams}` with an `ETag`, 304
//!   when `If-None-Match` holds it; 400 `{errorCode, errorDetails}`. The ETag hashes the answer,
//!   except the values of flags drawn at random (a context without a targeting key in a
//!   `default`-stickiness split), whose every draw is right: an anonymous client keeps its draw
//!   and gets 304s until something else changes. `eventStreams` names the change stream by an
//!   origin-relative `endpoint`, so the client reaches it with the scheme and host it used; for
//!   an SDK key the endpoint carries the key as `access_token` (a browser's `EventSource` cannot
//!   send headers).
//!
//! A served `null` (no default variant) omits `value`: the SDK uses its code default (OFREP
//! ADR 0006). The environment is the context's `environment` attribute, else the
//! `X-Switchyard-Environment` header, else the one environment of an SDK key, else
//! `production`; it is put back into the context as `environment`, so rules (and
//! environment-scoped rollouts) can test it. An SDK key answers only for its environment (403
//! for another).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use switchyard_flags::{ErrorCode, EvaluationContext, EvaluationDetails, Reason, Timestamp};

use switchyard_control::auth::{Action, Role, Scope};

use crate::auth::Caller;
use crate::router::FlagContext;
use switchyard_control::flags::DEFAULT_ENVIRONMENT;
use switchyard_control::flags::edit::ENVIRONMENT_ATTRIBUTE;

/// The request header that selects the environment when the context does not.
pub const ENVIRONMENT_HEADER: &str = "x-switchyard-environment";

/// A successful evaluation.
#[derive(Debug, Serialize)]
struct Success<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Value::is_null")]
    value: &'a Value,
    reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    metadata: &'a BTreeMap<String, Value>,
}

/// A failed evaluation (`key` is absent for a bulk request that failed as a whole).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    error_code: ErrorCode,
    error_details: String,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Evaluation<'a> {
    Success(Success<'a>),
    Failure(Failure<'a>),
}

impl<'a> From<EvaluationDetails<'a>> for Evaluation<'a> {
    fn from(d: EvaluationDetails<'a>) -> Self {
        match d.error_code {
            Some(code) => Evaluation::Failure(Failure {
                key: Some(d.key),
                error_code: code,
                error_details: d.error_message.map(|m| m.to_string()).unwrap_or_default(),
            }),
            None => Evaluation::Success(Success {
                key: d.key,
                value: d.value,
                reason: d.reason,
                variant: d.variant,
                metadata: d.metadata,
            }),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Bulk<'a> {
    flags: Vec<Evaluation<'a>>,
    event_streams: Vec<Value>,
}

/// The flag change stream.
const STREAM_PATH: &str = "/api/v1/flags/stream";

/// `POST /ofrep/v1/evaluate/flags/{key}`.
#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags/{key}",
    tag = "ofrep",
    params(("key" = String, Path, description = "the flag's key")),
    request_body = Object,
    responses((status = 200, description = "the evaluation", body = Object), (status = 400, description = "an OFREP error: {key, errorCode, errorDetails}", body = Object), (status = 404, description = "an OFREP error: FLAG_NOT_FOUND", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn evaluate_flag(
    State(ctx): State<FlagContext>,
    caller: Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (context, environment) = match request_context(&body, &headers, &caller) {
        Ok(parsed) => parsed,
        Err((code, details)) => {
            let failure = Failure {
                key: Some(&key),
                error_code: code,
                error_details: details,
            };
            return json_response(StatusCode::BAD_REQUEST, &failure);
        }
    };
    if let Err(e) = caller.may(Action::Evaluate, Scope::Environment(&environment)) {
        return e.into_response();
    }
    let live = ctx.flags.live();
    let experiments = ctx.experiments.live();
    let now = Timestamp::from_unix_millis(millis(&ctx));
    // The flag of a flag experiment shadows a flag of the same key.
    let details = match ctx.experiments.evaluate(&experiments, &key, &context, now) {
        Some(details) => details,
        None => live
            .compiled(&environment)
            .evaluate(&key, None, &context, now),
    };
    let status = match details.error_code {
        None => StatusCode::OK,
        Some(ErrorCode::FlagNotFound) => StatusCode::NOT_FOUND,
        Some(_) => StatusCode::BAD_REQUEST,
    };
    json_response(status, &Evaluation::from(details))
}

/// `POST /ofrep/v1/evaluate/flags`.
#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags",
    tag = "ofrep",
    request_body = Object,
    responses((status = 200, description = "every flag evaluated", body = Object), (status = 304, description = "unchanged since If-None-Match"), (status = 400, description = "an OFREP error: {errorCode, errorDetails}", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn evaluate_flags(
    State(ctx): State<FlagContext>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (context, environment) = match request_context(&body, &headers, &caller) {
        Ok(parsed) => parsed,
        Err((code, details)) => {
            let failure = Failure {
                key: None,
                error_code: code,
                error_details: details,
            };
            return json_response(StatusCode::BAD_REQUEST, &failure);
        }
    };
    if let Err(e) = caller.may(Action::Evaluate, Scope::Environment(&environment)) {
        return e.into_response();
    }
    let live = ctx.flags.live();
    let now = Timestamp::from_unix_millis(millis(&ctx));
    let experiments = ctx.experiments.live();
    let evaluations: Vec<EvaluationDetails<'_>> = live
        .compiled(&environment)
        .evaluate_all(&context, now)
        .filter(|d| !experiments.has_flag(d.key))
        // No exposure: a bulk fetch fills a client's cache and shows nothing to anyone;
        // clients evaluating from such a cache send their `$exposure` events themselves.
        .chain(experiments.flags.evaluate_all(&context, now))
        .collect();
    let etag = answer_tag(&evaluations);
    let etag_header = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    if matches_etag(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    let bulk = Bulk {
        flags: evaluations.into_iter().map(Evaluation::from).collect(),
        event_streams: vec![event_stream(&caller, &headers)],
    };
    let bytes = match serde_json::to_vec(&bulk) {
        Ok(bytes) => bytes,
        Err(e) => return general_error(&e),
    };
    (
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
        .into_response()
}

/// The bulk answer's entity tag: a hash of every evaluation, where a value drawn at random
/// counts only as "drawn" (any draw is a right answer, so a client may keep the one it has).
fn answer_tag(evaluations: &[EvaluationDetails<'_>]) -> String {
    let mut hasher = DefaultHasher::new();
    for details in evaluations {
        details.key.hash(&mut hasher);
        details.random.hash(&mut hasher);
        if !details.random {
            details.variant.hash(&mut hasher);
            details.value.to_string().hash(&mut hasher);
        }
        serde_json::to_string(&details.reason)
            .unwrap_or_default()
            .hash(&mut hasher);
        details.error_code.map(|c| c as u8).hash(&mut hasher);
        for (name, value) in details.metadata {
            name.hash(&mut hasher);
            value.to_string().hash(&mut hasher);
        }
    }
    format!("\"{:016x}\"", hasher.finish())
}

/// The change stream, as OFREP's `eventStreams` entry: an origin-relative endpoint (the client
/// keeps its own scheme and host), with an SDK key's secret as `access_token` because a
/// browser's `EventSource` cannot send an `Authorization` header.
fn event_stream(caller: &Caller, headers: &HeaderMap) -> Value {
    let mut uri = STREAM_PATH.to_owned();
    if caller.principal.role == Role::Sdk {
        if let Some(token) = crate::auth::bearer(headers) {
            uri.push_str("?access_token=");
            uri.extend(form_urlencoded::byte_serialize(token.as_bytes()));
        }
    }
    serde_json::json!({"type": "sse", "endpoint": {"requestUri": uri}})
}

fn millis(ctx: &FlagContext) -> i64 {
    i64::try_from(ctx.clock.now().as_millis()).unwrap_or(i64::MAX)
}

/// `If-None-Match` holds `etag` (or `*`); weak validators compare as strong ones here because
/// the tag is a hash of the exact answer.
pub(crate) fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// The evaluation context and environment of a request body `{"context": {...}}`. Without an
/// `environment` attribute: the header, else the one environment of an SDK key, else the
/// default.
fn request_context(
    body: &Bytes,
    headers: &HeaderMap,
    caller: &Caller,
) -> Result<(EvaluationContext, String), (ErrorCode, String)> {
    let mut attributes = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        let request: Value = serde_json::from_slice(body).map_err(|e| {
            (
                ErrorCode::ParseError,
                format!("request body is not JSON: {e}"),
            )
        })?;
        let Value::Object(mut request) = request else {
            return Err((
                ErrorCode::ParseError,
                "request body must be a JSON object".into(),
            ));
        };
        match request.remove("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(context)) => context,
            Some(other) => {
                return Err((
                    ErrorCode::InvalidContext,
                    format!("context must be an object, got {other}"),
                ));
            }
        }
    };
    let targeting_key = match attributes.remove("targetingKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key),
        Some(other) => {
            return Err((
                ErrorCode::InvalidContext,
                format!("targetingKey must be a string, got {other}"),
            ));
        }
    };
    let environment = match attributes.get(ENVIRONMENT_ATTRIBUTE) {
        Some(Value::String(name)) => name.clone(),
        Some(Value::Null) | None => headers
            .get(ENVIRONMENT_HEADER)
            .and_then(|h| h.to_str().ok())
            .or(caller.principal.only_environment())
            .unwrap_or(DEFAULT_ENVIRONMENT)
            .to_owned(),
        Some(other) => {
            return Err((
                ErrorCode::InvalidContext,
                format!("environment must be a string, got {other}"),
            ));
        }
    };
    attributes.insert(
        ENVIRONMENT_ATTRIBUTE.into(),
        Value::String(environment.clone()),
    );
    let mut context = EvaluationContext::new();
    context.targeting_key = targeting_key;
    for (name, value) in attributes {
        context = context.with_attribute(name, value);
    }
    Ok((context, environment))
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            Body::from(bytes),
        )
            .into_response(),
        Err(e) => general_error(&e),
    }
}

/// OFREP's 500 body. Serialising evaluation results cannot fail in practice (string map keys).
fn general_error(e: &serde_json::Error) -> Response {
    tracing::error!(error = %e, "OFREP answer cannot be serialised");
    let body = serde_json::json!({"errorDetails": "internal error; see the daemon's log"});
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}
