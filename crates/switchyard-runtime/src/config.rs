//! What the runtime needs from the daemon.

use std::path::PathBuf;
use std::sync::Arc;

use switchyard_core::{AppName, Version};
use switchyard_policy::Policy;

/// Settings of a [`LocalRuntime`](crate::LocalRuntime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Root of the instance logs: each instance appends its stdout and stderr to
    /// `<log_dir>/<app>/<version>/instance-<n>.log`.
    pub log_dir: PathBuf,
    /// Argv prefix that runs a command under the orphan-proof supervisor, e.g.
    /// `["/usr/bin/switchyard", "supervise", "--"]`. Each instance is then spawned as
    /// `<supervisor...> <program> <args...>` with its stdin a pipe the runtime holds open; when the
    /// daemon dies the pipe closes and the supervisor stops the workload.
    ///
    /// `None` spawns the workload directly: it is killed when the runtime is dropped or the daemon
    /// exits normally, but survives a daemon killed with SIGKILL.
    pub supervisor: Option<Vec<String>>,
    /// What may run: a process release whose program or variables the policy refuses does not
    /// start.
    pub policy: Arc<Policy>,
    /// Under a supervisor: give each instance a socket lifeline in this directory instead of
    /// a stdin pipe, so that instances outlive a daemon that goes away for up to
    /// `adopt_within`, and a restarted daemon adopts them (see [`crate::supervise`]).
    pub lifelines: Option<Lifelines>,
}

/// Where supervised instances' lifelines live, and how long they wait for a daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifelines {
    pub dir: PathBuf,
    pub adopt_within: std::time::Duration,
}

impl RuntimeConfig {
    /// A configuration without a supervisor, under the default policy (nothing runs; tests set
    /// their own).
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        Self {
            log_dir: log_dir.into(),
            supervisor: None,
            policy: Arc::new(Policy::default()),
            lifelines: None,
        }
    }

    /// Gives supervised instances socket lifelines in `dir` (see [`RuntimeConfig::lifelines`]).
    #[must_use]
    pub fn with_lifelines(
        mut self,
        dir: impl Into<PathBuf>,
        adopt_within: std::time::Duration,
    ) -> Self {
        self.lifelines = Some(Lifelines {
            dir: dir.into(),
            adopt_within,
        });
        self
    }

    /// Runs every instance under `supervisor` (an argv prefix ending where the command starts).
    #[must_use]
    pub fn with_supervisor(mut self, supervisor: Vec<String>) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    /// This configuration under `policy`.
    #[must_use]
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// Directory of a release's instance logs: `<log_dir>/<app>/<version>`.
    pub fn release_log_dir(&self, app: &AppName, version: &Version) -> PathBuf {
        self.log_dir.join(app.as_str()).join(version.as_str())
    }

    /// Log file of one instance (numbered from 0):
    /// `<log_dir>/<app>/<version>/instance-<n>.log`.
    pub fn instance_log(&self, app: &AppName, version: &Version, instance: u32) -> PathBuf {
        self.release_log_dir(app, version)
            .join(format!("instance-{instance}.log"))
    }
}
