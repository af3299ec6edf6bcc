//! The web dashboard at `/ui/`: server-rendered pages over the same services as the API, with
//! one small script (`assets/dashboard.js`) for live sections (server-sent events), commands
//! (sent to the JSON API) and signing in. Pages and assets are compiled into the binary.
//!
//! - [`session`]: the sign-in page, signing in and out, the session cookie.
//! - [`apps`]: every app with its releases, rollout and last verdict.
//! - [`rollout`]: one app's rollout, live: steps, weights, charts, the judge's evidence,
//!   measurements, the timeline and the commands the caller's role allows.
//! - [`flags`]: flags per environment, toggles and rollout percentages, each flag's audit trail.
//! - [`experiments`]: experiment results, with the report's plots.
//! - [`incidents`]: every automatic rollback, and each one's report.
//! - [`audit`]: the event log, filtered by app, principal and kind.
//! - [`page`]: the layout every page shares, HTML escaping, and errors as pages.
//! - [`charts`]: the SVG charts of a rollout.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::router::ServerContext;

pub mod apps;
pub mod audit;
pub mod charts;
pub mod experiments;
pub mod flags;
pub mod incidents;
pub mod page;
pub mod rollout;
pub mod session;

/// The sign-in page (and where its form posts).
pub const SIGN_IN_PATH: &str = "/ui/login";
/// The stylesheet and the script, public like the sign-in page.
pub const ASSETS_PATH: &str = "/ui/assets/";
/// The session cookie's name.
pub const COOKIE: &str = "switchyard_session";

const SCRIPT: &str = include_str!("ui/assets/dashboard.js");
const STYLE: &str = include_str!("ui/assets/dashboard.css");

/// The dashboard's routes, merged into the API's router.
pub fn routes() -> Router<ServerContext> {
    Router::new()
        .route("/ui", get(|| async { redirect("/ui/") }))
        .route("/ui/", get(apps::page))
        .route(SIGN_IN_PATH, get(session::page).post(session::sign_in))
        .route("/ui/logout", post(session::sign_out))
        .route("/ui/apps/{app}", get(rollout::page))
        .route("/ui/apps/{app}/live", get(rollout::live))
        .route("/ui/flags", get(flags::list))
        .route("/ui/flags/{key}", get(flags::detail))
        .route("/ui/experiments", get(experiments::list))
        .route("/ui/experiments/{key}", get(experiments::detail))
        .route("/ui/audit", get(audit::page))
        .route("/ui/incidents", get(incidents::list))
        .route("/ui/incidents/{id}", get(incidents::detail))
        .route("/ui/assets/dashboard.js", get(script))
        .route("/ui/assets/dashboard.css", get(style))
}

/// Whether `path` is the dashboard's.
pub fn is_page(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The session id a request's cookie carries.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    switchyard_core::cookie::value(values, COOKIE)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// 303 to the sign-in page, which comes back to `uri` once signed in.
pub fn to_sign_in(uri: &Uri) -> Response {
    let next = uri
        .path_and_query()
        .map_or("/ui/", axum::http::uri::PathAndQuery::as_str);
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    redirect(&format!("{SIGN_IN_PATH}?next={next}"))
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        page::STYLESHEET.get_or_init(stylesheet),
    )
}

/// The dashboard's stylesheet, then the experiment report's classes.
pub(crate) fn stylesheet() -> String {
    format!("{STYLE}{}", switchyard_experiments::report::SECTION_STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_read_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(session_cookie(&headers), None);
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; switchyard_session=abc123"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
        let mut empty = HeaderMap::new();
        empty.insert(
            header::COOKIE,
            HeaderValue::from_static("switchyard_session="),
        );
        assert_eq!(session_cookie(&empty), None);
    }

    #[test]
    fn the_sign_in_page_comes_back_to_where_it_was_asked() {
        let uri: Uri = "/ui/flags?environment=prod".parse().unwrap();
        let response = to_sign_in(&uri);
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()[header::LOCATION],
            "/ui/login?next=%2Fui%2Fflags%3Fenvironment%3Dprod"
        );
    }
}
