//! The proxy `switchyard serve` runs beside itself, so that one command still serves a whole
//! machine.
//!
//! It is a separate process (`switchyard proxy`, in its own process group): a control plane
//! that dies or restarts does not take the listeners with it. At start, `serve` adopts the
//! proxy of its data directory if one runs for the same API and binary; if one runs for
//! another API address or another binary (an upgrade), a new proxy takes its listening
//! sockets over; otherwise a new one starts. The proxy authenticates with a `proxy` token named
//! `local`, kept in `proxy/token` (mode 0600) and created again when the store no longer
//! holds it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use switchyard_control::auth::{NewToken, Role, Tokens};
use switchyard_core::ports::Author;
use tokio::process::Command;

use crate::proxy_process::{self, ProxyProcess};

/// The local proxy's id and token name.
pub const LOCAL_PROXY_ID: &str = "local";
/// The local proxy's state directory, in the data directory.
pub const STATE_DIR: &str = "proxy";
/// Its token file, in the state directory.
pub const TOKEN_FILE: &str = "token";
/// Its log, in the state directory.
pub const LOG_FILE: &str = "proxy.log";
/// How long a new proxy may take to serve.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The local proxy process.
#[derive(Debug)]
pub struct LocalProxy {
    pid: u32,
    state_dir: PathBuf,
    /// Set when this daemon started it (an adopted proxy is not our child).
    child: Option<tokio::process::Child>,
}

impl LocalProxy {
    /// Adopts, replaces or starts the local proxy of `data_dir` for the API at `api`; returns
    /// once it serves.
    ///
    /// # Errors
    /// The token cannot be prepared, the proxy cannot be started, or it did not serve in time
    /// (the error quotes its log).
    pub async fn start(
        exe: &Path,
        data_dir: &Path,
        api: SocketAddr,
        tokens: Option<&Tokens>,
        grace: Duration,
        workers: Option<usize>,
    ) -> anyhow::Result<LocalProxy> {
        let state_dir = data_dir.join(STATE_DIR);
        create_private_dir(&state_dir)?;
        let token_file = state_dir.join(TOKEN_FILE);
        if let Some(tokens) = tokens {
            ensure_token(tokens, &token_file).await?;
        }
        let control = format!("http://{api}");
        let exe_modified = proxy_process::modified_ns(exe);
        let running = ProxyProcess::read(&state_dir).filter(|_| serving(&state_dir));
        let takeover = match running {
            Some(p)
                if p.control == control && p.exe == exe && p.exe_modified_ns == exe_modified =>
            {
                tracing::info!(pid = p.pid, "adopting the running local proxy");
                return Ok(LocalProxy {
                    pid: p.pid,
                    state_dir,
                    child: None,
                });
            }
            Some(p) => {
                tracing::info!(pid = p.pid, old_control = %p.control, old_exe = %p.exe.display(),
                    "replacing the running local proxy (another API address or binary)");
                true
            }
            None => false,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_dir.join(LOG_FILE))
            .with_context(|| format!("while opening {}", state_dir.join(LOG_FILE).display()))?;
        let mut command = Command::new(exe);
        command
            .arg("proxy")
            .args(["--control", &control, "--id", LOCAL_PROXY_ID])
            .args(["--grace", &format!("{}ms", grace.as_millis())])
            .arg("--state-dir")
            .arg(&state_dir);
        if tokens.is_some() {
            command.arg("--token-file").arg(&token_file);
        }
        if takeover {
            command.arg("--takeover");
        }
        if let Some(n) = workers {
            command.args(["--workers", &n.to_string()]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            // Its own group: the terminal's Ctrl-C reaches the daemon, which stops it in order.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .with_context(|| format!("while starting `{} proxy`", exe.display()))?;
        let pid = child.id().unwrap_or_default();
        let mut proxy = LocalProxy {
            pid,
            state_dir,
            child: Some(child),
        };
        proxy.wait_serving().await?;
        tracing::info!(pid, "local proxy started");
        Ok(proxy)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until the new process wrote its pid file (it does once it serves).
    async fn wait_serving(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if ProxyProcess::read(&self.state_dir).is_some_and(|p| p.pid == self.pid) {
                return Ok(());
            }
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!(
                        "the local proxy exited ({status}) before serving; its log ends with:\n{}",
                        log_tail(&self.state_dir)
                    );
                }
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "the local proxy did not serve within {START_TIMEOUT:?}; its log ends with:\n{}",
                    log_tail(&self.state_dir)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the proxy that serves from the state directory now (this one, or one that took
    /// its sockets over since): it stops accepting, lets requests finish for its grace period
    /// and exits.
    pub async fn stop(mut self, wait: Duration) {
        if let Some(current) =
            ProxyProcess::read(&self.state_dir).filter(|_| serving(&self.state_dir))
        {
            if current.pid != self.pid {
                self.pid = current.pid;
                self.child = None;
            }
        }
        let Ok(pid) = i32::try_from(self.pid) else {
            return;
        };
        let Some(pid) = rustix::process::Pid::from_raw(pid) else {
            return;
        };
        if let Err(e) = rustix::process::kill_process(pid, rustix::process::Signal::TERM) {
            tracing::warn!(pid = self.pid, error = %e, "cannot signal the local proxy");
            return;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let gone = match &mut self.child {
                Some(child) => child.try_wait().map(|s| s.is_some()).unwrap_or(true),
                None => rustix::process::test_kill_process(pid).is_err() || zombie(self.pid),
            };
            if gone {
                tracing::info!(pid = self.pid, "local proxy stopped");
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    pid = self.pid,
                    "the local proxy did not stop in time; killing it"
                );
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Leaves the proxy running (the daemon stops, the data plane goes on).
    pub fn detach(self) {
        tracing::info!(pid = self.pid, state_dir = %self.state_dir.display(), "the local proxy keeps serving");
    }
}

/// Whether a proxy answers on the handover socket of `state_dir`.
fn serving(state_dir: &Path) -> bool {
    let path = proxy_process::handoff::path(state_dir);
    rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .and_then(|fd| {
        let addr = rustix::net::SocketAddrUnix::new(path.as_path())?;
        rustix::net::connect(&fd, &addr)
    })
    .is_ok()
}

/// Makes sure `file` holds a live `proxy` token named `local`; creates one otherwise.
async fn ensure_token(tokens: &Tokens, file: &Path) -> anyhow::Result<()> {
    if let Ok(text) = std::fs::read_to_string(file) {
        if tokens
            .authenticate(text.trim())
            .is_ok_and(|p| p.role == Role::Proxy && p.name == LOCAL_PROXY_ID)
        {
            return Ok(());
        }
    }
    let created = tokens
        .create(
            &NewToken {
                name: LOCAL_PROXY_ID.to_owned(),
                role: Role::Proxy,
                apps: None,
                environments: None,
            },
            &Author::system("switchyard serve"),
        )
        .await
        .context("while creating the local proxy's token")?;
    let tmp = file.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    crate::daemon::write_private(&tmp, &format!("{}\n", created.token))
        .and_then(|()| std::fs::rename(&tmp, file))
        .with_context(|| format!("while writing {}", file.display()))?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("while creating {}", dir.display())),
    }
}

/// The last lines of the proxy's log, for errors.
fn log_tail(state_dir: &Path) -> String {
    let text = std::fs::read_to_string(state_dir.join(LOG_FILE)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Whether `pid` has exited and waits for its parent (not this process) to collect it.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses and may hold spaces.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            == Some("Z")
    })
}
