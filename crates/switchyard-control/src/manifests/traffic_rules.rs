//! The rules of traffic experiments at apply time: an app is split by at most one running
//! experiment, exists, uses the canary strategy sticky by the experiment's unit, can run every
//! variant's version, and has no rollout in progress.

use std::collections::{BTreeMap, BTreeSet};

use switchyard_core::AppName;
use switchyard_core::manifest::app::Stickiness;
use switchyard_core::manifest::experiment::{SplitSpec, TrafficSplit};
use switchyard_core::manifest::{App, Experiment, ManifestSet, Strategy};
use switchyard_core::ports::StateStore;
use switchyard_experiments::port::{ExperimentRecord, ExperimentStatus};

use super::ApplyError;
use crate::experiments::LiveExperiments;

/// The app a traffic experiment splits, or `None` for a flag experiment.
pub(crate) fn split_app(experiment: &Experiment) -> Option<&AppName> {
    traffic_split(experiment).map(|t| &t.app)
}

fn traffic_split(experiment: &Experiment) -> Option<&TrafficSplit> {
    match &experiment.spec.split {
        SplitSpec::Traffic(t) => Some(t),
        SplitSpec::Flag(_) => None,
    }
}

/// The traffic experiments that run once `set` is applied, by app, each marked `true` when the
/// apply brings it. Applying a stopped experiment again leaves it stopped.
fn traffic_after_apply<'a>(
    records: &'a BTreeMap<String, ExperimentRecord>,
    set: &'a ManifestSet,
) -> BTreeMap<&'a AppName, Vec<(&'a Experiment, bool)>> {
    let applied: BTreeSet<&str> = set.experiments.iter().map(Experiment::key).collect();
    let running = |r: &ExperimentRecord| r.status == ExperimentStatus::Running;
    let kept = records
        .values()
        .filter(|r| running(r) && !applied.contains(r.manifest.key()))
        .map(|r| (&r.manifest, false));
    let brought = set
        .experiments
        .iter()
        .filter(|e| records.get(e.key()).is_none_or(running))
        .map(|e| (e, true));
    let mut by_app: BTreeMap<&AppName, Vec<(&Experiment, bool)>> = BTreeMap::new();
    for (experiment, new) in kept.chain(brought) {
        if let Some(t) = traffic_split(experiment) {
            by_app.entry(&t.app).or_default().push((experiment, new));
        }
    }
    by_app
}

/// Refuses an apply after which a traffic experiment would run but could not: its app does not
/// exist, does not use the canary strategy, is sticky by another key, cannot resolve a
/// variant's version, has a rollout in progress, or is split by another running experiment.
/// Checked are the apps of the traffic experiments the apply brings, and the apps it changes
/// that a running traffic experiment splits.
pub(super) async fn check(
    store: &dyn StateStore,
    live: &LiveExperiments,
    set: &ManifestSet,
) -> Result<(), ApplyError> {
    for (app, experiments) in traffic_after_apply(&live.records, set) {
        let in_set = set.apps.iter().find(|a| &a.metadata.name == app);
        if in_set.is_none() && !experiments.iter().any(|(_, new)| *new) {
            continue;
        }
        let key = experiments[0].0.key();
        if let Some((other, _)) = experiments.get(1) {
            return Err(ApplyError::ExperimentConflict {
                app: app.clone(),
                first: key.to_owned(),
                second: other.key().to_owned(),
            });
        }
        let stored = store.app(app).await?;
        let Some(manifest) = in_set.or(stored.as_ref().map(|r| &r.manifest)) else {
            return Err(ApplyError::UnknownApp {
                experiment: key.to_owned(),
                app: app.clone(),
            });
        };
        traffic_experiment_fits(experiments[0].0, manifest)
            .map_err(ApplyError::ExperimentDoesNotFit)?;
        if let Some(rollout) = store.latest_rollout(app).await?.filter(|r| r.active) {
            return Err(ApplyError::RolloutInProgress {
                experiment: key.to_owned(),
                app: app.clone(),
                rollout: rollout.id,
                version: rollout.version,
            });
        }
    }
    Ok(())
}

/// Whether `app` can serve the traffic experiment: a canary strategy whose stickiness, if any,
/// is the experiment's unit, and a release for every variant's version.
fn traffic_experiment_fits(experiment: &Experiment, app: &App) -> Result<(), String> {
    let key = experiment.key();
    let name = &app.metadata.name;
    let Some(split) = traffic_split(experiment) else {
        return Ok(());
    };
    let sticky = match &app.spec.strategy {
        Strategy::Canary(c) => c.stickiness.as_ref(),
        Strategy::BlueGreen(_) | Strategy::Rolling(_) => {
            let strategy = match app.spec.strategy {
                Strategy::BlueGreen(_) => "blueGreen",
                _ => "rolling",
            };
            return Err(format!(
                "experiment `{key}`: app `{name}` uses the {strategy} strategy; a traffic \
                 experiment splits the routes of an app with the canary strategy"
            ));
        }
    };
    if let Some(sticky) = sticky.filter(|s| *s != &split.unit) {
        return Err(format!(
            "experiment `{key}` identifies units by {} but app `{name}`'s canary is sticky by \
             {}; use the same key for both",
            describe(&split.unit),
            describe(sticky)
        ));
    }
    for variant in &experiment.spec.variants {
        let request = switchyard_rollout::DeployRequest {
            version: variant.version.clone(),
            ..Default::default()
        };
        if let Err(e) = switchyard_rollout::resolve::resolve(app, &request) {
            return Err(format!(
                "experiment `{key}`: variant `{}` cannot run as a release of app `{name}`: {e}",
                variant.name
            ));
        }
    }
    Ok(())
}

fn describe(unit: &Stickiness) -> String {
    match unit {
        Stickiness::Header(h) => format!("header `{h}`"),
        Stickiness::Cookie(c) => format!("cookie `{c}`"),
        Stickiness::Query(q) => format!("query parameter `{q}`"),
    }
}
