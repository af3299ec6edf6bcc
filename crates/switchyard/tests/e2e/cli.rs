//! The CLI's conveniences: completions, exit codes, `--wait`.

use std::process::{Command, Stdio};

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
fn output_into_a_closed_pipe_ends_quietly() {
    // `switchyard stats proportions < in.json | grep -q x`: the reader is gone before the
    // answer is written. The command ends with success and says nothing, as other tools do.
    let mut child = Command::new(BIN)
        .args(["stats", "proportions"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let input = br#"{"control": {"n": 1000, "successes": 120}, "treatment": {"n": 1000, "successes": 150}}"#;
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn output_that_cannot_be_written_is_an_error_that_says_so() {
    let input = br#"{"control": {"n": 1000, "successes": 120}, "treatment": {"n": 1000, "successes": 150}}"#;
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = Command::new(BIN)
        .args(["stats", "proportions"])
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writing to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn serve_keeps_serving_when_nobody_reads_its_stdout() {
    let dir = tempfile::tempdir().unwrap();
    // A pipe whose reader is gone before the daemon starts: every write to it fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .arg("--policy")
        .arg(policy_file(dir.path()))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("SWITCHYARD_LOG", "warn")
        .stdout(writer)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut d = Daemon::adopt(child, port, dir.path());
    // Its start-up lines (the address, the admin token) went nowhere; it still answers.
    d.ok(&["get", "apps"]);
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon exited");
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

/// `get rollout` shows the releases with their instances and the health the proxy sees (an
/// instance that does not answer its checks is unhealthy), the steps with the current one
/// marked; `--watch` outside a terminal follows to the end with a line per change; after the
/// promotion the releases are named previous and current.
#[test]
fn get_rollout_shows_the_tree_with_each_instances_health() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let [v1, v2, dead] = [free_port(), free_port(), free_port()];
    let [_v1, _v2, second] = [("v1", v1), ("v2", v2), ("v2", dead)].map(|(version, port)| {
        KillOnDrop(
            Command::new(BIN)
                .args([
                    "demo-app",
                    "--port",
                    &port.to_string(),
                    "--version",
                    version,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    });
    let manifest = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: App\nmetadata: {{name: shop}}\nspec:\n  \
         listen: 127.0.0.1:{}\n  runtime: {{static: {{releases: {{v1: ['127.0.0.1:{v1}'], \
         v2: ['127.0.0.1:{v2}', '127.0.0.1:{dead}']}}}}}}\n  \
         healthCheck: {{path: /health, interval: 200ms, timeout: 1s, unhealthyThreshold: 1}}\n  \
         strategy: {{canary: {{steps: [{{setWeight: 20}}, {{pause: {{}}}}, {{setWeight: 60}}]}}}}\n",
        free_port()
    );
    let file = write(dir.path(), "shop.yaml", &manifest);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the pause", |r| r["phase"] == "Paused");
    // One instance of v2 stops answering: the proxy's checks find it.
    drop(second);
    let dead_address = format!("127.0.0.1:{dead}");
    d.wait_rollout("shop", "the dead instance to be unhealthy", |r| {
        r["traffic"].as_array().into_iter().flatten().any(|t| {
            t["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["address"] == dead_address.as_str() && e["health"] == "unhealthy")
        })
    });
    // Usage mistakes are refused with exit code 2 (no app for `get rollout`, a step counted
    // from 0) or named (`get apps` takes no name).
    assert_eq!(d.cli(&["get", "rollout"]).status.code(), Some(2));
    assert_eq!(
        d.cli(&["promote", "shop", "--rollout", "1", "--step", "0"])
            .status
            .code(),
        Some(2)
    );
    assert!(
        d.fails(&["get", "apps", "shop"])
            .contains("lists every app")
    );
    let tree = d.ok(&["get", "rollout", "shop"]);
    for expected in [
        "Phase:    Paused".to_owned(),
        "Step:     2/3".to_owned(),
        "release v1  stable  80%".to_owned(),
        "release v2  canary  20%".to_owned(),
        format!("127.0.0.1:{v1}  healthy"),
        format!("127.0.0.1:{v2}  healthy"),
        format!("{dead_address}  unhealthy"),
        "✔ 1  setWeight 20".to_owned(),
        "► 2  pause (until promoted)".to_owned(),
        "  3  setWeight 60".to_owned(),
    ] {
        assert!(tree.contains(&expected), "no {expected:?} in\n{tree}");
    }
    let status = d.ok(&["rollout", "status", "shop"]);
    assert!(
        status.starts_with("shop v1 -> v2  step 2/3 [#>.]  Paused  canary 20%"),
        "{status}"
    );
    assert!(status.contains("1 unhealthy"), "{status}");

    // Promoted to the end while `get rollout --watch` follows in a pipe.
    let watch = Command::new(BIN)
        .args(["get", "rollout", "shop", "--watch"])
        .env("SWITCHYARD_SERVER", &d.api)
        .env("SWITCHYARD_TOKEN", &d.token)
        .env("SWITCHYARD_CONFIG", "/nonexistent")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    d.ok(&["promote", "shop", "--full"]);
    let out = watch.wait_with_output().unwrap();
    let log = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{log}");
    assert!(!log.contains('\x1b'), "{log}");
    let last = log.lines().rfind(|l| l.contains("shop v1 -> v2")).unwrap();
    assert!(last.contains("step 3/3 [###]  Succeeded"), "{log}");
    let done = d.rollout("shop");
    let roles: Vec<(&str, &str)> = done["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["version"].as_str().unwrap(), t["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("v1", "previous"), ("v2", "current")]);
}
