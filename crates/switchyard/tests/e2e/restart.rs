//! A daemon killed with SIGKILL resumes its rollouts where they stood, and its releases serve
//! throughout: their supervisors keep them for the next daemon, which adopts them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;

#[test]
fn sigkill_during_a_pause_then_restart_resumes_the_rollout() {
    let dir = tempfile::tempdir().unwrap();
    sigkill_during_a_pause_then_restart_resumes(dir.path(), &[]);
}

/// The same with the state in PostgreSQL: nothing but instance logs and lifelines is written to
/// the data directory, and the restarted daemon reads where the rollout stood from the database.
#[test]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
fn with_postgres_sigkill_during_a_pause_then_restart_resumes_the_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_database();
    sigkill_during_a_pause_then_restart_resumes(dir.path(), &["--database-url", &url]);
    assert!(
        !dir.path().join("switchyard.db").exists(),
        "the state is in PostgreSQL, not in the data directory"
    );
    let kinds = psql(
        &url,
        "SELECT kind || '=' || count(*) FROM events GROUP BY kind ORDER BY kind",
    );
    // Every transition once, across the kill: none lost, none applied twice.
    for expected in [
        "manifest_applied=1",
        "release_started=1",
        "rollout_started=1",
        "weight_changed=3",
        "paused=2",
    ] {
        assert!(
            kinds.lines().any(|l| l == expected),
            "{expected} in\n{kinds}"
        );
    }
}

fn sigkill_during_a_pause_then_restart_resumes(data_dir: &std::path::Path, extra: &[&str]) {
    let api_port = free_port();
    let app_port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    let mut d = Daemon::start_with(data_dir, api_port, extra);
    let steps = "        - setWeight: 30\n        - pause: {}\n        - setWeight: 60\n        - pause: {duration: 3s}\n";
    let file = write(
        data_dir,
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
    // The proxy and the releases are processes of their own: the app answers without its
    // daemon.
    for _ in 0..20 {
        assert!(
            get(app, "/").is_some_and(|(status, _)| status == 200),
            "the app answers while its daemon is down"
        );
    }

    let d = Daemon::start_with(data_dir, api_port, extra);
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
    use crate::rolling::{pids_of, processes, rolling_manifest, wait_for};

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

    let pids = (pids_of("kill-a"), pids_of("kill-b"));
    d.kill();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        (pids_of("kill-a"), pids_of("kill-b")),
        pids,
        "the instances outlive their daemon"
    );

    let d = Daemon::start_on(dir.path(), api_port);
    assert_eq!(
        (pids_of("kill-a"), pids_of("kill-b")),
        pids,
        "the restarted daemon adopted the same processes"
    );
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

#[test]
fn releases_left_without_a_daemon_stop_after_the_adoption_window() {
    use crate::rolling::{processes, wait_for};

    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let app_port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    let mut d = Daemon::start_with(dir.path(), api_port, &["--adopt-within", "1s"]);
    let file = write(
        dir.path(),
        "shop.yaml",
        &manifest("shop", app_port, "        - setWeight: 50\n", ""),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "orphan-a"]);
    assert_eq!(processes("orphan-a"), 1);

    d.kill();
    wait_for("the instance of the killed daemon to stop", || {
        processes("orphan-a") == 0
    });
    // The proxy outlives both and says so.
    let answer = get(app, "/");
    assert!(
        answer.as_ref().is_some_and(|(status, _)| *status >= 500),
        "{answer:?}"
    );

    // The next start finds nothing to adopt and starts the release anew.
    let d = Daemon::start_on(dir.path(), api_port);
    assert_eq!(processes("orphan-a"), 1);
    wait_for("the new instance to serve", || {
        get(app, "/").is_some_and(|(status, _)| status == 200)
    });
    drop(d);
}

/// Until replicas elect a leader, one daemon drives a PostgreSQL database: a second one is
/// refused at start, naming the database; an address with a wrong password is refused too,
/// naming the server and the reason, never the password.
#[test]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
fn with_postgres_a_second_daemon_and_a_wrong_password_are_refused_at_start() {
    let url = fresh_postgres_database();
    let first_dir = tempfile::tempdir().unwrap();
    let _first = Daemon::start_with(first_dir.path(), free_port(), &["--database-url", &url]);

    let serve = |database_url: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(BIN)
            .args(["serve", "--no-proxy", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .env("SWITCHYARD_DATABASE_URL", database_url)
            .output()
            .unwrap();
        assert!(!out.status.success(), "refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let second = serve(&url);
    assert!(
        second.contains("is in use by another Switchyard daemon"),
        "{second}"
    );
    assert!(
        second.contains("postgres://switchyard@127.0.0.1:"),
        "{second}"
    );

    let wrong = serve(&url.replacen("switchyard:switchyard@", "switchyard:hunter2@", 1));
    assert!(wrong.contains("password authentication failed"), "{wrong}");
    assert!(
        !wrong.contains("hunter2"),
        "the password never shows: {wrong}"
    );
}
