//! The command provider with `sh` scripts.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_analysis::MeasureError;
use switchyard_core::Value;

use super::{measure, provider_error, spec};

fn sh(script: &str) -> serde_json::Value {
    json!({"command": {"command": ["sh", "-c", script]}})
}

#[tokio::test]
async fn the_last_line_of_stdout_is_the_value() {
    for (script, expected) in [
        ("echo warming up; echo 0.25", Value::Number(0.25)),
        ("printf '3\\n\\n  \\n'", Value::Number(3.0)),
        ("echo '[1, 2.5]'", Value::List(vec![1.0, 2.5])),
        ("echo true", Value::Bool(true)),
        ("echo '\"0.5\"'", Value::Number(0.5)),
    ] {
        let observed = measure(&spec(sh(script))).await.unwrap();
        assert_eq!(observed.result, expected, "{script}");
        assert_eq!(observed.baseline, None);
    }
    let outcome = measure(&spec(sh("echo null"))).await;
    assert!(
        matches!(outcome, Err(MeasureError::NoData { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn arguments_and_environment_are_templated() {
    let script = r#"test "$1 $2 $SWITCHYARD_APP $SWITCHYARD_CANARY_VERSION $SWITCHYARD_STABLE_VERSION $ROLE" = "shop v2 shop v2 v1 canary-v1" && echo 1"#;
    let command = json!({"command": {
        "command": ["sh", "-c", script, "sh", "{{app}}", "{{version}}"],
        "env": {"ROLE": "{{release}}-{{stable_version}}"},
        "timeout": "20s",
    }});
    assert_eq!(
        measure(&spec(command)).await.unwrap().result,
        Value::Number(1.0)
    );
}

#[tokio::test]
async fn failures_are_provider_errors_that_say_what_happened() {
    let reason = provider_error(
        measure(&spec(sh(
            "echo 0.1; echo 'connecting' >&2; echo 'query failed: timeout' >&2; exit 3",
        )))
        .await,
    );
    assert!(reason.contains("`sh` failed (exit status: 3)"), "{reason}");
    assert!(
        reason.ends_with("connecting | query failed: timeout"),
        "{reason}"
    );

    let reason = provider_error(measure(&spec(sh("exit 0"))).await);
    assert!(reason.contains("printed nothing"), "{reason}");
    let reason = provider_error(measure(&spec(sh("echo high"))).await);
    assert!(
        reason.contains("the last line `high` printed by `sh` is not a number"),
        "{reason}"
    );
    let reason = provider_error(measure(&spec(sh("echo '{\"a\": 1}'"))).await);
    assert!(reason.contains("is an object"), "{reason}");

    // A program that is not there cannot be one the policy allows.
    let missing = json!({"command": {"command": ["/nonexistent/check"]}});
    let outcome = measure(&spec(missing)).await;
    assert!(
        matches!(&outcome, Err(MeasureError::Forbidden(v)) if v.to_string().contains("`/nonexistent/check`")),
        "{outcome:?}"
    );
}

/// Whether a process whose command line contains `marker` is running.
fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(marker))
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn a_program_past_its_timeout_is_killed_with_its_children() {
    // A marker no other process has: the background `sleep` must not outlive the timeout.
    let marker = format!("{}.{}", 40 + std::process::id() % 50, std::process::id());
    let mut slow = sh(&format!("sleep {marker} & sleep {marker}; echo 1"));
    slow["command"]["timeout"] = json!("300ms");
    let reason = provider_error(measure(&spec(slow)).await);
    assert!(
        reason.contains("did not finish within 300ms and was killed"),
        "{reason}"
    );
    // SIGKILL is delivered at once, but /proc entries linger until reaped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(&marker) {
        assert!(
            Instant::now() < deadline,
            "the script's children outlived its timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_policy_decides_what_runs_and_which_variables_are_set() {
    let nothing = std::sync::Arc::new(switchyard_policy::Policy::default());
    let outcome = super::measure_under(&spec(sh("echo 1")), nothing).await;
    assert!(
        matches!(&outcome, Err(MeasureError::Forbidden(v)) if v.to_string().contains("does not let `sh` run")),
        "{outcome:?}"
    );
    let preload =
        json!({"command": {"command": ["sh", "-c", "echo 1"], "env": {"LD_PRELOAD": "/tmp/x.so"}}});
    let outcome = measure(&spec(preload)).await;
    assert!(
        matches!(&outcome, Err(MeasureError::Forbidden(v)) if v.to_string().contains("LD_PRELOAD")),
        "{outcome:?}"
    );
}
