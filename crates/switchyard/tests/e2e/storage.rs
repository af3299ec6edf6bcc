//! The state directory under real faults: a directory the daemon cannot write to, and a disk
//! that fills up while the daemon runs (a tmpfs of a few MiB in a mount namespace of the
//! daemon's own, filled from outside through `/proc/PID/root`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `switchyard serve` on `dir`, inside a new mount namespace where `setup` (shell) ran first;
/// `policy` is a policy file outside `dir`.
fn serve_in_namespace(dir: &Path, policy: &Path, port: u16, setup: &str) -> Command {
    let script = format!(
        "set -e; {setup}; exec \"$0\" serve --data-dir \"$1\" --policy \"$2\" --listen 127.0.0.1:{port}"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script, BIN])
        .arg(dir)
        .arg(policy)
        .env("D", dir)
        .env("SWITCHYARD_LOG", "warn");
    cmd
}

#[test]
fn a_read_only_data_directory_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let out = if is_root() {
        let policies = tempfile::tempdir().unwrap();
        serve_in_namespace(
            dir.path(),
            &policy_file(policies.path()),
            free_port(),
            "mount --bind \"$D\" \"$D\"; mount -o remount,bind,ro \"$D\"",
        )
        .output()
        .unwrap()
    } else {
        Command::new("chmod")
            .arg("0555")
            .arg(dir.path())
            .status()
            .unwrap();
        Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the daemon started: {stderr}");
    assert!(stderr.contains("is not writable"), "{stderr}");
    assert!(!stderr.contains("unable to open database file"), "{stderr}");
}

#[test]
fn writes_recover_once_a_full_disk_has_room_again() {
    if !is_root() {
        eprintln!("SKIPPED: needs root for a tmpfs in a mount namespace");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let policies = tempfile::tempdir().unwrap();
    let policy = policy_file(policies.path());
    let child = serve_in_namespace(
        dir.path(),
        &policy,
        port,
        "mount -t tmpfs -o size=8m tmpfs \"$D\"",
    )
    .stdout(Stdio::null())
    // The failed writes are logged as errors, as they should be; not in the test's output.
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let pid = child.id();
    let view = std::path::PathBuf::from(format!("/proc/{pid}/root{}", dir.path().display()));
    let d = Daemon::adopt(child, port, &view);
    let shop = |name: &str| manifest(name, 0, "        - setWeight: 50\n", "");

    // Fill the daemon's disk from outside, through its own view of the file system.
    let filler = format!("/proc/{pid}/root{}/filler", dir.path().display());
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![7u8; 64 * 1024];
    while file
        .write_all(&block)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
    drop(file);

    // Every pooled connection meets the full disk at least once.
    let files = tempfile::tempdir().unwrap();
    let app = |i: usize| {
        let path = files.path().join(format!("app{i}.yaml"));
        std::fs::write(&path, shop(&format!("app{i}"))).unwrap();
        path.to_str().unwrap().to_owned()
    };
    for i in 0..6 {
        let full = d.fails(&["apply", "-f", &app(i)]);
        assert!(full.contains("internal error"), "{full}");
    }
    // A large flag change spills pages to the full disk in the middle of its transaction.
    let flags = files.path().join("flags.yaml");
    let mut text = String::from("flags:\n");
    for i in 0..3000 {
        text.push_str(&format!(
            "  - key: flag-{i}\n    type: boolean\n    description: {}\n    variants: {{on: true, off: false}}\n    defaultVariant: off\n",
            "x".repeat(400)
        ));
    }
    std::fs::write(&flags, text).unwrap();
    for _ in 0..4 {
        let full = d.fails(&["flags", "apply", "-f", flags.to_str().unwrap()]);
        assert!(full.contains("internal error"), "{full}");
    }
    assert_eq!(
        d.ok(&["get", "apps", "-o", "json"]).trim(),
        "[]",
        "nothing half-applied"
    );

    std::fs::remove_file(&filler).unwrap();
    for i in 0..10 {
        d.ok(&["apply", "-f", &app(i)]);
    }
    let apps = d.ok(&["get", "apps", "-o", "json"]);
    assert_eq!(apps.matches("\"name\"").count(), 10, "{apps}");
}
