//! The security table: each attack, the answer it gets, and that it changed nothing.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use switchyard_control::auth::Role;

use crate::support::{Answer, Api, OneshotRaw, app};

/// A request with a JSON body, as `token` (or without one).
fn request(method: &str, path: &str, token: Option<&str>, body: &Value) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:7070")
        .header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// What is tried, as whom, how, and the answer it must get.
type Attack<'a> = (
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    Value,
    StatusCode,
    &'a str,
);

async fn as_(api: &Api, token: Option<&str>, method: &str, path: &str, body: &Value) -> Answer {
    api.send_as_is(request(method, path, token, body)).await
}

/// `shop` and `cart` applied; `shop` with v1 stable and a rollout to v2 paused at 20 %.
async fn world() -> Api {
    let api = Api::new().await;
    api.apply(&app(
        "shop",
        "[{setWeight: 20}, {pause: {}}, {setWeight: 60}]",
    ))
    .await;
    api.apply(&app("cart", "[{setWeight: 20}, {pause: {}}]"))
        .await;
    for v in ["v1", "v2"] {
        let a = api
            .json("POST", "/api/v1/apps/shop/deploy", &json!({"version": v}))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    api
}

async fn rollout(api: &Api, app: &str) -> Value {
    api.raw("GET", &format!("/api/v1/apps/{app}/rollout"), None, "")
        .await
        .json
}

#[tokio::test]
async fn attacks_are_refused_and_change_nothing() {
    let api = world().await;
    let viewer = api.token("vera", Role::Viewer, None, None).await;
    let operator = api.token("olga", Role::Operator, None, None).await;
    let cart_deployer = api
        .token("dan", Role::Deployer, Some(&["cart"]), None)
        .await;
    let flag_editor = api.token("fred", Role::FlagEditor, None, None).await;
    let sdk = api.token("web", Role::Sdk, None, Some(&["staging"])).await;
    let revoked = api.token("gone", Role::Admin, None, None).await;
    let revoked_id = revoked.split('_').nth(1).unwrap().to_owned();
    let a = api
        .json(
            "POST",
            &format!("/api/v1/tokens/{revoked_id}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    let deploy_v3 = json!({"version": "v3"});
    let table: Vec<Attack<'_>> = vec![
        (
            "no token",
            None,
            "GET",
            "/api/v1/apps",
            json!(null),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "a made-up token",
            Some("sy_0123456789ab_00"),
            "GET",
            "/api/v1/apps",
            json!(null),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "a revoked token",
            Some(&revoked),
            "GET",
            "/api/v1/apps",
            json!(null),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "a viewer deploys",
            Some(&viewer),
            "POST",
            "/api/v1/apps/cart/deploy",
            deploy_v3.clone(),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "a viewer aborts",
            Some(&viewer),
            "POST",
            "/api/v1/apps/shop/rollout/abort",
            json!({}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "an operator deploys",
            Some(&operator),
            "POST",
            "/api/v1/apps/cart/deploy",
            deploy_v3.clone(),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "an operator applies",
            Some(&operator),
            "POST",
            "/api/v1/apply",
            json!({"files": [{"name": "m.yaml", "content": app("x", "[{setWeight: 1}]")}]}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "a cart deployer deploys shop",
            Some(&cart_deployer),
            "POST",
            "/api/v1/apps/shop/deploy",
            deploy_v3.clone(),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "a cart deployer aborts shop",
            Some(&cart_deployer),
            "POST",
            "/api/v1/apps/shop/rollout/abort",
            json!({}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "a cart deployer applies shop",
            Some(&cart_deployer),
            "POST",
            "/api/v1/apply",
            json!({"files": [{"name": "m.yaml", "content": app("shop", "[{setWeight: 99}]")}]}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "a flag editor deploys",
            Some(&flag_editor),
            "POST",
            "/api/v1/apps/cart/deploy",
            deploy_v3.clone(),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "an operator edits flags",
            Some(&operator),
            "PUT",
            "/api/v1/flags",
            json!({"content": "flags: []\n"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "an sdk key lists apps",
            Some(&sdk),
            "GET",
            "/api/v1/apps",
            json!(null),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "an sdk key evaluates another environment",
            Some(&sdk),
            "POST",
            "/ofrep/v1/evaluate/flags",
            json!({"context": {"environment": "production"}}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "a viewer creates a token",
            Some(&viewer),
            "POST",
            "/api/v1/tokens",
            json!({"name": "evil", "role": "admin"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "a scoped deployer creates a token",
            Some(&cart_deployer),
            "POST",
            "/api/v1/tokens",
            json!({"name": "evil", "role": "admin"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "a client picks its actor",
            Some(&operator),
            "POST",
            "/api/v1/apps/shop/rollout/pause",
            json!({"actor": "system:controller"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (attack, token, method, path, body, status, code) in &table {
        let a = as_(&api, *token, method, path, body).await;
        assert_eq!(
            (a.status, a.code()),
            (*status, *code),
            "{attack}: {}",
            a.text
        );
    }
    // Nothing changed: shop is still paused at 20 %, cart has no rollout, no token for `evil`,
    // no app `x`, no flag.
    let shop = rollout(&api, "shop").await;
    assert_eq!(
        (shop["phase"].as_str(), shop["weight"].as_u64()),
        (Some("Paused"), Some(20))
    );
    assert_eq!(rollout(&api, "cart").await["error"]["code"], "no_rollout");
    let tokens = api.raw("GET", "/api/v1/tokens", None, "").await.json;
    assert!(!tokens.to_string().contains("evil"), "{tokens}");
    let apps = api.raw("GET", "/api/v1/apps", None, "").await.json;
    assert_eq!(apps.as_array().map(Vec::len), Some(2), "{apps}");
    let flags = api.raw("GET", "/api/v1/flags", None, "").await.json;
    assert_eq!(flags["flags"], json!([]));
}

#[tokio::test]
async fn what_a_role_may_do_it_does_under_its_own_name() {
    let api = world().await;
    let operator = api.token("olga", Role::Operator, None, None).await;
    let a = as_(
        &api,
        Some(&operator),
        "POST",
        "/api/v1/apps/shop/rollout/promote",
        &json!({}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let events = as_(
        &api,
        Some(&operator),
        "GET",
        "/api/v1/apps/shop/events",
        &json!(null),
    )
    .await;
    let actors: Vec<&str> = events.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "resumed")
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(
        actors.contains(&"olga"),
        "the promote is olga's: {actors:?}"
    );

    let scoped = api
        .token("dan", Role::Deployer, Some(&["cart"]), None)
        .await;
    let apps = as_(&api, Some(&scoped), "GET", "/api/v1/apps", &json!(null)).await;
    let names: Vec<&str> = apps
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cart"], "a scoped token lists its apps only");

    let sdk = api.token("web", Role::Sdk, None, Some(&["staging"])).await;
    let a = as_(
        &api,
        Some(&sdk),
        "POST",
        "/ofrep/v1/evaluate/flags",
        &json!({"context": {}}),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "an sdk key evaluates its environment: {}",
        a.text
    );
}

#[tokio::test]
async fn browsers_get_no_foothold() {
    let api = world().await;
    // DNS rebinding: a name that resolves to us, but is not ours.
    let mut r = request("GET", "/api/v1/apps", Some(&api.admin), &json!(null));
    r.headers_mut()
        .insert("host", "evil.example:7070".parse().unwrap());
    let a = api.send_as_is(r).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::MISDIRECTED_REQUEST, "host_not_allowed")
    );

    // A cross-site form (no JSON, no custom header) cannot abort, even with a valid cookie-less
    // bearer-less request... or with a token a page somehow had.
    for token in [None, Some(api.admin.as_str())] {
        let mut b = Request::builder()
            .method("POST")
            .uri("/api/v1/apps/shop/rollout/abort")
            .header("host", "127.0.0.1:7070")
            .header("content-type", "text/plain");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let a = api.send_as_is(b.body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.text);
    }
    assert_eq!(rollout(&api, "shop").await["phase"], "Paused");

    // CORS: only configured origins, and OFREP's origins only on OFREP.
    let preflight = |origin: &str, path: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri(path)
            .header("host", "127.0.0.1:7070")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap()
    };
    let a = api
        .send_as_is(preflight(
            "https://evil.example",
            "/api/v1/apps/shop/rollout/abort",
        ))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::FORBIDDEN, "origin_not_allowed")
    );
    let a = api
        .send_as_is(preflight(
            "https://shop.example",
            "/api/v1/apps/shop/rollout/abort",
        ))
        .await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "the OFREP origin may not call the API"
    );
    let ok = api
        .router
        .clone()
        .oneshot_raw(preflight(
            "https://shop.example",
            "/ofrep/v1/evaluate/flags",
        ))
        .await;
    assert_eq!(ok.0, StatusCode::NO_CONTENT);
    assert_eq!(ok.1.as_deref(), Some("https://shop.example"));
    let ok = api
        .router
        .clone()
        .oneshot_raw(preflight("https://ops.example", "/api/v1/apps"))
        .await;
    assert_eq!(
        (ok.0, ok.1.as_deref()),
        (StatusCode::NO_CONTENT, Some("https://ops.example"))
    );
}

#[tokio::test]
async fn running_code_and_reaching_hosts_is_the_operator_s_decision() {
    let api = world().await;
    let deployer = api.token("dan", Role::Deployer, None, None).await;
    let apply = |text: String| json!({"files": [{"name": "m.yaml", "content": text}]});
    let shell = app("evil", "[{setWeight: 1}]").replace(
        "command: [sh, '{version}']",
        "command: [/bin/bash, -c, 'id > /tmp/pwned']",
    );
    let preload = app("evil", "[{setWeight: 1}]").replace(
        "command: [sh, '{version}']}",
        "command: [sh, '{version}'], env: {LD_PRELOAD: /tmp/x.so}}",
    );
    let hook = app("evil", "[{setWeight: 1}]").replace(
        "  healthCheck:",
        "  webhooks: [{name: steal, type: pre-rollout, url: 'http://169.254.169.254/latest/meta-data'}]\n  healthCheck:",
    );
    let template = |provider: &str| {
        format!(
            "apiVersion: switchyard.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: evil}}\nspec:\n  metrics:\n    - name: m\n      provider: {provider}\n      successCondition: result < 1\n"
        )
    };
    let table: Vec<(&str, Value, &str)> = vec![
        (
            "a process runtime that runs a shell",
            apply(shell),
            "spec.runtime.process.command[0]",
        ),
        (
            "LD_PRELOAD in a release's environment",
            apply(preload),
            "spec.runtime.process.env.LD_PRELOAD",
        ),
        (
            "a webhook to the cloud metadata address",
            apply(hook),
            "spec.webhooks[0].url",
        ),
        (
            "a command provider that runs a shell",
            apply(template("{command: {command: [/bin/bash, -c, id]}}")),
            "spec.metrics[0].provider.command.command[0]",
        ),
        (
            "a Prometheus provider on an internal address",
            apply(template(
                "{prometheus: {address: 'http://10.0.0.1:9090', query: up}}",
            )),
            "spec.metrics[0].provider.prometheus.address",
        ),
    ];
    for (attack, body, path) in &table {
        let a = as_(&api, Some(&deployer), "POST", "/api/v1/apply", body).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::FORBIDDEN, "forbidden_by_policy"),
            "{attack}: {}",
            a.text
        );
        assert_eq!(a.json["error"]["details"][0]["path"], *path, "{attack}");
    }
    // A deploy's overrides are the same decision.
    for (attack, body) in [
        (
            "a deploy that runs a shell",
            json!({"version": "v9", "command": ["/bin/bash", "-c", "id"]}),
        ),
        (
            "a deploy with LD_PRELOAD",
            json!({"version": "v9", "env": {"LD_PRELOAD": "/tmp/x.so"}}),
        ),
        (
            "a deploy with BASH_ENV",
            json!({"version": "v9", "env": {"BASH_ENV": "/tmp/x"}}),
        ),
    ] {
        let a = as_(
            &api,
            Some(&deployer),
            "POST",
            "/api/v1/apps/cart/deploy",
            &body,
        )
        .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::FORBIDDEN, "forbidden_by_policy"),
            "{attack}: {}",
            a.text
        );
    }
    let started = api.runtime.log();
    assert_eq!(
        started,
        ["start v1", "start v2"],
        "nothing else was started"
    );
    let apps = api.raw("GET", "/api/v1/apps", None, "").await.json;
    assert!(!apps.to_string().contains("evil"), "{apps}");
}
