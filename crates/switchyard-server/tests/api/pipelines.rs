//! Releases, pipeline commands, deployment windows and the notification outbox through the
//! API: bad input answered with the stable body and nothing changed, roles enforced.

use axum::http::{Request, StatusCode};
use serde_json::json;
use switchyard_control::auth::Role;

use crate::support::{Api, app};

const PIPELINE: &str = "---
apiVersion: switchyard.dev/v1alpha1
kind: Pipeline
metadata: {name: shop}
spec:
  stages:
    - name: prod
      approval: {role: deployer}
      targets: [shop]
---
apiVersion: switchyard.dev/v1alpha1
kind: DeploymentWindow
metadata: {name: never}
spec:
  timeZone: UTC
  appliesTo: {apps: [held]}
  freezes: [{start: '2000-01-01', end: '2999-01-01', reason: forever}]
";

async fn with_pipeline() -> Api {
    let api = Api::new().await;
    let text = format!(
        "{}---\n{}{PIPELINE}",
        app("shop", "[{setWeight: 50}]"),
        app("held", "[{setWeight: 50}]")
    );
    api.apply(&text).await;
    api
}

async fn as_token(
    api: &Api,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> crate::support::Answer {
    api.send(
        Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn releases_of_unknown_names_or_bad_versions_are_refused_and_start_nothing() {
    let api = with_pipeline().await;
    let a = api
        .json(
            "POST",
            "/api/v1/releases",
            &json!({"name": "nope", "version": "v1"}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::NOT_FOUND, "pipeline_not_found")
    );
    assert!(
        a.message()
            .contains("`nope` is neither an applied pipeline nor an app"),
        "{}",
        a.text
    );
    let a = api
        .json(
            "POST",
            "/api/v1/releases",
            &json!({"name": "shop", "version": "v 1"}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    assert!(a.message().contains("version: contains ` `"), "{}", a.text);
    let a = api
        .json(
            "POST",
            "/api/v1/releases",
            &json!({"name": "shop", "version": "v1", "extra": 1}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    assert!(a.message().contains("unknown field `extra`"), "{}", a.text);
    let a = api
        .json(
            "POST",
            "/api/v1/pipelines/shop/approve",
            &json!({"reason": "x"}),
        )
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "no_run"));
    let a = api
        .json("GET", "/api/v1/pipelines/shop", &json!(null))
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "no_run"));
}

#[tokio::test]
async fn approvals_need_the_stage_s_role_and_a_reason() {
    let api = with_pipeline().await;
    let a = api
        .json(
            "POST",
            "/api/v1/releases",
            &json!({"name": "shop", "version": "v1"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(
        a.json["stages"][0]["waiting"]["for"], "approval",
        "{}",
        a.text
    );
    assert_eq!(a.json["stages"][0]["waiting"]["role"], "deployer");
    let operator = api.token("olga", Role::Operator, None, None).await;
    let a = as_token(
        &api,
        &operator,
        "/api/v1/pipelines/shop/approve",
        json!({"reason": "ok"}),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{}",
        a.text
    );
    assert!(
        a.message().contains("needs the approval of a deployer"),
        "{}",
        a.text
    );
    let elsewhere = api
        .token("dan", Role::Deployer, Some(&["other"]), None)
        .await;
    let a = as_token(
        &api,
        &elsewhere,
        "/api/v1/pipelines/shop/approve",
        json!({"reason": "ok"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a = api
        .json(
            "POST",
            "/api/v1/pipelines/shop/approve",
            &json!({"reason": "  "}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "reason_required")
    );
    let a = api
        .json(
            "POST",
            "/api/v1/pipelines/shop/approve",
            &json!({"reason": "ok", "stage": "qa"}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::CONFLICT, "nothing_to_do")
    );
    // Nothing was approved by the refusals.
    let a = api
        .json("GET", "/api/v1/pipelines/shop", &json!(null))
        .await;
    assert_eq!(
        a.json["stages"][0]["approval"],
        serde_json::Value::Null,
        "{}",
        a.text
    );
    // A second release while one runs is refused.
    let a = api
        .json(
            "POST",
            "/api/v1/releases",
            &json!({"name": "shop", "version": "v2"}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::CONFLICT, "run_in_progress")
    );
    let a = api
        .json(
            "POST",
            "/api/v1/pipelines/shop/cancel",
            &json!({"reason": "wrong version"}),
        )
        .await;
    assert_eq!(a.json["phase"], "Cancelled", "{}", a.text);
}

#[tokio::test]
async fn a_deploy_a_window_holds_says_until_when_and_only_an_admin_overrides_it() {
    let api = with_pipeline().await;
    let a = api
        .json(
            "POST",
            "/api/v1/apps/held/deploy",
            &json!({"version": "v1"}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::CONFLICT, "outside_window"),
        "{}",
        a.text
    );
    assert!(
        a.message().contains(
            "deployment window `never`: frozen from 2000-01-01T00:00 to 2999-01-01T00:00 (forever)"
        ),
        "{}",
        a.text
    );
    assert_eq!(a.json["error"]["details"]["windows"][0]["window"], "never");
    let deployer = api.token("dora", Role::Deployer, None, None).await;
    let a = as_token(
        &api,
        &deployer,
        "/api/v1/apps/held/deploy?overrideWindow=hotfix",
        json!({"version": "v1"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a = api
        .json(
            "POST",
            "/api/v1/apps/held/deploy?overrideWindow=",
            &json!({"version": "v1"}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "reason_required")
    );
    let a = api.json("GET", "/api/v1/audit", &json!(null)).await;
    assert!(!a.text.contains("window_overridden"), "{}", a.text);
}

#[tokio::test]
async fn the_outbox_refuses_an_unknown_status_and_needs_an_unscoped_token() {
    let api = with_pipeline().await;
    let a = api
        .json("GET", "/api/v1/notifications?status=lost", &json!(null))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    assert!(
        a.message().contains("use pending, delivered or failed"),
        "{}",
        a.text
    );
    let a = api.json("GET", "/api/v1/notifications", &json!(null)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["counts"], json!([]));
    let scoped = api.token("sam", Role::Viewer, Some(&["shop"]), None).await;
    let a = api
        .send(
            Request::builder()
                .uri("/api/v1/notifications")
                .header("authorization", format!("Bearer {scoped}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
}
