//! Manifests: the documents users write (`apiVersion: switchyard.dev/v1alpha1`).
//!
//! Two layers, as in vector's config: serde structs that reject unknown fields and whose field
//! types validate themselves while deserialising (so errors carry the YAML line and column), then
//! [`load`] checks what spans documents (references between them, duplicates) and returns a
//! [`ManifestSet`] that cannot be invalid.

pub mod analysis;
pub mod app;
pub mod experiment;
mod load;
mod locate;
pub mod notifier;
mod numbers;
mod one_of;
pub mod pipeline;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::name::{AppName, ObjectName};

pub use analysis::{AnalysisTemplate, AnalysisTemplateSpec, MetricSpec, ProviderSpec};
pub use app::{
    App, AppSpec, CanaryStep, CanaryStrategy, HealthCheck, RollbackPolicy, RuntimeSpec, Strategy,
};
pub use experiment::{Experiment, ExperimentSpec};
pub use load::{
    ManifestError, ManifestErrorKind, ManifestErrors, ManifestSet, load_dir, load_file, load_str,
};
pub use notifier::Notifier;
pub use numbers::{Percent, Rate, Ratio};
pub use pipeline::{Pipeline, PipelineSpec};
pub use window::DeploymentWindow;

/// The only API version this build reads.
pub const API_VERSION: &str = "switchyard.dev/v1alpha1";

/// Any manifest document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Manifest {
    App(App),
    AnalysisTemplate(AnalysisTemplate),
    Experiment(Experiment),
    Pipeline(Pipeline),
    DeploymentWindow(DeploymentWindow),
    Notifier(Notifier),
}

impl Manifest {
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::App(_) => "App",
            Manifest::AnalysisTemplate(_) => "AnalysisTemplate",
            Manifest::Experiment(_) => "Experiment",
            Manifest::Pipeline(_) => "Pipeline",
            Manifest::DeploymentWindow(_) => "DeploymentWindow",
            Manifest::Notifier(_) => "Notifier",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Manifest::App(a) => a.metadata.name.as_str(),
            Manifest::AnalysisTemplate(t) => t.metadata.name.as_str(),
            Manifest::Experiment(e) => e.metadata.name.as_str(),
            Manifest::Pipeline(p) => p.metadata.name.as_str(),
            Manifest::DeploymentWindow(w) => w.metadata.name.as_str(),
            Manifest::Notifier(n) => n.metadata.name.as_str(),
        }
    }
}

/// `metadata` of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppMeta {
    pub name: AppName,
    /// Free-form labels, kept and shown; only [`ENVIRONMENT_LABEL`] means something to
    /// Switchyard.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The label that names an app's environment: the dashboard filters by it and the deployment
/// metrics carry it.
pub const ENVIRONMENT_LABEL: &str = "environment";

impl AppMeta {
    /// The app's environment (its [`ENVIRONMENT_LABEL`]), if it names one.
    pub fn environment(&self) -> Option<&str> {
        self.labels.get(ENVIRONMENT_LABEL).map(String::as_str)
    }
}

/// `metadata` of other objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectMeta {
    pub name: ObjectName,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}
