//! The runtime against real processes: the workload is `switchyard-runtime-test-server`, a tiny
//! HTTP server built from this crate. Assertions are on outcomes only, never on durations.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use switchyard_core::manifest::app::HealthCheck;
use switchyard_core::ports::{RuntimeError, WorkloadRuntime};
use switchyard_core::{AppName, Release, Version, Workload};
use switchyard_policy::Policy;
use switchyard_runtime::{LocalRuntime, RuntimeConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const SERVER: &str = env!("CARGO_BIN_EXE_switchyard-runtime-test-server");
/// Generous: the machine running the tests may be busy. Only failures wait this long.
const PATIENCE: Duration = Duration::from_secs(30);

// ----- helpers -------------------------------------------------------------------------------

/// A fresh directory for one test, removed when the test passes (kept for a look when it fails).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn scratch(name: &str) -> Scratch {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "switchyard-runtime-test-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    Scratch(dir.canonicalize().expect("canonical scratch dir"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn server_argv(extra: &[&str]) -> Vec<String> {
    let mut argv = strings(&[SERVER, "--port", "{port}", "--version", "{version}"]);
    argv.extend(strings(extra));
    argv
}

/// `argv` run through `sh` with SIGTERM ignored (the disposition survives `exec`).
fn ignoring_sigterm(argv: Vec<String>) -> Vec<String> {
    let mut wrapped = strings(&["sh", "-c", r#"trap '' TERM; exec "$0" "$@""#]);
    wrapped.extend(argv);
    wrapped
}

fn process_release(version: &str, argv: Vec<String>, instances: u32) -> Release {
    Release {
        app: AppName::new("shop").expect("app"),
        version: Version::new(version).expect("version"),
        workload: Workload::Process {
            argv,
            env: BTreeMap::new(),
            working_dir: None,
            instances,
            start_timeout: PATIENCE,
            stop_timeout: Duration::from_secs(5),
        },
        health_check: HealthCheck::default(),
    }
}

fn set_timeouts(release: &mut Release, start: Duration, stop: Duration) {
    if let Workload::Process {
        start_timeout,
        stop_timeout,
        ..
    } = &mut release.workload
    {
        *start_timeout = start;
        *stop_timeout = stop;
    }
}

/// The test server and `sh` may run.
fn policy() -> Arc<Policy> {
    let text = format!("run: [{SERVER}, sh]\n");
    Arc::new(Policy::parse(&text, Path::new("policy.yaml")).expect("the test policy"))
}

fn runtime(dir: &Path) -> LocalRuntime {
    LocalRuntime::new(RuntimeConfig::new(dir.join("logs")).with_policy(policy()))
}

fn supervised_runtime(dir: &Path) -> LocalRuntime {
    LocalRuntime::new(
        RuntimeConfig::new(dir.join("logs"))
            .with_supervisor(strings(&[SERVER, "supervise", "--"]))
            .with_policy(policy()),
    )
}

fn log_of(dir: &Path, version: &str, instance: u32) -> PathBuf {
    dir.join(format!("logs/shop/{version}/instance-{instance}.log"))
}

/// Whether `pid` is a live process (a zombie nobody reaped counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Polls `condition` until it holds or [`PATIENCE`] runs out.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` on `address`: the status code and body, or `None` when nothing answers.
async fn get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

async fn healthy(address: SocketAddr) -> bool {
    matches!(get(address, "/health").await, Some((200, _)))
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A test server started by the test itself (for static releases and the supervisor).
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pid_files(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?.to_owned();
            name.starts_with("pid-").then(|| read_pid(&path)).flatten()
        })
        .collect()
}

/// Waits for a std child without blocking the runtime's threads for long.
async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----- process releases ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_every_instance_healthy_on_its_own_port_with_its_own_log() {
    let dir = scratch("start");
    let runtime = runtime(&dir);
    let release = process_release("v1", server_argv(&[]), 3);

    let addresses = runtime.start(&release).await.expect("start");

    assert_eq!(addresses.len(), 3);
    let mut ports: Vec<_> = addresses.iter().map(SocketAddr::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "distinct ports: {addresses:?}");
    for &address in &addresses {
        assert!(address.ip().is_loopback());
        assert!(healthy(address).await, "{address} healthy");
    }
    assert_eq!(runtime.endpoints(&release.app, &release.version), addresses);
    for (n, address) in (0..).zip(&addresses) {
        let log = std::fs::read_to_string(log_of(&dir, "v1", n)).expect("instance log");
        assert!(log.contains(&format!("port={}", address.port())), "{log}");
        assert!(
            log.contains("test-server stderr line"),
            "stderr captured: {log}"
        );
    }

    runtime
        .stop(&release.app, &release.version)
        .await
        .expect("stop");
    assert!(runtime.endpoints(&release.app, &release.version).is_empty());
    for &address in &addresses {
        assert!(get(address, "/health").await.is_none(), "{address} gone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substitutes_port_and_version_and_sets_environment_and_directory() {
    let dir = scratch("substitution");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let runtime = runtime(&dir);
    let mut release = process_release("v2.0", server_argv(&[]), 1);
    if let Workload::Process {
        env, working_dir, ..
    } = &mut release.workload
    {
        env.insert("TEST_EXTRA".into(), "hello".into());
        *working_dir = Some(work.clone());
    }

    let addresses = runtime.start(&release).await.expect("start");

    let port = addresses[0].port();
    let (_, body) = get(addresses[0], "/").await.expect("answer");
    assert_eq!(body, format!("version=v2.0 port={port}"));
    let log = std::fs::read_to_string(log_of(&dir, "v2.0", 0)).expect("log");
    let expected = format!(
        "port={port} version=v2.0 cwd={} env.PORT={port} env.SWITCHYARD_VERSION=v2.0 env.TEST_EXTRA=hello",
        work.display()
    );
    assert!(log.contains(&expected), "{expected}\nnot in\n{log}");
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_exits_before_it_is_healthy_fails_the_start() {
    let dir = scratch("exits");
    let runtime = runtime(&dir);
    let release = process_release("v1", server_argv(&["--exit-code", "3"]), 1);

    let error = runtime.start(&release).await.expect_err("must fail");

    match error {
        RuntimeError::ExitedEarly {
            instance,
            status,
            log,
        } => {
            assert_eq!(instance, 0);
            assert!(status.contains('3'), "status: {status}");
            assert_eq!(log, log_of(&dir, "v1", 0));
        }
        other => panic!("expected ExitedEarly, got {other:?}"),
    }
    assert!(runtime.endpoints(&release.app, &release.version).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_stops_the_instances_already_running() {
    let dir = scratch("rollback");
    let runtime = runtime(&dir);
    let once = dir.join("exit-once");
    let pid_file = format!("{}/pid-{{port}}", dir.display());
    let release = process_release(
        "v1",
        server_argv(&[
            "--exit-once-file",
            once.to_str().expect("utf-8"),
            "--pid-file",
            &pid_file,
        ]),
        3,
    );

    let error = runtime.start(&release).await.expect_err("must fail");

    assert!(
        matches!(error, RuntimeError::ExitedEarly { .. }),
        "{error:?}"
    );
    let pids = pid_files(&dir);
    assert!(!pids.is_empty());
    for pid in pids {
        assert!(!alive(pid), "instance process {pid} left running");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_never_healthy_fails_after_the_start_timeout_and_is_stopped() {
    let dir = scratch("never");
    let runtime = runtime(&dir);
    let pid_file = dir.join("pid-0");
    let mut release = process_release(
        "v1",
        server_argv(&[
            "--never-healthy",
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
        ]),
        1,
    );
    set_timeouts(&mut release, Duration::from_secs(1), Duration::from_secs(5));

    let error = runtime.start(&release).await.expect_err("must fail");

    match error {
        RuntimeError::NeverHealthy {
            instance,
            timeout,
            last_error,
            ..
        } => {
            assert_eq!(instance, 0);
            assert_eq!(timeout, Duration::from_secs(1));
            assert!(last_error.contains("503"), "last error: {last_error}");
        }
        other => panic!("expected NeverHealthy, got {other:?}"),
    }
    let pid = read_pid(&pid_file).expect("pid written");
    assert!(!alive(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_instance_is_restarted_on_the_same_port() {
    let dir = scratch("restart");
    let runtime = runtime(&dir);
    let pid_file = dir.join("pid-0");
    let release = process_release(
        "v1",
        server_argv(&["--pid-file", pid_file.to_str().expect("utf-8")]),
        1,
    );
    let addresses = runtime.start(&release).await.expect("start");

    // Twice: the instance is kept after a restart too (the second waits a longer backoff).
    for _ in 0..2 {
        let crashed_pid = read_pid(&pid_file).expect("pid");
        let _ = get(addresses[0], "/crash").await;
        eventually("the instance runs again under a new pid", async || {
            read_pid(&pid_file).is_some_and(|pid| pid != crashed_pid) && healthy(addresses[0]).await
        })
        .await;
        assert!(!alive(crashed_pid));
    }
    assert_eq!(runtime.endpoints(&release.app, &release.version), addresses);
    let log = std::fs::read_to_string(log_of(&dir, "v1", 0)).expect("log");
    assert!(
        log.contains("[switchyard] exited with exit status: 1"),
        "{log}"
    );
    runtime.shutdown().await;
    assert!(!alive(read_pid(&pid_file).expect("pid")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_a_process_that_ignores_sigterm() {
    let dir = scratch("sigkill");
    let runtime = runtime(&dir);
    let pid_file = dir.join("pid-0");
    let mut release = process_release(
        "v1",
        ignoring_sigterm(server_argv(&[
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
        ])),
        1,
    );
    set_timeouts(&mut release, PATIENCE, Duration::from_millis(300));
    runtime.start(&release).await.expect("start");
    let pid = read_pid(&pid_file).expect("pid");

    runtime
        .stop(&release.app, &release.version)
        .await
        .expect("stop");

    assert!(!alive(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_running_release_again_returns_its_addresses() {
    let dir = scratch("again");
    let runtime = runtime(&dir);
    let release = process_release("v1", server_argv(&[]), 2);

    let first = runtime.start(&release).await.expect("start");
    let second = runtime.start(&release).await.expect("start again");

    assert_eq!(first, second);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_release_and_stopping_an_unknown_release_succeeds() {
    let dir = scratch("shutdown");
    let runtime = runtime(&dir);
    let pid_file = format!("{}/pid-{{version}}-{{port}}", dir.display());
    let v1 = process_release("v1", server_argv(&["--pid-file", &pid_file]), 2);
    let v2 = process_release("v2", server_argv(&["--pid-file", &pid_file]), 1);
    runtime.start(&v1).await.expect("start v1");
    runtime.start(&v2).await.expect("start v2");
    let pids = pid_files(&dir);
    assert_eq!(pids.len(), 3);

    runtime.shutdown().await;

    for pid in pids {
        assert!(!alive(pid), "{pid} still running");
    }
    assert!(runtime.endpoints(&v1.app, &v1.version).is_empty());
    let unknown = Version::new("v9").expect("version");
    runtime.stop(&v1.app, &unknown).await.expect("no-op stop");
}

// ----- the supervisor ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervised_instances_start_report_exit_codes_and_stop_completely() {
    let dir = scratch("supervised");
    let runtime = supervised_runtime(&dir);
    let pid_file = dir.join("pid-0");
    let mut release = process_release(
        "v1",
        ignoring_sigterm(server_argv(&[
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
        ])),
        1,
    );
    set_timeouts(&mut release, PATIENCE, Duration::from_millis(300));

    let addresses = runtime.start(&release).await.expect("start");
    assert!(healthy(addresses[0]).await);
    let pid = read_pid(&pid_file).expect("pid");
    runtime
        .stop(&release.app, &release.version)
        .await
        .expect("stop");
    assert!(!alive(pid), "the workload under the supervisor is gone");

    let failing = process_release("v2", server_argv(&["--exit-code", "3"]), 1);
    match runtime.start(&failing).await {
        Err(RuntimeError::ExitedEarly { status, .. }) => {
            assert!(
                status.contains('3'),
                "the supervisor passes the code on: {status}"
            );
        }
        other => panic!("expected ExitedEarly, got {other:?}"),
    }
}

/// Runs `test-server supervise -- test-server ...` with stdin piped, and waits until the
/// supervised server is healthy. Returns the supervisor and the server's pid.
async fn supervise_server(dir: &Path, wrap: fn(Vec<String>) -> Vec<String>) -> (Spawned, u32) {
    let port = free_port();
    let pid_file = dir.join("pid-0");
    let mut argv = strings(&[SERVER, "supervise", "--"]);
    argv.extend(wrap(strings(&[
        SERVER,
        "--port",
        &port.to_string(),
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
    ])));
    let supervisor = Command::new(&argv[0])
        .args(&argv[1..])
        .env("SWITCHYARD_SUPERVISE_GRACE_MS", "300")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn supervisor");
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    eventually("the supervised server is healthy", async || {
        read_pid(&pid_file).is_some() && healthy(address).await
    })
    .await;
    (Spawned(supervisor), read_pid(&pid_file).expect("pid"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervise_stops_the_command_when_its_stdin_closes() {
    let dir = scratch("orphan-term");
    let (mut supervisor, pid) = supervise_server(&dir, |argv| argv).await;

    drop(supervisor.0.stdin.take());

    let status = wait_exit(&mut supervisor.0).await;
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "exited like its SIGTERMed command"
    );
    assert!(!alive(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervise_kills_a_command_that_ignores_sigterm_after_the_grace_period() {
    let dir = scratch("orphan-kill");
    let (mut supervisor, pid) = supervise_server(&dir, ignoring_sigterm).await;

    drop(supervisor.0.stdin.take());

    let status = wait_exit(&mut supervisor.0).await;
    assert_eq!(
        status.code(),
        Some(128 + 9),
        "exited like its SIGKILLed command"
    );
    assert!(!alive(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervise_forwards_sigterm_to_the_command() {
    let dir = scratch("forward");
    let (mut supervisor, pid) = supervise_server(&dir, |argv| argv).await;

    let supervisor_pid = i32::try_from(supervisor.0.id()).expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor_pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");

    let status = wait_exit(&mut supervisor.0).await;
    assert_eq!(status.code(), Some(128 + 15));
    assert!(!alive(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_supervised_instance_outlives_a_daemon_killed_with_sigkill() {
    use std::io::BufRead as _;

    let dir = scratch("daemon-killed");
    let mut daemon = Spawned(
        Command::new(SERVER)
            .args(["daemon", dir.to_str().expect("utf-8")])
            .env("SWITCHYARD_SUPERVISE_GRACE_MS", "300")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn daemon"),
    );
    let stdout = daemon.0.stdout.take().expect("daemon stdout");
    let ready = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .expect("join")
    .expect("read");
    assert!(ready.starts_with("ready"), "daemon said {ready:?}");
    let pids = pid_files(&dir);
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&pid| alive(pid)));

    daemon.0.kill().expect("SIGKILL the daemon");
    daemon.0.wait().expect("reap the daemon");

    eventually("every instance is gone", async || {
        pids.iter().all(|&pid| !alive(pid))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervise_without_a_command_is_a_usage_error() {
    assert_eq!(switchyard_runtime::supervise(Vec::new()).await, 2);
    let missing = strings(&["/nonexistent/program"]);
    assert_eq!(switchyard_runtime::supervise(missing).await, 127);
}

// ----- static releases -----------------------------------------------------------------------

fn static_release(addresses: Vec<SocketAddr>, start_timeout: Duration) -> Release {
    Release {
        app: AppName::new("shop").expect("app"),
        version: Version::new("external").expect("version"),
        workload: Workload::Static {
            addresses,
            start_timeout,
        },
        health_check: HealthCheck::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_release_returns_its_healthy_addresses_and_stop_forgets_them() {
    let port = free_port();
    let _server = Spawned(
        Command::new(SERVER)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server"),
    );
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let dir = scratch("static");
    let runtime = runtime(&dir);
    let release = static_release(vec![address], PATIENCE);

    let addresses = runtime.start(&release).await.expect("start");

    assert_eq!(addresses, [address]);
    assert_eq!(runtime.endpoints(&release.app, &release.version), [address]);
    runtime
        .stop(&release.app, &release.version)
        .await
        .expect("stop");
    assert!(runtime.endpoints(&release.app, &release.version).is_empty());
    assert!(
        healthy(address).await,
        "stop leaves a static release running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_static_address_is_never_healthy() {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let dir = scratch("static-down");
    let runtime = runtime(&dir);
    let release = static_release(vec![address], Duration::from_millis(500));

    let error = runtime.start(&release).await.expect_err("must fail");

    match error {
        RuntimeError::NeverHealthy {
            address: reported,
            last_error,
            ..
        } => {
            assert_eq!(reported, address);
            assert!(last_error.contains("connect"), "{last_error}");
        }
        other => panic!("expected NeverHealthy, got {other:?}"),
    }
    assert!(runtime.endpoints(&release.app, &release.version).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_release_without_addresses_is_refused() {
    let dir = scratch("static-empty");
    let runtime = runtime(&dir);
    let release = static_release(Vec::new(), PATIENCE);

    let error = runtime.start(&release).await.expect_err("must fail");

    assert!(
        matches!(error, RuntimeError::NoAddresses { .. }),
        "{error:?}"
    );
}

fn with_instances(release: &Release, n: u32) -> Release {
    let mut release = release.clone();
    if let Workload::Process { instances, .. } = &mut release.workload {
        *instances = n;
    }
    release
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_adds_healthy_instances_and_removes_the_last_ones() {
    let dir = scratch("scale");
    let runtime = runtime(&dir);
    let release = process_release("v1", server_argv(&[]), 1);

    let none = with_instances(&release, 0);
    assert!(runtime.scale(&none).await.expect("start empty").is_empty());
    let one = runtime.scale(&release).await.expect("scale to 1");
    assert_eq!(one.len(), 1);

    let three = runtime
        .scale(&with_instances(&release, 3))
        .await
        .expect("scale to 3");
    assert_eq!(three.len(), 3);
    assert_eq!(three[0], one[0], "existing instances keep their address");
    for &address in &three {
        assert!(
            healthy(address).await,
            "{address} healthy when scale returns"
        );
    }
    assert!(
        log_of(&dir, "v1", 2).exists(),
        "new instances get their own log"
    );

    let two = runtime
        .scale(&with_instances(&release, 2))
        .await
        .expect("scale to 2");
    assert_eq!(two, three[..2]);
    assert!(
        get(three[2], "/health").await.is_none(),
        "the last instance stopped"
    );
    assert_eq!(runtime.endpoints(&release.app, &release.version), two);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_scale_up_leaves_the_running_instances_alone() {
    let dir = scratch("scale-fail");
    let runtime = runtime(&dir);
    let release = process_release("v1", server_argv(&[]), 1);
    let one = runtime.start(&release).await.expect("start");

    let mut broken = with_instances(&release, 2);
    if let Workload::Process { argv, .. } = &mut broken.workload {
        *argv = strings(&["sh", "-c", "exit 3"]);
    }
    let error = runtime.scale(&broken).await.expect_err("cannot start");
    assert!(matches!(error, RuntimeError::ExitedEarly { .. }), "{error}");
    assert_eq!(runtime.endpoints(&release.app, &release.version), one);
    assert!(healthy(one[0]).await);
    runtime.shutdown().await;
}

#[tokio::test]
async fn what_the_policy_does_not_allow_never_starts() {
    let dir = scratch("policy");
    let rt = runtime(&dir.0);
    let marker = dir.0.join("ran");
    let shell = process_release(
        "v1",
        strings(&["/bin/bash", "-c", &format!("touch {}", marker.display())]),
        1,
    );
    let refused = rt.start(&shell).await;
    assert!(
        matches!(&refused, Err(RuntimeError::Forbidden { release, .. }) if release == "shop@v1"),
        "{refused:?}"
    );
    let mut preload = process_release("v2", server_argv(&[]), 1);
    if let Workload::Process { env, .. } = &mut preload.workload {
        env.insert("LD_PRELOAD".into(), "/tmp/x.so".into());
    }
    let refused = rt.start(&preload).await;
    assert!(
        matches!(refused, Err(RuntimeError::Forbidden { .. })),
        "{refused:?}"
    );
    assert!(
        rt.endpoints(
            &AppName::new("shop").expect("app"),
            &Version::new("v2").expect("version")
        )
        .is_empty()
    );
    assert!(!marker.exists(), "the shell ran");
    rt.shutdown().await;
}

// ----- socket lifelines: instances that outlive their runtime --------------------------------

fn lifeline_runtime(dir: &Path, adopt_within: Duration) -> LocalRuntime {
    LocalRuntime::new(
        RuntimeConfig::new(dir.join("logs"))
            .with_supervisor(strings(&[SERVER, "supervise", "--"]))
            .with_lifelines(dir.join("run"), adopt_within)
            .with_policy(policy()),
    )
}

fn pids(dir: &Path, addresses: &[SocketAddr]) -> Vec<u32> {
    addresses
        .iter()
        .map(|a| read_pid(&dir.join(format!("pid-{}", a.port()))).expect("pid"))
        .collect()
}

fn pid_file_argv(dir: &Path) -> Vec<String> {
    let pid_file = dir.join("pid-{port}");
    server_argv(&["--pid-file", pid_file.to_str().expect("utf-8")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_outlive_a_detached_runtime_and_the_next_one_adopts_them() {
    let dir = scratch("adopt");
    let release = process_release("v1", pid_file_argv(&dir), 2);
    let first = lifeline_runtime(&dir, PATIENCE);
    assert_eq!(first.adopt().await.expect("scan"), 0);
    let addresses = first.start(&release).await.expect("start");
    let before = pids(&dir, &addresses);
    first.detach().await;
    drop(first);
    // Still serving (a loaded machine may be slow to answer; the same processes are checked
    // below).
    for a in &addresses {
        eventually(&format!("{a} serves without a runtime"), async || {
            healthy(*a).await
        })
        .await;
    }

    let second = lifeline_runtime(&dir, PATIENCE);
    assert_eq!(second.adopt().await.expect("scan"), 2);
    let adopted = second.start(&release).await.expect("adopt");
    assert_eq!(adopted, addresses, "the same ports");
    assert_eq!(pids(&dir, &adopted), before, "the same processes");
    second.stop_unclaimed().await;

    // An adopted instance that dies is restarted on its port, as any other.
    let victim = before[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(victim).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    eventually("the adopted instance to be restarted", async || {
        pids(&dir, &addresses)[0] != victim && healthy(addresses[0]).await
    })
    .await;

    second
        .stop(&release.app, &release.version)
        .await
        .expect("stop");
    for pid in pids(&dir, &addresses) {
        assert!(!alive(pid), "{pid} stopped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_nobody_claims_are_stopped_and_orphans_stop_after_the_adoption_window() {
    let dir = scratch("unclaimed");
    let first = lifeline_runtime(&dir, Duration::from_millis(300));
    let mut v1 = process_release("v1", pid_file_argv(&dir), 1);
    set_timeouts(&mut v1, PATIENCE, Duration::from_secs(2));
    let addresses = first.start(&v1).await.expect("start");
    let pid = pids(&dir, &addresses)[0];

    // Nobody adopts it in time: its supervisor stops it.
    first.detach().await;
    drop(first);
    eventually("the orphan to stop", async || !alive(pid)).await;

    // Adopted but not claimed by any release: stopped at once.
    let second = lifeline_runtime(&dir, PATIENCE);
    let addresses = second.start(&v1).await.expect("start");
    let pid = pids(&dir, &addresses)[0];
    second.detach().await;
    drop(second);
    let third = lifeline_runtime(&dir, PATIENCE);
    assert_eq!(third.adopt().await.expect("scan"), 1);
    third.stop_unclaimed().await;
    assert!(!alive(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_running_another_definition_is_not_adopted() {
    let dir = scratch("redefined");
    let first = lifeline_runtime(&dir, PATIENCE);
    let v1 = process_release("v1", pid_file_argv(&dir), 1);
    let addresses = first.start(&v1).await.expect("start");
    let old = pids(&dir, &addresses)[0];
    first.detach().await;
    drop(first);

    let second = lifeline_runtime(&dir, PATIENCE);
    assert_eq!(second.adopt().await.expect("scan"), 1);
    let mut changed = v1.clone();
    if let Workload::Process { env, .. } = &mut changed.workload {
        env.insert("TEST_EXTRA".into(), "changed".into());
    }
    let started = second.start(&changed).await.expect("start anew");
    assert_ne!(started, addresses, "a new instance on a new port");
    second.stop_unclaimed().await;
    eventually("the old definition's instance to stop", async || {
        !alive(old)
    })
    .await;
    second.shutdown().await;
}
