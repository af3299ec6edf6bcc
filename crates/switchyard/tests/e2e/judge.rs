//! The statistical judge in real rollouts: canary against stable over the same intervals.

use std::net::SocketAddr;
use std::time::Duration;

use crate::operations::Traffic;
use crate::support::*;

const JUDGE: &str = r#"---
apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: judge}
spec:
  metrics:
    - name: errors-vs-stable
      judge: {compare: error_rate, against: stable, margin: 0.05, alpha: 0.01}
      interval: 1s
"#;

fn setup(dir: &std::path::Path, d: &Daemon) -> SocketAddr {
    let steps = "        - setWeight: 50\n        - analysis: {templates: [judge]}\n";
    app_with(dir, d, steps, JUDGE)
}

/// Applies the app `shop` with `steps` (and `extra` documents) on a free port; its address.
fn app_with(dir: &std::path::Path, d: &Daemon, steps: &str, extra: &str) -> SocketAddr {
    let port = free_port();
    let file = write(dir, "shop.yaml", &manifest("shop", port, steps, extra));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// Deploys `version` of `shop`, failing every `nth` request (on a schedule, not by chance).
fn deploy_failing_every(d: &Daemon, version: &str, nth: u32) {
    let env = format!("DEMO_ERROR_EVERY={nth}");
    d.ok(&["deploy", "shop", "--version", version, "--env", &env]);
}

/// The last measurement of `shop`'s latest rollout.
fn last_measurement(d: &Daemon) -> serde_json::Value {
    let list: serde_json::Value =
        serde_json::from_str(&d.ok(&["analysis", "shop", "-o", "json"])).unwrap();
    list["measurements"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone()
}

#[test]
fn judge_rolls_back_a_worse_canary_and_promotes_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let app = setup(dir.path(), &d);
    deploy_failing_every(&d, "v1", 10);
    let _traffic = Traffic::start(app);

    // Errors on a schedule (every 10th request, every 3rd), not by chance: the verdicts depend
    // on the counts only, never on luck or on how fast a busy machine serves them.
    // Three times the stable release's error rate: rolled back, with the evidence recorded.
    deploy_failing_every(&d, "v2", 3);
    let r = d.wait_rollout("shop", "the judge's rollback", |r| {
        r["phase"] == "RolledBack"
    });
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("errors-vs-stable") && reason.contains("fail"),
        "{reason}"
    );
    assert_eq!(last_measurement(&d)["phase"], "failed");
    let history: serde_json::Value =
        serde_json::from_str(&d.ok(&["history", "shop", "-o", "json"])).unwrap();
    let evidence = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find_map(|e| e["data"]["evidence"].as_object().cloned())
        .expect("the verdict's evidence is in the event log");
    for key in ["canary", "baseline", "interval", "boundary", "p_value"] {
        assert!(
            evidence.contains_key(key),
            "{key} missing from {evidence:?}"
        );
    }

    // The incident: what decided, the traffic v2 took, what to look at next, and its report.
    let list: serde_json::Value =
        serde_json::from_str(&d.ok(&["incident", "list", "-o", "json"])).unwrap();
    let incidents = list.as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{list:#}");
    let id = incidents[0]["id"].as_i64().unwrap();
    assert_eq!(
        id,
        r["id"].as_i64().unwrap(),
        "an incident is named by its rollout"
    );
    assert_eq!(incidents[0]["decided_by"], "analysis");
    let incident: serde_json::Value =
        serde_json::from_str(&d.ok(&["incident", "show", &id.to_string(), "-o", "json"])).unwrap();
    assert_eq!(incident["version"], "v2");
    assert_eq!(incident["stable_version"], "v1");
    let canary = &incident["exposure"]["canary"];
    assert_eq!(canary["version"], "v2");
    let (requests, errors) = (
        canary["requests"].as_u64().unwrap(),
        canary["errors"].as_u64().unwrap(),
    );
    assert!(requests > 0 && errors > 0 && errors <= requests, "{canary}");
    assert_eq!(incident["exposure"]["max_weight"], 50);
    assert!(
        incident["sticky_share"].is_null(),
        "the manifest routes without stickiness"
    );
    assert!(
        incident["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["phase"] == "failed")
    );
    let next = incident["next"].to_string();
    assert!(
        next.contains("errors-vs-stable") && next.contains("5xx"),
        "{next}"
    );
    let text = d.ok(&["incident", "show", &id.to_string()]);
    assert!(
        text.contains(&format!("canary v2: {requests} requests, {errors} errors")),
        "{text}"
    );
    let report = dir.path().join("incident.html");
    d.ok(&[
        "incident",
        "show",
        &id.to_string(),
        "--out",
        report.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("shop v2 rolled back"), "{html}");
    assert!(
        html.contains("errors-vs-stable: estimate, interval and boundary"),
        "the judge's chart"
    );
    assert!(html.contains("What to look at next"));
    assert!(!html.contains("<script"), "self-contained, no script");
    let err = d.fails(&["incident", "show", "9999"]);
    assert!(err.contains("no incident 9999"), "{err}");

    // As good as stable: promoted.
    deploy_failing_every(&d, "v3", 10);
    let r = d.wait_rollout("shop", "the judge's pass", |r| r["phase"] == "Succeeded");
    assert_eq!(r["weight"], 100);
}

#[test]
fn a_canary_without_traffic_waits_as_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    setup(dir.path(), &d);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the first look", |r| {
        r["analysis"][0]["taken"].as_u64().unwrap_or(0) >= 3
    });
    std::thread::sleep(Duration::from_secs(1));
    let r = d.rollout("shop");
    assert_eq!(
        r["phase"], "Analyzing",
        "no traffic is not a failure: {r:#}"
    );
    assert_eq!(r["analysis"][0]["status"], "running");
    assert!(
        r["analysis"][0]["last_message"]
            .as_str()
            .unwrap()
            .starts_with("inconclusive"),
        "{r:#}"
    );
}

#[test]
fn judge_against_a_dedicated_baseline_release() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let template = JUDGE.replace("against: stable", "against: baseline");
    let steps = "        - setWeight: 30\n        - analysis: {templates: [judge]}\n";
    let app = app_with(dir.path(), &d, steps, &template);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    let _traffic = Traffic::start(app);
    deploy_failing_every(&d, "v2", 2);

    // The baseline copy of v1 takes as much traffic as the canary while the judge looks.
    let r = d.wait_rollout("shop", "traffic on the baseline", |r| {
        r["traffic"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["role"] == "baseline" && t["requests"].as_u64().unwrap_or(0) > 0)
    });
    let baseline = r["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "baseline")
        .unwrap()
        .clone();
    assert_eq!(baseline["version"], "v1-baseline");
    assert_eq!(baseline["weight"], 30);
    let r = d.wait_rollout("shop", "the judge's rollback", |r| {
        r["phase"] == "RolledBack"
    });
    assert!(
        r["reason"].as_str().unwrap().contains("errors-vs-stable"),
        "{r:#}"
    );
    assert_eq!(r["weight"], 0);
    // All traffic is back on stable; the baseline was removed with the rollout.
    for _ in 0..20 {
        let (status, text) = get(app, "/").unwrap();
        assert_eq!(status, 200, "{text}");
    }
}

/// A client that breaks its own requests (bad chunked framing) is answered 400 by the proxy and
/// never counted against the canary: the healthy canary is promoted, no instance is ejected,
/// and no legitimate request fails.
#[test]
fn a_client_sending_malformed_bodies_does_not_roll_back_a_healthy_canary() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let app = setup(dir.path(), &d);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    let stop = Arc::new(AtomicBool::new(false));
    let (legit, failed, refused) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut threads = Vec::new();
    {
        let (stop, legit, failed) = (stop.clone(), legit.clone(), failed.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match get(app, "/") {
                    Some((200, _)) => legit.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    {
        let (stop, refused) = (stop.clone(), refused.clone());
        threads.push(std::thread::spawn(move || {
            let bad = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n";
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut s) = std::net::TcpStream::connect(app) {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = s.write_all(bad);
                    let mut answer = String::new();
                    let _ = s.read_to_string(&mut answer);
                    if answer.starts_with("HTTP/1.1 400") {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }));
    }
    d.ok(&["deploy", "shop", "--version", "v2"]);
    let r = d.wait_rollout("shop", "the healthy canary's promotion", |r| {
        !r["active"].as_bool().unwrap()
    });
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let (legit, failed, refused) = (
        legit.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    println!("legitimate requests {legit}, failed {failed}; malformed requests refused {refused}");
    assert_eq!(r["phase"], "Succeeded", "{r:#}");
    assert_eq!(failed, 0, "no legitimate request failed");
    assert!(refused > 0, "the malformed client was answered 400");
}

/// An adaptive step through the real proxy: the judge chooses the weight the proxy routes by
/// (recorded as weight changes, served as canary traffic), a healthy canary moves on to
/// promotion, and a canary failing half its requests is rolled back by the risk-ratio test.
#[test]
fn an_adaptive_canary_sets_its_own_weight_and_rolls_back_a_worse_release() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let steps = "        - adaptive: {maxWeight: 40, errorBudget: 500, interval: 1s, maxDuration: 15s, onTimeout: pass}\n";
    let app = app_with(dir.path(), &d, steps, "");
    deploy_failing_every(&d, "v1", 10);
    let _traffic = Traffic::start(app);

    deploy_failing_every(&d, "v2", 10);
    let r = d.wait_rollout("shop", "the healthy canary's promotion", |r| {
        r["phase"] == "Succeeded"
    });
    assert_eq!(r["weight"], 100);
    let history: serde_json::Value =
        serde_json::from_str(&d.ok(&["history", "shop", "-o", "json"])).unwrap();
    let chosen: Vec<u64> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "weight_changed")
        .filter_map(|e| e["data"]["to"].as_u64())
        .collect();
    assert_eq!(
        chosen.first(),
        Some(&1),
        "the step starts at minWeight: {chosen:?}"
    );
    assert!(
        chosen.iter().any(|&w| (2..=40).contains(&w)),
        "the judge moved the weight within its bounds: {chosen:?}"
    );
    assert!(chosen.iter().all(|&w| w <= 40 || w == 100), "{chosen:?}");

    deploy_failing_every(&d, "v3", 2);
    let r = d.wait_rollout("shop", "the adaptive judge's rollback", |r| {
        r["phase"] == "RolledBack"
    });
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("adaptive-canary"), "{reason}");
    let last = last_measurement(&d);
    assert_eq!(last["phase"], "failed", "{last:#}");
    assert_eq!(
        last["evidence"]["method"], "risk_ratio_martingale",
        "{last:#}"
    );
    assert!(
        last["evidence"]["interval"][0].as_f64().unwrap() > 1.2,
        "{last:#}"
    );
    // All traffic is back on v2, the stable release.
    for _ in 0..20 {
        let (_, text) = get(app, "/").unwrap();
        assert!(text.contains("v2"), "{text}");
    }
}
