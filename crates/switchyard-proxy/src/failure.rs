//! Requests the proxy answers itself, and the one place they become HTTP responses. The body is
//! Switchyard's stable error shape: `{"error": {"code": "...", "message": "..."}}`; the message
//! says which release and which limit or timeout, never internal causes.

use http::{Response, StatusCode, header};
use thiserror::Error;

use crate::body::{ClientFault, ProxyBody, full};
use crate::route::RouteError;
use crate::telemetry::names::*;

/// 499: the client closed the connection before the answer (nginx's code).
const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(s) => s,
    Err(_) => StatusCode::BAD_REQUEST,
};

/// Why the proxy answered instead of an upstream.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ProxyFailure {
    #[error("no route: {0}")]
    NoRoute(#[from] RouteError),
    #[error("no app is served for host {host:?} and path {path:?}")]
    NoApp { host: String, path: String },
    #[error("release {release:?} has no endpoints")]
    NoEndpoints { release: String },
    #[error("release {release:?} has no healthy endpoint")]
    NoHealthyEndpoint { release: String },
    #[error("could not connect to any endpoint of release {release:?} ({attempts} attempts)")]
    ConnectFailed { release: String, attempts: u32 },
    #[error("connecting to an endpoint of release {release:?} timed out")]
    ConnectTimeout { release: String },
    #[error("release {release:?} did not send response headers in time")]
    ResponseTimeout { release: String },
    #[error("release {release:?} answered with an invalid or broken response")]
    UpstreamProtocol { release: String },
    #[error("the endpoint of release {release:?} was removed and its drain deadline passed")]
    Drained { release: String },
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// An HTTP/2 request with more header fields than `max_headers` (HTTP/1.1 requests are
    /// refused by the parser, with an empty 431).
    #[error("request has more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// The client broke its own request body; the release is not to blame.
    #[error("{}", describe(.0))]
    Client(ClientFault),
}

fn describe(fault: &ClientFault) -> String {
    match fault {
        ClientFault::Malformed => {
            "the request body is malformed (bad chunked framing or shorter than declared)".into()
        }
        ClientFault::TooLarge { limit } => {
            format!("request body is larger than the limit of {limit} bytes")
        }
        ClientFault::Idle => "the client stopped sending its request body".into(),
        ClientFault::Aborted => "the client closed the connection while sending its request".into(),
    }
}

impl ProxyFailure {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyFailure::NoApp { .. } => StatusCode::NOT_FOUND,
            ProxyFailure::BodyTooLarge { .. }
            | ProxyFailure::Client(ClientFault::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyFailure::Client(ClientFault::Malformed) => StatusCode::BAD_REQUEST,
            ProxyFailure::Client(ClientFault::Idle) => StatusCode::REQUEST_TIMEOUT,
            // nginx's "client closed request": no client reads it, but the logs and telemetry
            // say what happened.
            ProxyFailure::Client(ClientFault::Aborted) => CLIENT_CLOSED_REQUEST,
            ProxyFailure::TooManyHeaders { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyFailure::ConnectFailed { .. } | ProxyFailure::UpstreamProtocol { .. } => {
                StatusCode::BAD_GATEWAY
            }
            ProxyFailure::ConnectTimeout { .. } | ProxyFailure::ResponseTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyFailure::NoRoute(_)
            | ProxyFailure::NoEndpoints { .. }
            | ProxyFailure::NoHealthyEndpoint { .. }
            | ProxyFailure::Drained { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Stable machine-readable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyFailure::NoRoute(RouteError::NoWeight) => "no_weight",
            ProxyFailure::NoRoute(RouteError::UnknownRelease(_)) => "unknown_release",
            ProxyFailure::NoApp { .. } => "no_app",
            ProxyFailure::NoEndpoints { .. } => "no_endpoints",
            ProxyFailure::NoHealthyEndpoint { .. } => "no_healthy_endpoint",
            ProxyFailure::ConnectFailed { .. } => "connect_failed",
            ProxyFailure::ConnectTimeout { .. } => "connect_timeout",
            ProxyFailure::ResponseTimeout { .. } => "response_timeout",
            ProxyFailure::UpstreamProtocol { .. } => "upstream_protocol",
            ProxyFailure::Drained { .. } => "drained",
            ProxyFailure::BodyTooLarge { .. } => "body_too_large",
            ProxyFailure::TooManyHeaders { .. } => "too_many_headers",
            ProxyFailure::Client(ClientFault::Malformed) => "malformed_body",
            ProxyFailure::Client(ClientFault::TooLarge { .. }) => "body_too_large",
            ProxyFailure::Client(ClientFault::Idle) => "request_timeout",
            ProxyFailure::Client(ClientFault::Aborted) => "client_closed",
        }
    }

    /// The `reason` label of the upstream-failure metric, for failures caused by upstreams.
    pub fn upstream_reason(&self) -> Option<&'static str> {
        match self {
            ProxyFailure::NoEndpoints { .. } | ProxyFailure::NoHealthyEndpoint { .. } => {
                Some(REASON_NO_ENDPOINT)
            }
            ProxyFailure::ConnectFailed { .. } => Some(REASON_CONNECT),
            ProxyFailure::ConnectTimeout { .. } => Some(REASON_CONNECT_TIMEOUT),
            ProxyFailure::ResponseTimeout { .. } => Some(REASON_RESPONSE_TIMEOUT),
            ProxyFailure::UpstreamProtocol { .. } => Some(REASON_PROTOCOL),
            ProxyFailure::Drained { .. } => Some(REASON_DRAINED),
            ProxyFailure::NoRoute(_)
            | ProxyFailure::NoApp { .. }
            | ProxyFailure::BodyTooLarge { .. }
            | ProxyFailure::TooManyHeaders { .. }
            | ProxyFailure::Client(_) => None,
        }
    }

    pub fn into_response(self) -> Response<ProxyBody> {
        let body = format!(
            "{{\"error\":{{\"code\":\"{}\",\"message\":\"{}\"}}}}\n",
            self.code(),
            json_escape(&self.to_string())
        );
        let mut resp = Response::new(full(body));
        *resp.status_mut() = self.status();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        resp
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_names_the_release_and_escapes() {
        let f = ProxyFailure::NoEndpoints {
            release: "can\"ary".into(),
        };
        assert_eq!(f.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(f.code(), "no_endpoints");
        assert_eq!(f.to_string(), "release \"can\\\"ary\" has no endpoints");
        assert!(json_escape("a\"b\n").contains("\\\"b\\u000a"));
    }
}
