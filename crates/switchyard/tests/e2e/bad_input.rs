//! Bad input gets a clear error, a non-zero exit, and changes nothing.

use crate::support::*;

fn steps() -> &'static str {
    "        - setWeight: 50\n        - pause: {}\n"
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();

    // An invalid manifest: the error names file, line, column and field; nothing is applied.
    let good = manifest("shop", port, steps(), "");
    let bad = good.replace("setWeight: 50", "setWeight: 150");
    let both = format!("{good}---\n{}", bad.replace("name: shop", "name: other"));
    let file = write(dir.path(), "bad.yaml", &both);
    let err = d.fails(&["apply", "-f", file.to_str().unwrap()]);
    assert!(err.contains("bad.yaml:"), "{err}");
    assert!(
        err.contains("spec.strategy.canary.steps[0].setWeight"),
        "{err}"
    );
    assert!(
        err.contains("expected a percentage from 0 to 100, got 150"),
        "{err}"
    );
    let apps: serde_json::Value =
        serde_json::from_str(&d.ok(&["get", "apps", "-o", "json"])).unwrap();
    assert_eq!(
        apps,
        serde_json::json!([]),
        "a file with one bad document changes nothing"
    );
    let err = d.fails(&["validate", "--offline", "-f", file.to_str().unwrap()]);
    assert!(err.contains("got 150"), "{err}");

    // The same app in two files of a directory: refused, naming the second file.
    let twice = dir.path().join("twice");
    std::fs::create_dir(&twice).unwrap();
    write(&twice, "a.yaml", &good);
    write(
        &twice,
        "b.yaml",
        &good.replace(&port.to_string(), &free_port().to_string()),
    );
    let err = d.fails(&["apply", "-f", twice.to_str().unwrap()]);
    assert!(
        err.contains("b.yaml") && err.contains("App `shop` is defined twice"),
        "{err}"
    );
    let apps: serde_json::Value =
        serde_json::from_str(&d.ok(&["get", "apps", "-o", "json"])).unwrap();
    assert_eq!(apps, serde_json::json!([]));

    // Unknown field.
    let file = write(
        dir.path(),
        "unknown.yaml",
        &good.replace(
            "stopTimeout: 2s",
            "stopTimeout: 2s\n      restartPolicy: always",
        ),
    );
    let err = d.fails(&["validate", "-f", file.to_str().unwrap()]);
    assert!(err.contains("unknown field `restartPolicy`"), "{err}");

    // Unknown app, and promoting an app with no rollout.
    let err = d.fails(&["deploy", "nope", "--version", "v1"]);
    assert!(err.contains("app `nope` does not exist"), "{err}");
    let file = write(dir.path(), "good.yaml", &good);
    assert!(
        d.ok(&["validate", "-f", file.to_str().unwrap()])
            .contains("valid")
    );
    assert!(
        d.ok(&["apply", "-f", file.to_str().unwrap()])
            .contains("App shop created")
    );
    assert!(
        d.ok(&["apply", "-f", file.to_str().unwrap()])
            .contains("App shop unchanged")
    );
    let err = d.fails(&["promote", "shop"]);
    assert!(err.contains("no rollout in progress"), "{err}");

    // A port already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = manifest("busy", taken.local_addr().unwrap().port(), steps(), "");
    let file = write(dir.path(), "busy.yaml", &busy);
    let err = d.fails(&["apply", "-f", file.to_str().unwrap()]);
    assert!(err.contains("cannot listen on"), "{err}");
    let apps: serde_json::Value =
        serde_json::from_str(&d.ok(&["get", "apps", "-o", "json"])).unwrap();
    assert_eq!(
        apps.as_array().unwrap().len(),
        1,
        "the busy app was not stored"
    );

    // A release command that exits immediately, and one that never becomes healthy.
    let err = d.fails(&["deploy", "shop", "--version", "v1", "--command", "false"]);
    assert!(err.contains("exited"), "{err}");
    let err = d.fails(&[
        "deploy",
        "shop",
        "--version",
        "v1",
        "--env",
        "X=1",
        "--command",
        "sleep",
        "600",
    ]);
    assert!(err.contains("did not become healthy"), "{err}");

    // A real first release, then a canary; deploying again while it runs is refused.
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    let err = d.fails(&["deploy", "shop", "--version", "v3"]);
    assert!(err.contains("already has a rollout in progress"), "{err}");
    let err = d.fails(&["deploy", "shop", "--version", "v2"]);
    assert!(err.contains("already has a rollout in progress"), "{err}");
    // An operator pause holds the rollout; resuming re-enters the step (an indefinite pause).
    d.ok(&["pause", "shop"]);
    d.ok(&["resume", "shop"]);
    let r = d.rollout("shop");
    assert_eq!(r["version"], "v2");
    assert_eq!(r["phase"], "Paused");
    assert_eq!(r["weight"], 50);
    d.ok(&["abort", "shop", "--reason", "test over"]);
    assert_eq!(d.rollout("shop")["phase"], "Aborted");
    let err = d.fails(&["abort", "shop"]);
    assert!(err.contains("no rollout in progress"), "{err}");
    let err = d.fails(&["resume", "shop"]);
    assert!(err.contains("no rollout in progress"), "{err}");

    // The event log tells the story.
    let history = d.ok(&["history", "shop"]);
    for kind in [
        "manifest_applied",
        "promoted",
        "rollout_started",
        "weight_changed",
        "aborted",
    ] {
        assert!(history.contains(kind), "{kind} missing from:\n{history}");
    }
}

/// The body of an error answer: `{"error": {"code", "message", ...}}`.
fn error_of(answer: Option<(u16, String)>) -> (u16, serde_json::Value) {
    let (status, text) = answer.expect("the daemon answers");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

#[test]
fn api_errors_have_a_stable_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let api: std::net::SocketAddr = d.api.trim_start_matches("http://").parse().unwrap();
    let (status, body) = error_of(request(api, "POST", "/api/v1/apply", "{not json"));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, body) = error_of(request(
        api,
        "POST",
        "/api/v1/apply",
        r#"{"files": [], "bogus": 1}"#,
    ));
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("bogus"),
        "{body}"
    );
    let bad = r#"{"files": [{"name": "x.yaml", "content": "apiVersion: switchyard.dev/v1alpha1\nkind: App\nmetadata: {name: x}\nspec: {listen: nowhere}\n"}]}"#;
    let (status, body) = error_of(request(api, "POST", "/api/v1/apply", bad));
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_manifest");
    assert_eq!(body["error"]["details"][0]["file"], "x.yaml");
    assert_eq!(body["error"]["details"][0]["line"], 4);
    let (status, body) = error_of(request(
        api,
        "POST",
        "/api/v1/apps/nope/deploy",
        r#"{"version": "v1"}"#,
    ));
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "app_not_found");
    let (status, body) = error_of(request(
        api,
        "POST",
        "/api/v1/apps/nope/deploy",
        r#"{"version": "a b"}"#,
    ));
    assert_eq!(status, 400, "{body}");
    let (status, body) = error_of(get(api, "/api/v1/nothing"));
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}
