//! The restore drill: a backup taken while the daemon runs a rollout, restored on a "new
//! machine" (an empty data directory, or an empty PostgreSQL database), resumes the same rollout
//! at the same step and serves the same flags; `migrate-store` moves a SQLite installation to
//! PostgreSQL with its whole history. Bad input: an existing backup file, a non-empty target, a
//! truncated file.

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::flags::{FLAGS, ofrep};
use crate::support::*;

/// The old machine: a rollout paused at 30 % and flags; returns the rollout and an evaluation.
fn old_machine(dir: &Path, app_port: u16) -> (Daemon, serde_json::Value, serde_json::Value) {
    let d = Daemon::start(dir);
    let steps = "        - setWeight: 30\n        - pause: {}\n        - setWeight: 100\n";
    let file = write(dir, "shop.yaml", &manifest("shop", app_port, steps, ""));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    let rollout = d.wait_rollout("shop", "the indefinite pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 30
    });
    let flags = write(dir, "flags.yaml", FLAGS);
    d.ok(&["flags", "apply", "-f", flags.to_str().unwrap()]);
    let (_, banner) = ofrep(&d, "banner", json!({"email": "ana@switchyard.dev"}), &[]);
    assert_eq!(banner["value"], "fancy", "{banner}");
    (d, rollout, banner)
}

/// The new machine's daemon on the restored store resumes the rollout and serves the flags.
fn resumes(d: &Daemon, app_port: u16, before: &serde_json::Value, banner: &serde_json::Value) {
    let after = d.rollout("shop");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["phase"], "Paused");
    assert_eq!(after["step"], before["step"]);
    assert_eq!(after["weight"], 30);
    let (_, again) = ofrep(d, "banner", json!({"email": "ana@switchyard.dev"}), &[]);
    assert_eq!(&again, banner);
    let verified = d.ok(&["audit", "--verify"]);
    assert!(!verified.contains("BROKEN"), "{verified}");
    // The restored daemon started both releases again; once both serve, the rollout goes on.
    let app: std::net::SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    crate::rolling::wait_for("both releases to serve again", || {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            if let Some((200, text)) = get(app, "/") {
                seen.insert(text.contains("hello from v2"));
            }
        }
        seen.len() == 2
    });
    d.ok(&["promote", "shop"]);
    let done = d.wait_rollout("shop", "the promotion", |r| r["phase"] == "Succeeded");
    assert_eq!(done["weight"], 100);
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_remove("SWITCHYARD_DATABASE_URL")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = cli(args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_backup_taken_while_a_rollout_runs_restores_on_a_new_machine() {
    let old = tempfile::tempdir().unwrap();
    let new = tempfile::tempdir().unwrap();
    let app_port = free_port();
    let (d, rollout, banner) = old_machine(old.path(), app_port);
    let backup = old.path().join("state.backup");
    let said = ok(&[
        "backup",
        "--data-dir",
        old.path().to_str().unwrap(),
        "--to",
        backup.to_str().unwrap(),
    ]);
    assert!(said.starts_with("backed up "), "{said}");
    let again = fails(&[
        "backup",
        "--data-dir",
        old.path().to_str().unwrap(),
        "--to",
        backup.to_str().unwrap(),
    ]);
    assert!(again.contains("exists already"), "{again}");
    drop(d); // the old machine is gone (its releases and proxy stop with it)

    // A truncated copy is refused and leaves the new store empty.
    let text = std::fs::read_to_string(&backup).unwrap();
    let cut = old.path().join("cut.backup");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let refused = fails(&[
        "restore",
        "--data-dir",
        new.path().to_str().unwrap(),
        "--from",
        cut.to_str().unwrap(),
    ]);
    assert!(refused.contains("backup file"), "{refused}");

    let started = Instant::now();
    let said = ok(&[
        "restore",
        "--data-dir",
        new.path().to_str().unwrap(),
        "--from",
        backup.to_str().unwrap(),
    ]);
    assert!(said.starts_with("restored "), "{said}");
    let refused = fails(&[
        "restore",
        "--data-dir",
        new.path().to_str().unwrap(),
        "--from",
        backup.to_str().unwrap(),
    ]);
    assert!(refused.contains("not empty"), "{refused}");
    // The operator's admin token travels with them; the tokens are in the restored store.
    share_admin_token(old.path(), new.path());
    let d = Daemon::start(new.path());
    eprintln!(
        "restore drill: restored and serving in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    resumes(&d, app_port, &rollout, &banner);
}

#[test]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
fn with_postgres_migrate_store_moves_a_running_installation_with_its_history() {
    let old = tempfile::tempdir().unwrap();
    let app_port = free_port();
    let (d, rollout, banner) = old_machine(old.path(), app_port);
    let events_before = d.ok(&["audit", "--limit", "1000", "-o", "json"]);
    drop(d);
    let url = fresh_postgres_database();
    let said = ok(&[
        "migrate-store",
        "--data-dir",
        old.path().to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(said.starts_with("moved "), "{said}");
    assert!(
        !said.contains("switchyard:switchyard@"),
        "no password: {said}"
    );
    let refused = fails(&[
        "migrate-store",
        "--data-dir",
        old.path().to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(refused.contains("not empty"), "{refused}");

    let d = Daemon::start_with(old.path(), free_port(), &["--database-url", &url]);
    let events_after = d.ok(&["audit", "--limit", "1000", "-o", "json"]);
    let events = |text: &str| -> Vec<serde_json::Value> {
        let all: serde_json::Value = serde_json::from_str(text).unwrap();
        all["events"].as_array().unwrap().clone()
    };
    let after = events(&events_after);
    assert_eq!(
        after[..events(&events_before).len()],
        events(&events_before)[..],
        "the whole history moved, ids and all"
    );
    resumes(&d, app_port, &rollout, &banner);
}
