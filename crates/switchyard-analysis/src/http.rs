//! The HTTP client shared by the Prometheus and web providers, and how their failures read.

use std::error::Error as _;
use std::time::Duration;

/// Why the providers could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProviderBuildError {
    #[error("the HTTP client of the metric providers could not be built")]
    HttpClient(#[source] reqwest::Error),
}

/// A client for metric sources. Environment proxies are ignored: a metric source is reached
/// directly, and `HTTP_PROXY` set for other reasons must not reroute (or break) analysis.
///
/// # Errors
/// The client cannot be built (its TLS or resolver setup failed).
pub fn client() -> Result<reqwest::Client, ProviderBuildError> {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(ProviderBuildError::HttpClient)
}

/// A request error with its causes ("connection refused" sits a few sources deep).
pub(crate) fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {}",
            switchyard_core::duration::format(timeout)
        );
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of a response body, for error messages.
pub(crate) fn snippet(body: &str) -> String {
    const MAX: usize = 200;
    let body = body.trim();
    match body.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &body[..end]),
        None => body.to_string(),
    }
}
