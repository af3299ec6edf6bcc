//! The data plane as its own process, under load: the control plane killed, restarted and
//! upgraded, the proxy restarted and upgraded (its listening sockets handed over), a proxy
//! starting from its cached table with no control plane, and one with neither. Every request
//! is counted; the counts are printed.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::rolling::{pids_of, wait_for};
use crate::support::*;

/// Clients that send requests until stopped and keep every answer that was not a 200: half
/// open a connection per request, half keep theirs alive (and, as HTTP clients do for an
/// idempotent request, send again once on a new connection when the server closed an idle
/// one before any byte of the answer).
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    retried: Arc<AtomicU64>,
    failed: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What a load run counted.
#[derive(Debug)]
pub(crate) struct Counts {
    pub(crate) ok: u64,
    pub(crate) retried: u64,
    pub(crate) failed: Vec<String>,
}

impl Load {
    pub(crate) fn start(app: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let retried = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for client in 0..4 {
            let (stop, ok, retried, failed) =
                (stop.clone(), ok.clone(), retried.clone(), failed.clone());
            threads.push(std::thread::spawn(move || {
                let mut kept: Option<TcpStream> = None;
                while !stop.load(Ordering::Relaxed) {
                    let answer = if client % 2 == 0 {
                        get(app, "/")
                    } else {
                        keep_alive_get(app, &mut kept, &retried)
                    };
                    match answer {
                        Some((200, _)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failed
                            .lock()
                            .unwrap()
                            .push(format!("{other:?} at {:?}", Instant::now())),
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }));
        }
        Load {
            stop,
            ok,
            retried,
            failed,
            threads,
        }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `more` requests were answered 200 since the call.
    pub(crate) fn wait_for_more(&self, more: u64) {
        let target = self.ok() + more;
        wait_for("more answered requests", || self.ok() >= target);
    }

    pub(crate) fn finish(self) -> Counts {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Counts {
            ok: self.ok.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.lock().unwrap().clone(),
        }
    }
}

/// A GET on a kept-alive connection; the status and answer, or `None` when it failed.
fn keep_alive_get(
    app: SocketAddr,
    kept: &mut Option<TcpStream>,
    retried: &AtomicU64,
) -> Option<(u16, String)> {
    for attempt in 0..2 {
        let reused = kept.is_some();
        let mut stream = match kept.take() {
            Some(s) => s,
            None => {
                let s = TcpStream::connect_timeout(&app, Duration::from_secs(2)).ok()?;
                s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
                s
            }
        };
        match exchange(&mut stream) {
            Exchange::Answered(status, keep, text) => {
                if keep {
                    *kept = Some(stream);
                }
                return Some((status, text));
            }
            // Closed before any byte of the answer, on a connection used before: send again.
            Exchange::ClosedBeforeAnswer if reused && attempt == 0 => {
                retried.fetch_add(1, Ordering::Relaxed);
            }
            Exchange::ClosedBeforeAnswer | Exchange::Broken => return None,
        }
    }
    None
}

enum Exchange {
    /// The status, whether the connection stays open, and the answer.
    Answered(u16, bool, String),
    ClosedBeforeAnswer,
    Broken,
}

fn exchange(stream: &mut TcpStream) -> Exchange {
    let request = "GET / HTTP/1.1\r\nHost: app\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return Exchange::ClosedBeforeAnswer;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Exchange::ClosedBeforeAnswer,
            Ok(0) => return Exchange::Broken,
            Ok(n) => n,
            Err(_) if buf.is_empty() => return Exchange::ClosedBeforeAnswer,
            Err(_) => return Exchange::Broken,
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        if body.len() < length {
            continue;
        }
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let close = head.to_ascii_lowercase().contains("connection: close");
        return Exchange::Answered(status, !close, text.into_owned());
    }
}

fn app_manifest(port: u16) -> String {
    manifest(
        "shop",
        port,
        "        - setWeight: 50\n        - pause: {}\n",
        "",
    )
    .replace(
        "      stopTimeout: 2s\n",
        "      stopTimeout: 2s\n      instances: 2\n",
    )
}

/// The local proxy's pid, from its pid file.
fn proxy_pid(data_dir: &Path) -> u32 {
    let text = std::fs::read_to_string(data_dir.join("proxy/proxy.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["pid"]
        .as_u64()
        .unwrap() as u32
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

/// A copy of the binary elsewhere: what an upgrade installs.
fn upgraded_binary(dir: &Path) -> PathBuf {
    let path = dir.join("switchyard-upgraded");
    std::fs::copy(BIN, &path).unwrap();
    path
}

/// `switchyard proxy` serving from the local proxy's state directory of `data_dir`.
fn proxy_command(bin: &Path, data_dir: &Path, control: &str) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "proxy",
        "--control",
        control,
        "--id",
        "local",
        "--state-dir",
    ])
    .arg(data_dir.join("proxy"))
    .arg("--token-file")
    .arg(data_dir.join("proxy/token"))
    .env("SWITCHYARD_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    c
}

fn report(what: &str, counts: &Counts) {
    eprintln!(
        "{what}: {} requests answered 200, {} failed, {} sent again after an idle connection closed",
        counts.ok,
        counts.failed.len(),
        counts.retried
    );
}

#[test]
fn killing_restarting_and_upgrading_the_control_plane_loses_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut d = Daemon::start_on(dir.path(), api_port);
    let file = write(dir.path(), "shop.yaml", &app_manifest(port));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "cp-v1"]);
    d.ok(&["deploy", "shop", "--version", "cp-v2"]);
    d.wait_rollout("shop", "the pause at 50%", |r| r["phase"] == "Paused");
    let instances = (pids_of("cp-v1"), pids_of("cp-v2"));
    let proxy = proxy_pid(dir.path());
    let load = Load::start(app);
    load.wait_for_more(200);

    // SIGKILL: nothing stops the data plane; the next start adopts it.
    d.kill();
    load.wait_for_more(200);
    d = Daemon::start_on(dir.path(), api_port);
    load.wait_for_more(200);
    assert_eq!(d.rollout("shop")["phase"], "Paused");

    // SIGTERM (a service manager's restart): the control plane stops, the data plane stays.
    let _ = Command::new("kill").arg(d.child.id().to_string()).status();
    let status = d.child.wait().unwrap();
    assert!(status.success(), "{status}");
    load.wait_for_more(200);
    d = Daemon::start_on(dir.path(), api_port);
    load.wait_for_more(200);
    assert_eq!(proxy_pid(dir.path()), proxy, "the same proxy throughout");

    // An upgrade: another binary. Its start hands the proxy's sockets to a proxy of the new
    // binary; the releases are adopted as they are.
    let _ = Command::new("kill").arg(d.child.id().to_string()).status();
    d.child.wait().unwrap();
    let upgraded = upgraded_binary(dir.path());
    let child = Command::new(&upgraded)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .arg("--policy")
        .arg(policy_file(dir.path()))
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .env("SWITCHYARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    d = Daemon::adopt(child, api_port, dir.path());
    load.wait_for_more(300);
    let counts = load.finish();
    report("control plane SIGKILL, SIGTERM and upgrade", &counts);
    assert!(counts.failed.is_empty(), "{:?}", counts.failed);
    assert!(counts.ok > 1_000);

    let new_proxy = proxy_pid(dir.path());
    assert_ne!(new_proxy, proxy, "the upgrade replaced the proxy");
    wait_for("the old proxy to drain and exit", || !alive(proxy));
    assert_eq!(
        (pids_of("cp-v1"), pids_of("cp-v2")),
        instances,
        "the same release processes throughout"
    );
    d.ok(&["promote", "shop"]);
    d.wait_rollout("shop", "the promotion", |r| r["phase"] == "Succeeded");
}

#[test]
fn restarting_and_upgrading_the_proxy_hands_its_sockets_over_and_loses_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let d = Daemon::start(dir.path());
    let file = write(dir.path(), "shop.yaml", &app_manifest(port));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "px-v1"]);
    let first = proxy_pid(dir.path());
    let load = Load::start(app);
    load.wait_for_more(200);

    let mut replacements: Vec<Child> = Vec::new();
    let upgraded = upgraded_binary(dir.path());
    let mut previous = first;
    for bin in [PathBuf::from(BIN), upgraded] {
        let mut command = proxy_command(&bin, dir.path(), &d.api);
        let child = command.arg("--takeover").spawn().unwrap();
        let pid = child.id();
        replacements.push(child);
        wait_for("the new proxy to serve", || proxy_pid(dir.path()) == pid);
        wait_for("the old proxy to drain and exit", || !alive(previous));
        load.wait_for_more(300);
        previous = pid;
    }
    let counts = load.finish();
    report("proxy restart and upgrade", &counts);
    assert!(counts.failed.is_empty(), "{:?}", counts.failed);
    assert!(counts.ok > 600);
    let proxies = d.ok(&["proxies", "-o", "json"]);
    let proxies: serde_json::Value = serde_json::from_str(&proxies).unwrap();
    assert_eq!(proxies[0]["id"], "local");
    assert_eq!(proxies[0]["current"], true, "{proxies:#}");
    // The daemon stops the proxy that serves now, not the one it started.
    drop(d);
    for mut c in replacements {
        let status = c.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

#[test]
fn a_proxy_serves_its_cached_table_without_a_control_plane_and_refuses_to_start_with_neither() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut d = Daemon::start(dir.path());
    let file = write(dir.path(), "shop.yaml", &app_manifest(port));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "cache-v1"]);
    d.kill();
    // The local proxy stops (and takes its listener with it); the releases stay.
    let proxy = proxy_pid(dir.path());
    let _ = Command::new("kill").arg(proxy.to_string()).status();
    wait_for("the proxy to stop", || !alive(proxy));
    assert!(get(app, "/").is_none(), "nothing listens");

    // No control plane: the cached table serves, routes in force before the first accept.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let mut cached = proxy_command(Path::new(BIN), dir.path(), &nowhere)
        .spawn()
        .unwrap();
    wait_for("the cached proxy to listen", || {
        TcpStream::connect(app).is_ok()
    });
    for _ in 0..50 {
        let answer = get(app, "/");
        assert!(
            answer.as_ref().is_some_and(|(s, _)| *s == 200),
            "{answer:?}"
        );
    }
    let _ = Command::new("kill").arg(cached.id().to_string()).status();
    assert!(cached.wait().unwrap().success());

    // Neither a cached table nor a control plane: it says so and exits.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "proxy",
            "--control",
            &nowhere,
            "--id",
            "edge",
            "--state-dir",
        ])
        .arg(empty.path())
        .env("SWITCHYARD_LOG", "error")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no cached table in") && err.contains("cannot be reached: nothing to serve"),
        "{err}"
    );
    // The releases the killed daemon left are adopted by the next one and stopped with it.
    let d2 = Daemon::start(dir.path());
    drop(d2);
    wait_for("the releases to stop with their daemon", || {
        pids_of("cache-v1").is_empty()
    });
}

#[test]
fn an_old_instance_stops_only_once_every_proxy_stopped_sending_to_it() {
    use crate::rolling::processes;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = Daemon::start(dir.path());
    let text = manifest("shop", port, "        - setWeight: 1\n", "")
        .replace(
            "      stopTimeout: 2s\n",
            "      stopTimeout: 2s\n      instances: 3\n",
        )
        .replace(
            "    canary:\n      steps:\n        - setWeight: 1\n",
            "    rolling:\n      maxSurge: 1\n      maxUnavailable: 0\n",
        );
    let file = write(dir.path(), "shop.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "gate-a"]);
    assert_eq!(processes("gate-a"), 3);

    // The proxy stops (it stays live for a few seconds): it could still send requests to
    // any gate-a instance, so none may stop.
    let proxy = proxy_pid(dir.path());
    let signal = |s: &str| {
        assert!(
            Command::new("kill")
                .args([s, &proxy.to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    d.ok(&["deploy", "shop", "--version", "gate-b"]);
    wait_for("the first new instance", || processes("gate-b") >= 1);
    // Unacknowledged, the first batch would have stopped a gate-a instance by now.
    std::thread::sleep(Duration::from_secs(3));
    let old = processes("gate-a");
    signal("-CONT");
    assert_eq!(
        old, 3,
        "an old instance stopped while a proxy could still use it"
    );
    d.wait_rollout("shop", "the rolling update", |r| r["phase"] == "Succeeded");
    wait_for("the old release to stop", || processes("gate-a") == 0);
    assert_eq!(processes("gate-b"), 3);
}
