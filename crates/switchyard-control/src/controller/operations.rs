//! App-level operations: retry, undo, emergency stop and unfreeze.

use super::*;

impl Controller {
    /// Starts the last rollout again, from its first step, with the same release: for a rollout
    /// that was aborted, rolled back or failed.
    ///
    /// # Errors
    /// No such rollout, a rollout in progress, a frozen app, or a canary that does not start.
    pub async fn retry(
        &self,
        app: &AppName,
        by: &Author,
    ) -> Result<Option<RolloutSnapshot>, ControllerError> {
        let record = self.app_record(app).await?;
        self.ensure_unclaimed(app)?;
        self.ensure_not_frozen(app).await?;
        let last = self.last_rollout(app).await?;
        let nothing = |why: &str| ControllerError::NothingTo {
            app: app.clone(),
            what: "retry",
            why: why.into(),
        };
        let last = last.ok_or_else(|| nothing("it has never had a rollout"))?;
        if !last.rollout.phase.is_terminal() {
            return Err(ControllerError::RolloutInProgress {
                app: app.clone(),
                rollout: last.id,
            });
        }
        if last.rollout.phase == Phase::Succeeded {
            return Err(nothing("its last rollout succeeded"));
        }
        let stable = record
            .stable
            .ok_or_else(|| nothing("it has no stable release"))?;
        let launch = Launch::of(&record.manifest, &stable, &last.rollout.canary);
        self.start_rollout(app, stable, last.rollout.canary, launch, by)
            .await
    }

    /// Goes back to the release the last successful rollout replaced, at once (instant while it
    /// is still warm within `scaleDownDelay`; started again otherwise).
    ///
    /// # Errors
    /// No earlier release, a rollout in progress, a frozen app, or a release that does not start.
    pub async fn undo(
        &self,
        app: &AppName,
        by: &Author,
    ) -> Result<Option<RolloutSnapshot>, ControllerError> {
        let record = self.app_record(app).await?;
        self.ensure_unclaimed(app)?;
        self.ensure_not_frozen(app).await?;
        let nothing = |why: &str| ControllerError::NothingTo {
            app: app.clone(),
            what: "undo",
            why: why.into(),
        };
        let stable = record.stable.ok_or_else(|| nothing("it has no release"))?;
        let last = self.last_rollout(app).await?;
        let last = last.ok_or_else(|| nothing("it has had no rollout"))?;
        if matches!(last.rollout.phase, Phase::Promoting { .. }) {
            // The old release still runs: switching back is an abort of the promotion.
            let command = Command::Abort {
                reason: Some(format!("undone by {}", by.actor)),
            };
            return self.command(app, command, None, by).await.map(Some);
        }
        if !last.rollout.phase.is_terminal() {
            return Err(ControllerError::RolloutInProgress {
                app: app.clone(),
                rollout: last.id,
            });
        }
        if last.rollout.phase != Phase::Succeeded || last.rollout.canary.version != stable.version {
            return Err(nothing(
                "its last rollout did not replace the current release",
            ));
        }
        let back = Plan::undo(Plan::scale_down_delay_of(&record.manifest.spec.strategy));
        let launch = Launch {
            plan: back,
            policy: None,
            webhooks: Vec::new(),
        };
        self.start_rollout(app, stable, last.rollout.stable, launch, by)
            .await
    }

    /// Emergency stop: aborts the app's rollout (all traffic to stable) and refuses new
    /// rollouts until [`Controller::unfreeze`].
    ///
    /// # Errors
    /// Unknown app, store failures.
    pub async fn emergency_stop(
        &self,
        app: &AppName,
        reason: &str,
        by: &Author,
    ) -> Result<Option<RolloutSnapshot>, ControllerError> {
        self.app_record(app).await?;
        let traffic = self.traffic.lock(app).await;
        let why = format!("emergency stop by {}: {reason}", by.actor);
        let event = self.event(
            app,
            None,
            EventKind::Frozen,
            by,
            why.clone(),
            serde_json::json!({"reason": reason}),
        );
        self.store.append_events(&[event]).await?;
        let Some(record) = self.store.latest_rollout(app).await?.filter(|r| r.active) else {
            return Ok(None);
        };
        let snapshot = decode(record)?;
        let command = Command::Abort { reason: Some(why) };
        let next = self
            .apply(
                &traffic,
                &snapshot,
                Event::Command {
                    command,
                    actor: by.actor.clone(),
                },
                Some(by),
            )
            .await?;
        Ok(Some(RolloutSnapshot {
            rollout: next,
            ..snapshot
        }))
    }

    /// Lifts an emergency stop.
    ///
    /// # Errors
    /// Unknown app, an app that is not frozen, store failures.
    pub async fn unfreeze(&self, app: &AppName, by: &Author) -> Result<(), ControllerError> {
        self.app_record(app).await?;
        if self.frozen(app).await?.is_none() {
            return Err(ControllerError::NothingTo {
                app: app.clone(),
                what: "unfreeze",
                why: "it is not frozen".into(),
            });
        }
        let event = self.event(
            app,
            None,
            EventKind::Unfrozen,
            by,
            format!("unfrozen by {}", by.actor),
            serde_json::Value::Null,
        );
        self.store.append_events(&[event]).await?;
        Ok(())
    }

    /// The reason of the app's emergency stop, if it is frozen. Derived from the event log:
    /// the last freeze or unfreeze event decides.
    ///
    /// # Errors
    /// Store failures.
    pub async fn frozen(&self, app: &AppName) -> Result<Option<String>, ControllerError> {
        let query = EventQuery {
            app: Some(app.clone()),
            kinds: vec![EventKind::Frozen, EventKind::Unfrozen],
            limit: Some(1),
            ..EventQuery::default()
        };
        let last = self.store.events(&query).await?.pop();
        Ok(last
            .filter(|e| e.event.kind == EventKind::Frozen)
            .map(|e| e.event.reason))
    }

    /// The app as stored, or `UnknownApp`.
    pub(super) async fn app_record(&self, app: &AppName) -> Result<AppRecord, ControllerError> {
        self.store
            .app(app)
            .await?
            .ok_or_else(|| ControllerError::UnknownApp(app.clone()))
    }

    /// The app's most recent rollout, decoded.
    pub(super) async fn last_rollout(
        &self,
        app: &AppName,
    ) -> Result<Option<RolloutSnapshot>, ControllerError> {
        self.store
            .latest_rollout(app)
            .await?
            .map(decode)
            .transpose()
    }

    /// A first look, without the lock, so that a claimed app is named as such before any other
    /// refusal; the check that counts is made again under the app's lock.
    pub(super) fn ensure_unclaimed(&self, app: &AppName) -> Result<(), ControllerError> {
        match self.traffic.splitting(app) {
            Some(experiment) => Err(ControllerError::ExperimentRunning {
                app: app.clone(),
                experiment,
            }),
            None => Ok(()),
        }
    }

    pub(super) async fn ensure_not_frozen(&self, app: &AppName) -> Result<(), ControllerError> {
        match self.frozen(app).await? {
            Some(reason) => Err(ControllerError::Frozen {
                app: app.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }
}
