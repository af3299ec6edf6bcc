//! Flag experiments end to end: simulated users (a fixed seed) are assigned over OFREP, convert
//! through `POST /api/v1/events`, and the results find a true effect and no effect in an A/A
//! run. Bad batches are refused event by event and nothing is counted twice.

use serde_json::{Value, json};

use crate::flags::{addr, http, json_of, ofrep};
use crate::support::*;

pub(crate) fn experiment(key: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {{name: {key}}}
spec:
  split: {{flag: {{unit: userId}}}}
  variants:
    - {{name: control, weight: 50, value: classic}}
    - {{name: redesign, weight: 50, value: redesign}}
  metrics:
    - {{name: purchased, conversion: {{event: purchase}}}}
    - {{name: revenue, continuous: {{event: purchase}}}}
  minimumSampleSize: 200
  analysis: {{method: sequential, alpha: 0.05}}
{extra}"#
    )
}

/// A small deterministic generator (64-bit LCG), so every run sees the same users.
pub(crate) struct Users(pub(crate) u64);

impl Users {
    pub(crate) fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub(crate) fn post_events(d: &Daemon, events: &[Value]) -> (u16, Value) {
    let body = json!({ "events": events }).to_string();
    let (status, _, text) = http(addr(d), "POST", "/api/v1/events", &[], &body);
    (status, json_of(&text))
}

/// Assigns `users` over OFREP and sends each one's purchase with the variant's conversion rate.
/// Returns the variant each user got.
fn run_users(d: &Daemon, key: &str, users: usize, rates: (f64, f64), seed: u64) -> Vec<String> {
    let mut random = Users(seed);
    let mut assigned = Vec::with_capacity(users);
    let mut events = Vec::new();
    for i in 0..users {
        let user = format!("{key}-user-{i}");
        let (status, body) = ofrep(d, key, json!({"userId": user}), &[]);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["reason"], "SPLIT", "{body}");
        let variant = body["variant"].as_str().unwrap().to_string();
        let rate = if variant == "control" {
            rates.0
        } else {
            rates.1
        };
        if random.next() < rate {
            let value = 20.0 + 30.0 * random.next();
            events.push(json!({
                "id": format!("purchase-{user}"),
                "experiment": key,
                "unit": user,
                "event": "purchase",
                "value": value,
            }));
        }
        assigned.push(variant);
    }
    for chunk in events.chunks(500) {
        let (status, report) = post_events(d, chunk);
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["accepted"], chunk.len(), "{report}");
    }
    assigned
}

/// Polls the results until every user's exposure is stored.
pub(crate) fn results_with_units(d: &Daemon, key: &str, units: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = json_of(&d.ok(&["experiment", "results", key, "-o", "json"]));
        let total: u64 = r["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["units"].as_u64().unwrap())
            .sum();
        if total == units {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "exposures not stored: {total} of {units}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

pub(crate) fn comparison<'a>(results: &'a Value, metric: &str) -> &'a Value {
    let m = results["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == metric)
        .unwrap_or_else(|| panic!("no metric {metric}: {results:#}"));
    &m["comparisons"][0]
}

#[test]
fn a_flag_experiment_finds_a_true_effect_and_an_aa_run_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let text = format!(
        "{}---\n{}",
        experiment("checkout-redesign", ""),
        experiment("checkout-aa", "")
    );
    let file = write(dir.path(), "experiments.yaml", &text);
    let applied = d.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(applied.contains("Experiment"), "{applied}");

    // The treatment truly converts better: 12% against 24%. The verdict tests the relative
    // lift (always valid, Holm over two metrics): 2,000 users show it.
    let users = 2000;
    let assigned = run_users(&d, "checkout-redesign", users, (0.12, 0.24), 7);
    let again = ofrep(
        &d,
        "checkout-redesign",
        json!({"userId": "checkout-redesign-user-3"}),
        &[],
    )
    .1;
    assert_eq!(
        again["variant"],
        assigned[3].as_str(),
        "assignment is sticky"
    );
    let results = results_with_units(&d, "checkout-redesign", users as u64);
    let purchased = comparison(&results, "purchased");
    assert_eq!(purchased["variant"], "redesign");
    assert_eq!(purchased["verdict"], "better", "{results:#}");
    assert!(
        purchased["relative"]["estimate"].as_f64().unwrap() > 0.5,
        "{purchased:#}"
    );
    // A bulk fetch serves the experiment's flag but exposes nobody.
    let (status, _, text) = http(
        addr(&d),
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[],
        &json!({"context": {"userId": "bulk-only"}}).to_string(),
    );
    assert_eq!(status, 200, "{text}");
    let bulk = json_of(&text);
    assert!(
        bulk["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["key"] == "checkout-redesign" && f["reason"] == "SPLIT"),
        "{bulk}"
    );
    std::thread::sleep(std::time::Duration::from_millis(600));
    let after = results_with_units(&d, "checkout-redesign", users as u64);
    assert_eq!(
        after["variants"][0]["units"],
        results["variants"][0]["units"]
    );
    let srm = &results["srm"];
    assert_eq!(srm["mismatch"], false, "a 50/50 split is balanced: {srm:#}");
    assert_eq!(results["recommendation"]["action"], "ship", "{results:#}");
    assert_eq!(results["recommendation"]["variant"], "redesign");

    // A/A: both variants convert alike; nothing is found.
    run_users(&d, "checkout-aa", users, (0.15, 0.15), 11);
    let aa = results_with_units(&d, "checkout-aa", users as u64);
    for metric in ["purchased", "revenue"] {
        let c = comparison(&aa, metric);
        assert_ne!(c["verdict"], "better", "{aa:#}");
        assert_ne!(c["verdict"], "worse", "{aa:#}");
    }
    assert_ne!(aa["recommendation"]["action"], "ship", "{aa:#}");

    // The table, the report, the list.
    let table = d.ok(&["experiment", "results", "checkout-redesign"]);
    assert!(
        table.contains("purchased") && table.contains("redesign"),
        "{table}"
    );
    let report = dir.path().join("report.html");
    d.ok(&[
        "experiment",
        "report",
        "checkout-redesign",
        "--out",
        report.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"), "{html}");
    screenshot_shows_something(dir.path(), &report);
    let list = d.ok(&["experiment", "list"]);
    assert!(
        list.contains("checkout-aa") && list.contains("running"),
        "{list}"
    );

    // Stopping serves control to everyone and records why.
    d.ok(&[
        "experiment",
        "stop",
        "checkout-redesign",
        "--reason",
        "shipping it",
    ]);
    let user = ofrep(
        &d,
        "checkout-redesign",
        json!({"userId": "someone-new"}),
        &[],
    )
    .1;
    assert_eq!(user["variant"], "control", "{user}");
    let list = d.ok(&["experiment", "list"]);
    assert!(list.contains("stopped: shipping it"), "{list}");
    let err = d.fails(&["experiment", "stop", "checkout-redesign"]);
    assert!(err.contains("already stopped"), "{err}");
}

#[test]
fn bad_event_batches_are_refused_event_by_event_and_nothing_counts_twice() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let file = write(dir.path(), "e.yaml", &experiment("checkout", ""));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);

    let exposure = |id: &str, unit: &str, variant: &str| json!({"id": id, "experiment": "checkout", "unit": unit, "event": "$exposure", "variant": variant});
    let purchase = |id: &str, unit: &str| json!({"id": id, "experiment": "checkout", "unit": unit, "event": "purchase", "value": 10.0});
    let (status, report) = post_events(
        &d,
        &[
            exposure("x1", "u1", "redesign"),
            purchase("p1", "u1"),
            json!({"id": "e3", "experiment": "nope", "unit": "u1", "event": "purchase"}),
            exposure("x4", "u2", "treatment-b"),
            json!({"id": "e5", "experiment": "checkout", "unit": "u1", "event": "refund"}),
            json!({"id": "e6", "experiment": "checkout", "unit": "u1", "event": "purchase", "timestamp": "2999-01-01T00:00:00Z"}),
            purchase("p1", "u1"),
            json!({"id": "e8", "experiment": "checkout", "unit": "u1", "event": "purchase", "value": "ten"}),
        ],
    );
    assert_eq!(status, 422, "{report}");
    assert_eq!(report["accepted"], 2, "{report}");
    let errors = report["errors"].as_array().unwrap();
    let pointer_of = |index: usize| -> Vec<String> {
        errors
            .iter()
            .filter(|e| e["index"] == index)
            .map(|e| {
                format!(
                    "{} {}",
                    e["pointer"].as_str().unwrap(),
                    e["message"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert!(
        pointer_of(2)[0].starts_with("/events/2/experiment"),
        "{report:#}"
    );
    assert!(
        pointer_of(3)[0].starts_with("/events/3/variant"),
        "{report:#}"
    );
    assert!(
        pointer_of(4)[0].starts_with("/events/4/event"),
        "{report:#}"
    );
    assert!(
        pointer_of(5)[0].starts_with("/events/5/timestamp"),
        "{report:#}"
    );
    assert!(pointer_of(6)[0].contains("/events/6/id"), "{report:#}");
    assert!(
        pointer_of(7)[0].starts_with("/events/7/value"),
        "{report:#}"
    );

    // The same batch again counts nothing new.
    let (status, report) = post_events(
        &d,
        &[exposure("x1", "u1", "redesign"), purchase("p1", "u1")],
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["accepted"].as_u64(), report["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    let results = json_of(&d.ok(&["experiment", "results", "checkout", "-o", "json"]));
    let revenue = results["metrics"][1]["variants"][1].clone();
    assert_eq!(revenue["variant"], "redesign");
    assert_eq!(revenue["units"], 1);
    assert_eq!(revenue["value"], 10.0, "{results:#}");

    // Re-applying with another counting is refused and changes nothing; another analysis is
    // applied.
    let changed = write(
        dir.path(),
        "changed.yaml",
        &experiment("checkout", "").replace(
            "{name: revenue, continuous: {event: purchase}}",
            "{name: revenue, continuous: {event: purchase}, window: {duration: 1day}}",
        ),
    );
    let refused = d.fails(&["apply", "-f", changed.to_str().unwrap()]);
    assert!(
        refused.contains(
            "experiment `checkout`: spec.metrics[1] cannot change once units are counted"
        ),
        "{refused}"
    );
    let record = json_of(&d.ok(&["experiment", "get", "checkout", "-o", "json"]));
    assert!(!record.to_string().contains("window"), "{record}");
    let reanalysed = write(
        dir.path(),
        "reanalysed.yaml",
        &experiment("checkout", "").replace("method: sequential", "method: bayesian"),
    );
    d.ok(&["apply", "-f", reanalysed.to_str().unwrap()]);

    // A unit exposed to one variant cannot be exposed to another.
    let (status, report) = post_events(&d, &[exposure("x9", "u1", "control")]);
    assert_eq!(status, 422);
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("assigned to variant `redesign`"),
        "{report}"
    );

    // Through the CLI: a batch with a refused event exits non-zero and prints the report.
    let batch = dir.path().join("batch.json");
    let body = json!({"events": [purchase("c1", "u1"), purchase("c2", "nobody-exposed"), exposure("c3", "u4", "blue")]});
    std::fs::write(&batch, body.to_string()).unwrap();
    let out = d.cli(&["experiment", "events", "-f", batch.to_str().unwrap()]);
    assert!(!out.status.success());
    let report = json_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        (report["accepted"].as_u64(), report["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(
        report["errors"][0]["pointer"], "/events/2/variant",
        "{report}"
    );
    let good = json!({"events": [purchase("c4", "u1")]});
    std::fs::write(&batch, good.to_string()).unwrap();
    let report = json_of(&d.ok(&["experiment", "events", "-f", batch.to_str().unwrap()]));
    assert_eq!(report["accepted"], 1, "{report}");

    // Whole-batch errors: too many events, not a batch.
    let many: Vec<Value> = (0..1001)
        .map(|i| purchase(&format!("m{i}"), "u1"))
        .collect();
    let (status, report) = post_events(&d, &many);
    assert_eq!(status, 400, "{report}");
    assert_eq!(report["error"]["code"], "invalid_batch");
    assert_eq!(report["error"]["details"]["pointer"], "/events");
    let (status, _, text) = http(addr(&d), "POST", "/api/v1/events", &[], "[1, 2]");
    assert_eq!(status, 400, "{text}");

    // Weights that do not sum to a positive number are refused when applied; nothing changes.
    let zero = experiment("zero", "").replace("weight: 50", "weight: 0");
    let file = write(dir.path(), "zero.yaml", &zero);
    let err = d.fails(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        err.contains("zero.yaml:") && err.contains("weight"),
        "{err}"
    );
    let list = d.ok(&["experiment", "list"]);
    assert!(!list.contains("zero"), "{list}");
    let err = d.fails(&["experiment", "results", "zero"]);
    assert!(err.contains("does not exist"), "{err}");
}

/// Renders the report in headless Chromium (scripts/report-screenshot) and compares its
/// screenshot with one of an empty page: the report must draw far more than nothing.
fn screenshot_shows_something(dir: &std::path::Path, report: &std::path::Path) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/report-screenshot");
    let shoot = |html: &std::path::Path, png: &std::path::Path| {
        let out = std::process::Command::new(&script)
            .arg(html)
            .arg(png)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "screenshot failed (is chromium-headless-shell installed? scripts/test installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(png).unwrap()
    };
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!doctype html><html><body></body></html>").unwrap();
    let empty = shoot(&blank, &dir.join("blank.png"));
    let png = shoot(report, &dir.join("report.png"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    eprintln!(
        "report screenshot: {} bytes (empty page: {} bytes)",
        png.len(),
        empty.len()
    );
    assert!(
        png.len() > 3 * empty.len(),
        "the report renders to {} bytes, an empty page to {}",
        png.len(),
        empty.len()
    );
}

#[test]
fn a_violated_guardrail_stops_a_flag_experiment_and_its_flag_serves_control() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let guarded = experiment(
        "checkout-guarded",
        "  guardrails:\n    - {metric: purchased, maxDegradation: 0.05}\n",
    );
    let file = write(dir.path(), "guarded.yaml", &guarded);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);

    // The redesign breaks checkout: 4% of its users buy against 25% of control's.
    run_users(&d, "checkout-guarded", 800, (0.25, 0.04), 5);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let list = loop {
        let list = json_of(&d.ok(&["experiment", "list", "-o", "json"]));
        if list[0]["status"] == "stopped" {
            break list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the guardrail did not stop the experiment: {list:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let reason = list[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("guardrail `purchased` violated by variant `redesign`"),
        "{reason}"
    );
    assert_eq!(list[0]["actor"], "guardrail");
    for i in 0..20 {
        let body = ofrep(
            &d,
            "checkout-guarded",
            json!({"userId": format!("late-{i}")}),
            &[],
        )
        .1;
        assert_eq!(body["variant"], "control", "{body}");
    }
    let results = json_of(&d.ok(&["experiment", "results", "checkout-guarded", "-o", "json"]));
    assert_eq!(
        results["guardrails"][0]["status"]["status"], "violated",
        "{results:#}"
    );
}
