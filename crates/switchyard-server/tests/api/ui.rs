//! The dashboard's sign-in, its session cookie against the guard, and its pages' answers.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use switchyard_control::auth::Role;
use tower::ServiceExt;

use crate::support::{Api, app};

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    fn code(&self) -> String {
        let json: serde_json::Value =
            serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {}", self.text));
        json["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Sends a request with `cookie` (a session id) and, for a body, `content_type`.
async fn send(
    api: &Api,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:7070");
    if let Some(c) = cookie {
        b = b.header("cookie", format!("theme=dark; switchyard_session={c}"));
    }
    if let Some(t) = content_type {
        b = b.header("content-type", t);
    }
    let response = api
        .router
        .clone()
        .oneshot(b.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Revokes `token` with the admin token.
async fn revoke(api: &Api, token: &str) {
    let id = token.split('_').nth(1).unwrap();
    let path = format!("/api/v1/tokens/{id}/revoke");
    let revoked = api.json("POST", &path, &serde_json::json!({})).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
}

async fn get(api: &Api, path: &str, cookie: Option<&str>) -> Reply {
    send(api, "GET", path, cookie, None, "").await
}

/// Signs in with `token`; returns the session id from the cookie.
async fn sign_in(api: &Api, token: &str) -> String {
    let body = serde_json::json!({ "token": token }).to_string();
    let reply = send(
        api,
        "POST",
        "/ui/login",
        None,
        Some("application/json"),
        &body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let cookie = reply.header("set-cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains(token), "the cookie is not the token");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    cookie
        .strip_prefix("switchyard_session=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn pages_need_a_session_and_send_to_the_sign_in_page() {
    let api = Api::new().await;
    let reply = get(&api, "/ui/apps/shop?x=1", None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        "/ui/login?next=%2Fui%2Fapps%2Fshop%3Fx%3D1"
    );
    let login = get(&api, "/ui/login?next=/ui/flags", None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.header("content-type").starts_with("text/html"));
    assert!(
        login
            .header("content-security-policy")
            .contains("script-src 'self'")
    );
    assert_eq!(login.header("x-frame-options"), "DENY");
    assert!(login.text.contains("data-next=\"/ui/flags\""));
    for asset in ["/ui/assets/dashboard.js", "/ui/assets/dashboard.css"] {
        let reply = get(&api, asset, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
    }
    // The API itself still answers 401 in the stable body.
    let reply = get(&api, "/api/v1/apps", Some("not-a-session")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthenticated");
}

#[tokio::test]
async fn signing_in_refuses_bad_tokens_and_roles_that_cannot_read() {
    let api = Api::new().await;
    let json = Some("application/json");
    let bad = send(
        &api,
        "POST",
        "/ui/login",
        None,
        json,
        r#"{"token":"sy_0_0"}"#,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.code(), "unauthenticated");
    assert!(bad.header("set-cookie").is_empty());
    let sdk = api
        .token("web", Role::Sdk, None, Some(&["production"]))
        .await;
    let body = serde_json::json!({ "token": sdk }).to_string();
    let refused = send(&api, "POST", "/ui/login", None, json, &body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.text.contains("cannot sign in to the dashboard"),
        "{}",
        refused.text
    );
    let form = send(
        &api,
        "POST",
        "/ui/login",
        None,
        Some("application/x-www-form-urlencoded"),
        "token=x",
    )
    .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let extra = send(
        &api,
        "POST",
        "/ui/login",
        None,
        json,
        r#"{"token":"x","role":"admin"}"#,
    )
    .await;
    assert_eq!(extra.status, StatusCode::BAD_REQUEST);
    assert!(extra.text.contains("unknown field"), "{}", extra.text);
}

#[tokio::test]
async fn a_session_acts_with_its_tokens_role_until_revoked_or_signed_out() {
    let api = Api::new().await;
    api.apply(&app("shop", "[{setWeight: 20}, {pause: {}}]"))
        .await;
    let viewer = api.token("vic", Role::Viewer, None, None).await;
    let session = sign_in(&api, &viewer).await;
    let page = get(&api, "/ui/", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("<a href=\"/ui/apps/shop\">shop</a>"),
        "{}",
        page.text
    );
    assert!(page.text.contains("vic <span class=\"role\">viewer</span>"));
    assert_eq!(page.header("cache-control"), "no-store");
    // The API takes the cookie: reads pass, the role decides the rest.
    assert_eq!(
        get(&api, "/api/v1/apps", Some(&session)).await.status,
        StatusCode::OK
    );
    let json = Some("application/json");
    let promote = send(
        &api,
        "POST",
        "/api/v1/apps/shop/rollout/promote",
        Some(&session),
        json,
        "{}",
    )
    .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN);
    assert_eq!(promote.code(), "forbidden");
    let form = send(
        &api,
        "POST",
        "/api/v1/apps/shop/rollout/promote",
        Some(&session),
        Some("application/x-www-form-urlencoded"),
        "full=true",
    )
    .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // SDK paths never take a session.
    let ofrep = send(
        &api,
        "POST",
        "/ofrep/v1/evaluate/flags",
        Some(&session),
        json,
        "{}",
    )
    .await;
    assert_eq!(ofrep.status, StatusCode::UNAUTHORIZED);
    // A page's error is a page.
    let missing = get(&api, "/ui/apps/nope", Some(&session)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.header("content-type").starts_with("text/html"));
    assert!(missing.text.contains("app `nope` does not exist"));
    // Revoking the token ends the session at once.
    revoke(&api, &viewer).await;
    assert_eq!(
        get(&api, "/api/v1/apps", Some(&session)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&api, "/ui/", Some(&session)).await.status,
        StatusCode::SEE_OTHER
    );
    // Signing out ends another session and clears its cookie.
    let admin = sign_in(&api, &api.admin.clone()).await;
    let out = send(&api, "POST", "/ui/logout", Some(&admin), json, "").await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(
        get(&api, "/ui/", Some(&admin)).await.status,
        StatusCode::SEE_OTHER
    );
}

/// An incident page for an id that names no incident, a number or not, is a 404 page (HTML,
/// the id escaped), never the API's JSON error.
#[tokio::test]
async fn an_unknown_incident_is_a_not_found_page() {
    let api = Api::new().await;
    let session = sign_in(&api, &api.admin.clone()).await;
    for (path, shown) in [
        ("/ui/incidents/404", "404"),
        ("/ui/incidents/abc", "abc"),
        ("/ui/incidents/%3Cb%3E", "&lt;b&gt;"),
    ] {
        let page = get(&api, path, Some(&session)).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.text);
        assert!(
            page.header("content-type").starts_with("text/html"),
            "{path}: {}",
            page.header("content-type")
        );
        assert!(
            page.text.contains("<code>not_found</code>"),
            "{path}: {}",
            page.text
        );
        assert!(page.text.contains(shown), "{path}: {}", page.text);
        assert!(!page.text.contains("<b>"), "{path}");
    }
}

#[tokio::test]
async fn what_a_page_shows_from_a_document_is_escaped() {
    let api = Api::new().await;
    let flags = serde_json::json!({
        "format": "native",
        "content": "flags:\n  - key: hostile\n    type: string\n    description: \"<script>alert(1)</script>\"\n    variants: {a: \"<img src=x onerror=alert(2)>\"}\n    defaultVariant: a\n    environments: {production: {enabled: true}}\n",
    });
    let applied = api.json("PUT", "/api/v1/flags", &flags).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    let session = sign_in(&api, &api.admin.clone()).await;
    for path in ["/ui/flags?environment=production", "/ui/flags/hostile"] {
        let page = get(&api, path, Some(&session)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        assert!(!page.text.contains("<script>alert"), "{path}");
        assert!(!page.text.contains("<img src=x"), "{path}");
        assert!(
            page.text.contains("&lt;img src=x onerror=alert(2)&gt;"),
            "{path}: {}",
            page.text
        );
    }
    // A key that is not ASCII is linked percent-encoded, and the link leads to it.
    let utf8 = serde_json::json!({
        "format": "native",
        "content": "flags:\n  - key: Feature.UTF-8.Hellø_Wørld\n    type: boolean\n    variants: {on: true}\n    defaultVariant: on\n",
    });
    assert_eq!(
        api.json("PUT", "/api/v1/flags", &utf8).await.status,
        StatusCode::OK
    );
    let list = get(&api, "/ui/flags", Some(&session)).await;
    let link = "/ui/flags/Feature.UTF-8.Hell%C3%B8_W%C3%B8rld";
    assert!(
        list.text.contains(&format!("<a href=\"{link}\">")),
        "{}",
        list.text
    );
    let page = get(&api, link, Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Feature.UTF-8.Hellø_Wørld"));
    let bad_env = get(&api, "/ui/flags?environment=%3Cb%3E", Some(&session)).await;
    assert_eq!(bad_env.status, StatusCode::BAD_REQUEST);
    assert!(!bad_env.text.contains("<b>"));
}

#[tokio::test]
async fn the_live_stream_sends_every_section_then_ends_with_its_token() {
    let api = Api::new().await;
    api.apply(&app("shop", "[{setWeight: 20}, {pause: {}}]"))
        .await;
    let viewer = api.token("vic", Role::Viewer, None, None).await;
    let request = Request::builder()
        .uri("/ui/apps/shop/live")
        .header("host", "127.0.0.1:7070")
        .header("authorization", format!("Bearer {viewer}"))
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(first.starts_with("event: sections\n"), "{first}");
    for id in [
        "s-summary",
        "s-steps",
        "s-actions",
        "s-traffic",
        "s-charts",
        "s-judge",
        "s-measurements",
        "s-timeline",
    ] {
        assert!(
            first.contains(&format!("\"{id}\"")),
            "{id} missing from {first}"
        );
    }
    revoke(&api, &viewer).await;
    // The next render (the 2 s refresh at the latest) finds the token revoked and ends the
    // stream; the bound only keeps a broken build from hanging the suite.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Some(frame) = body.frame().await {
            frame.unwrap();
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream went on after its token was revoked"
    );
}
