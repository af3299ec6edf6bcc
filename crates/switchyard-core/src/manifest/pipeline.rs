//! `kind: Pipeline`: one version promoted through ordered stages (dev → staging → prod), each
//! deploying its target apps at once or in waves, entered once the previous stage succeeded
//! and soaked, an approval was given and the deployment windows are open, and undone by a
//! failure policy when one of its rollouts fails.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ObjectMeta;
use crate::name::{AppName, ObjectName};

/// A `Pipeline` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub metadata: ObjectMeta,
    pub spec: PipelineSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PipelineSpec {
    pub stages: Vec<Stage>,
    /// The notifiers told about this pipeline's runs (`kind: Notifier`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifiers: Vec<ObjectName>,
}

/// One stage: its targets, what it waits for, and what a failure in it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Stage {
    pub name: ObjectName,
    /// Apps rolled out in parallel (one wave). Either this or `waves`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<AppName>,
    /// Groups of apps rolled out one group after the other, each group in parallel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
    /// How long the previous stage must have succeeded before this one starts.
    #[serde(
        default,
        with = "crate::duration::serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub soak: Option<Duration>,
    /// A person must approve the stage before it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Deployment windows the stage waits for, beyond those that apply to its apps,
    /// environments and pipeline by themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<ObjectName>,
    /// What a failed rollout in this stage does to the pipeline's work.
    #[serde(default)]
    pub on_failure: FailurePolicy,
}

/// One wave of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Wave {
    pub targets: Vec<AppName>,
}

/// An approval: who may give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Approval {
    /// The least role that may approve (`operator`, `deployer` or `admin`); the approver's
    /// token must also reach every app of the stage.
    #[serde(default)]
    pub role: ApprovalRole,
}

/// The least role that approves a stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalRole {
    #[default]
    Operator,
    Deployer,
    Admin,
}

impl ApprovalRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalRole::Operator => "operator",
            ApprovalRole::Deployer => "deployer",
            ApprovalRole::Admin => "admin",
        }
    }
}

/// What a failed rollout in a stage does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Abort the stage's other rollouts and undo its apps that already took the version; the
    /// stages before keep it. The pipeline fails.
    #[default]
    Rollback,
    /// As `rollback`, then undo every earlier stage, newest first.
    Cascade,
    /// Stop where things stand: rollouts in progress go on, nothing is undone, nothing new
    /// starts.
    Halt,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Rollback => "rollback",
            FailurePolicy::Cascade => "cascade",
            FailurePolicy::Halt => "halt",
        }
    }
}

impl Stage {
    /// The stage's waves: `targets` as one wave, or `waves`.
    pub fn wave_targets(&self) -> Vec<Vec<AppName>> {
        if self.waves.is_empty() {
            vec![self.targets.clone()]
        } else {
            self.waves.iter().map(|w| w.targets.clone()).collect()
        }
    }
}

impl Pipeline {
    /// The documents the pipeline refers to, as `(field path, kind, name)`: its targets
    /// (`App`) and its stages' windows (`DeploymentWindow`).
    pub fn references(&self) -> Vec<(String, &'static str, &str)> {
        let mut refs = Vec::new();
        for (i, stage) in self.spec.stages.iter().enumerate() {
            let path = format!("spec.stages[{i}]");
            for (t, app) in stage.targets.iter().enumerate() {
                refs.push((format!("{path}.targets[{t}]"), "App", app.as_str()));
            }
            for (w, wave) in stage.waves.iter().enumerate() {
                for (t, app) in wave.targets.iter().enumerate() {
                    refs.push((
                        format!("{path}.waves[{w}].targets[{t}]"),
                        "App",
                        app.as_str(),
                    ));
                }
            }
            for (w, window) in stage.windows.iter().enumerate() {
                refs.push((
                    format!("{path}.windows[{w}]"),
                    "DeploymentWindow",
                    window.as_str(),
                ));
            }
        }
        refs
    }
}

impl PipelineSpec {
    /// Every target app, in stage and wave order.
    pub fn apps(&self) -> Vec<&AppName> {
        self.stages
            .iter()
            .flat_map(|s| {
                s.targets
                    .iter()
                    .chain(s.waves.iter().flat_map(|w| w.targets.iter()))
            })
            .collect()
    }

    /// The problem with this pipeline's fields, as a field path and a message.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.stages.is_empty() {
            return Err((
                "spec.stages".into(),
                "a pipeline needs at least one stage".into(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut apps = BTreeSet::new();
        for (i, stage) in self.stages.iter().enumerate() {
            let path = format!("spec.stages[{i}]");
            if !names.insert(stage.name.as_str()) {
                return Err((
                    format!("{path}.name"),
                    format!("stage `{}` is defined twice", stage.name),
                ));
            }
            match (stage.targets.is_empty(), stage.waves.is_empty()) {
                (true, true) => {
                    return Err((path, "a stage needs `targets` or `waves`".into()));
                }
                (false, false) => {
                    return Err((
                        format!("{path}.waves"),
                        "give `targets` (one wave) or `waves`, not both".into(),
                    ));
                }
                _ => {}
            }
            if i == 0 && stage.soak.is_some() {
                return Err((
                    format!("{path}.soak"),
                    "the first stage has no previous stage to soak".into(),
                ));
            }
            for (w, wave) in stage.waves.iter().enumerate() {
                if wave.targets.is_empty() {
                    return Err((
                        format!("{path}.waves[{w}].targets"),
                        "a wave needs at least one target".into(),
                    ));
                }
            }
            let targets = stage
                .targets
                .iter()
                .enumerate()
                .map(|(t, app)| (format!("{path}.targets[{t}]"), app))
                .chain(stage.waves.iter().enumerate().flat_map(|(w, wave)| {
                    let path = path.clone();
                    wave.targets
                        .iter()
                        .enumerate()
                        .map(move |(t, app)| (format!("{path}.waves[{w}].targets[{t}]"), app))
                }));
            for (at, app) in targets {
                if !apps.insert(app.as_str()) {
                    return Err((
                        at,
                        format!(
                            "app `{app}` is a target twice: each app takes the version in one \
                             place of the pipeline"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
