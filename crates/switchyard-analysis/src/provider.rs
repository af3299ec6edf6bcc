//! The metric provider port.

use switchyard_core::ReleaseTotals;
use switchyard_core::expr::Value;
use switchyard_core::manifest::analysis::judge::JudgeSource;
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
    /// The namespace of a `kubernetes` app, for `{{namespace}}` (empty for others).
    pub namespace: &'a str,
}

impl MeasureRequest<'_> {
    /// The values of a template's placeholders when measuring the release in `role`:
    /// `{{release}}` is the role's name and `{{version}}` that release's version.
    pub fn template_vars(&self, role: ReleaseRole) -> TemplateVars<'_> {
        vars(self.app, self.canary, self.stable, self.namespace, role)
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

    /// The monotonic totals of the canary and the baseline from a judge's `source`, for
    /// judges of apps whose traffic the built-in telemetry does not see.
    ///
    /// # Errors
    /// `Provider` when the source failed; `Unsupported` by providers without judge sources.
    async fn judge_totals(
        &self,
        _request: &JudgeTotalsRequest<'_>,
    ) -> Result<[ReleaseTotals; 2], MeasureError> {
        Err(MeasureError::Unsupported {
            provider: "judge source",
        })
    }
}

/// What [`MetricProvider::judge_totals`] reads: the source's queries, rendered for the canary
/// and for the baseline it is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeTotalsRequest<'a> {
    pub source: &'a JudgeSource,
    pub app: &'a AppName,
    pub canary: &'a Version,
    pub baseline: &'a Version,
    pub namespace: &'a str,
}

impl JudgeTotalsRequest<'_> {
    /// The placeholders' values for the canary (`{{release}}` = `canary`) or the baseline
    /// (`stable`).
    pub fn template_vars(&self, role: ReleaseRole) -> TemplateVars<'_> {
        vars(self.app, self.canary, self.baseline, self.namespace, role)
    }
}

/// The placeholders' values when measuring the release in `role`: `{{release}}` is the role's
/// name and `{{version}}` that release's version.
fn vars<'a>(
    app: &'a AppName,
    canary: &'a Version,
    stable: &'a Version,
    namespace: &'a str,
    role: ReleaseRole,
) -> TemplateVars<'a> {
    let (release, version) = match role {
        ReleaseRole::Canary => ("canary", canary),
        ReleaseRole::Stable => ("stable", stable),
    };
    TemplateVars {
        app: app.as_str(),
        release,
        version: version.as_str(),
        canary_version: canary.as_str(),
        stable_version: stable.as_str(),
        namespace,
    }
}
