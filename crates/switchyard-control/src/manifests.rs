//! [`Manifests`]: applying manifests, all or nothing.
//!
//! An apply parses every file (errors carry file:line:column and the field path), checks every
//! program, variable and host it names against the operator's policy, checks the templates it
//! references against the store, checks the traffic experiments it brings or
//! affects, binds the listeners of new apps (a port in use fails the whole apply), then stores
//! everything in one transaction. It holds the traffic lock of every app it names or splits, so
//! the checks and the change cannot be separated by a deploy or an experiment's split.

mod policy_rules;
mod traffic_rules;

pub use policy_rules::PolicyProblem;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use switchyard_core::manifest::{ManifestErrors, ManifestSet, load_str};
use switchyard_core::ports::{ApplyOutcome, Author, RolloutId, StateStore, StoreError};
use switchyard_core::{AppName, Clock, Version};
use switchyard_policy::Policy;

use crate::experiments::{ExperimentService, ExperimentServiceError};
use crate::ports::{ListenerError, ListenerRegistry};
use crate::traffic::TrafficOwner;

/// Why an apply changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Invalid(ManifestErrors),
    #[error("no manifest documents in the request")]
    Empty,
    #[error(transparent)]
    Listen(ListenerError),
    #[error(
        "app `{app}` can be split by one traffic experiment at a time, but `{first}` and `{second}` would both run; stop one first"
    )]
    ExperimentConflict {
        app: AppName,
        first: String,
        second: String,
    },
    #[error(
        "experiment `{experiment}` splits the traffic of app `{app}`, which does not exist; apply its manifest first (or in the same apply)"
    )]
    UnknownApp { experiment: String, app: AppName },
    /// The app cannot serve the traffic experiment (strategy, stickiness, a variant's version).
    #[error("{0}")]
    ExperimentDoesNotFit(String),
    #[error(
        "experiment `{experiment}` cannot split app `{app}`: rollout {rollout} (to {version}) is in progress; promote or abort it first"
    )]
    RolloutInProgress {
        experiment: String,
        app: AppName,
        rollout: RolloutId,
        version: Version,
    },
    #[error(
        "experiment `{experiment}`: {path} cannot change once units are counted ({why}); apply the new definition under a new name to count from the start"
    )]
    CountingChanged {
        experiment: String,
        path: String,
        why: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the applied experiments could not be reloaded")]
    Experiments(#[source] ExperimentServiceError),
    /// Programs, variables or hosts the operator's policy does not allow.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Policy(Vec<PolicyProblem>),
}

/// One manifest file of an apply.
#[derive(Debug, Clone, Copy)]
pub struct ManifestText<'a> {
    /// Shown in errors (`file:line:column`).
    pub name: &'a str,
    pub content: &'a str,
}

/// What an apply did, per document: `(kind, name, result)` with result `created`,
/// `configured`, `unchanged`, or `valid` in a dry run.
pub type ApplyReport = Vec<(String, String, String)>;

/// Applies manifests.
pub struct Manifests {
    policy: Arc<Policy>,
    store: Arc<dyn StateStore>,
    listeners: Arc<dyn ListenerRegistry>,
    experiments: Arc<ExperimentService>,
    traffic: Arc<TrafficOwner>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Manifests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifests").finish_non_exhaustive()
    }
}

impl Manifests {
    pub fn new(
        policy: Arc<Policy>,
        store: Arc<dyn StateStore>,
        listeners: Arc<dyn ListenerRegistry>,
        experiments: Arc<ExperimentService>,
        traffic: Arc<TrafficOwner>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            policy,
            store,
            listeners,
            experiments,
            traffic,
            clock,
        }
    }

    /// The app a traffic experiment splits; `None` for a flag experiment.
    pub fn traffic_app(experiment: &switchyard_core::manifest::Experiment) -> Option<&AppName> {
        traffic_rules::split_app(experiment)
    }

    /// Parses every file into one set. A document defined in an earlier file is an error
    /// located in the later one.
    ///
    /// # Errors
    /// `Invalid` with every problem of every file; `Empty` when there is no document at all.
    pub fn parse(files: &[ManifestText<'_>]) -> Result<ManifestSet, ApplyError> {
        let mut set = ManifestSet::default();
        let mut errors = Vec::new();
        for file in files {
            let name = Path::new(file.name);
            if let Err(e) = load_str(file.content, name).and_then(|s| set.merge(s, name)) {
                errors.extend(e.0);
            }
        }
        if !errors.is_empty() {
            return Err(ApplyError::Invalid(ManifestErrors(errors)));
        }
        if set.is_empty() {
            return Err(ApplyError::Empty);
        }
        Ok(set)
    }

    /// Checks `set` against what is applied and, unless `dry_run`, applies it whole.
    ///
    /// # Errors
    /// A missing template, a traffic experiment that could not run, a listen address in use,
    /// or a store failure; nothing is changed then.
    pub async fn apply(
        &self,
        set: &ManifestSet,
        dry_run: bool,
        by: &Author,
    ) -> Result<ApplyReport, ApplyError> {
        let refused = policy_rules::check(&self.policy, set);
        if !refused.is_empty() {
            return Err(ApplyError::Policy(refused));
        }
        let named: BTreeSet<&AppName> = set
            .apps
            .iter()
            .map(|a| &a.metadata.name)
            .chain(set.experiments.iter().filter_map(traffic_rules::split_app))
            .collect();
        let _traffic = self.traffic.lock_all(named).await;
        let applied = self.store.template_names().await?;
        set.check_references(&applied)
            .map_err(ApplyError::Invalid)?;
        let names_notifiers = set.apps.iter().any(|a| !a.spec.notifiers.is_empty());
        if !set.pipelines.is_empty() || names_notifiers {
            let names = |it: &mut dyn Iterator<Item = String>| it.collect::<BTreeSet<String>>();
            let apps = self.store.apps().await?;
            let windows = self.store.windows().await?;
            let notifiers = self.store.notifiers().await?;
            let applied = [
                (
                    "App",
                    names(&mut apps.iter().map(|a| a.manifest.metadata.name.to_string())),
                ),
                (
                    "DeploymentWindow",
                    names(&mut windows.iter().map(|w| w.metadata.name.to_string())),
                ),
                (
                    "Notifier",
                    names(&mut notifiers.iter().map(|n| n.metadata.name.to_string())),
                ),
            ]
            .into_iter()
            .collect();
            set.check_fleet_references(&applied)
                .map_err(ApplyError::Invalid)?;
        }
        let live = self.experiments.live();
        for experiment in &set.experiments {
            let Some(stored) = live.records.get(experiment.key()) else {
                continue;
            };
            if let Some((path, why)) = experiment.counting_change(&stored.manifest) {
                return Err(ApplyError::CountingChanged {
                    experiment: experiment.key().to_owned(),
                    path,
                    why,
                });
            }
        }
        traffic_rules::check(self.store.as_ref(), &live, set).await?;
        if dry_run {
            return Ok(set
                .manifests()
                .iter()
                .map(|m| (m.kind().into(), m.name().into(), "valid".into()))
                .collect());
        }
        let bound = self
            .listeners
            .ensure(&set.apps)
            .await
            .map_err(ApplyError::Listen)?;
        let outcome: ApplyOutcome = match self.store.apply(set, by, self.clock.now()).await {
            Ok(outcome) => outcome,
            Err(e) => {
                self.listeners.release(&bound).await;
                return Err(e.into());
            }
        };
        if !set.experiments.is_empty() {
            self.experiments
                .refresh()
                .await
                .map_err(ApplyError::Experiments)?;
        }
        Ok(outcome.results)
    }
}
