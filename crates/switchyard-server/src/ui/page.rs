//! The layout every page shares, the answer a page is sent in (with its security headers),
//! HTML escaping, and errors shown as pages.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_core::Timestamp;

pub use switchyard_experiments::report::escape;

use crate::auth::Caller;
use crate::error::ApiError;

/// The stylesheet: the dashboard's own, then the experiment report's classes.
pub(crate) static STYLESHEET: OnceLock<String> = OnceLock::new();

/// Scripts and styles from this daemon only, no inline script, no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The section of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Apps,
    Flags,
    Experiments,
    Incidents,
    Audit,
}

const NAV: [(Nav, &str, &str); 5] = [
    (Nav::Apps, "/ui/", "Apps"),
    (Nav::Flags, "/ui/flags", "Flags"),
    (Nav::Experiments, "/ui/experiments", "Experiments"),
    (Nav::Incidents, "/ui/incidents", "Incidents"),
    (Nav::Audit, "/ui/audit", "Audit"),
];

/// A whole page: the header with the navigation and who is signed in, then `main`.
pub fn render(title: &str, nav: Option<Nav>, caller: Option<&Caller>, main: &str) -> Response {
    let mut out = String::with_capacity(main.len() + 2048);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Switchyard</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/ui/assets/dashboard.css\">\
         <script src=\"/ui/assets/dashboard.js\" defer></script></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"top\"><a class=\"brand\" href=\"/ui/\">Switchyard</a>",
        escape(title)
    );
    if let Some(caller) = caller {
        out.push_str("<nav aria-label=\"Main\"><ul>");
        for (item, href, label) in NAV {
            let current = if nav == Some(item) {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(out, "<li><a href=\"{href}\"{current}>{label}</a></li>");
        }
        out.push_str("</ul></nav>");
        let principal = &caller.principal;
        let _ = write!(
            out,
            "<div class=\"who\"><span>{} <span class=\"role\">{}</span></span>",
            escape(principal.actor()),
            principal.role
        );
        if principal.token.is_some() {
            out.push_str("<button type=\"button\" class=\"link\" data-sign-out>Sign out</button>");
        }
        out.push_str("</div>");
    }
    let _ = write!(
        out,
        "</header><main id=\"main\">{main}</main>\
         <p id=\"status\" class=\"status\" role=\"status\" aria-live=\"polite\"></p></body></html>"
    );
    let mut response = out.into_response();
    secure(&mut response, "text/html; charset=utf-8");
    response
}

/// The headers of every page and fragment stream.
pub fn secure(response: &mut Response, content_type: &'static str) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A failure shown as a page with its status, code and message.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        let main = format!(
            "<h1>{} {}</h1><p class=\"error\" role=\"alert\"><code>{}</code>: {}</p>\
             <p><a href=\"/ui/\">Back to the apps</a></p>",
            e.status.as_u16(),
            escape(e.status.canonical_reason().unwrap_or("")),
            e.code,
            escape(&e.message)
        );
        let mut response = render("Error", None, None, &main);
        *response.status_mut() = e.status;
        response
    }
}

/// A page's result.
pub type PageResult = Result<Response, PageError>;

/// 404 as a page.
pub fn not_found(what: String) -> PageError {
    PageError(ApiError::new(StatusCode::NOT_FOUND, "not_found", what))
}

/// `text` as one segment of a URL path: every byte but `A-Z a-z 0-9 - . _ ~` percent-encoded
/// (so the result needs no HTML escaping either).
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An instant as a `<time>` element, to the second, in UTC.
pub fn time(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    let shown = text.get(..19).unwrap_or(&text).replace('T', " ");
    format!("<time datetime=\"{text}\">{shown}</time>")
}

/// `0.0123` as `1.23 %`; `–` for nothing.
pub fn percent(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| "–".into(), |v| format!("{:.2} %", v * 100.0))
}

/// Milliseconds with a precision fit for people; `–` for nothing.
pub fn millis(v: Option<f64>) -> String {
    match v.filter(|v| v.is_finite()) {
        None => "–".into(),
        Some(v) if v < 10.0 => format!("{v:.2} ms"),
        Some(v) if v < 100.0 => format!("{v:.1} ms"),
        Some(v) => format!("{v:.0} ms"),
    }
}

/// The CSS class of a rollout phase's badge.
pub fn phase_class(phase: &str) -> &'static str {
    match phase {
        "Succeeded" => "ok",
        "RolledBack" | "Aborted" | "Failed" => "bad",
        "Paused" | "AwaitingApproval" | "AwaitingWebhook" => "wait",
        _ => "busy",
    }
}

/// A phase as a badge.
pub fn phase_badge(phase: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        phase_class(phase),
        escape(phase)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(percent(Some(0.0123)), "1.23 %");
        assert_eq!(percent(None), "–");
        assert_eq!(percent(Some(f64::NAN)), "–");
        assert_eq!(millis(Some(3.25159)), "3.25 ms");
        assert_eq!(millis(Some(42.42)), "42.4 ms");
        assert_eq!(millis(Some(420.4)), "420 ms");
        assert_eq!(path_segment("Hellø w/o?#"), "Hell%C3%B8%20w%2Fo%3F%23");
        assert_eq!(path_segment("new-checkout_v1.2~x"), "new-checkout_v1.2~x");
        assert_eq!(
            time(Timestamp::from_millis(1_700_000_000_000)),
            "<time datetime=\"2023-11-14T22:13:20.000Z\">2023-11-14 22:13:20</time>"
        );
    }
}
