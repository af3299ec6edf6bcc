//! The web provider against a local HTTP server.

use std::net::SocketAddr;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value as JsonValue, json};
use switchyard_analysis::MeasureError;
use switchyard_core::Value;

use super::{measure, provider_error, spec};

async fn serve() -> SocketAddr {
    let app = axum::Router::new()
        // Only the canary's path of app `shop` exists, so a wrong rendering is a 404.
        .route(
            "/metrics/shop/v2",
            get(|| async {
                Json(json!({"data": {
                    "value": 0.25, "ok": true, "list": [1, 2.5], "text": "0.5",
                    "missing": null, "word": "high", "a/b": 7
                }}))
            }),
        )
        .route(
            "/query",
            post(|headers: HeaderMap, Json(body): Json<JsonValue>| async move {
                let token = headers.get("x-token").and_then(|v| v.to_str().ok());
                if token != Some("secret-shop") {
                    return (StatusCode::UNAUTHORIZED, Json(json!({"error": "token"})));
                }
                let answer = json!({"version": body["version"], "doubled": body["n"].as_f64().unwrap_or(0.0) * 2.0});
                (StatusCode::OK, Json(answer))
            }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "overloaded, try later") }),
        )
        .route("/html", get(|| async { "<html>hello</html>" }))
        .route("/hang", get(std::future::pending::<&'static str>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn get_at(addr: SocketAddr, path: &str, pointer: &str) -> serde_json::Value {
    json!({"web": {"url": format!("http://{addr}{path}"), "jsonPath": pointer}})
}

#[tokio::test]
async fn reads_numbers_booleans_and_lists_through_a_json_pointer() {
    let addr = serve().await;
    let path = "/metrics/{{app}}/{{version}}";
    for (pointer, expected) in [
        ("/data/value", Value::Number(0.25)),
        ("/data/ok", Value::Bool(true)),
        ("/data/list", Value::List(vec![1.0, 2.5])),
        ("/data/text", Value::Number(0.5)),
        ("/data/list/1", Value::Number(2.5)),
        ("/data/a~1b", Value::Number(7.0)),
    ] {
        let observed = measure(&spec(get_at(addr, path, pointer))).await.unwrap();
        assert_eq!(observed.result, expected, "{pointer}");
        assert_eq!(observed.baseline, None);
    }
    let outcome = measure(&spec(get_at(addr, path, "/data/missing"))).await;
    assert!(
        matches!(outcome, Err(MeasureError::NoData { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn posts_a_templated_body_with_headers() {
    let addr = serve().await;
    let web = json!({"web": {
        "url": format!("http://{addr}/query"),
        "method": "POST",
        "headers": {"x-token": "secret-{{app}}", "content-type": "application/json"},
        "body": r#"{"version": "{{version}}", "n": 21}"#,
        "jsonPath": "/doubled",
    }});
    assert_eq!(
        measure(&spec(web.clone())).await.unwrap().result,
        Value::Number(42.0)
    );
    let mut wrong_token = web;
    wrong_token["web"]["headers"]["x-token"] = json!("nope");
    let reason = provider_error(measure(&spec(wrong_token)).await);
    assert!(reason.contains("401 Unauthorized"), "{reason}");
    assert!(reason.contains(r#"{"error":"token"}"#), "{reason}");
}

#[tokio::test]
async fn failures_are_provider_errors_that_say_what_happened() {
    let addr = serve().await;
    let cases = [
        (
            get_at(addr, "/fail", ""),
            "503 Service Unavailable: overloaded, try later",
        ),
        (get_at(addr, "/html", ""), "not JSON"),
        (
            get_at(addr, "/metrics/{{app}}/{{version}}", "/data/nothing"),
            "nothing at jsonPath `/data/nothing`",
        ),
        (
            get_at(addr, "/metrics/{{app}}/{{version}}", "/data/word"),
            "the value at `/data/word` is `\"high\"`",
        ),
        (
            get_at(addr, "/metrics/{{app}}/{{version}}", "/data"),
            "is an object",
        ),
        (
            get_at(addr, "/metrics/{{app}}/{{stable_version}}", "/data"),
            "404 Not Found",
        ),
    ];
    for (web, expected) in cases {
        let reason = provider_error(measure(&spec(web)).await);
        assert!(
            reason.contains(expected),
            "{reason} should contain {expected}"
        );
        assert!(reason.starts_with("GET http://"), "{reason}");
    }

    let mut hang = get_at(addr, "/hang", "");
    hang["web"]["timeout"] = json!("200ms");
    let reason = provider_error(measure(&spec(hang)).await);
    assert!(reason.contains("no answer within 200ms"), "{reason}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reason = provider_error(
        measure(&spec(
            json!({"web": {"url": format!("http://127.0.0.1:{port}/")}}),
        ))
        .await,
    );
    assert!(reason.contains("onnection refused"), "{reason}");
}

#[tokio::test]
async fn calls_reach_only_the_hosts_of_the_policy() {
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1:9090/x",
    ] {
        let web = serde_json::json!({"web": {"url": url, "jsonPath": "/v"}});
        let outcome = super::measure(&super::spec(web)).await;
        assert!(
            matches!(
                &outcome,
                Err(switchyard_analysis::MeasureError::Forbidden(_))
            ),
            "{url}: {outcome:?}"
        );
    }
}
