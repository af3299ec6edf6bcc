//! Running the binary: a daemon in a temporary data directory and CLI calls against it.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `switchyard serve` process.
pub struct Daemon {
    pub child: Child,
    pub api: String,
    /// The admin token its first start wrote to the data directory.
    pub token: String,
}

/// The admin token of every daemon the tests started, by API address: raw HTTP requests to an
/// API send it, as the CLI does.
static TOKENS: std::sync::Mutex<Vec<(SocketAddr, String)>> = std::sync::Mutex::new(Vec::new());

/// The admin token of the daemon whose API is at `addr`, if it is one.
pub fn token_of(addr: SocketAddr) -> Option<String> {
    let tokens = TOKENS.lock().unwrap();
    tokens
        .iter()
        .rev()
        .find(|(a, _)| *a == addr)
        .map(|(_, t)| t.clone())
}

/// The policy of the tests' daemons, written into `dir`: this binary (the demo service), `sh`
/// (command providers), `false` and `sleep` (releases that fail) may run; calls reach loopback.
pub fn policy_file(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("policy.yaml");
    let text =
        format!("run: [{BIN}, sh, \"false\", sleep]\nreach: [127.0.0.0/8, \"::1\", localhost]\n");
    std::fs::write(&path, text).unwrap();
    path
}

/// Reads the admin token a daemon wrote to `data_dir` and remembers it for `port`.
fn admin_token(data_dir: &Path, port: u16) -> String {
    let token = std::fs::read_to_string(data_dir.join("admin.token"))
        .unwrap_or_else(|e| panic!("no admin.token in {}: {e}", data_dir.display()))
        .trim()
        .to_owned();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TOKENS.lock().unwrap().push((addr, token.clone()));
    token
}

impl Daemon {
    pub fn start(data_dir: &Path) -> Daemon {
        Self::start_on(data_dir, free_port())
    }

    pub fn start_on(data_dir: &Path, port: u16) -> Daemon {
        Self::start_with(data_dir, port, &[])
    }

    /// A daemon with extra `serve` arguments.
    pub fn start_with(data_dir: &Path, port: u16, extra: &[&str]) -> Daemon {
        Self::start_listening(data_dir, &format!("127.0.0.1:{port}"), port, extra)
    }

    /// A daemon whose API listens on `listen` (which must answer on 127.0.0.1:`port` too).
    pub fn start_listening(data_dir: &Path, listen: &str, port: u16, extra: &[&str]) -> Daemon {
        Self::start_with_env(data_dir, listen, port, extra, &[])
    }

    /// As [`Daemon::start_listening`], with variables added to the daemon's environment.
    pub fn start_with_env(
        data_dir: &Path,
        listen: &str,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .arg("--policy")
            .arg(policy_file(data_dir))
            .args(["--listen", listen])
            .args(extra)
            .envs(env.iter().copied())
            .env("SWITCHYARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self::adopt(child, port, data_dir)
    }

    /// A daemon started some other way on `data_dir`, listening on `port`; waits until it is
    /// ready.
    pub fn adopt(child: Child, port: u16, data_dir: &Path) -> Daemon {
        let mut daemon = Daemon {
            child,
            api: format!("http://127.0.0.1:{port}"),
            token: String::new(),
        };
        daemon.wait_ready();
        daemon.token = admin_token(data_dir, port);
        daemon
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr: SocketAddr = self.api.trim_start_matches("http://").parse().unwrap();
        while Instant::now() < deadline {
            if get(addr, "/ready").is_some_and(|(status, _)| status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("daemon did not become ready at {}", self.api);
    }

    /// Runs a CLI command against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("SWITCHYARD_SERVER", &self.api)
            .env("SWITCHYARD_TOKEN", &self.token)
            .env("SWITCHYARD_CONFIG", "/nonexistent")
            .output()
            .unwrap()
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "switchyard {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a CLI command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "switchyard {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// The latest rollout of `app` as JSON.
    pub fn rollout(&self, app: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["rollout", "status", app, "-o", "json"])).unwrap()
    }

    /// Polls until the app's latest rollout satisfies `done`.
    pub fn wait_rollout(
        &self,
        app: &str,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let r = self.rollout(app);
            if done(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {r:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGINT (Ctrl-C) stops everything: the local proxy and the releases; SIGKILL after a
        // grace period.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

/// A plain HTTP/1.1 GET; returns the status and the headers + body text.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    request(addr, "GET", path, "")
}

/// A GET with one extra header line, e.g. `x-canary: always`.
pub fn get_with(addr: SocketAddr, path: &str, header: &str) -> Option<(u16, String)> {
    request_with(addr, "GET", path, "", header)
}

/// A plain HTTP/1.1 request with a JSON body; returns the status and the headers + body text.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    request_with(addr, method, path, body, "x-test: 1")
}

fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    header: &str,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token_of(addr)
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{header}\r\n{auth}Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

/// A manifest for app `name` on `port`, running the demo service.
pub fn manifest(name: &str, port: u16, steps: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  listen: 127.0.0.1:{port}
  runtime:
    process:
      command: ["{BIN}", "demo-app", "--port", "{{port}}", "--version", "{{version}}"]
      startTimeout: 20s
      stopTimeout: 2s
  healthCheck: {{path: /health, interval: 1s, timeout: 1s}}
  strategy:
    canary:
      steps:
{steps}
{extra}"#
    )
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A new, empty database on the PostgreSQL server `SWITCHYARD_TEST_POSTGRES` names (an admin
/// URL ending in `/postgres`), as a URL for `--database-url`.
pub fn fresh_postgres_database() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let admin = std::env::var("SWITCHYARD_TEST_POSTGRES")
        .expect("SWITCHYARD_TEST_POSTGRES names the PostgreSQL server (scripts/test sets it)");
    let name = format!(
        "sy_e2e_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let (server, _) = admin
        .rsplit_once('/')
        .expect("the admin URL names a database");
    format!("{server}/{name}")
}

/// Runs one statement with `psql` and returns what it printed (unaligned, tuples only).
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs (Debian's postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A PostgreSQL server of a test's own (`scripts/postgres`), for faults that would disturb
/// the shared one: stopped and removed when dropped.
pub struct OwnPostgres {
    pub url: String,
    dir: String,
}

impl OwnPostgres {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres")
    }

    pub fn start() -> OwnPostgres {
        Self::start_with(None)
    }

    /// A server whose data directory is a tmpfs of `mib` MiB (and whose WAL segments are 1 MiB),
    /// for filling its disk. Needs root.
    pub fn start_on_tmpfs(mib: u32) -> OwnPostgres {
        Self::start_with(Some(mib))
    }

    fn start_with(tmpfs_mib: Option<u32>) -> OwnPostgres {
        let mut command = Command::new(Self::script());
        command.arg("start");
        if let Some(mib) = tmpfs_mib {
            command.env("SWITCHYARD_PG_TMPFS_MB", mib.to_string());
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "scripts/postgres start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let admin = lines.next().unwrap().to_owned();
        let dir = lines.next().unwrap().to_owned();
        psql(&admin, "CREATE DATABASE switchyard");
        let (server, _) = admin.rsplit_once('/').unwrap();
        OwnPostgres {
            url: format!("{server}/switchyard"),
            dir,
        }
    }

    /// Fills the data directory's disk with a file of its own; returns its size in bytes.
    pub fn fill(&self) -> u64 {
        use std::io::Write as _;
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let block = vec![0x5au8; 1 << 16];
        let mut written = 0u64;
        while file.write_all(&block).is_ok() {
            written += block.len() as u64;
        }
        let _ = file.sync_all();
        written
    }

    /// Removes what [`OwnPostgres::fill`] wrote.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        Path::new(&self.dir).join("data/filler")
    }

    /// A fast restart: every connection is cut, the server is back on the same port (started
    /// again if it had stopped).
    pub fn restart(&self) {
        let status = Command::new(Self::script())
            .args(["restart", &self.dir])
            .status()
            .unwrap();
        assert!(status.success(), "scripts/postgres restart");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new(Self::script())
            .args(["stop", &self.dir])
            .status();
    }
}

/// Another replica's data directory gets the first one's admin token: the operator's token,
/// which the shared database holds (only a daemon that created it writes the file).
pub fn share_admin_token(first: &std::path::Path, other: &std::path::Path) {
    std::fs::copy(first.join("admin.token"), other.join("admin.token")).unwrap();
}

/// The API port of the replica whose leader lease on `url` is live, if one is.
pub fn leader_port(url: &str) -> Option<u16> {
    let api = psql(url, "SELECT api FROM leader_lease WHERE expires_at > now()");
    api.trim().rsplit(':').next()?.parse().ok()
}

/// A child process killed when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `command` with `input` on its standard input; its output and status once it exits.
pub fn with_stdin(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
    child.wait_with_output().unwrap()
}
