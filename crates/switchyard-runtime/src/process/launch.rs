//! Turning an instance's plan into a running process: `{port}` and `{version}` substitution, the
//! environment, the working directory, the log file, a process group of its own and, under a
//! supervisor, the lifeline that tells the supervisor the daemon is alive (its stdin, or a Unix
//! socket a restarted daemon can connect to again and adopt the instance).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use switchyard_core::Version;
use switchyard_core::ports::RuntimeError;
use tokio::process::{Child, ChildStdin, Command};

use super::lifeline::Connection;

/// Environment variable holding the instance's port.
pub(crate) const PORT_ENV: &str = "PORT";
/// Environment variable holding the release's version.
pub(crate) const VERSION_ENV: &str = "SWITCHYARD_VERSION";

/// Everything needed to spawn (and respawn) one instance, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct LaunchSpec {
    /// The workload's program, for error messages (not the supervisor's).
    pub(crate) program: String,
    /// The full command line: supervisor prefix (if any), then the substituted workload argv.
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    working_dir: Option<PathBuf>,
    /// Where stdout and stderr are appended.
    pub(crate) log: PathBuf,
    supervised: bool,
    /// The socket lifeline, when the supervisor runs with one.
    lifeline: Option<PathBuf>,
}

/// A supervisor's socket lifeline: where, how long it waits for a daemon, what it is.
#[derive(Debug, Clone)]
pub(crate) struct LifelineSpec {
    pub(crate) path: PathBuf,
    pub(crate) adopt_within: std::time::Duration,
    pub(crate) identity: String,
}

/// How long a new supervisor may take to open its lifeline.
const LIFELINE_OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Values substituted into a workload's argv.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Substitutions<'a> {
    pub(crate) port: u16,
    pub(crate) version: &'a Version,
}

impl Substitutions<'_> {
    /// Replaces `{port}` and `{version}` in one argument.
    pub(crate) fn apply(&self, arg: &str) -> String {
        // Versions cannot contain braces, so the order of the replacements does not matter.
        arg.replace("{port}", &self.port.to_string())
            .replace("{version}", self.version.as_str())
    }
}

impl LaunchSpec {
    /// Resolves a workload's argv and environment for one instance.
    ///
    /// # Errors
    /// [`RuntimeError::Spawn`] when `argv` is empty.
    pub(crate) fn new(
        workload_argv: &[String],
        env: &BTreeMap<String, String>,
        working_dir: Option<&Path>,
        values: Substitutions<'_>,
        log: PathBuf,
        supervisor: Option<&[String]>,
        lifeline: Option<LifelineSpec>,
    ) -> Result<Self, RuntimeError> {
        let Some(program) = workload_argv.first() else {
            return Err(RuntimeError::Spawn {
                program: String::new(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
            });
        };
        let mut argv: Vec<String> = supervisor.unwrap_or_default().to_vec();
        let supervised = !argv.is_empty();
        let lifeline = lifeline.filter(|_| supervised);
        if let Some(l) = &lifeline {
            // The options go before the `--` that ends the supervisor's prefix.
            let at = if argv.last().is_some_and(|a| a == "--") {
                argv.len() - 1
            } else {
                argv.push("--".into());
                argv.len() - 1
            };
            let options = [
                "--lifeline".to_owned(),
                l.path.display().to_string(),
                "--adopt-within".to_owned(),
                l.adopt_within.as_millis().to_string(),
                "--identity".to_owned(),
                l.identity.clone(),
            ];
            argv.splice(at..at, options);
        }
        argv.extend(workload_argv.iter().map(|arg| values.apply(arg)));
        let mut env = env.clone();
        env.insert(PORT_ENV.to_owned(), values.port.to_string());
        env.insert(VERSION_ENV.to_owned(), values.version.to_string());
        Ok(Self {
            program: values.apply(program),
            argv,
            env,
            working_dir: working_dir.map(Path::to_path_buf),
            log,
            supervised,
            lifeline: lifeline.map(|l| l.path),
        })
    }

    /// Spawns the instance's process.
    ///
    /// # Errors
    /// [`RuntimeError::LogDirectory`] when the log file cannot be opened, [`RuntimeError::Spawn`]
    /// when the program cannot be started.
    pub(crate) async fn spawn(&self) -> Result<Launched, RuntimeError> {
        // The program actually spawned: the supervisor's when there is one. (A workload program
        // the supervisor cannot start makes it exit with 127, reported as an early exit.)
        let spawned = self.argv.first().unwrap_or(&self.program);
        let spawn_error = |source| RuntimeError::Spawn {
            program: spawned.clone(),
            source,
        };
        let log_error = |source| RuntimeError::LogDirectory {
            path: self.log.clone(),
            source,
        };
        let stdout = open_log(&self.log).map_err(log_error)?;
        let stderr = stdout.try_clone().map_err(log_error)?;
        let mut command = Command::new(spawned);
        command
            // `new` guarantees a non-empty argv: the first element is the program.
            .args(self.argv.iter().skip(1))
            .envs(&self.env)
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .stdin(if self.supervised && self.lifeline.is_none() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            // A group of its own, led by this process: SIGKILL can then reach everything the
            // instance started, and the terminal's Ctrl-C reaches the daemon only, which stops
            // instances in order.
            .process_group(0)
            // Without a socket lifeline, best effort: the process dies with the runtime's
            // handle. With one, the instance outlives a daemon that stops without stopping it,
            // and the supervisor decides when it goes.
            .kill_on_drop(self.lifeline.is_none());
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(spawn_error)?;
        let pid = child.id();
        let lifeline = match &self.lifeline {
            None => Lifeline {
                _stdin: child.stdin.take(),
                _socket: None,
            },
            Some(path) => match open_lifeline(path, &mut child).await {
                Ok(connection) => Lifeline {
                    _stdin: None,
                    _socket: connection.map(Box::new),
                },
                Err(source) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(spawn_error(source));
                }
            },
        };
        Ok(Launched {
            pid,
            process: Process::Child {
                child,
                _lifeline: lifeline,
            },
        })
    }

    /// Appends a line from Switchyard to the instance's log, so a reader sees where each run of
    /// the process starts. Best effort: a log that cannot be written is not a reason to fail.
    pub(crate) fn note(&self, line: &str) {
        let written =
            open_log(&self.log).and_then(|mut file| writeln!(file, "[switchyard] {line}"));
        if let Err(error) = written {
            tracing::debug!(log = %self.log.display(), %error, "cannot write to instance log");
        }
    }
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Connects to a new supervisor's lifeline, waiting for it to listen (or to exit: then the
/// instance's keeper sees the exit and its status).
async fn open_lifeline(path: &Path, child: &mut Child) -> std::io::Result<Option<Connection>> {
    let deadline = tokio::time::Instant::now() + LIFELINE_OPEN_TIMEOUT;
    loop {
        match Connection::open(path).await {
            Ok(c) => return Ok(Some(c)),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!(
                        "the supervisor did not open its lifeline {}: {e}",
                        path.display()
                    ),
                ));
            }
            Err(_) => {}
        }
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// What tells a supervisor the daemon is alive: held, never written; it closes when this value
/// is dropped or the daemon dies.
#[derive(Debug)]
struct Lifeline {
    _stdin: Option<ChildStdin>,
    _socket: Option<Box<Connection>>,
}

/// An instance's process: spawned by this runtime, or adopted from a previous daemon.
#[derive(Debug)]
enum Process {
    Child {
        child: Child,
        _lifeline: Lifeline,
    },
    /// Not our child: its lifeline says when it is gone.
    Adopted(Box<Connection>),
}

/// A running instance process.
#[derive(Debug)]
pub(crate) struct Launched {
    /// Process id, also the id of its process group (the supervisor's, when there is one).
    /// `None` only if the process was already reaped, which cannot happen right after spawning.
    pub(crate) pid: Option<u32>,
    process: Process,
}

impl Launched {
    /// An instance a previous daemon started, through its lifeline.
    pub(crate) fn adopted(connection: Connection) -> Launched {
        Launched {
            pid: Some(connection.greeting.supervisor),
            process: Process::Adopted(Box::new(connection)),
        }
    }

    /// Waits until the process exits; its status in words.
    pub(crate) async fn wait(&mut self) -> String {
        match &mut self.process {
            Process::Child { child, .. } => match child.wait().await {
                Ok(status) => status.to_string(),
                Err(error) => format!("an unknown status ({error})"),
            },
            Process::Adopted(connection) => connection.gone().await,
        }
    }

    /// Whether the process has exited (without waiting).
    pub(crate) async fn exited(&mut self) -> std::io::Result<bool> {
        match &mut self.process {
            Process::Child { child, .. } => Ok(child.try_wait()?.is_some()),
            Process::Adopted(connection) => Ok(tokio::time::timeout(
                std::time::Duration::ZERO,
                connection.gone(),
            )
            .await
            .is_ok()),
        }
    }

    /// SIGKILLs the main process (a child of ours: also reaps it when waited).
    pub(crate) fn start_kill(&mut self) -> std::io::Result<()> {
        match &mut self.process {
            Process::Child { child, .. } => child.start_kill(),
            Process::Adopted(_) => self.kill_group(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> Version {
        Version::new("v1.2").expect("version")
    }

    #[test]
    fn substitutes_port_and_version_in_every_argument() {
        let v = version();
        let values = Substitutions {
            port: 4242,
            version: &v,
        };
        assert_eq!(values.apply("--listen=:{port}"), "--listen=:4242");
        assert_eq!(values.apply("{version}-{port}-{port}"), "v1.2-4242-4242");
        assert_eq!(values.apply("plain"), "plain");
    }

    #[test]
    fn prefixes_the_supervisor_and_sets_port_and_version() {
        let v = version();
        let argv = [
            "server".to_owned(),
            "--port".to_owned(),
            "{port}".to_owned(),
        ];
        let env = BTreeMap::from([("PORT".to_owned(), "overridden".to_owned())]);
        let supervisor = ["sy".to_owned(), "supervise".to_owned(), "--".to_owned()];
        let spec = LaunchSpec::new(
            &argv,
            &env,
            None,
            Substitutions {
                port: 9000,
                version: &v,
            },
            PathBuf::from("/tmp/x.log"),
            Some(&supervisor),
            None,
        )
        .expect("spec");
        assert_eq!(
            spec.argv,
            ["sy", "supervise", "--", "server", "--port", "9000"]
        );
        assert_eq!(spec.program, "server");
        assert!(spec.supervised);
        assert_eq!(spec.env["PORT"], "9000");
        assert_eq!(spec.env["SWITCHYARD_VERSION"], "v1.2");
    }

    #[test]
    fn empty_argv_is_a_spawn_error() {
        let v = version();
        let result = LaunchSpec::new(
            &[],
            &BTreeMap::new(),
            None,
            Substitutions {
                port: 1,
                version: &v,
            },
            PathBuf::from("/tmp/x.log"),
            None,
            None,
        );
        assert!(matches!(result, Err(RuntimeError::Spawn { .. })));
    }
}
