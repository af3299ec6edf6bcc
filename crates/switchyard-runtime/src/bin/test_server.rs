//! A tiny HTTP/1.1 server that the integration tests run as a workload. Not part of Switchyard.
//!
//! `switchyard-runtime-test-server --port P [options]` answers `GET /health` with 200 (or 503 with
//! `--never-healthy`), `GET /crash` by exiting with code 1 after answering, and any other path
//! with `version=<V> port=<P>`. On start it prints one line
//! with its pid, port, version, working directory and the `PORT`, `SWITCHYARD_VERSION` and
//! `TEST_EXTRA` variables, so tests can read them from the instance log.
//!
//! Options:
//! - `--version V`: reported on `/` and at start.
//! - `--pid-file PATH`: write the pid there.
//! - `--exit-code N`: exit at once with code N.
//! - `--exit-once-file PATH`: exit at once with code 3 if PATH can be created (only the first
//!   process to try does).
//! - `--never-healthy`: answer 503 on `/health`.
//!
//! `switchyard-runtime-test-server supervise -- CMD...` runs [`switchyard_runtime::supervise`].
//!
//! `switchyard-runtime-test-server daemon DIR` plays the daemon: a supervised
//! [`switchyard_runtime::LocalRuntime`] starts two instances of this server (pid files
//! `DIR/pid-<port>`, logs under `DIR/logs`), prints `ready`, and waits to be killed.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Default)]
struct Options {
    port: u16,
    version: String,
    pid_file: Option<PathBuf>,
    exit_code: Option<i32>,
    exit_once_file: Option<PathBuf>,
    never_healthy: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("supervise") {
        let command = args
            .iter()
            .skip(1)
            .skip_while(|arg| *arg == "--")
            .cloned()
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        std::process::exit(runtime.block_on(switchyard_runtime::supervise(command)));
    }
    if args.first().map(String::as_str) == Some("daemon") {
        let dir = PathBuf::from(args.get(1).expect("daemon DIR"));
        play_daemon(&dir);
    }
    let options = parse(args);
    serve(&options);
}

fn play_daemon(dir: &Path) -> ! {
    use switchyard_core::ports::WorkloadRuntime as _;
    use switchyard_core::{AppName, Release, Version, Workload};
    use switchyard_runtime::{LocalRuntime, RuntimeConfig};

    let me = std::env::current_exe()
        .expect("own path")
        .display()
        .to_string();
    let pid_file = format!("{}/pid-{{port}}", dir.display());
    let release = Release {
        app: AppName::new("shop").expect("app"),
        version: Version::new("v1").expect("version"),
        workload: Workload::Process {
            argv: [me.as_str(), "--port", "{port}", "--pid-file", &pid_file]
                .map(String::from)
                .to_vec(),
            env: Default::default(),
            working_dir: None,
            instances: 2,
            start_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(5),
        },
        health_check: Default::default(),
    };
    let policy = switchyard_policy::Policy::default().allowing_program(std::path::Path::new(&me));
    let config = RuntimeConfig::new(dir.join("logs"))
        .with_supervisor([me.as_str(), "supervise", "--"].map(String::from).to_vec())
        .with_policy(std::sync::Arc::new(policy));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let workloads = LocalRuntime::new(config);
        let addresses = workloads.start(&release).await.expect("start");
        println!("ready {addresses:?}");
        std::future::pending::<()>().await;
    });
    unreachable!("the daemon waits to be killed")
}

fn parse(args: Vec<String>) -> Options {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--port" => options.port = value().parse().expect("--port"),
            "--version" => options.version = value(),
            "--pid-file" => options.pid_file = Some(value().into()),
            "--exit-code" => options.exit_code = Some(value().parse().expect("--exit-code")),
            "--exit-once-file" => options.exit_once_file = Some(value().into()),
            "--never-healthy" => options.never_healthy = true,
            other => panic!("unknown option {other}"),
        }
    }
    options
}

/// Whether this process is the first to create `path`.
fn claim(path: &Path) -> bool {
    std::fs::File::create_new(path).is_ok()
}

fn serve(options: &Options) {
    let pid = std::process::id();
    if let Some(path) = &options.pid_file {
        std::fs::write(path, pid.to_string()).expect("pid file");
    }
    let env = |name| std::env::var(name).unwrap_or_default();
    println!(
        "test-server pid={pid} port={} version={} cwd={} env.PORT={} env.SWITCHYARD_VERSION={} env.TEST_EXTRA={}",
        options.port,
        options.version,
        std::env::current_dir().expect("cwd").display(),
        env("PORT"),
        env("SWITCHYARD_VERSION"),
        env("TEST_EXTRA"),
    );
    eprintln!("test-server stderr line");
    if let Some(code) = options.exit_code {
        std::process::exit(code);
    }
    if options.exit_once_file.as_deref().is_some_and(claim) {
        std::process::exit(3);
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, options.port)).expect("bind");
    for stream in listener.incoming().flatten() {
        let healthy = !options.never_healthy;
        let body = format!("version={} port={}", options.version, options.port);
        std::thread::spawn(move || answer(stream, healthy, &body));
    }
}

fn answer(stream: TcpStream, healthy: bool, body: &str) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/crash" => {
            let _ = write!(&stream, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            println!("test-server crashing on request");
            std::process::exit(1);
        }
        "/health" if healthy => ("200 OK", "ok"),
        "/health" => ("503 Service Unavailable", "not ready"),
        _ => ("200 OK", body),
    };
    let _ = write!(
        &stream,
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}
