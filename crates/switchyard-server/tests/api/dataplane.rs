//! `/api/v1/dataplane`: who may follow the tables and report, under which id, and what a stale
//! proxy is told.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use switchyard_control::auth::Role;

use crate::support::Api;

fn with_token(
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    builder
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap()
}

fn report(proxy: &str, epoch: u64, seq: u64) -> serde_json::Value {
    serde_json::json!({
        "proxy": proxy, "epoch": epoch, "seq": seq, "generation": 1, "version": 0,
        "listeners": {}, "totals": {}
    })
}

#[tokio::test]
async fn a_proxy_token_follows_the_tables_and_reports_under_its_own_name_only() {
    let api = Api::new().await;
    let edge = api.token("edge-1", Role::Proxy, None, None).await;

    let tables = api
        .send(with_token(
            "GET",
            "/api/v1/dataplane/tables?generation=0&version=0",
            &edge,
            None,
        ))
        .await;
    assert_eq!(tables.status, StatusCode::OK, "{}", tables.text);
    assert_eq!(tables.json["generation"], 1);
    assert!(tables.json["base"].is_null(), "a snapshot: {}", tables.text);
    let current = api
        .send(with_token(
            "GET",
            "/api/v1/dataplane/tables?generation=1&version=0&wait=0",
            &edge,
            None,
        ))
        .await;
    assert_eq!(
        current.status,
        StatusCode::NO_CONTENT,
        "nothing newer: {}",
        current.text
    );

    let ok = api
        .send(with_token(
            "POST",
            "/api/v1/dataplane/reports",
            &edge,
            Some(report("edge-1", 5, 1)),
        ))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.text);

    let other = api
        .send(with_token(
            "POST",
            "/api/v1/dataplane/reports",
            &edge,
            Some(report("edge-2", 5, 2)),
        ))
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(
        other.json["error"]["code"], "proxy_id_mismatch",
        "{}",
        other.text
    );

    let stale = api
        .send(with_token(
            "POST",
            "/api/v1/dataplane/reports",
            &edge,
            Some(report("edge-1", 4, 1)),
        ))
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(
        stale.json["error"]["code"], "stale_proxy_epoch",
        "{}",
        stale.text
    );
    assert_eq!(stale.json["error"]["details"]["current_epoch"], 5);

    let bad = api
        .send(with_token(
            "POST",
            "/api/v1/dataplane/reports",
            &edge,
            Some(serde_json::json!({"proxy": "edge-1"})),
        ))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);

    // Proxies are listed for readers, with the report's state.
    let listed = api
        .send(with_token(
            "GET",
            "/api/v1/dataplane/proxies",
            &api.admin,
            None,
        ))
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json[0]["id"], "edge-1");
    assert_eq!(listed.json[0]["epoch"], 5);
    assert_eq!(
        api.dataplane.proxies().len(),
        1,
        "the refused reports left nothing"
    );
}

#[tokio::test]
async fn a_proxy_token_does_nothing_else_and_others_cannot_act_as_proxies() {
    let api = Api::new().await;
    let edge = api.token("edge-1", Role::Proxy, None, None).await;
    let deployer = api.token("ci", Role::Deployer, None, None).await;

    let apply = serde_json::json!({"files": []});
    let refused = api
        .send(with_token("POST", "/api/v1/apply", &edge, Some(apply)))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let read = api
        .send(with_token("GET", "/api/v1/apps", &edge, None))
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.text);

    for (method, path, body) in [
        ("GET", "/api/v1/dataplane/tables", None),
        (
            "POST",
            "/api/v1/dataplane/reports",
            Some(report("ci", 1, 1)),
        ),
    ] {
        let answer = api.send(with_token(method, path, &deployer, body)).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.text
        );
    }
    assert!(api.dataplane.proxies().is_empty());
}
