//! Every error path answers the stable body, and bad input is refused with a clear message
//! that names what is wrong, changing nothing.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Api, app};

#[tokio::test]
async fn axum_s_own_refusals_use_the_stable_body() {
    let api = Api::new().await;
    // 405 with the methods the path takes.
    let a = api
        .raw("DELETE", "/api/v1/apps", Some("application/json"), "")
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    assert!(
        a.allow.as_deref().unwrap_or_default().contains("GET"),
        "{a:?}"
    );
    // 415: a body that is not declared JSON.
    let a = api
        .raw("POST", "/api/v1/apply", Some("text/plain"), "{}")
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    // 400: JSON that does not parse; 422 or 400: JSON of the wrong shape.
    let a = api
        .raw("POST", "/api/v1/apply", Some("application/json"), "{")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "bad_request");
    let a = api
        .raw(
            "POST",
            "/api/v1/apps/shop/rollout/pause",
            Some("application/json"),
            "{\"duration\": 5}",
        )
        .await;
    assert!(a.status.is_client_error(), "{a:?}");
    assert!(!a.code().is_empty());
    assert!(a.message().contains("duration"), "{}", a.message());
    // 413: a body over the limit.
    let big = format!(
        "{{\"files\": [{{\"name\": \"m\", \"content\": \"{}\"}}]}}",
        "x".repeat(3 << 20)
    );
    let a = api
        .raw("POST", "/api/v1/apply", Some("application/json"), &big)
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    // 404: unknown endpoints and unknown commands.
    let a = api.raw("GET", "/api/v1/nothing", None, "").await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn a_pause_past_a_year_is_refused_and_the_rollout_stays_readable() {
    let api = Api::new().await;
    api.apply(&app("shop", "[{setWeight: 20}, {pause: {}}]"))
        .await;
    for version in ["v1", "v2"] {
        let a = api
            .json(
                "POST",
                "/api/v1/apps/shop/deploy",
                &json!({"version": version}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let a = api
        .json(
            "POST",
            "/api/v1/apps/shop/rollout/pause",
            &json!({"duration": "500000y"}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    assert!(a.message().contains("longest duration"), "{}", a.message());
    let a = api.raw("GET", "/api/v1/apps/shop/rollout", None, "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["phase"], "Paused");
}

#[tokio::test]
async fn a_stale_command_is_409_with_the_current_rollout() {
    let api = Api::new().await;
    api.apply(&app(
        "shop",
        "[{setWeight: 20}, {pause: {}}, {setWeight: 50}, {pause: {}}]",
    ))
    .await;
    for version in ["v1", "v2"] {
        api.json(
            "POST",
            "/api/v1/apps/shop/deploy",
            &json!({"version": version}),
        )
        .await;
    }
    let seen = api
        .raw("GET", "/api/v1/apps/shop/rollout", None, "")
        .await
        .json;
    let expect = json!({"rollout": seen["id"], "step": seen["step"]});
    let first = api
        .json(
            "POST",
            "/api/v1/apps/shop/rollout/promote",
            &json!({"expect": expect}),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let second = api
        .json(
            "POST",
            "/api/v1/apps/shop/rollout/promote",
            &json!({"expect": expect}),
        )
        .await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::CONFLICT, "stale_command")
    );
    assert_eq!(second.json["error"]["details"]["current"]["weight"], 50);
    let now = api
        .raw("GET", "/api/v1/apps/shop/rollout", None, "")
        .await
        .json;
    assert_eq!(now["weight"], 50, "20 % -> 50 %, not 100 %");
}

#[tokio::test]
async fn bad_manifests_are_located_and_change_nothing() {
    let api = Api::new().await;
    let apply = |text: &str| json!({"files": [{"name": "m.yaml", "content": text}]});
    let a = api.json("POST", "/api/v1/apply", &apply("")).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest")
    );
    assert!(
        a.message().contains("no manifest document"),
        "{}",
        a.message()
    );
    let bad = app("shop", "[{setWeight: 20}]").replace("kind: App", "kind: Ap");
    let a = api.json("POST", "/api/v1/apply", &apply(&bad)).await;
    assert_eq!(a.code(), "invalid_manifest");
    assert_eq!(a.json["error"]["details"][0]["line"], 2, "{}", a.text);
    let apps = api.raw("GET", "/api/v1/apps", None, "").await;
    assert_eq!(apps.json, json!([]));
}

#[tokio::test]
async fn flag_keys_follow_the_name_rules() {
    let api = Api::new().await;
    let flag = |key: &str| json!({"format": "native", "content": format!("flags:\n  - key: {key:?}\n    type: boolean\n    variants: {{on: true, off: false}}\n    defaultVariant: off\n")});
    for key in [
        "",
        "a\nb",
        "../../etc/passwd",
        "a\u{0}b",
        &"x".repeat(100_000),
    ] {
        let a = api.json("PUT", "/api/v1/flags", &flag(key)).await;
        assert!(a.status.is_client_error(), "{key:?}: {}", a.text);
        assert!(!a.code().is_empty());
    }
    let a = api
        .json("PUT", "/api/v1/flags", &flag("Feature.UTF-8.Hellø_Wørld"))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let list = api.raw("GET", "/api/v1/flags", None, "").await;
    assert_eq!(
        list.json["flags"].as_array().map(Vec::len),
        Some(1),
        "{}",
        list.text
    );
}

#[tokio::test]
async fn the_openapi_document_is_public_and_describes_every_operation() {
    let api = Api::new().await;
    let request = axum::http::Request::builder()
        .uri("/api/v1/openapi.json")
        .header("host", "localhost:7070")
        .body(axum::body::Body::empty())
        .unwrap();
    let a = api.send_as_is(request).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["openapi"], "3.1.0");
    let paths = a.json["paths"].as_object().unwrap();
    for path in [
        "/api/v1/apply",
        "/api/v1/apps/{app}/rollout/{command}",
        "/api/v1/tokens",
        "/api/v1/audit/verify",
        "/api/v1/flags/{key}",
        "/ofrep/v1/evaluate/flags",
        "/api/frontend",
        "/api/v1/experiments/{key}/stop",
        "/api/v1/dataplane/tables",
        "/api/v1/dataplane/reports",
        "/api/v1/incidents/{id}/report",
        "/api/v1/releases",
        "/api/v1/pipelines/{name}/approve",
        "/ready",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert_eq!(paths.len(), 51, "every route, once");
    assert!(a.json["components"]["securitySchemes"]["bearer"].is_object());
}
