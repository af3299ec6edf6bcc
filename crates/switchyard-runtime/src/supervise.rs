//! The orphan-proof supervisor: the whole behaviour of the hidden `switchyard supervise -- CMD...`
//! subcommand.
//!
//! The runtime spawns `switchyard supervise -- CMD...` instead of `CMD...`. The supervisor runs
//! `CMD`, forwards SIGTERM and SIGINT to it, and exits with its exit code. Its lifeline to the
//! daemon is one of two:
//!
//! - **stdin** (`supervise -- CMD...`): the runtime holds the supervisor's stdin open without
//!   writing to it. At end of file the daemon has gone (however it died, even by SIGKILL, the
//!   kernel closes its end of the pipe): the supervisor sends SIGTERM to `CMD`, waits a grace
//!   period, sends SIGKILL, and exits. This replaces `PR_SET_PDEATHSIG`, which needs `unsafe`.
//! - **a Unix socket** (`supervise --lifeline PATH --adopt-within MS --identity TEXT -- CMD...`):
//!   the supervisor listens on `PATH` and greets every connection with one JSON line (its pid,
//!   the command's pid, the identity). The daemon's connection is the lifeline; when it closes,
//!   a restarted daemon has `--adopt-within` milliseconds to connect again and adopt the
//!   instance, which keeps serving meanwhile; after that the command is stopped as above. When
//!   the command exits, the holder of the lifeline gets `{"exited": CODE}` first.

use std::io::{self, Read as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

/// Environment variable that overrides [`DEFAULT_GRACE`], in milliseconds.
pub const GRACE_ENV: &str = "SWITCHYARD_SUPERVISE_GRACE_MS";
/// Time between SIGTERM and SIGKILL once the daemon is gone.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Exit code when no command was given (a usage error).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the command cannot be started, as shells use for "command not found".
pub const EXIT_SPAWN: i32 = 127;
/// Exit code when supervising itself fails (signal handlers, waiting).
pub const EXIT_FAILURE: i32 = 1;

/// Why the supervisor could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("no command to supervise: expected `supervise -- PROGRAM [ARGS...]`")]
    NoCommand,
    #[error("bad supervise option: {0}")]
    Usage(String),
    #[error("cannot listen on the lifeline socket {path}")]
    Lifeline {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot install the {signal} handler")]
    SignalHandler {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the stdin watcher")]
    StdinWatcher(#[source] io::Error),
    #[error("cannot start `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot wait for the supervised process")]
    Wait(#[source] io::Error),
    #[error("cannot send {signal} to the supervised process")]
    Signal {
        signal: Signal,
        #[source]
        source: Errno,
    },
}

impl SuperviseError {
    /// The supervisor's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            SuperviseError::NoCommand | SuperviseError::Usage(_) => EXIT_USAGE,
            SuperviseError::Spawn { .. } => EXIT_SPAWN,
            _ => EXIT_FAILURE,
        }
    }
}

/// Runs `argv` (program, then arguments) under supervision and returns the exit code the
/// supervisor should exit with: the command's exit code, `128 + N` when it was killed by signal
/// N, or one of [`EXIT_USAGE`], [`EXIT_SPAWN`], [`EXIT_FAILURE`] (after printing the reason to
/// stderr).
///
/// The command inherits stdout and stderr, not stdin (which belongs to the daemon's pipe). The
/// caller should exit the process with the returned code right away (`std::process::exit`): a
/// thread blocked reading stdin may still be running.
pub async fn supervise(argv: Vec<String>) -> i32 {
    let outcome = match split_options(argv) {
        Ok((None, command)) => run(command, grace_from_env()).await,
        Ok((Some(lifeline), command)) => {
            run_with_lifeline(lifeline, command, grace_from_env()).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("switchyard supervise: {}", crate::health::describe(&error));
            error.exit_code()
        }
    }
}

/// The grace period from [`GRACE_ENV`], or [`DEFAULT_GRACE`] when it is unset or not a number.
pub fn grace_from_env() -> Duration {
    std::env::var(GRACE_ENV)
        .ok()
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(DEFAULT_GRACE, Duration::from_millis)
}

/// The socket lifeline's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifelineOptions {
    pub path: PathBuf,
    /// How long a daemon that went away has to connect again before the command is stopped.
    pub adopt_within: Duration,
    /// Opaque text the runtime recognises its instance by; sent back in the greeting.
    pub identity: String,
}

/// The greeting on the lifeline socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Greeting {
    /// The supervisor's pid: the leader of the instance's process group.
    pub supervisor: u32,
    /// The command's pid.
    pub pid: u32,
    pub identity: String,
}

/// What the holder of the lifeline hears when the command exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exited {
    pub exited: i32,
}

/// Splits `--lifeline PATH --adopt-within MS --identity TEXT` off the front of `argv` (the
/// command follows `--`, or starts at the first argument that is not an option).
fn split_options(
    argv: Vec<String>,
) -> Result<(Option<LifelineOptions>, Vec<String>), SuperviseError> {
    if argv.first().map(String::as_str) != Some("--lifeline") {
        let command = match argv.first().map(String::as_str) {
            Some("--") => argv[1..].to_vec(),
            _ => argv,
        };
        return Ok((None, command));
    }
    let mut rest = argv.into_iter();
    let (mut path, mut adopt_within, mut identity) = (None, None, String::new());
    loop {
        match rest.next().as_deref() {
            Some("--lifeline") => path = rest.next().map(PathBuf::from),
            Some("--adopt-within") => {
                let ms = rest.next().unwrap_or_default();
                let ms: u64 = ms.parse().map_err(|_| {
                    SuperviseError::Usage(format!("--adopt-within `{ms}` is not milliseconds"))
                })?;
                adopt_within = Some(Duration::from_millis(ms));
            }
            Some("--identity") => identity = rest.next().unwrap_or_default(),
            Some("--") | None => break,
            Some(other) => return Err(SuperviseError::Usage(format!("unknown option `{other}`"))),
        }
    }
    let path = path.ok_or_else(|| SuperviseError::Usage("--lifeline needs a path".into()))?;
    let options = LifelineOptions {
        path,
        adopt_within: adopt_within.unwrap_or(DEFAULT_ADOPT_WITHIN),
        identity,
    };
    Ok((Some(options), rest.collect()))
}

/// How long a supervised instance waits for a restarted daemon by default.
pub const DEFAULT_ADOPT_WITHIN: Duration = Duration::from_secs(60);

async fn run_with_lifeline(
    lifeline: LifelineOptions,
    argv: Vec<String>,
    grace: Duration,
) -> Result<i32, SuperviseError> {
    let (program, args) = argv.split_first().ok_or(SuperviseError::NoCommand)?;
    let mut terms = handler(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupts = handler(SignalKind::interrupt(), "SIGINT")?;
    let listener = bind_lifeline(&lifeline.path).map_err(|source| SuperviseError::Lifeline {
        path: lifeline.path.clone(),
        source,
    })?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| SuperviseError::Spawn {
            program: program.clone(),
            source,
        })?;
    let greeting = Greeting {
        supervisor: std::process::id(),
        pid: child.id().unwrap_or_default(),
        identity: lifeline.identity.clone(),
    };
    let mut greeting = serde_json::to_vec(&greeting).unwrap_or_default();
    greeting.push(b'\n');
    let mut holder: Option<UnixStream> = None;
    // Until the daemon connects (it does right after spawning), as if it had gone.
    let mut orphaned_since = Some(tokio::time::Instant::now());
    let outcome = loop {
        let deadline = orphaned_since.map(|at| at + lifeline.adopt_within);
        tokio::select! {
            status = child.wait() => break status.map(exit_code).map_err(SuperviseError::Wait),
            _ = terms.recv() => forward(&child, Signal::SIGTERM)?,
            _ = interrupts.recv() => forward(&child, Signal::SIGINT)?,
            accepted = listener.accept() => {
                if let Ok((mut stream, _)) = accepted {
                    if stream.write_all(&greeting).await.is_ok() {
                        holder = Some(stream);
                        orphaned_since = None;
                    }
                }
            }
            () = closed(holder.as_mut()), if holder.is_some() => {
                holder = None;
                orphaned_since = Some(tokio::time::Instant::now());
            }
            () = sleep_until(deadline), if deadline.is_some() => {
                eprintln!("switchyard supervise: no daemon adopted the instance within {:?}", lifeline.adopt_within);
                let _ = std::fs::remove_file(&lifeline.path);
                return stop_orphan(&mut child, grace).await;
            }
        }
    };
    let _ = std::fs::remove_file(&lifeline.path);
    if let (Ok(code), Some(stream)) = (&outcome, holder.as_mut()) {
        let mut note = serde_json::to_vec(&Exited { exited: *code }).unwrap_or_default();
        note.push(b'\n');
        let _ = stream.write_all(&note).await;
    }
    outcome
}

fn bind_lifeline(path: &std::path::Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(listener)
}

/// Resolves when the holder's connection closes (it never writes).
async fn closed(holder: Option<&mut UnixStream>) {
    let Some(stream) = holder else {
        return std::future::pending().await;
    };
    let mut buffer = [0u8; 64];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn run(argv: Vec<String>, grace: Duration) -> Result<i32, SuperviseError> {
    let (program, args) = argv.split_first().ok_or(SuperviseError::NoCommand)?;
    // Handlers first: a SIGTERM arriving before them would kill the supervisor and orphan the
    // command.
    let mut terms = handler(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupts = handler(SignalKind::interrupt(), "SIGINT")?;
    let mut parent_gone = watch_stdin().map_err(SuperviseError::StdinWatcher)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| SuperviseError::Spawn {
            program: program.clone(),
            source,
        })?;
    loop {
        tokio::select! {
            status = child.wait() => return status.map(exit_code).map_err(SuperviseError::Wait),
            _ = terms.recv() => forward(&child, Signal::SIGTERM)?,
            _ = interrupts.recv() => forward(&child, Signal::SIGINT)?,
            _ = &mut parent_gone => return stop_orphan(&mut child, grace).await,
        }
    }
}

fn handler(
    kind: SignalKind,
    name: &'static str,
) -> Result<tokio::signal::unix::Signal, SuperviseError> {
    signal(kind).map_err(|source| SuperviseError::SignalHandler {
        signal: name,
        source,
    })
}

/// Resolves when stdin reaches end of file (or fails). A plain thread, not Tokio's stdin: Tokio
/// would wait for the blocked read when its runtime shuts down, and the supervisor could not exit
/// after its command did while the daemon still holds the pipe.
fn watch_stdin() -> io::Result<oneshot::Receiver<()>> {
    let (gone, gone_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buffer = [0u8; 256];
            loop {
                match stdin.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = gone.send(());
        })?;
    Ok(gone_rx)
}

/// The daemon is gone: SIGTERM, the grace period, then SIGKILL.
async fn stop_orphan(child: &mut Child, grace: Duration) -> Result<i32, SuperviseError> {
    eprintln!("switchyard supervise: the daemon is gone; stopping the supervised process");
    forward(child, Signal::SIGTERM)?;
    if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
        return status.map(exit_code).map_err(SuperviseError::Wait);
    }
    eprintln!(
        "switchyard supervise: still running after {grace:?}; killing the supervised process"
    );
    child.start_kill().map_err(SuperviseError::Wait)?;
    child
        .wait()
        .await
        .map(exit_code)
        .map_err(SuperviseError::Wait)
}

fn forward(child: &Child, signal: Signal) -> Result<(), SuperviseError> {
    // No pid: the command was already reaped, so there is nothing to signal.
    let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        return Ok(());
    };
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(source) => Err(SuperviseError::Signal { signal, source }),
    }
}

/// The exit code a shell would report: the code, or `128 + signal` for a killed process.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(EXIT_FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        // Raw wait status 15: killed by SIGTERM.
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }

    #[tokio::test]
    async fn no_command_is_a_usage_error() {
        let error = run(Vec::new(), DEFAULT_GRACE)
            .await
            .expect_err("no command");
        assert!(matches!(error, SuperviseError::NoCommand));
        assert_eq!(error.exit_code(), EXIT_USAGE);
    }
}
