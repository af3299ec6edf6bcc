//! The periodic tick: deadlines, webhook gates, smoke tests, scaling, measurements and policy
//! checks, each call to the outside made without the lock and its result applied to the state
//! as stored then.

use super::*;

impl Controller {
    /// Advances every rollout in progress: deadlines, due measurements, policy checks.
    ///
    /// # Errors
    /// Store failures; a rollout whose state cannot be read is skipped and reported.
    pub async fn tick(&self) -> Result<(), ControllerError> {
        let active: Vec<RolloutId> = self
            .store
            .active_rollouts()
            .await?
            .into_iter()
            .filter(|r| r.phase != Phase::Pending.name())
            .map(|r| r.id)
            .collect();
        for id in active {
            self.tick_one(id).await?;
        }
        Ok(())
    }

    /// One rollout's tick. Calls to the outside (webhooks, smoke tests, metric providers) run
    /// without the lock, so a slow one does not hold up other rollouts or operator commands;
    /// each result is applied under the lock to the state as stored then, and only if that
    /// state still waits for it (otherwise it is dropped and asked again when due).
    async fn tick_one(&self, id: RolloutId) -> Result<(), ControllerError> {
        let Some(snapshot) = self.apply_fresh(id, |_| true, Event::Tick).await? else {
            return Ok(());
        };
        let now = self.clock.now();
        for kind in snapshot.rollout.webhooks_due(now) {
            let result = self.call_hooks(&snapshot, kind).await;
            let still_due = |r: &Rollout| r.webhooks_due(now).contains(&kind);
            self.apply_fresh(id, still_due, Event::WebhookResult { kind, result })
                .await?;
        }
        if let Phase::Scaling { target, .. } = snapshot.rollout.phase {
            let result = self.scale(&snapshot, target).await;
            let phase = snapshot.rollout.phase.clone();
            let step = snapshot.rollout.step;
            let still_due = |r: &Rollout| r.phase == phase && r.step == step;
            self.apply_fresh(id, still_due, Event::Scaled { result })
                .await?;
        }
        if snapshot.rollout.phase == Phase::SmokeTesting {
            let result = self.smoke_test(&snapshot).await;
            let step = snapshot.rollout.step;
            let still_due = |r: &Rollout| r.phase == Phase::SmokeTesting && r.step == step;
            self.apply_fresh(id, still_due, Event::SmokeTested { result })
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
            self.apply_fresh(id, still_due, event).await?;
        }
        let now = self.clock.now();
        if let Some(policy) = snapshot
            .rollout
            .policy
            .as_ref()
            .filter(|_| snapshot.rollout.policy_due(now))
        {
            let app = snapshot.app.as_str();
            let r = &snapshot.rollout;
            let canary = self
                .metrics
                .window(app, r.canary.version.as_str(), policy.window)
                .unwrap_or_default();
            let stable = self
                .metrics
                .window(app, r.stable.version.as_str(), policy.window)
                .unwrap_or_default();
            self.apply_fresh(
                id,
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
    ) -> Result<(), String> {
        let (app, r) = (&snapshot.app, &snapshot.rollout);
        let sized = [
            r.canary.at_scale(target.canary),
            r.stable.at_scale(target.stable),
        ];
        let running = |release: &Release| self.runtime.endpoints(app, &release.version);
        for release in &sized {
            if running(release).len() < release.instances() as usize {
                self.runtime
                    .scale(release)
                    .await
                    .map_err(|e| format!("{}: {e}", release.label()))?;
            }
        }
        let mut next = r.clone();
        next.instances.canary = Some(target.canary);
        next.instances.stable = Some(target.stable);
        next.weight = target.weight;
        self.route(app, &next);
        for release in &sized {
            let removed: Vec<SocketAddr> = running(release)
                .into_iter()
                .skip(release.instances() as usize)
                .collect();
            if removed.is_empty() {
                continue;
            }
            for endpoint in removed {
                self.router.drained(app, endpoint).await;
            }
            self.runtime
                .scale(release)
                .await
                .map_err(|e| format!("{}: {e}", release.label()))?;
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
                let (interval, totals) = self.interval_of(
                    &snapshot.app,
                    r,
                    judge.against,
                    metric.judge_totals.as_ref(),
                    now,
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
        still_due: impl Fn(&Rollout) -> bool,
        event: Event,
    ) -> Result<Option<RolloutSnapshot>, ControllerError> {
        let _guard = self.lock.lock().await;
        let snapshot = self.load(id).await?;
        if snapshot.rollout.phase.is_terminal() || !still_due(&snapshot.rollout) {
            return Ok(None);
        }
        let next = self.apply(&snapshot, event).await?;
        Ok(Some(RolloutSnapshot {
            rollout: next,
            ..snapshot
        }))
    }

    /// Both releases' traffic since the judge's last look: the difference of the data plane's
    /// monotonic totals, so no request is counted twice or lost between looks. The first look
    /// only takes the starting point.
    fn interval_of(
        &self,
        app: &AppName,
        r: &Rollout,
        against: Against,
        previous: Option<&[ReleaseTotals; 2]>,
        now: Timestamp,
    ) -> (IntervalObservation, [ReleaseTotals; 2]) {
        let read = |version: &Version| {
            self.metrics
                .totals(app.as_str(), version.as_str())
                .unwrap_or_default()
        };
        let baseline = match (against, &r.baseline) {
            (Against::Baseline, Some(b)) => &b.version,
            _ => &r.stable.version,
        };
        let totals = [read(&r.canary.version), read(baseline)];
        let arm = |i: usize| match previous {
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
                Err(e) => refusals.push(format!("{}: {e}", hook.name)),
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
                    Err(e) => format!("post-rollout webhook {} failed: {e}", hook.name),
                };
                let event = NewEvent {
                    at: clock.now(),
                    app: Some(done.app.clone()),
                    rollout: Some(done.id),
                    kind: EventKind::Verdict,
                    actor: "webhook".into(),
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
    async fn smoke_test(&self, snapshot: &RolloutSnapshot) -> Result<(), String> {
        let r = &snapshot.rollout;
        let Some(PlanStep::SmokeTests(tests)) = r.steps.get(r.step) else {
            return Ok(());
        };
        let target = self
            .router
            .preview_addr(&snapshot.app)
            .or_else(|| {
                self.runtime
                    .endpoints(&snapshot.app, &r.canary.version)
                    .first()
                    .copied()
            })
            .ok_or_else(|| format!("{} has no instance to test", r.canary.label()))?;
        self.smoke.run(target, tests).await
    }
}
