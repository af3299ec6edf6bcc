//! Turning an instance's plan into a running process: `{port}` and `{version}` substitution, the
//! environment, the working directory, the log file, a process group of its own and, under a
//! supervisor, the stdin pipe that tells the supervisor the daemon is alive.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use switchyard_core::Version;
use switchyard_core::ports::RuntimeError;
use tokio::process::{Child, ChildStdin, Command};

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
}

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
    ) -> Result<Self, RuntimeError> {
        let Some(program) = workload_argv.first() else {
            return Err(RuntimeError::Spawn {
                program: String::new(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
            });
        };
        let mut argv: Vec<String> = supervisor.unwrap_or_default().to_vec();
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
            supervised: supervisor.is_some_and(|prefix| !prefix.is_empty()),
        })
    }

    /// Spawns the instance's process.
    ///
    /// # Errors
    /// [`RuntimeError::LogDirectory`] when the log file cannot be opened, [`RuntimeError::Spawn`]
    /// when the program cannot be started.
    pub(crate) fn spawn(&self) -> Result<Launched, RuntimeError> {
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
            .stdin(if self.supervised {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            // A group of its own, led by this process: SIGKILL can then reach everything the
            // instance started, and the terminal's Ctrl-C reaches the daemon only, which stops
            // instances in order.
            .process_group(0)
            // Best effort without a supervisor: the process dies with the runtime's handle.
            .kill_on_drop(true);
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(spawn_error)?;
        Ok(Launched {
            pid: child.id(),
            _lifeline: child.stdin.take(),
            child,
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

/// A spawned instance process.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) child: Child,
    /// Process id, also the id of its process group. `None` only if the process was already
    /// reaped, which cannot happen right after spawning.
    pub(crate) pid: Option<u32>,
    /// The supervisor's stdin. Never written: holding it open says "the daemon is alive", and it
    /// closes when this value is dropped or the daemon dies.
    _lifeline: Option<ChildStdin>,
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
        );
        assert!(matches!(result, Err(RuntimeError::Spawn { .. })));
    }
}
