//! The orphan-proof supervisor: the whole behaviour of the hidden `switchyard supervise -- CMD...`
//! subcommand.
//!
//! The runtime spawns `switchyard supervise -- CMD...` instead of `CMD...` and holds the
//! supervisor's stdin open without writing to it. The supervisor runs `CMD`, forwards SIGTERM and
//! SIGINT to it, and exits with its exit code. When its stdin reaches end of file, the daemon has
//! gone (however it died, even by SIGKILL, the kernel closes its end of the pipe): the supervisor
//! then sends SIGTERM to `CMD`, waits a grace period, sends SIGKILL, and exits. This replaces
//! `PR_SET_PDEATHSIG`, which needs `unsafe`.

use std::io::{self, Read as _};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

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
            SuperviseError::NoCommand => EXIT_USAGE,
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
    match run(argv, grace_from_env()).await {
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
