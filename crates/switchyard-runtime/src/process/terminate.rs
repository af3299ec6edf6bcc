//! Stopping an instance's process: SIGTERM to its main process, a grace period, SIGKILL to its
//! whole process group, and reaping.

use std::io;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::launch::Launched;

/// How an instance's process ended when it was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It had already exited.
    AlreadyExited,
    /// It exited within the grace period after SIGTERM.
    Terminated,
    /// It was still running after the grace period and was killed.
    Killed,
}

impl Launched {
    /// Stops the process: SIGTERM to the main process (the supervisor forwards it to the
    /// workload), up to `grace` for it to exit, then SIGKILL to the whole process group. Whatever
    /// happened, stragglers left in the group are killed and the process is reaped.
    ///
    /// # Errors
    /// The operating system refused to signal or reap the process.
    pub(crate) async fn terminate(&mut self, grace: Duration) -> io::Result<Ending> {
        if self.exited().await? {
            self.kill_group()?;
            self.group_gone().await;
            return Ok(Ending::AlreadyExited);
        }
        self.signal(Signal::SIGTERM)?;
        let ending = match tokio::time::timeout(grace, self.wait()).await {
            Ok(_status) => Ending::Terminated,
            Err(_elapsed) => {
                self.kill_group()?;
                // The group kill reaches the main process too; this covers a process that left
                // its group.
                self.start_kill()?;
                self.wait().await;
                Ending::Killed
            }
        };
        self.kill_group()?;
        self.group_gone().await;
        Ok(ending)
    }

    /// Waits (up to [`GROUP_EXIT_WAIT`]) until no live process is left in the group. Stopped
    /// means gone: a SIGKILLed member takes a moment to die (and to free its port), and nothing
    /// else waits for it.
    async fn group_gone(&self) {
        let Some(pgid) = self.pid else {
            return;
        };
        let deadline = tokio::time::Instant::now() + GROUP_EXIT_WAIT;
        while group_alive(pgid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends `signal` to the main process. A process that already exited is not an error.
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        let Some(pid) = self.pid_t()? else {
            return Ok(());
        };
        ignore_gone(kill(pid, signal))
    }

    /// SIGKILLs every process left in the instance's group (the main process leads it). An empty
    /// group is not an error.
    pub(crate) fn kill_group(&self) -> io::Result<()> {
        let Some(pid) = self.pid_t()? else {
            return Ok(());
        };
        ignore_gone(killpg(pid, Signal::SIGKILL))
    }

    fn pid_t(&self) -> io::Result<Option<Pid>> {
        self.pid
            .map(|pid| {
                i32::try_from(pid)
                    .map(Pid::from_raw)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))
            })
            .transpose()
    }
}

/// How long a stop waits for the rest of the instance's group to die after its SIGKILL.
const GROUP_EXIT_WAIT: Duration = Duration::from_secs(2);

/// Whether a live (not zombie) process is left in process group `pgid` (from `/proc`).
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let group = pgid.to_string();
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .any(|entry| {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            // After the command name (which may hold spaces and parentheses): state, ppid, pgrp.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1);
            state != Some("Z") && pgrp == Some(group.as_str())
        })
}

fn ignore_gone(result: nix::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(io::Error::from(errno)),
    }
}
