//! The metric provider port.

use switchyard_core::expr::Value;
use switchyard_core::manifest::analysis::{ProviderSpec, ReleaseRole, TemplateVars};
use switchyard_core::name::{AppName, Version};

/// What to measure, and for which releases.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureRequest<'a> {
    pub app: &'a AppName,
    pub canary: &'a Version,
    pub stable: &'a Version,
    pub provider: &'a ProviderSpec,
    /// Default window when the provider does not name one.
    pub default_window: std::time::Duration,
}

impl MeasureRequest<'_> {
    /// The values of a template's placeholders when measuring the release in `role`:
    /// `{{release}}` is the role's name and `{{version}}` that release's version.
    pub fn template_vars(&self, role: ReleaseRole) -> TemplateVars<'_> {
        let (release, version) = match role {
            ReleaseRole::Canary => ("canary", self.canary),
            ReleaseRole::Stable => ("stable", self.stable),
        };
        TemplateVars {
            app: self.app.as_str(),
            release,
            version: version.as_str(),
            canary_version: self.canary.as_str(),
            stable_version: self.stable.as_str(),
        }
    }
}

/// A measured value, and the same metric of the baseline when the provider knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub result: Value,
    pub baseline: Option<Value>,
    /// How many requests (or samples) the value rests on, when known.
    pub samples: Option<u64>,
}

/// Why a measurement could not be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeasureError {
    /// Nothing to measure yet (no traffic in the window): neither success nor failure.
    #[error("no data: {reason}")]
    NoData { reason: String },
    /// The provider failed (unreachable, bad answer).
    #[error("provider failed: {reason}")]
    Provider { reason: String },
    /// This provider cannot serve that spec.
    #[error("provider `{provider}` is not available in this build")]
    Unsupported { provider: &'static str },
    /// The operator's policy does not allow it (a program, a variable, a host).
    #[error(transparent)]
    Forbidden(#[from] switchyard_policy::Violation),
}

/// A source of measurements.
#[async_trait::async_trait]
pub trait MetricProvider: Send + Sync {
    /// Takes one measurement.
    ///
    /// # Errors
    /// `NoData` when there is nothing to measure yet, `Provider` when the source failed.
    async fn measure(&self, request: &MeasureRequest<'_>) -> Result<Observation, MeasureError>;
}
