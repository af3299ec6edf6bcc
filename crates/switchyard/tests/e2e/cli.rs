//! The CLI's conveniences: completions, exit codes, `--wait`.

use std::process::Command;

use crate::support::*;

#[test]
fn completions_are_printed_for_each_shell() {
    let bash = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(bash.status.success());
    let bash = String::from_utf8(bash.stdout).unwrap();
    assert!(bash.contains("_switchyard()"), "{bash}");
    assert!(bash.contains("deploy"), "{bash}");
    for shell in ["zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("promote"),
            "{shell}"
        );
    }
}

#[test]
fn exit_codes_tell_usage_and_an_unreachable_daemon_from_other_failures() {
    let port = free_port();
    let unreachable = Command::new(BIN)
        .args([
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "get",
            "apps",
        ])
        .env("SWITCHYARD_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(3), "{unreachable:?}");
    let usage = Command::new(BIN).args(["deploy"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}

#[test]
fn deploy_and_promote_wait_for_the_end_and_say_how_it_went() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let steps = "        - setWeight: 50\n        - pause: {duration: 1s}";
    let file = write(
        dir.path(),
        "shop.yaml",
        &manifest("shop", free_port(), steps, ""),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1", "--wait"]);

    // A rollout that promotes by itself: `--wait` returns 0 once it succeeded.
    let out = d.cli(&["deploy", "shop", "--version", "v2", "--wait"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.rollout("shop")["phase"], "Succeeded");

    // One that is aborted meanwhile: 1.
    let manual = manifest(
        "shop",
        free_port(),
        "        - setWeight: 50\n        - pause: {}",
        "",
    );
    let file = write(dir.path(), "shop.yaml", &manual);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    let waiting = Command::new(BIN)
        .args(["deploy", "shop", "--version", "v3", "--wait"])
        .env("SWITCHYARD_SERVER", &d.api)
        .env("SWITCHYARD_TOKEN", &d.token)
        .env("SWITCHYARD_CONFIG", "/nonexistent")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    d.wait_rollout("shop", "the pause", |r| {
        r["phase"] == "Paused" && r["version"] == "v3"
    });
    d.ok(&["abort", "shop", "--reason", "test"]);
    let status = waiting.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(1));

    // `promote --wait` of a paused rollout: 0 once promoted.
    d.ok(&["deploy", "shop", "--version", "v4"]);
    d.wait_rollout("shop", "the pause", |r| {
        r["phase"] == "Paused" && r["version"] == "v4"
    });
    // `get apps`: the rollout's phase, weights (canary/stable), step counted from 1, and age.
    let table = d.ok(&["get", "apps"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "STABLE", "ROLLOUT", "PHASE", "WEIGHT", "STEP", "AGE", "LISTEN"
        ]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..6],
        ["shop", "v2", "v4", "Paused", "50/50", "2/2"],
        "{table}"
    );
    let age = row[6];
    assert!(
        age.len() >= 2
            && age[..age.len() - 1].chars().all(|c| c.is_ascii_digit())
            && "smhd".contains(&age[age.len() - 1..]),
        "{table}"
    );
    let apps: serde_json::Value =
        serde_json::from_str(&d.ok(&["get", "apps", "-o", "json"])).unwrap();
    let brief = &apps[0]["rollout"];
    assert_eq!(
        (brief["step"].as_u64(), brief["steps"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(
        brief["started_at"].as_str().unwrap().ends_with('Z'),
        "{apps}"
    );
    let out = d.cli(&["promote", "shop", "--wait"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first log line of `switchyard demo-app` started with `args`, as written to a pipe.
fn first_log_line(args: &[&str], no_color: bool) -> String {
    use std::io::BufRead;
    let port = free_port().to_string();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["demo-app", "--port", &port, "--version", "v1"])
        .env_remove("SWITCHYARD_LOG")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("demo app listening"), "{line:?}");
    line
}

#[test]
fn logs_carry_colors_only_when_asked_or_at_a_terminal() {
    // A pipe is not a terminal: no escape codes, whatever NO_COLOR says.
    assert!(!first_log_line(&[], false).contains('\u{1b}'));
    assert!(first_log_line(&["--color", "always"], false).contains("\u{1b}["));
    assert!(!first_log_line(&["--color", "never"], false).contains('\u{1b}'));
    assert!(!first_log_line(&[], true).contains('\u{1b}'));
}
