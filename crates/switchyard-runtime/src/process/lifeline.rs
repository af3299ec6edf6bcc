//! The daemon's end of a supervised instance's socket lifeline, and adopting the instances a
//! previous daemon left running (see [`crate::supervise`]).
//!
//! Each instance's supervisor listens on `<lifelines>/<hash of app, version, instance>.sock` and
//! greets with its pid and the identity the runtime gave it: the app, version, instance number,
//! port, and a fingerprint of the command, environment and working directory. A restarted daemon
//! connects to every socket it finds ([`Adoptions::scan`]) and reuses an instance when its
//! release asks for the same instance with the same fingerprint; the instance never stopped, so
//! its port, and the proxies' tables, stay the same.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::{AppName, Version};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::net::UnixStream;

use crate::supervise::{Exited, Greeting};

/// How long connecting to a lifeline and reading its greeting may take.
const GREETING_TIMEOUT: Duration = Duration::from_secs(2);

/// What a supervisor is told to greet with, and what the runtime recognises it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) app: String,
    pub(crate) version: String,
    pub(crate) instance: u32,
    pub(crate) port: u16,
    /// [`fingerprint`] of the command, environment and working directory.
    pub(crate) fingerprint: String,
}

/// A stable fingerprint (FNV-1a, 64 bits) of what an instance runs: the same release definition
/// gives the same text in every build.
pub(crate) fn fingerprint(
    argv: &[String],
    env: &BTreeMap<String, String>,
    working_dir: Option<&Path>,
) -> String {
    let text = serde_json::json!([argv, env, working_dir]).to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The socket path of an instance's lifeline: short, whatever the names' lengths.
pub(crate) fn socket_path(dir: &Path, app: &AppName, version: &Version, instance: u32) -> PathBuf {
    let key = format!("{app}\n{version}\n{instance}");
    let name = fingerprint(&[key], &BTreeMap::new(), None);
    dir.join(format!("{name}.sock"))
}

/// A connected lifeline: the greeting, then `{"exited": CODE}` or end of file when the instance
/// is gone.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) greeting: Greeting,
    lines: Lines<BufReader<UnixStream>>,
}

impl Connection {
    /// Connects to the lifeline at `path` and reads the greeting.
    ///
    /// # Errors
    /// Nothing listens there, or it did not greet in time.
    pub(crate) async fn open(path: &Path) -> std::io::Result<Connection> {
        let connect = async {
            let stream = UnixStream::connect(path).await?;
            let mut lines = BufReader::new(stream).lines();
            let line = lines.next_line().await?.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no greeting")
            })?;
            let greeting: Greeting = serde_json::from_str(&line)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            Ok(Connection { greeting, lines })
        };
        tokio::time::timeout(GREETING_TIMEOUT, connect)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no greeting in time"))?
    }

    /// Waits until the instance is gone; its exit status in words.
    pub(crate) async fn gone(&mut self) -> String {
        loop {
            match self.lines.next_line().await {
                Ok(Some(line)) => {
                    if let Ok(Exited { exited }) = serde_json::from_str(&line) {
                        return format!("exit status: {exited}");
                    }
                }
                Ok(None) | Err(_) => return "the supervisor is gone".to_owned(),
            }
        }
    }
}

/// An instance a previous daemon left running, waiting for its release to claim it.
#[derive(Debug)]
pub(crate) struct Adoptable {
    pub(crate) identity: Identity,
    pub(crate) connection: Connection,
}

/// The instances found at start, until their releases claim them.
#[derive(Debug, Default)]
pub(crate) struct Adoptions {
    waiting: Mutex<HashMap<(String, String, u32), Adoptable>>,
}

impl Adoptions {
    /// Connects to every lifeline in `dir`; removes socket files nothing listens on (a lifeline
    /// that is only slow to greet, on a loaded machine, is left in place and not adopted now).
    pub(crate) async fn scan(&self, dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut found = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "sock") {
                continue;
            }
            let connection = match Connection::open(&path).await {
                Ok(c) => c,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                    ) =>
                {
                    tracing::debug!(path = %path.display(), error = %e, "a stale lifeline; removing it");
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e,
                        "a lifeline that does not answer as it should; leaving it");
                    continue;
                }
            };
            let Ok(identity) = serde_json::from_str::<Identity>(&connection.greeting.identity)
            else {
                tracing::warn!(path = %path.display(), "a lifeline of an unknown instance; leaving it");
                continue;
            };
            tracing::info!(app = %identity.app, version = %identity.version,
                instance = identity.instance, port = identity.port,
                pid = connection.greeting.pid, "found a running instance to adopt");
            let key = (
                identity.app.clone(),
                identity.version.clone(),
                identity.instance,
            );
            self.lock().insert(
                key,
                Adoptable {
                    identity,
                    connection,
                },
            );
            found += 1;
        }
        found
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, u32), Adoptable>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes instance `instance` of a release if it runs what `fingerprint` says; an instance
    /// of the release that runs something else stays for [`Adoptions::take_all`].
    pub(crate) fn take(
        &self,
        app: &AppName,
        version: &Version,
        instance: u32,
        fingerprint: &str,
    ) -> Option<Adoptable> {
        let mut waiting = self.lock();
        let key = (app.to_string(), version.to_string(), instance);
        if waiting.get(&key)?.identity.fingerprint != fingerprint {
            tracing::info!(%app, %version, instance, "a running instance runs another definition; not adopting it");
            return None;
        }
        waiting.remove(&key)
    }

    /// Every instance no release claimed.
    pub(crate) fn take_all(&self) -> Vec<Adoptable> {
        self.lock().drain().map(|(_, a)| a).collect()
    }
}
