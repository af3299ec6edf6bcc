//! One instance of a process release: the task that owns its process from spawn to stop.
//!
//! The task first waits for the process to become healthy, reporting the outcome to the release's
//! start. After that it keeps the instance running: when the process exits it is restarted on the
//! same port after a [`RestartBackoff`] delay, until the instance is asked to stop.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::Duration;

use switchyard_core::manifest::app::HealthCheck;
use switchyard_core::ports::RuntimeError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::backoff::RestartBackoff;
use super::launch::{LaunchSpec, Launched};
use super::terminate::Ending;
use crate::health;

/// Everything one instance needs, resolved when its release starts.
#[derive(Debug, Clone)]
pub(crate) struct InstancePlan {
    pub(crate) ordinal: u32,
    pub(crate) address: SocketAddr,
    /// `app@version`, for logs.
    pub(crate) label: String,
    pub(crate) launch: LaunchSpec,
    pub(crate) health: HealthCheck,
    pub(crate) start_timeout: Duration,
    pub(crate) stop_timeout: Duration,
}

/// A started instance: its address and the task that keeps it.
#[derive(Debug)]
pub(crate) struct Instance {
    ordinal: u32,
    pub(crate) address: SocketAddr,
    stop: CancellationToken,
    /// Cancelled when the instance is detached: from then on its keeper neither stops nor
    /// restarts the process (see [`Instance::detach`]).
    detached: CancellationToken,
    /// Cancels `stop` when the instance is dropped without being stopped (a `start` whose future
    /// was dropped), so its task does not keep a process no table knows of.
    _stop_on_drop: DropGuard,
    task: JoinHandle<Result<(), RuntimeError>>,
}

/// What the start phase of one process came to.
#[derive(Debug)]
enum Startup {
    Healthy,
    Exited(String),
    NeverHealthy(String),
    StopRequested,
}

impl Instance {
    /// Spawns the instance's process and the task that keeps it. The task sends exactly one
    /// message on `started`: `Ok` once the instance is healthy, or the error, after which nothing
    /// of the instance runs.
    ///
    /// # Errors
    /// The log file cannot be opened or the program cannot be spawned.
    pub(crate) async fn spawn(
        plan: InstancePlan,
        stop: CancellationToken,
        started: mpsc::Sender<Result<(), RuntimeError>>,
    ) -> Result<Self, RuntimeError> {
        plan.launch.note(&format!(
            "starting instance {} of {} on {}",
            plan.ordinal, plan.label, plan.address
        ));
        let process = plan.launch.spawn().await?;
        Ok(Self::keep(plan, process, stop, started, false))
    }

    /// Keeps an instance a previous daemon started (its process never stopped): it counts as
    /// started at once.
    pub(crate) fn adopt(
        plan: InstancePlan,
        process: Launched,
        stop: CancellationToken,
        started: mpsc::Sender<Result<(), RuntimeError>>,
    ) -> Self {
        plan.launch.note(&format!(
            "adopted instance {} of {} on {} (pid {:?})",
            plan.ordinal, plan.label, plan.address, process.pid
        ));
        Self::keep(plan, process, stop, started, true)
    }

    fn keep(
        plan: InstancePlan,
        process: Launched,
        stop: CancellationToken,
        started: mpsc::Sender<Result<(), RuntimeError>>,
        adopted: bool,
    ) -> Self {
        let detached = CancellationToken::new();
        let keeper = Keeper {
            plan,
            stop: stop.clone(),
            detached: detached.clone(),
        };
        let (ordinal, address) = (keeper.plan.ordinal, keeper.plan.address);
        let task = tokio::spawn(keeper.run(process, started, adopted));
        Self {
            ordinal,
            address,
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            detached,
            task,
        }
    }

    /// Lets go of the instance without stopping it: its keeper ends, and its supervisor waits
    /// for a daemon to adopt it (a daemon that stops its control plane only). Returns once the
    /// keeper has ended, so the lifeline is closed.
    ///
    /// Aborting is not enough on its own: a task that is being polled when it is aborted runs
    /// on until that poll returns, and `stop` is cancelled right after (by the guard, and by the
    /// runtime's root token when it is dropped). A keeper in the middle of a poll, such as the
    /// one that has just reported its instance healthy, would see `stop` and SIGTERM the
    /// instance it was meant to leave running. So the keeper is told first that it is detached,
    /// and checks that before it signals or spawns anything.
    pub(crate) async fn detach(mut self) {
        self.detached.cancel();
        self.task.abort();
        // Cancelled, or finished within the poll that was running; either way it let go.
        let _ = (&mut self.task).await;
        // Dropping the guard now cancels `stop`, which no keeper listens to any more.
    }

    /// Asks the instance to stop without waiting for it.
    pub(crate) fn request_stop(&self) {
        self.stop.cancel();
    }

    /// Stops the instance and waits until its process is gone.
    ///
    /// # Errors
    /// [`RuntimeError::Stop`] when the process could not be signalled or reaped.
    pub(crate) async fn stop(self) -> Result<(), RuntimeError> {
        let Self {
            ordinal,
            stop,
            task,
            ..
        } = self;
        stop.cancel();
        match task.await {
            Ok(result) => result,
            Err(join_error) => Err(RuntimeError::Stop {
                instance: ordinal,
                source: std::io::Error::other(join_error),
            }),
        }
    }
}

/// The task's state: the plan, the signal to stop, and whether the instance was let go.
struct Keeper {
    plan: InstancePlan,
    stop: CancellationToken,
    /// Set before the task is aborted and before `stop` is cancelled (see
    /// [`Instance::detach`]): a detached keeper leaves the process alone.
    detached: CancellationToken,
}

impl Keeper {
    async fn run(
        self,
        mut process: Launched,
        started: mpsc::Sender<Result<(), RuntimeError>>,
        adopted: bool,
    ) -> Result<(), RuntimeError> {
        if adopted {
            let _ = started.send(Ok(())).await;
            return self.keep_running(process).await;
        }
        let failure = match self.until_started(&mut process).await {
            Startup::Healthy => None,
            Startup::Exited(status) => Some(RuntimeError::ExitedEarly {
                instance: self.plan.ordinal,
                status,
                log: self.plan.launch.log.clone(),
            }),
            Startup::NeverHealthy(last_error) => Some(self.never_healthy(last_error)),
            Startup::StopRequested => {
                Some(self.never_healthy("the runtime stopped the instance while it started".into()))
            }
        };
        if let Some(error) = failure {
            // Stop before reporting: when `start` sees the error, nothing of the instance runs.
            let stopped = self.shut(&mut process).await;
            let _ = started.send(Err(error)).await;
            return stopped;
        }
        tracing::info!(release = %self.plan.label, instance = self.plan.ordinal,
            address = %self.plan.address, "instance healthy");
        let _ = started.send(Ok(())).await;
        self.keep_running(process).await
    }

    fn never_healthy(&self, last_error: String) -> RuntimeError {
        RuntimeError::NeverHealthy {
            instance: self.plan.ordinal,
            address: self.plan.address,
            timeout: self.plan.start_timeout,
            last_error,
        }
    }

    /// Waits until the process passes its health check, exits, or the instance is asked to stop.
    async fn until_started(&self, process: &mut Launched) -> Startup {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => Startup::StopRequested,
            status = process.wait() => Startup::Exited(status),
            healthy = health::wait_healthy(
                self.plan.address, &self.plan.health, self.plan.start_timeout,
            ) => match healthy {
                Ok(()) => Startup::Healthy,
                Err(last_error) => Startup::NeverHealthy(last_error),
            },
        }
    }

    /// Restarts the process whenever it exits, until the instance is asked to stop.
    async fn keep_running(self, mut process: Launched) -> Result<(), RuntimeError> {
        let mut backoff = RestartBackoff::default();
        let mut running_since = Instant::now();
        loop {
            let status = tokio::select! {
                biased;
                () = self.stop.cancelled() => return self.shut(&mut process).await,
                status = process.wait() => status,
            };
            // What the process started may outlive it and hold the port the restart needs.
            if let Err(error) = process.kill_group() {
                tracing::warn!(release = %self.plan.label, instance = self.plan.ordinal,
                    %error, "cannot kill what the exited instance left behind");
            }
            let delay = backoff.next_delay(running_since.elapsed());
            tracing::warn!(release = %self.plan.label, instance = self.plan.ordinal,
                %status, restart_in = ?delay, "instance exited; restarting");
            self.plan
                .launch
                .note(&format!("exited with {status}; restarting in {delay:?}"));
            let Some(restarted) = self.respawn(delay, &mut backoff).await else {
                return Ok(());
            };
            process = restarted;
            running_since = Instant::now();
            if let ControlFlow::Break(stopped) = self.recover(&mut process).await {
                return stopped;
            }
        }
    }

    /// Waits for a restarted process to become healthy. An exit or a failed health check is left
    /// for the caller's next turn to restart; `Break` when the instance was asked to stop (it then
    /// is stopped).
    async fn recover(&self, process: &mut Launched) -> ControlFlow<Result<(), RuntimeError>> {
        match self.until_started(process).await {
            Startup::Healthy => tracing::info!(release = %self.plan.label,
                instance = self.plan.ordinal, address = %self.plan.address,
                "restarted instance healthy"),
            Startup::StopRequested => return ControlFlow::Break(self.shut(process).await),
            Startup::Exited(_) => {}
            Startup::NeverHealthy(last_error) => {
                tracing::warn!(release = %self.plan.label, instance = self.plan.ordinal,
                    %last_error, "restarted instance not healthy in time; killing it");
                // A failed stop is logged, not returned: returning would end the task and leave
                // the instance without a keeper. The next turn waits for the process.
                if let Err(error) = self.shut(process).await {
                    tracing::error!(release = %self.plan.label, instance = self.plan.ordinal,
                        %error, "cannot stop the unhealthy restarted instance");
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Sleeps `delay`, then spawns the process again, retrying failed spawns with the backoff.
    /// `None` when the instance is asked to stop meanwhile.
    async fn respawn(&self, mut delay: Duration, backoff: &mut RestartBackoff) -> Option<Launched> {
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
            if self.detached.is_cancelled() {
                return None;
            }
            match self.plan.launch.spawn().await {
                Ok(process) => return Some(process),
                Err(error) => {
                    delay = backoff.next_delay(Duration::ZERO);
                    tracing::warn!(release = %self.plan.label, instance = self.plan.ordinal,
                        %error, retry_in = ?delay, "cannot restart instance");
                }
            }
        }
    }

    /// Stops the process (SIGTERM, grace, SIGKILL) and logs how it ended; a detached instance's
    /// process is left running.
    async fn shut(&self, process: &mut Launched) -> Result<(), RuntimeError> {
        if self.detached.is_cancelled() {
            return Ok(());
        }
        let ending = process
            .terminate(self.plan.stop_timeout)
            .await
            .map_err(|source| RuntimeError::Stop {
                instance: self.plan.ordinal,
                source,
            })?;
        match ending {
            Ending::Killed => tracing::warn!(release = %self.plan.label,
                instance = self.plan.ordinal, grace = ?self.plan.stop_timeout,
                "instance ignored SIGTERM; killed"),
            Ending::Terminated | Ending::AlreadyExited => tracing::debug!(
                release = %self.plan.label, instance = self.plan.ordinal, ?ending,
                "instance stopped"),
        }
        Ok(())
    }
}
