//! What the data plane must change for traffic experiments, as a pure function of what the
//! proxies serve now and the experiments in force.

use std::collections::BTreeMap;

use switchyard_core::manifest::app::Stickiness;
use switchyard_core::manifest::experiment::SplitSpec;
use switchyard_core::{AppName, Version};
use switchyard_experiments::port::{ExperimentRecord, ExperimentStatus};

/// A running traffic experiment as its app's routes serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub experiment: String,
    pub app: AppName,
    /// Where a request's unit key is read.
    pub unit: Stickiness,
    /// One per variant, control first.
    pub arms: Vec<Arm>,
}

/// A variant and the release that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    pub variant: String,
    pub version: Version,
    pub weight: u32,
}

impl Split {
    /// The split a running traffic experiment asks for; `None` for a flag experiment, a stopped
    /// one, or a variant without a version (which manifest validation rules out).
    pub fn of(record: &ExperimentRecord) -> Option<Split> {
        let SplitSpec::Traffic(traffic) = &record.manifest.spec.split else {
            return None;
        };
        if record.status != ExperimentStatus::Running {
            return None;
        }
        let arms = record
            .manifest
            .spec
            .variants
            .iter()
            .map(|v| {
                Some(Arm {
                    variant: v.name.to_string(),
                    version: v.version.clone()?,
                    weight: v.weight,
                })
            })
            .collect::<Option<Vec<Arm>>>()?;
        Some(Split {
            experiment: record.manifest.key().to_owned(),
            app: traffic.app.clone(),
            unit: traffic.unit.clone(),
            arms,
        })
    }

    /// The versions of the variants' releases.
    pub fn versions(&self) -> impl Iterator<Item = &Version> {
        self.arms.iter().map(|a| &a.version)
    }

    /// The variant a release (version) serves.
    pub fn variant_of(&self, version: &str) -> Option<&str> {
        self.arms
            .iter()
            .find(|a| a.version.as_str() == version)
            .map(|a| a.variant.as_str())
    }
}

/// One change to the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start the releases of the split's variants and route its app to them; then stop
    /// `retired`, the versions of the app's previous split that this one no longer names.
    Split { split: Split, retired: Vec<Version> },
    /// The app's experiment no longer runs: route the app back to its stable release and stop
    /// the releases of the split's variants.
    Restore { split: Split },
}

/// A running traffic experiment left out because another one splits the same app (applies
/// refuse this; two concurrent applies could still race into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub app: AppName,
    /// The experiment that splits the app.
    pub serving: String,
    /// The experiment left out.
    pub left_out: String,
}

/// What one reconciliation pass does: restores first, then splits, each in app order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub conflicts: Vec<Conflict>,
}

/// The steps from `placed` (what the proxies serve, by app) to what `experiments` ask for.
/// Releases are never stopped by a plan alone: the caller keeps the app's stable release (and a
/// rollout's) running whatever a step names.
pub fn plan<'a>(
    placed: &BTreeMap<AppName, Split>,
    experiments: impl IntoIterator<Item = &'a ExperimentRecord>,
) -> Plan {
    let mut wanted: BTreeMap<AppName, Split> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for split in experiments.into_iter().filter_map(Split::of) {
        let Some(other) = wanted.get(&split.app) else {
            wanted.insert(split.app.clone(), split);
            continue;
        };
        // The experiment already in the routes keeps them; otherwise the first by key.
        let placed_here = placed.get(&split.app).map(|p| p.experiment.as_str());
        let (serving, left_out) = if placed_here == Some(split.experiment.as_str()) {
            let previous = other.experiment.clone();
            wanted.insert(split.app.clone(), split.clone());
            (split.experiment, previous)
        } else {
            (other.experiment.clone(), split.experiment)
        };
        conflicts.push(Conflict {
            app: split.app,
            serving,
            left_out,
        });
    }
    let mut steps: Vec<Step> = placed
        .iter()
        .filter(|(app, _)| !wanted.contains_key(*app))
        .map(|(_, split)| Step::Restore {
            split: split.clone(),
        })
        .collect();
    for (app, split) in wanted {
        let previous = placed.get(&app);
        if previous == Some(&split) {
            continue;
        }
        let retired = previous
            .into_iter()
            .flat_map(Split::versions)
            .filter(|v| !split.versions().any(|w| w == *v))
            .cloned()
            .collect();
        steps.push(Step::Split { split, retired });
    }
    Plan { steps, conflicts }
}

#[cfg(test)]
mod tests;
