//! Signing in and out. The sign-in form posts the token as JSON (the guard refuses form posts,
//! which other sites could send); the answer sets the session cookie, `HttpOnly` (no script
//! reads it), `SameSite=Strict` (no other site's request carries it) and `Secure` behind a TLS
//! terminator that says so (`X-Forwarded-Proto: https`).

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchyard_control::auth::SignInError;
use switchyard_control::auth::sessions::SESSION_LIFETIME;

use super::page::{escape, render};
use super::{COOKIE, session_cookie};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;

#[derive(Debug, Deserialize)]
pub struct SignInParams {
    next: Option<String>,
}

/// `GET /ui/login?next=`.
pub async fn page(
    caller: Option<Extension<Caller>>,
    Query(params): Query<SignInParams>,
    State(ctx): State<ServerContext>,
) -> Response {
    let next = safe_next(params.next.as_deref());
    if ctx.security.tokens.is_none() || caller.is_some() {
        return super::redirect(next);
    }
    let main = format!(
        "<h1>Sign in</h1>\
         <form class=\"card narrow\" data-sign-in data-next=\"{}\">\
         <label for=\"token\">API token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" spellcheck=\"false\" \
         required aria-describedby=\"token-help\">\
         <p id=\"token-help\" class=\"note\">A token from <code>switchyard token create</code>, or the \
         admin token in the data directory's <code>admin.token</code>. Its role decides what you see \
         and may do. The browser keeps a session cookie, never the token.</p>\
         <button type=\"submit\">Sign in</button>\
         <p class=\"error\" role=\"alert\" id=\"sign-in-error\"></p></form>",
        escape(next)
    );
    render("Sign in", None, None, &main)
}

/// Only the dashboard's own pages: never another site, another path (`..`) or `//host`.
fn safe_next(next: Option<&str>) -> &str {
    next.filter(|n| {
        n.starts_with("/ui/") && !n.contains("//") && !n.contains("..") && !n.contains('\\')
    })
    .unwrap_or("/ui/")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInRequest {
    token: String,
}

/// `POST /ui/login` with `{"token": "..."}`: sets the session cookie.
pub async fn sign_in(
    State(ctx): State<ServerContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: SignInRequest = crate::body::parse(&body)?;
    let Some(tokens) = &ctx.security.tokens else {
        return Ok(Json(serde_json::json!({"name": "local", "role": "admin"})).into_response());
    };
    let (id, principal) = ctx
        .security
        .sessions
        .sign_in(tokens, &request.token)
        .map_err(|e| match e {
            SignInError::Auth(_) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string())
            }
            SignInError::Role(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
        })?;
    tracing::info!(name = %principal.name, role = %principal.role, "signed in to the dashboard");
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Json(serde_json::json!({
        "name": principal.name,
        "role": principal.role,
    }))
    .into_response();
    set_cookie(&mut response, &cookie);
    Ok(response)
}

/// `POST /ui/logout`: ends the session and clears the cookie.
pub async fn sign_out(State(ctx): State<ServerContext>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        ctx.security.sessions.sign_out(&id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(
        &mut response,
        &format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dashboards_own_pages_are_gone_back_to() {
        assert_eq!(safe_next(Some("/ui/apps/shop")), "/ui/apps/shop");
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui/");
        assert_eq!(safe_next(Some("//evil.example/ui/")), "/ui/");
        assert_eq!(safe_next(Some("/ui/\\evil")), "/ui/");
        assert_eq!(safe_next(Some("/api/v1/apps")), "/ui/");
        assert_eq!(safe_next(Some("/ui/..//evil.example")), "/ui/");
        assert_eq!(safe_next(Some("/ui/../api/v1/tokens")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }
}
