//! Rolling updates and `setCanaryScale`: instances replaced in batches through the real process
//! runtime and proxy, under load, counting every failed request and every running process.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

const TEMPLATE: &str = r#"---
apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  metrics:
    - name: error-rate
      provider: {builtin: {metric: error_rate, window: 2s}}
      successCondition: result < 0.05
      initialDelay: 1s
      interval: 1s
      count: 1
"#;

pub fn rolling_manifest(port: u16) -> String {
    manifest("shop", port, "        - setWeight: 1\n", TEMPLATE)
        .replace(
            "      stopTimeout: 2s\n",
            "      stopTimeout: 2s\n      instances: 3\n",
        )
        .replace(
            "    canary:\n      steps:\n        - setWeight: 1\n",
            "    rolling:\n      maxSurge: 1\n      maxUnavailable: 0\n      analysis: {templates: [errors]}\n",
        )
}

/// Demo-app processes of `version` running now, read from /proc (the supervisor shims that wrap
/// them are not counted: their argv[1] is `supervise`).
pub fn processes(version: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.get(1) == Some(&b"demo-app".as_slice())
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--version" && w[1] == version.as_bytes())
        })
        .count()
}

/// The pids of the demo-app processes of `version`, sorted.
pub fn pids_of(version: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let ours = args.get(1) == Some(&b"demo-app".as_slice())
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--version" && w[1] == version.as_bytes());
            ours.then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Concurrent clients that count failed requests (no answer, or not 200) and sample how many
/// processes of two versions run, until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<Mutex<Vec<String>>>,
    /// (fewest, most) processes of the two versions together, seen while sampling.
    processes: Arc<Mutex<(usize, usize)>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(app: SocketAddr, clients: usize, versions: [&'static str; 2]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new((usize::MAX, 0)));
        let mut threads = Vec::new();
        for _ in 0..clients {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match get(app, "/") {
                        Some((200, _)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failed.lock().unwrap().push(format!("{other:?}")),
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }));
        }
        let (flag, sampled) = (stop.clone(), seen.clone());
        threads.push(std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let n = processes(versions[0]) + processes(versions[1]);
                let mut s = sampled.lock().unwrap();
                *s = (s.0.min(n), s.1.max(n));
                drop(s);
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
        Load {
            stop,
            ok,
            failed,
            processes: seen,
            threads,
        }
    }

    /// Stops the clients; returns (successful requests, failures, (fewest, most) processes).
    fn finish(self) -> (u64, Vec<String>, (usize, usize)) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let failed = self.failed.lock().unwrap().clone();
        let processes = *self.processes.lock().unwrap();
        (self.ok.load(Ordering::Relaxed), failed, processes)
    }
}

pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_rolling_update_with_max_unavailable_zero_loses_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let file = write(dir.path(), "shop.yaml", &rolling_manifest(port));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "roll-a"]);
    assert_eq!(processes("roll-a"), 3);

    let load = Load::start(app, 4, ["roll-a", "roll-b"]);
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    d.ok(&["deploy", "shop", "--version", "roll-b"]);
    let r = d.wait_rollout("shop", "the rolling update", |r| {
        r["phase"] == "Succeeded" || !r["active"].as_bool().unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    let took = started.elapsed();
    let (ok, failed, (fewest, most)) = load.finish();
    eprintln!(
        "rolling update of 3 instances: {:.1} s, {ok} requests answered, {} failed, {fewest}..={most} processes",
        took.as_secs_f64(),
        failed.len()
    );

    assert_eq!(r["phase"], "Succeeded", "{r:#}");
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok + failed.len() as u64
    );
    assert!(ok > 100, "only {ok} requests went through");
    assert!(most <= 4, "maxSurge 1: at most 4 processes, saw {most}");
    assert!(
        fewest >= 3,
        "maxUnavailable 0: never fewer than 3, saw {fewest}"
    );
    wait_for("the old release to stop", || processes("roll-a") == 0);
    assert_eq!(processes("roll-b"), 3);
    assert!((0..20).all(|_| get(app, "/").is_some_and(|(_, t)| t.contains("hello from roll-b"))));
    let history = d.ok(&["history", "shop"]);
    for batch in [
        "batch to 1 instance(s) of roll-b and 2 of roll-a",
        "batch to 2 instance(s) of roll-b and 1 of roll-a",
        "batch to 3 instance(s) of roll-b and 0 of roll-a",
    ] {
        assert!(history.contains(batch), "{batch}:\n{history}");
    }
    assert_eq!(
        history.matches("analysis of step").count(),
        3,
        "one analysis after each batch:\n{history}"
    );
}

#[test]
fn a_failed_batch_analysis_restores_the_old_release_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let file = write(dir.path(), "shop.yaml", &rolling_manifest(port));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "roll-c"]);
    let load = Load::start(app, 2, ["roll-c", "roll-d"]);
    d.ok(&[
        "deploy",
        "shop",
        "--version",
        "roll-d",
        "--env",
        "DEMO_ERROR_RATE=0.6",
    ]);
    let r = d.wait_rollout("shop", "the rollback", |r| !r["active"].as_bool().unwrap());
    let (_, _, (fewest, most)) = load.finish();
    assert_eq!(r["phase"], "RolledBack", "{r:#}");
    assert!(
        r["reason"].as_str().unwrap().contains("error-rate"),
        "{r:#}"
    );
    let stable = &r["traffic"][0];
    assert_eq!(stable["version"], "roll-c");
    assert_eq!(stable["instances"], 3, "{r:#}");
    assert!(most <= 4 && fewest >= 3, "({fewest}, {most})");
    wait_for("the new release to stop", || processes("roll-d") == 0);
    assert_eq!(processes("roll-c"), 3);
    assert!((0..20).all(|_| get(app, "/").is_some_and(|(_, t)| t.contains("hello from roll-c"))));
    let history = d.ok(&["history", "shop"]);
    assert!(
        history.contains("roll-c is restored to 3 instance(s) before the rollout ends"),
        "{history}"
    );
}

#[test]
fn set_canary_scale_runs_fewer_canary_instances_until_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let steps =
        "        - setCanaryScale: {replicas: 1}\n        - setWeight: 30\n        - pause: {}\n";
    let text = manifest("shop", port, steps, "").replace(
        "      stopTimeout: 2s\n",
        "      stopTimeout: 2s\n      instances: 3\n",
    );
    let file = write(dir.path(), "shop.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "scale-a"]);
    d.ok(&["deploy", "shop", "--version", "scale-b"]);
    let r = d.wait_rollout("shop", "the pause", |r| r["phase"] == "Paused");
    assert_eq!(r["weight"], 30);
    assert_eq!(r["traffic"][1]["instances"], 1, "{r:#}");
    wait_for("the canary to shrink", || processes("scale-b") == 1);
    assert_eq!(processes("scale-a"), 3);
    let answered: Vec<String> = (0..60)
        .filter_map(|_| get(app, "/").map(|(_, t)| t))
        .collect();
    assert!(answered.iter().any(|t| t.contains("hello from scale-b")));

    d.ok(&["promote", "shop"]);
    let r = d.wait_rollout("shop", "the promotion", |r| r["phase"] == "Succeeded");
    assert_eq!(r["traffic"][1]["instances"], 3, "{r:#}");
    assert_eq!(
        processes("scale-b"),
        3,
        "back at full size before taking all traffic"
    );
    let history = d.ok(&["history", "shop"]);
    assert!(
        history.contains("scale-b scales back to 3 instance(s) before promotion"),
        "{history}"
    );
}
