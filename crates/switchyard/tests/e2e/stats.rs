//! `switchyard stats METHOD`: every example of docs/statistics.md, run through the binary, gives
//! the documented output; bad input gives a JSON error and a non-zero exit.

use std::process::Command;

use crate::support::{BIN, with_stdin};

fn run(method: &str, input: &str) -> (bool, serde_json::Value) {
    let out = with_stdin(Command::new(BIN).args(["stats", method]), input.as_bytes());
    let text = String::from_utf8(out.stdout).unwrap();
    (
        out.status.success(),
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method}: not JSON ({e}): {text}")),
    )
}

/// `(method, input, output)` of each example: a line `METHOD {json...` then `→ {json...`.
fn examples() -> Vec<(String, String, String)> {
    let docs = include_str!("../../../../docs/statistics.md");
    let mut found = Vec::new();
    let mut current: Option<(String, String, Option<String>)> = None;
    for line in docs.lines() {
        let trimmed = line.trim();
        if let Some((method, input, output)) = current.as_mut() {
            if trimmed.is_empty() || trimmed.starts_with("```") {
                if let Some(out) = output.take() {
                    found.push((method.clone(), input.clone(), out));
                }
                current = None;
            } else if let Some(rest) = trimmed.strip_prefix('→') {
                *output = Some(rest.trim().to_string());
            } else if let Some(out) = output.as_mut() {
                out.push_str(trimmed);
            } else {
                input.push_str(trimmed);
            }
            continue;
        }
        let mut parts = line.splitn(2, ' ');
        let (Some(method), Some(rest)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !method.is_empty()
            && method.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && rest.trim_start().starts_with('{')
        {
            current = Some((method.to_string(), rest.trim().to_string(), None));
        }
    }
    found
}

fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300)
        }
        (serde_json::Value::Array(x), serde_json::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
        }
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn every_documented_method_gives_the_documented_output() {
    let examples = examples();
    let methods: std::collections::BTreeSet<&str> =
        examples.iter().map(|(m, _, _)| m.as_str()).collect();
    for method in [
        "ttest",
        "sequential",
        "proportions",
        "mann-whitney",
        "srm",
        "adjust",
        "cuped",
        "ratio",
        "bayes",
        "power",
        "canary-judge",
    ] {
        assert!(
            methods.contains(method),
            "docs/statistics.md has no example of `{method}` (found {methods:?})"
        );
    }
    for (method, input, output) in &examples {
        let expected: serde_json::Value = serde_json::from_str(output)
            .unwrap_or_else(|e| panic!("{method}: documented output is not JSON ({e}): {output}"));
        let (ok, got) = run(method, input);
        assert!(ok, "{method} failed: {got}");
        assert!(
            close(&got, &expected),
            "{method} {input}\n  got      {got}\n  expected {expected}"
        );
    }
}

#[test]
fn bad_statistics_input_is_a_json_error_naming_the_field() {
    let (ok, got) = run(
        "ttest",
        r#"{"control": {"n": 0, "mean": 1, "variance": 1}, "treatment": {"n": 5, "mean": 1, "variance": 1}}"#,
    );
    assert!(!ok);
    assert!(
        got["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/control/n"),
        "{got}"
    );
    let (ok, got) = run("nope", "{}");
    assert!(!ok);
    assert!(
        got["error"]["message"].as_str().unwrap().contains("nope"),
        "{got}"
    );
    let (ok, _) = run("srm", "not json");
    assert!(!ok);
}

#[test]
fn sim_canary_reports_every_judge_in_the_documented_shape() {
    let out = Command::new(BIN)
        .args([
            "sim",
            "canary",
            "--runs",
            "20",
            "--duration",
            "120",
            "--seed",
            "7",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["judges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    for name in ["switchyard", "argo", "flagger", "kayenta"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for j in report["judges"].as_array().unwrap() {
        let rate = j["rollback_rate"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&rate));
        assert!(j.get("median_detection_s").is_some() && j.get("p90_detection_s").is_some());
    }
    assert_eq!(report["config"]["runs"], 20);
    let bad = Command::new(BIN)
        .args(["sim", "canary", "--weight", "150"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("weight"));
}
