//! Every error answer in the stable body, whoever produced it: a handler's [`ApiError`], or
//! axum itself (a body that is not JSON, 405 for a method a path does not take, 413 for a body
//! over the limit, 415, 422). A middleware rewrites the answers that are not JSON already; the
//! text axum wrote becomes the message. The dashboard's error pages (HTML) are left as they are.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// At most this much of a non-JSON error body is kept as the message.
const MESSAGE_LIMIT: usize = 4096;

/// Rewrites non-JSON error answers into the stable body.
pub async fn stable_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is(&response, "application/json")
        || is(&response, "text/html")
    {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = to_bytes(response.into_body(), MESSAGE_LIMIT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, fallback) = code_of(status);
    let message = if text.is_empty() {
        fallback.to_owned()
    } else {
        text
    };
    let mut rewritten = ApiError::new(status, code, message).into_response();
    if let Some(allow) = allow {
        rewritten.headers_mut().insert(header::ALLOW, allow);
    }
    rewritten
}

/// Whether the answer's content type starts with `prefix`.
fn is(response: &Response<Body>, prefix: &str) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(prefix))
}

/// The stable code of an answer axum wrote, and a message for an empty one.
pub(crate) fn code_of(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this path does not take this method; see the Allow header",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is over the limit"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_body", "the body does not fit the request"),
        s if s.is_server_error() => ("internal", "internal error; see the daemon's log"),
        _ => ("error", "the request failed"),
    }
}
