//! Approval gates, the promotion window, undo, retry, emergency stop and the analysis table,
//! through the CLI against a real daemon with real traffic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::*;

const TEMPLATE: &str = r#"---
apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: traffic}
spec:
  metrics:
    - name: requests
      provider: {builtin: {metric: requests, window: 10s}}
      successCondition: result > 0
      initialDelay: 1s
      interval: 1s
      count: 2
"#;

/// Sends requests to the app until dropped, so that built-in metrics have data.
pub struct Traffic(Arc<AtomicBool>);

impl Traffic {
    pub fn start(app: SocketAddr) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = get(app, "/");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        Traffic(stop)
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn serves(app: SocketAddr, version: &str) -> bool {
    (0..20).all(|_| {
        get(app, "/").is_some_and(|(_, text)| text.contains(&format!("hello from {version}")))
    })
}

#[test]
fn approval_undo_retry_and_emergency_stop() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let steps = "        - setWeight: 50\n        - analysis: {templates: [traffic]}\n        - approval: {}\n";
    let text = manifest("shop", port, steps, TEMPLATE)
        .replace("      steps:\n", "      scaleDownDelay: 1h\n      steps:\n");
    let file = write(dir.path(), "shop.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    let _traffic = Traffic::start(app);
    d.ok(&["deploy", "shop", "--version", "v2"]);

    // The analysis passes on live traffic, then the gate waits for an approval with a reason.
    d.wait_rollout("shop", "the approval gate", |r| {
        r["phase"] == "AwaitingApproval"
    });
    let table = d.ok(&["analysis", "shop"]);
    assert!(
        table.contains("traffic/requests")
            && table.contains("success condition `result > 0` holds"),
        "{table}"
    );
    assert!(d.fails(&["promote", "shop"]).contains("approval gate"));
    assert!(d.fails(&["approve", "shop"]).contains("requires a reason"));
    // An approval meant for an earlier step (or another rollout) is stale and changes nothing.
    let seen = d.rollout("shop");
    let (id, step) = (seen["id"].to_string(), seen["step"].as_u64().unwrap());
    // `--step` counts from 1 as `rollout status` does: the step before this one is `step`.
    let earlier = step.to_string();
    let stale = d.fails(&[
        "approve",
        "shop",
        "--reason",
        "ok",
        "--rollout",
        &id,
        "--step",
        &earlier,
    ]);
    assert!(
        stale.contains("stale_command") || stale.contains("look again"),
        "{stale}"
    );
    assert_eq!(d.rollout("shop")["phase"], "AwaitingApproval");
    d.ok(&["approve", "shop", "--reason", "dashboards look fine"]);

    // Promoted, with v1 kept warm: undo switches back at once.
    let r = d.wait_rollout("shop", "the promotion window", |r| {
        r["phase"] == "Promoting"
    });
    assert_eq!(r["weight"], 100);
    assert!(serves(app, "v2"));
    d.ok(&["undo", "shop"]);
    assert_eq!(d.rollout("shop")["phase"], "Aborted");
    assert!(
        serves(app, "v1"),
        "undo within the window routes back to the warm release"
    );

    // Retry the same release; an emergency stop aborts it and freezes the app.
    d.ok(&["retry", "shop"]);
    d.wait_rollout("shop", "the retried rollout's gate", |r| {
        r["phase"] == "AwaitingApproval"
    });
    assert!(
        d.fails(&["emergency-stop", "shop", "--reason", ""])
            .contains("reason")
    );
    let out = d.ok(&["emergency-stop", "shop", "--reason", "pager went off"]);
    assert!(out.contains("frozen"), "{out}");
    assert_eq!(d.rollout("shop")["phase"], "Aborted");
    assert!(serves(app, "v1"));
    let err = d.fails(&["deploy", "shop", "--version", "v3"]);
    assert!(
        err.contains("frozen") && err.contains("pager went off"),
        "{err}"
    );
    assert!(d.fails(&["retry", "shop"]).contains("frozen"));
    d.ok(&["unfreeze", "shop"]);
    assert!(d.fails(&["unfreeze", "shop"]).contains("not frozen"));

    // Pause for a while, resume with a lower weight.
    d.ok(&["retry", "shop"]);
    d.wait_rollout("shop", "the gate again", |r| {
        r["phase"] == "AwaitingApproval"
    });
    let err = d.fails(&["pause", "shop", "--duration", "soon"]);
    assert!(
        err.contains("`duration`") && err.contains("expected a duration"),
        "{err}"
    );
    assert_eq!(
        d.rollout("shop")["phase"],
        "AwaitingApproval",
        "a refused pause changes nothing"
    );
    d.ok(&["pause", "shop", "--duration", "1h"]);
    let r = d.rollout("shop");
    assert_eq!(r["phase"], "Paused");
    assert!(r["paused_until"].is_string());
    assert!(
        d.fails(&["resume", "shop", "--weight", "101"])
            .contains("101")
    );
    d.ok(&["resume", "shop", "--weight", "10", "--interval", "2s"]);
    let r = d.rollout("shop");
    assert_eq!(r["weight"], 10);
    let history = d.ok(&["history", "shop"]);
    for needle in [
        "approved by",
        "undone by",
        "frozen",
        "unfrozen",
        "resumed by",
        "canary weight 10%",
    ] {
        assert!(
            history.contains(needle),
            "{needle} missing from:\n{history}"
        );
    }
}

#[test]
fn header_route_pins_matching_requests_to_the_canary() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let steps = "        - setHeaderRoute: {match: [{header: x-canary, exact: always}]}\n        - setMirror: {percent: 50}\n        - pause: {}\n";
    let file = write(dir.path(), "shop.yaml", &manifest("shop", port, steps, ""));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    let r = d.wait_rollout("shop", "the pause", |r| r["phase"] == "Paused");
    assert_eq!(r["weight"], 0);
    for _ in 0..20 {
        let (_, pinned) = get_with(app, "/", "x-canary: always").unwrap();
        assert!(pinned.contains("hello from v2"), "{pinned}");
        let (_, other) = get_with(app, "/", "x-canary: sometimes").unwrap();
        assert!(other.contains("hello from v1"), "{other}");
    }
    d.ok(&["abort", "shop"]);
    let (_, after) = get_with(app, "/", "x-canary: always").unwrap();
    assert!(
        after.contains("hello from v1"),
        "the header route goes away with the rollout: {after}"
    );
}

#[test]
fn blue_green_previews_switches_and_switches_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let (port, preview_port) = (free_port(), free_port());
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let preview: SocketAddr = format!("127.0.0.1:{preview_port}").parse().unwrap();
    let text = manifest("shop", port, "", "")
        .replace(
            "    canary:\n      steps:\n\n",
            &format!("    blueGreen:\n      previewListen: 127.0.0.1:{preview_port}\n      smokeTests: [{{path: /health, expectBody: ok}}]\n      autoPromotionAfter: 3s\n      postPromotionAnalysis: {{templates: [errors]}}\n      scaleDownDelay: 1h\n"),
        )
        + "---\napiVersion: switchyard.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: errors}\nspec:\n  metrics:\n    - name: error-rate\n      provider: {builtin: {metric: error_rate, window: 3s}}\n      successCondition: result < 0.05\n      initialDelay: 2s\n      interval: 1s\n      count: 2\n";
    let file = write(dir.path(), "shop.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    let _traffic = Traffic::start(app);

    // Green is reachable on the preview only, until the automatic switch.
    d.ok(&["deploy", "shop", "--version", "v2"]);
    let r = d.wait_rollout("shop", "the pre-switch pause", |r| r["phase"] == "Paused");
    assert_eq!(r["weight"], 0);
    assert!(serves(preview, "v2"));
    assert!(serves(app, "v1"));
    d.wait_rollout("shop", "the promotion window", |r| {
        r["phase"] == "Promoting"
    });
    assert!(serves(app, "v2"));
    d.ok(&["promote", "shop"]);
    assert_eq!(d.rollout("shop")["phase"], "Succeeded");

    // A green that fails every request passes its smoke test (/health) but not the
    // post-promotion analysis: traffic switches back to the warm blue.
    d.ok(&[
        "deploy",
        "shop",
        "--version",
        "v3",
        "--env",
        "DEMO_ERROR_RATE=1",
    ]);
    let r = d.wait_rollout("shop", "the switch back", |r| r["phase"] == "RolledBack");
    assert!(
        r["reason"].as_str().unwrap().contains("error-rate"),
        "{r:#}"
    );
    assert!(serves(app, "v2"));
    let history = d.ok(&["history", "shop"]);
    assert!(
        history.contains("smoke tests of step 2 passed"),
        "{history}"
    );
}

#[test]
fn metrics_export_rollouts_and_measurements() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let steps = "        - setWeight: 40\n        - analysis: {templates: [traffic]}\n        - pause: {}\n";
    let file = write(
        dir.path(),
        "shop.yaml",
        &manifest("shop", port, steps, TEMPLATE),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    let _traffic = Traffic::start(app);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the pause after the analysis", |r| {
        r["phase"] == "Paused"
    });
    let api: SocketAddr = d.api.trim_start_matches("http://").parse().unwrap();
    let (status, text) = get(api, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains(r#"switchyard_rollout_canary_weight_percent{app="shop",version="v2"} 40"#),
        "{text}"
    );
    assert!(
        text.contains(r#"switchyard_rollout_phase{app="shop",version="v2",phase="Paused"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("switchyard_proxy_"),
        "the proxy's metrics are there too"
    );
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let eofs: Vec<&str> = body.lines().filter(|l| l.starts_with("# EOF")).collect();
    assert!(
        eofs.len() <= 1 && (eofs.is_empty() || body.trim_end().ends_with("# EOF")),
        "{body}"
    );
    // The deployment metrics: the first release and the rollout, which an operator aborts.
    d.ok(&["abort", "shop", "--reason", "enough"]);
    d.wait_rollout("shop", "the abort", |r| r["phase"] == "Aborted");
    let (_, text) = get(api, "/metrics").unwrap();
    let shop = "app=\"shop\",environment=\"\"";
    for line in [
        format!("deployment_total{{{shop}}} 2"),
        format!("deployment_success_total{{{shop}}} 1"),
        format!("deployment_failed_total{{{shop}}} 0"),
        format!("deployment_rollback_total{{{shop},trigger=\"operator\"}} 1"),
        format!("deployment_rollback_total{{{shop},trigger=\"automatic\"}} 0"),
        format!("deployment_duration_seconds_count{{{shop},outcome=\"aborted\"}} 1"),
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

#[test]
fn a_slow_measurement_does_not_hold_up_operators() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let release = dir.path().join("release");
    let template = format!(
        "---\napiVersion: switchyard.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: slow}}\nspec:\n  metrics:\n    - name: blocked\n      provider: {{command: {{command: [sh, -c, 'while [ ! -e {} ]; do sleep 0.1; done; echo 0'], timeout: 2m}}}}\n      successCondition: result == 0\n",
        release.display()
    );
    let steps = "        - setWeight: 10\n        - analysis: {templates: [slow]}\n";
    let file = write(
        dir.path(),
        "shop.yaml",
        &manifest("shop", port, steps, &template),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the analysis", |r| r["phase"] == "Analyzing");
    std::thread::sleep(std::time::Duration::from_millis(500));
    // A watchdog releases the measurement, so a controller that waits for it still finishes
    // this test (and fails its assertions) instead of hanging.
    let watchdog = release.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        let _ = std::fs::write(watchdog, "");
    });
    d.ok(&["abort", "shop", "--reason", "not waiting for it"]);
    assert_eq!(d.rollout("shop")["phase"], "Aborted");
    std::fs::write(&release, "").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let history = d.ok(&["history", "shop"]);
    assert!(
        !history.contains("measurement"),
        "the stale measurement was dropped:\n{history}"
    );
    assert!(history.contains("not waiting for it"), "{history}");
}

#[test]
fn two_first_deploys_at_once_make_one_first_release() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let file = write(
        dir.path(),
        "shop.yaml",
        &manifest(
            "shop",
            port,
            "        - setWeight: 50\n        - pause: {}\n",
            "",
        ),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    let outputs: Vec<(bool, String)> = std::thread::scope(|s| {
        let deploys: Vec<_> = ["first-a", "first-b"]
            .into_iter()
            .map(|v| {
                let d = &d;
                s.spawn(move || {
                    let out = d.cli(&["deploy", "shop", "--version", v, "-o", "json"]);
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    (out.status.success(), text)
                })
            })
            .collect();
        deploys.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let initial = outputs
        .iter()
        .filter(|(ok, text)| *ok && text.contains("\"initial\""))
        .count();
    assert_eq!(
        initial, 1,
        "exactly one becomes the first release: {outputs:#?}"
    );
    // The other either lost the race (refused, its release stopped) or came after (a rollout).
    for (ok, text) in &outputs {
        assert!(
            text.contains("\"initial\"")
                || (*ok && text.contains("\"rollout\""))
                || (!*ok && text.contains("from another deploy meanwhile")),
            "{outputs:#?}"
        );
    }
    let apps: serde_json::Value =
        serde_json::from_str(&d.ok(&["get", "apps", "-o", "json"])).unwrap();
    let stable = apps[0]["stable"].as_str().unwrap().to_string();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let loser_refused = outputs.iter().any(|(ok, _)| !ok);
    if loser_refused {
        assert!(serves(app, &stable), "only the first release serves");
    }
}
