//! The periodic tick: deadlines, webhook gates, smoke tests, scaling, measurements and policy
//! checks, each call to the outside made without the lock and its result applied to the state
//! as stored then.

use super::*;
use crate::ports::SmokeTestError;

/// The ticks one [`Controller::tick`] started. Dropping it lets them run on.
#[derive(Debug)]
#[must_use = "drop it to let the ticks run on, or wait for them with `finished`"]
pub struct Ticking(Vec<tokio::task::JoinHandle<()>>);

impl Ticking {
    /// How many rollouts this tick started.
    pub fn started(&self) -> usize {
        self.0.len()
    }

    /// Waits until every tick it started has finished.
    pub async fn finished(self) {
        for task in self.0 {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a rollout's tick ended abnormally");
            }
        }
    }
}

/// The rollouts being ticked right now.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Arc<std::sync::Mutex<std::collections::HashSet<RolloutId>>>);

impl InFlight {
    /// How many rollouts are being ticked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Marks `id` as being ticked until the ticket is dropped; `None` when it already is.
    fn enter(&self, id: RolloutId) -> Option<InFlightTicket> {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.insert(id).then(|| InFlightTicket {
            set: Arc::clone(&self.0),
            id,
        })
    }
}

struct InFlightTicket {
    set: Arc<std::sync::Mutex<std::collections::HashSet<RolloutId>>>,
    id: RolloutId,
}

impl Drop for InFlightTicket {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Why a scaling step did not reach its target.
#[derive(Debug, thiserror::Error)]
enum ScaleError {
    #[error("{release} could not be scaled")]
    Runtime {
        release: String,
        #[source]
        source: RuntimeError,
    },
    #[error("the rollout moved on while its instances were scaling")]
    Superseded,
    #[error(transparent)]
    Store(#[from] Box<ControllerError>),
}

impl Controller {
    /// Starts a tick of every rollout in progress that is not being ticked already —
    /// deadlines, due measurements, policy checks — each in its own task, at most
    /// [`TICK_CONCURRENCY`] at once, and returns without waiting for them: a slow metric
    /// provider holds up its own rollout only. A rollout whose tick fails is reported and
    /// backed off ([`backoff`]); the others go on.
    ///
    /// # Errors
    /// The store cannot list the rollouts in progress.
    pub async fn tick(self: &Arc<Self>) -> Result<Ticking, ControllerError> {
        let now = self.clock.now();
        let active: Vec<RolloutRecord> = self.store.active_rollouts().await?;
        self.troubles.retain(|id| active.iter().any(|r| r.id == id));
        let mut started = Vec::new();
        for record in active {
            if record.phase == Phase::Pending.name() || !self.troubles.due(record.id, now) {
                continue;
            }
            let Some(ticket) = self.ticking.enter(record.id) else {
                continue;
            };
            let controller = Arc::clone(self);
            started.push(tokio::spawn(async move {
                let _permit = controller.tick_permits.acquire().await;
                let (id, app) = (record.id, record.app);
                match controller.tick_one(id, &app).await {
                    Ok(()) => controller.troubles.succeeded(id),
                    Err(e) => controller.troubles.failed(id, &e, controller.clock.now()),
                }
                drop(ticket);
            }));
        }
        Ok(Ticking(started))
    }

    /// One rollout's tick. Calls to the outside (webhooks, smoke tests, metric providers) run
    /// without the lock, so a slow one does not hold up other rollouts or operator commands;
    /// each result is applied under the lock to the state as stored then, and only if that
    /// state still waits for it (otherwise it is dropped and asked again when due).
    async fn tick_one(&self, id: RolloutId, app: &AppName) -> Result<(), ControllerError> {
        // A rollout whose routes are not in force waits (deadlines, analyses, policies all
        // hold) and says why, instead of judging traffic that is not where it thinks.
        if let Some(why) = self.traffic.not_applied(app) {
            return Err(ControllerError::RoutesNotApplied {
                app: app.clone(),
                why,
            });
        }
        let Some(snapshot) = self.apply_fresh(id, app, |_| true, Event::Tick).await? else {
            return Ok(());
        };
        if let Some(what) = self.traffic.drift(app) {
            if !matches!(snapshot.rollout.phase, Phase::Paused { .. }) {
                tracing::warn!(%app, rollout = id, drift = %what, "routes changed outside Switchyard; pausing the rollout");
                let by = Author::system(&format!("switchyard (routes changed outside it: {what})"));
                let pause = Command::Pause { duration: None };
                self.command(app, pause, None, &by).await?;
                return Ok(());
            }
        }
        let now = self.clock.now();
        for kind in snapshot.rollout.webhooks_due(now) {
            let result = self.call_hooks(&snapshot, kind).await;
            let still_due = |r: &Rollout| r.webhooks_due(now).contains(&kind);
            self.apply_fresh(id, app, still_due, Event::WebhookResult { kind, result })
                .await?;
        }
        if let Phase::Scaling { target, .. } = snapshot.rollout.phase {
            let result = self.scale(&snapshot, target).await.map_err(|e| chain(&e));
            let phase = snapshot.rollout.phase.clone();
            let step = snapshot.rollout.step;
            let still_due = |r: &Rollout| r.phase == phase && r.step == step;
            self.apply_fresh(id, app, still_due, Event::Scaled { result })
                .await?;
        }
        if snapshot.rollout.phase == Phase::SmokeTesting {
            let result = self.smoke_test(&snapshot).await.map_err(|e| chain(&e));
            let step = snapshot.rollout.step;
            let still_due = |r: &Rollout| r.phase == Phase::SmokeTesting && r.step == step;
            self.apply_fresh(id, app, still_due, Event::SmokeTested { result })
                .await?;
        }
        for (which, index) in snapshot.rollout.measurements_due(now) {
            let Some(metric) = snapshot
                .rollout
                .run(which)
                .and_then(|run| run.metrics.get(index))
            else {
                continue;
            };
            let Some(event) = self.measure(&snapshot, which, index, metric, now).await else {
                continue;
            };
            // The same look of the same analysis: not a later step's run, not a look taken since.
            let (started, next_at) = (
                snapshot.rollout.run(which).map(|r| r.started_at),
                metric.next_at,
            );
            let still_due = |r: &Rollout| {
                let run = r.run(which);
                run.map(|r| r.started_at) == started
                    && run.and_then(|r| r.metrics.get(index)).map(|m| m.next_at) == Some(next_at)
            };
            self.apply_fresh(id, app, still_due, event).await?;
        }
        let now = self.clock.now();
        if let Some(policy) = snapshot
            .rollout
            .policy
            .as_ref()
            .filter(|_| snapshot.rollout.policy_due(now))
        {
            let r = &snapshot.rollout;
            let window = |version: &Version| {
                self.metrics
                    .window(app.as_str(), version.as_str(), policy.window)
                    .unwrap_or_default()
            };
            let (canary, stable) = (window(&r.canary.version), window(&r.stable.version));
            self.apply_fresh(
                id,
                app,
                |r| r.policy_due(now),
                Event::PolicyWindows { canary, stable },
            )
            .await?;
        }
        Ok(())
    }

    /// Brings both releases to `target` without losing a request: new instances start (and are
    /// healthy) first, then the routes change, then removed instances drain, then they stop.
    async fn scale(
        &self,
        snapshot: &RolloutSnapshot,
        target: machine::ScaleTarget,
    ) -> Result<(), ScaleError> {
        let (app, r) = (&snapshot.app, &snapshot.rollout);
        let sized = [
            r.canary.at_scale(target.canary),
            r.stable.at_scale(target.stable),
        ];
        let running = |release: &Release| self.runtime.endpoints(app, &release.version);
        let scale_error = |release: &Release| {
            let release = release.label();
            move |source| ScaleError::Runtime { release, source }
        };
        for release in &sized {
            if running(release).len() < release.instances() as usize {
                self.runtime
                    .scale(release)
                    .await
                    .map_err(scale_error(release))?;
            }
        }
        let mut next = r.clone();
        next.instances.canary = Some(target.canary);
        next.instances.stable = Some(target.stable);
        next.weight = target.weight;
        {
            // Under the app's lock, and only while the rollout still waits for this scaling.
            let traffic = self.traffic.lock(app).await;
            let current = self.load(snapshot.id).await.map_err(Box::new)?;
            if current.rollout.phase != r.phase || current.rollout.step != r.step {
                return Err(ScaleError::Superseded);
            }
            self.route(&traffic, &next);
        }
        for release in &sized {
            let removed: Vec<SocketAddr> = running(release)
                .into_iter()
                .skip(release.instances() as usize)
                .collect();
            if removed.is_empty() {
                continue;
            }
            for endpoint in removed {
                self.traffic.drained(app, endpoint).await;
            }
            self.runtime
                .scale(release)
                .await
                .map_err(scale_error(release))?;
        }
        Ok(())
    }

    /// Takes one measurement of metric `index` (a judge's interval, or a provider's value).
    async fn measure(
        &self,
        snapshot: &RolloutSnapshot,
        which: RunRef,
        index: usize,
        metric: &MetricRun,
        now: Timestamp,
    ) -> Option<Event> {
        let r = &snapshot.rollout;
        match (&metric.spec.judge, &metric.spec.provider) {
            (Some(judge), _) => {
                let read = match &judge.source {
                    None => None,
                    Some(source) => {
                        let request = JudgeTotalsRequest {
                            source,
                            app: &snapshot.app,
                            canary: &r.canary.version,
                            baseline: baseline_of(r, judge.against),
                            namespace: r.canary.namespace().unwrap_or_default(),
                        };
                        match self.provider.judge_totals(&request).await {
                            Ok(totals) => Some(totals),
                            // An error counts as one, as a provider's would: never a pass.
                            Err(e) => {
                                return Some(Event::Measured {
                                    run: which,
                                    index,
                                    outcome: Err(e),
                                });
                            }
                        }
                    }
                };
                let (interval, totals) = self.interval_of(
                    &snapshot.app,
                    r,
                    judge.against,
                    metric.judge_totals.as_ref(),
                    now,
                    read,
                );
                Some(Event::Judged {
                    run: which,
                    index,
                    interval: Box::new(interval),
                    totals: Box::new(totals),
                })
            }
            (None, Some(provider)) => {
                let request = MeasureRequest {
                    app: &snapshot.app,
                    canary: &r.canary.version,
                    stable: &r.stable.version,
                    provider,
                    default_window: metric.spec.interval.unwrap_or(Duration::from_secs(60)),
                    namespace: r.canary.namespace().unwrap_or_default(),
                };
                let outcome = self.provider.measure(&request).await;
                Some(Event::Measured {
                    run: which,
                    index,
                    outcome,
                })
            }
            (None, None) => None,
        }
    }

    /// Under the lock: loads rollout `id` and, if it is still in progress and `still_due` holds,
    /// applies `event`. Returns the state after, or `None` when nothing was applied.
    async fn apply_fresh(
        &self,
        id: RolloutId,
        app: &AppName,
        still_due: impl Fn(&Rollout) -> bool,
        event: Event,
    ) -> Result<Option<RolloutSnapshot>, ControllerError> {
        let traffic = self.traffic.lock(app).await;
        let snapshot = self.load(id).await?;
        if snapshot.rollout.phase.is_terminal() || !still_due(&snapshot.rollout) {
            return Ok(None);
        }
        let next = self.apply(&traffic, &snapshot, event, None).await?;
        Ok(Some(RolloutSnapshot {
            rollout: next,
            ..snapshot
        }))
    }

    /// Both releases' traffic since the judge's last look: the difference of monotonic totals
    /// (the data plane's, or `source`'s when the judge reads them elsewhere), so no request is
    /// counted twice or lost between looks. The first look only takes the starting point.
    fn interval_of(
        &self,
        app: &AppName,
        r: &Rollout,
        against: Against,
        previous: Option<&[ReleaseTotals; 2]>,
        now: Timestamp,
        source: Option<[ReleaseTotals; 2]>,
    ) -> (IntervalObservation, [ReleaseTotals; 2]) {
        let read = |version: &Version| {
            self.metrics
                .totals(app.as_str(), version.as_str())
                .unwrap_or_default()
        };
        let external = source.is_some();
        let totals =
            source.unwrap_or_else(|| [read(&r.canary.version), read(baseline_of(r, against))]);
        let arm = |i: usize| match previous {
            // A sum of counters that went down: a pod restarted and its counter began again.
            // The look only takes a new starting point, rather than counting every request
            // since the others began as new.
            Some(before) if external && totals[i].requests < before[i].requests => {
                ArmInterval::default()
            }
            Some(before) => {
                let d = totals[i].since(&before[i]);
                ArmInterval {
                    requests: d.requests,
                    errors: d.errors,
                    latency: d.latency,
                }
            }
            None => ArmInterval::default(),
        };
        let interval = IntervalObservation {
            at_ms: now.as_millis(),
            canary: arm(0),
            baseline: arm(1),
        };
        (interval, totals)
    }

    /// Calls every hook of `kind`: `Ok` when all answered 2xx (for `rollback`: when any did).
    async fn call_hooks(
        &self,
        snapshot: &RolloutSnapshot,
        kind: WebhookKind,
    ) -> Result<(), String> {
        let mut refusals = Vec::new();
        for hook in snapshot.rollout.hooks(kind) {
            match self.hooks.call(hook, &hook_payload(snapshot, hook)).await {
                Ok(()) if kind == WebhookKind::Rollback => return Ok(()),
                Ok(()) => {}
                Err(e) => refusals.push(chain(&e)),
            }
        }
        if refusals.is_empty() && kind != WebhookKind::Rollback {
            Ok(())
        } else {
            Err(refusals.join("; "))
        }
    }

    /// Calls the `post-rollout` hooks in the background and records their answers.
    pub(super) fn post_rollout(&self, snapshot: &RolloutSnapshot, next: &Rollout) {
        let done = RolloutSnapshot {
            rollout: next.clone(),
            ..snapshot.clone()
        };
        let hooks: Vec<Webhook> = next.hooks(WebhookKind::PostRollout).cloned().collect();
        if hooks.is_empty() {
            return;
        }
        let (caller, store, clock) = (
            Arc::clone(&self.hooks),
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
        );
        tokio::spawn(async move {
            for hook in hooks {
                let outcome = caller.call(&hook, &hook_payload(&done, &hook)).await;
                let reason = match &outcome {
                    Ok(()) => format!("post-rollout webhook {} answered 2xx", hook.name),
                    Err(e) => format!("post-rollout webhook failed: {}", chain(e)),
                };
                let event = NewEvent {
                    at: clock.now(),
                    app: Some(done.app.clone()),
                    rollout: Some(done.id),
                    kind: EventKind::Verdict,
                    actor: "webhook".into(),
                    source: None,
                    reason,
                    data: serde_json::Value::Null,
                };
                if let Err(e) = store.append_events(&[event]).await {
                    tracing::warn!(error = %e, "post-rollout webhook result not recorded");
                }
            }
        });
    }

    /// Runs the current step's smoke tests against the preview listener (or, without one, the
    /// canary's first instance).
    async fn smoke_test(&self, snapshot: &RolloutSnapshot) -> Result<(), SmokeTestError> {
        let r = &snapshot.rollout;
        let Some(PlanStep::SmokeTests(tests)) = r.steps.get(r.step) else {
            return Ok(());
        };
        let target = self
            .traffic
            .preview_addr(&snapshot.app)
            .or_else(|| {
                self.runtime
                    .endpoints(&snapshot.app, &r.canary.version)
                    .first()
                    .copied()
            })
            .ok_or_else(|| SmokeTestError::NoTarget {
                release: r.canary.label(),
            })?;
        self.smoke.run(target, tests).await
    }
}

/// The version the canary is compared with: the baseline copy's, or the stable release's.
fn baseline_of(r: &Rollout, against: Against) -> &Version {
    match (against, &r.baseline) {
        (Against::Baseline, Some(b)) => &b.version,
        _ => &r.stable.version,
    }
}
