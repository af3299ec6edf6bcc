//! What the store hands to the analysis: when the experiment started and, per variant, its
//! exposed units and the moments of each metric.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;

use crate::moments::Moments;

/// The aggregates of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentData {
    /// When the experiment started (its first possible exposure).
    pub started_at: Timestamp,
    /// Per variant name. A variant without an entry has no units yet.
    pub variants: BTreeMap<String, VariantData>,
}

/// One variant's aggregates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantData {
    /// Exposed units.
    pub units: u64,
    /// Per metric name. Units absent from a metric's moments count as zeros, so only units with
    /// a value need to be kept; a metric without an entry is all zeros.
    pub metrics: BTreeMap<String, Moments>,
}
