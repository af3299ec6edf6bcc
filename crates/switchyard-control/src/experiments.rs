//! Experiments as a service: event ingestion, results, the HTML report, stops, the flags of flag
//! experiments (evaluated beside the other flags, recording an exposure per unit), and the
//! guardrail check the daemon runs.
//!
//! - [`service`]: [`ExperimentService`], the live compiled experiments and every operation.
//! - [`exposure`]: exposures recorded on evaluation, written to the store in batches.

pub mod exposure;
pub mod service;

pub use exposure::Exposure;
pub use service::{ExperimentService, ExperimentServiceError, LiveExperiments};
