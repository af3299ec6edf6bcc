//! `switchyard demo --fast --json` runs the whole story.

use std::process::Command;

use crate::support::BIN;

#[test]
fn demo_promotes_the_healthy_canary_and_rolls_back_the_broken_one() {
    let out = Command::new(BIN)
        .args(["demo", "--fast", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rollouts = summary["rollouts"].as_array().unwrap();
    assert_eq!(rollouts[0]["version"], "v2");
    assert_eq!(rollouts[0]["outcome"], "promoted");
    assert_eq!(rollouts[1]["version"], "v3");
    assert_eq!(rollouts[1]["outcome"], "rolled_back");
    assert!(
        rollouts[1]["reason"].as_str().unwrap().contains("error"),
        "{summary:#}"
    );
    assert!(rollouts[1]["detected_after_s"].as_f64().unwrap() > 0.0);
    assert!(summary["requests"].as_u64().unwrap() > 100);
}
