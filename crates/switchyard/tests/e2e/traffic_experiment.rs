//! Traffic experiments end to end: the app's proxy splits users between two deployed releases
//! by a header, every user stays on one release (also across a daemon restart), conversions of
//! seeded simulated users find the better release, and a stop — by an operator or by a violated
//! `$errors` guardrail — sends everyone back to the stable release and stops the other one.
//! Applies and deploys that conflict with a traffic experiment are refused, changing nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::flags::{addr, http, json_of};
use crate::support::*;

const USER_HEADER: &str = "x-user-id";

fn experiment(key: &str, app: &str) -> String {
    format!(
        r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {{name: {key}}}
spec:
  split:
    traffic: {{app: {app}, unit: {{header: {USER_HEADER}}}}}
  variants:
    - {{name: control, weight: 50, version: v1}}
    - {{name: treatment, weight: 50, version: v2}}
  metrics:
    - {{name: purchased, conversion: {{event: purchase}}}}
    - {{name: $errors}}
    - {{name: $latency_ms}}
  guardrails:
    - {{metric: $errors, maxDegradation: 0.1, scale: absolute}}
  minimumSampleSize: 200
"#
    )
}

/// App `name` running the demo service, its processes marked with `E2E_RUN=<marker>` (so that
/// this test counts its own) plus `env` (a YAML flow-map body).
fn app(name: &str, port: u16, marker: &str, env: &str) -> String {
    manifest(name, port, "        - setWeight: 50\n", "").replace(
        "      stopTimeout: 2s\n",
        &format!("      stopTimeout: 2s\n      env: {{E2E_RUN: {marker}{env}}}\n"),
    )
}

/// A small deterministic generator (64-bit LCG), so every run sees the same users.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One request to the app as `user` (without the header for `None`): the status and the
/// version that answered (empty when the proxy answered itself).
fn visit(app: SocketAddr, user: Option<&str>) -> (u16, String) {
    let headers: Vec<(&str, &str)> = user.map(|u| (USER_HEADER, u)).into_iter().collect();
    let (status, head, _) = http(app, "GET", "/", &headers, "");
    let version = head
        .lines()
        .find_map(|l| l.strip_prefix("x-demo-version: "))
        .unwrap_or_default()
        .trim()
        .to_string();
    (status, version)
}

fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the proxy splits between the variants: requests without a unit key are split
/// at random (and are not exposures), so one of them reaches v2.
fn wait_for_split(app: SocketAddr) {
    poll("the experiment's routes", || visit(app, None).1 == "v2");
}

/// Demo-app processes of `version` of this test (their environment has `E2E_RUN=<marker>`).
fn processes(version: &str, marker: &str) -> usize {
    let marker = format!("E2E_RUN={marker}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            Some((
                std::fs::read(path.join("cmdline")).ok()?,
                std::fs::read(path.join("environ")).ok()?,
            ))
        })
        .filter(|(cmdline, environ)| {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.get(1) == Some(&b"demo-app".as_slice())
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--version" && w[1] == version.as_bytes())
                && environ.split(|b| *b == 0).any(|v| v == marker.as_bytes())
        })
        .count()
}

fn results(d: &Daemon, key: &str) -> Value {
    json_of(&d.ok(&["experiment", "results", key, "-o", "json"]))
}

/// Polls the results until `units` units are exposed.
fn results_with_units(d: &Daemon, key: &str, units: u64) -> Value {
    let mut last = Value::Null;
    poll("the exposures to be stored", || {
        last = results(d, key);
        let exposed: u64 = last["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["units"].as_u64().unwrap())
            .sum();
        exposed == units
    });
    last
}

fn metric<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name}: {results:#}"))
}

fn listed(d: &Daemon, key: &str) -> Value {
    let list = json_of(&d.ok(&["experiment", "list", "-o", "json"]));
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("{key} not listed: {list:#}"))
}

fn post(d: &Daemon, path: &str, body: &Value) -> (u16, Value) {
    let (status, _, text) = http(addr(d), "POST", path, &[], &body.to_string());
    (status, json_of(&text))
}

fn apply(d: &Daemon, text: &str) -> (u16, Value) {
    let body = json!({"files": [{"name": "m.yaml", "content": text}]});
    post(d, "/api/v1/apply", &body)
}

/// Every user visits twice; returns the version each one reached, having checked that both
/// visits reached the same one.
fn visit_all(app: SocketAddr, users: &[String]) -> Vec<String> {
    users
        .iter()
        .map(|user| {
            let (status, first) = visit(app, Some(user));
            let (_, second) = visit(app, Some(user));
            assert_eq!(status, 200, "{user}");
            assert_eq!(first, second, "{user} reached two releases");
            first
        })
        .collect()
}

#[test]
fn a_traffic_experiment_splits_users_sticks_to_their_release_and_finds_the_better_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path());
    let port = free_port();
    let shop: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let marker = format!("traffic-{port}");
    let file = write(dir.path(), "shop.yaml", &app("shop", port, &marker, ""));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    let file = write(dir.path(), "ab.yaml", &experiment("shop-ab", "shop"));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    wait_for_split(shop);
    assert_eq!(processes("v2", &marker), 1);

    let users: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    let reached = visit_all(shop, &users);
    let on_v2 = reached.iter().filter(|v| *v == "v2").count();
    assert!(
        reached.iter().all(|v| v == "v1" || v == "v2"),
        "{reached:?}"
    );
    assert!((400..=600).contains(&on_v2), "{on_v2} of 1000 on v2");

    // The exposures are stored; then the users of v2 truly convert more often (30 % vs 15 %).
    results_with_units(&d, "shop-ab", users.len() as u64);
    let mut random = Seeded(42);
    let events: Vec<Value> = users
        .iter()
        .zip(&reached)
        .filter(|(_, version)| random.next() < if *version == "v2" { 0.30 } else { 0.15 })
        .map(|(user, _)| {
            json!({"id": format!("purchase-{user}"), "experiment": "shop-ab", "unit": user,
                   "event": "purchase", "value": 1.0})
        })
        .collect();
    for chunk in events.chunks(500) {
        let (status, report) = post(&d, "/api/v1/events", &json!({ "events": chunk }));
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["accepted"], chunk.len(), "{report}");
    }
    let r = results(&d, "shop-ab");
    let purchased = &metric(&r, "purchased")["comparisons"][0];
    assert_eq!(purchased["variant"], "treatment");
    assert_eq!(purchased["verdict"], "better", "{r:#}");
    assert_eq!(r["srm"]["mismatch"], false, "{r:#}");
    // The proxy measured every request of each variant: no errors, some latency.
    for variant in &metric(&r, "$errors")["variants"].as_array().unwrap()[..2] {
        assert_eq!(variant["value"], 0.0, "{r:#}");
    }
    for variant in &metric(&r, "$latency_ms")["variants"].as_array().unwrap()[..2] {
        assert!(variant["value"].as_f64().unwrap() > 0.0, "{r:#}");
    }
    let guardrail = &r["guardrails"][0];
    assert_eq!(guardrail["metric"], "$errors");
    assert_ne!(guardrail["status"]["status"], "violated", "{r:#}");

    // While it runs, a deploy would take its routes: refused.
    let (status, body) = post(&d, "/api/v1/apps/shop/deploy", &json!({"version": "v3"}));
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "experiment_running", "{body}");
    let err = d.fails(&["deploy", "shop", "--version", "v3"]);
    assert!(err.contains("switchyard experiment stop shop-ab"), "{err}");

    // A restarted daemon splits the same users the same way.
    drop(d);
    d = Daemon::start(dir.path());
    wait_for_split(shop);
    assert_eq!(visit_all(shop, &users[..200]), reached[..200]);

    // Stopped: everyone is back on v1 and v2 no longer runs.
    d.ok(&[
        "experiment",
        "stop",
        "shop-ab",
        "--reason",
        "v2 converts better",
    ]);
    poll("everyone on v1", || {
        users[..200].iter().all(|u| visit(shop, Some(u)).1 == "v1")
    });
    assert!(visit_all(shop, &users).iter().all(|v| v == "v1"));
    poll("v2 to stop", || processes("v2", &marker) == 0);
    assert_eq!(processes("v1", &marker), 1);
    let summary = listed(&d, "shop-ab");
    assert_eq!(summary["status"], "stopped", "{summary}");
    assert_eq!(summary["reason"], "v2 converts better", "{summary}");

    // Shipping the winner is an ordinary deploy now.
    d.ok(&["deploy", "shop", "--version", "v2"]);
    assert_eq!(d.rollout("shop")["version"], "v2");
}

#[test]
fn a_violated_errors_guardrail_stops_the_experiment_and_the_app_returns_to_stable() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let shop: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let marker = format!("guardrail-{port}");
    // The manifest makes every release fail half of its requests; the stable v1 is deployed
    // with that overridden to a 5 % baseline, so v2 — started from the manifest — is the one
    // that fails. (The baseline keeps control's error rate varying between users: once the
    // proxy ejects v2 and answers all of its requests with 503, treatment's does not, and two
    // arms without any variance leave the guardrail without a standard error.)
    let text = app("shop", port, &marker, ", DEMO_ERROR_RATE: '0.5'");
    let file = write(dir.path(), "shop.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&[
        "deploy",
        "shop",
        "--version",
        "v1",
        "--env",
        "DEMO_ERROR_RATE=0.05",
    ]);
    let file = write(dir.path(), "guard.yaml", &experiment("shop-guard", "shop"));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    wait_for_split(shop);

    // Users keep coming until the daemon's check stops the experiment.
    let users: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    poll("the guardrail to stop the experiment", || {
        for user in &users {
            visit(shop, Some(user));
        }
        listed(&d, "shop-guard")["status"] == "stopped"
    });
    let summary = listed(&d, "shop-guard");
    assert_eq!(summary["actor"], "guardrail", "{summary}");
    let reason = summary["reason"].as_str().unwrap();
    assert!(
        reason.contains("guardrail `$errors` violated by variant `treatment`"),
        "{reason}"
    );
    let r = results(&d, "shop-guard");
    let guardrail = &r["guardrails"][0];
    assert_eq!(guardrail["status"]["status"], "violated", "{r:#}");
    assert!(
        guardrail["variant_value"].as_f64().unwrap() > 0.3
            && guardrail["control_value"].as_f64().unwrap() < 0.2,
        "{guardrail}"
    );
    let list = d.ok(&["experiment", "list"]);
    assert!(list.contains("stopped: guardrail `$errors`"), "{list}");

    // Every user is back on v1, and v2 is stopped.
    poll("everyone on v1", || {
        users.iter().all(|u| visit(shop, Some(u)).1 == "v1")
    });
    for user in &users {
        assert_eq!(visit(shop, Some(user)).1, "v1", "{user}");
    }
    poll("v2 to stop", || processes("v2", &marker) == 0);
    assert_eq!(processes("v1", &marker), 1);
}

#[test]
fn applies_and_deploys_that_conflict_with_a_traffic_experiment_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let marker = format!("conflicts-{port}");
    let shop = app("shop", port, &marker, "").replace(
        "        - setWeight: 50\n",
        "        - setWeight: 50\n        - pause: {}\n",
    );
    assert_eq!(apply(&d, &shop).0, 200);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    let refused = |text: &str, status: u16, code: &str, message: &str| {
        let (got, body) = apply(&d, text);
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        let text = body["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{text}");
    };

    // An app that does not exist.
    refused(
        &experiment("ab", "nope"),
        422,
        "unknown_app",
        "app `nope`, which does not exist",
    );
    // Apps applied together with the experiment: sticky by another key; a static release
    // without addresses for a variant's version. Nothing of the apply is stored.
    let sticky = manifest("sticky", free_port(), "        - setWeight: 50\n", "").replace(
        "    canary:\n",
        "    canary:\n      stickiness: {cookie: uid}\n",
    );
    refused(
        &format!("{sticky}---\n{}", experiment("ab", "sticky")),
        422,
        "invalid_experiment",
        "identifies units by header `x-user-id` but app `sticky`'s canary is sticky by cookie `uid`",
    );
    let fixed = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: App\nmetadata: {{name: fixed}}\nspec:\n  \
         listen: 127.0.0.1:{}\n  runtime: {{static: {{releases: {{v1: ['127.0.0.1:9']}}}}}}\n  \
         strategy: {{canary: {{steps: [{{setWeight: 50}}]}}}}\n",
        free_port()
    );
    refused(
        &format!("{fixed}---\n{}", experiment("ab", "fixed")),
        422,
        "invalid_experiment",
        "variant `treatment` cannot run as a release of app `fixed`: static release `v2` has no addresses",
    );
    let apps = http(addr(&d), "GET", "/api/v1/apps", &[], "").2;
    assert!(
        !apps.contains("sticky") && !apps.contains("fixed"),
        "{apps}"
    );
    // A stored app with another strategy.
    let rolling = manifest("rolled", free_port(), "        - setWeight: 50\n", "").replace(
        "    canary:\n      steps:\n        - setWeight: 50\n",
        "    rolling: {maxSurge: 1, maxUnavailable: 0}\n",
    );
    assert_eq!(apply(&d, &rolling).0, 200);
    refused(
        &experiment("ab", "rolled"),
        422,
        "invalid_experiment",
        "app `rolled` uses the rolling strategy",
    );

    // A rollout in progress.
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the pause", |r| r["phase"] == "Paused");
    refused(
        &experiment("shop-ab", "shop"),
        409,
        "rollout_in_progress",
        "promote or abort it first",
    );
    d.ok(&["abort", "shop"]);
    d.wait_rollout("shop", "the abort", |r| r["phase"] == "Aborted");
    assert_eq!(apply(&d, &experiment("shop-ab", "shop")).0, 200);

    // While it runs: no deploy, no second experiment, no other strategy for the app.
    let (status, body) = post(&d, "/api/v1/apps/shop/deploy", &json!({"version": "v3"}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("experiment_running")),
        "{body}"
    );
    for action in ["retry", "undo"] {
        let (status, body) = post(&d, &format!("/api/v1/apps/shop/{action}"), &json!({}));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("experiment_running")),
            "{action}: {body}"
        );
    }
    refused(
        &experiment("shop-ba", "shop"),
        409,
        "experiment_conflict",
        "`shop-ab` and `shop-ba` would both run",
    );
    let blue_green = shop.replace(
        "    canary:\n      steps:\n        - setWeight: 50\n        - pause: {}\n",
        "    blueGreen: {}\n",
    );
    refused(
        &blue_green,
        422,
        "invalid_experiment",
        "app `shop` uses the blueGreen strategy",
    );
    // Re-applying the running experiment itself is fine.
    assert_eq!(apply(&d, &experiment("shop-ab", "shop")).0, 200);
    assert_eq!(listed(&d, "shop-ab")["status"], "running");

    // Stopped, it no longer holds the app: a rollout may start, and applying the stopped
    // experiment again leaves it stopped, so nothing conflicts.
    d.ok(&["experiment", "stop", "shop-ab"]);
    poll("v2 to stop", || processes("v2", &marker) == 0);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    assert_eq!(apply(&d, &experiment("shop-ab", "shop")).0, 200);
    assert_eq!(listed(&d, "shop-ab")["status"], "stopped");
    assert_eq!(d.rollout("shop")["active"], true);
}
