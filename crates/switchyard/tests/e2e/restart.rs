//! A daemon killed with SIGKILL resumes its rollouts where they stood.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn sigkill_during_a_pause_then_restart_resumes_the_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let app_port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    let mut d = Daemon::start_on(dir.path(), api_port);
    let steps = "        - setWeight: 30\n        - pause: {}\n        - setWeight: 60\n        - pause: {duration: 3s}\n";
    let file = write(
        dir.path(),
        "shop.yaml",
        &manifest("shop", app_port, steps, ""),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    let before = d.wait_rollout("shop", "the indefinite pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 30
    });

    d.kill();
    // The supervisor stops the releases of a killed daemon; the proxy, a process of its own,
    // still holds the app's port and answers for them.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(app, "/").is_some_and(|(status, _)| status == 200) {
        assert!(
            Instant::now() < deadline,
            "the releases still answer after their daemon was killed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let d = Daemon::start_on(dir.path(), api_port);
    let after = d.rollout("shop");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["phase"], "Paused");
    assert_eq!(after["step"], before["step"]);
    assert_eq!(after["weight"], 30);
    // Both releases serve again behind the proxy.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        if let Some((200, text)) = get(app, "/") {
            seen.insert(if text.contains("hello from v2") {
                "v2"
            } else {
                "v1"
            });
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        2,
        "traffic reaches both releases after the restart"
    );

    d.ok(&["promote", "shop"]);
    let done = d.wait_rollout("shop", "the timed pause and promotion", |r| {
        r["phase"] == "Succeeded"
    });
    assert_eq!(done["weight"], 100);
    let apps: serde_json::Value =
        serde_json::from_str(&d.ok(&["get", "apps", "-o", "json"])).unwrap();
    assert_eq!(apps[0]["stable"], "v2");
    assert!(get(app, "/").unwrap().1.contains("hello from v2"));
}

#[test]
fn sigkill_during_a_rolling_update_resumes_at_the_same_batch() {
    use crate::rolling::{processes, rolling_manifest, wait_for};

    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let app_port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    let mut d = Daemon::start_on(dir.path(), api_port);
    // Long enough analyses that the kill lands in the first one.
    let text = rolling_manifest(app_port).replace("initialDelay: 1s", "initialDelay: 4s");
    let file = write(dir.path(), "shop.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "kill-a"]);
    d.ok(&["deploy", "shop", "--version", "kill-b"]);
    let before = d.wait_rollout("shop", "the first batch's analysis", |r| {
        r["phase"] == "Analyzing"
    });
    assert_eq!(before["step"], 1);

    d.kill();
    wait_for("the releases of the killed daemon to stop", || {
        processes("kill-a") + processes("kill-b") == 0
    });

    let d = Daemon::start_on(dir.path(), api_port);
    let after = d.rollout("shop");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["step"], 1, "{after:#}");
    assert_eq!(after["traffic"][0]["instances"], 2);
    assert_eq!(after["traffic"][1]["instances"], 1);
    assert_eq!(
        processes("kill-a"),
        2,
        "the old release at the batch's size"
    );
    assert_eq!(processes("kill-b"), 1);
    let answer = get(app, "/");
    assert!(
        answer.as_ref().is_some_and(|(status, _)| *status == 200),
        "{answer:?}"
    );

    let _traffic = crate::operations::Traffic::start(app);
    let done = d.wait_rollout("shop", "the rest of the batches", |r| {
        r["phase"] == "Succeeded"
    });
    assert_eq!(done["id"], before["id"]);
    wait_for("the old release to stop", || processes("kill-a") == 0);
    assert_eq!(processes("kill-b"), 3);
    let history = d.ok(&["history", "shop"]);
    assert_eq!(
        history
            .matches("batch to 1 instance(s) of kill-b and 2 of kill-a")
            .count(),
        1,
        "the batch is not run twice:\n{history}"
    );
}
