//! The metric provider port.

use switchyard_core::expr::Value;
use switchyard_core::manifest::analysis::ProviderSpec;
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
