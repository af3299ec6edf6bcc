//! Snapshots: the lifts of an analysis at one time, kept by the store so the report can draw
//! each lift over time.

use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::Scale;

use crate::analysis::Results;

/// The lifts and units of one analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub at: Timestamp,
    /// Units per variant, control first.
    pub units: Vec<(String, u64)>,
    /// One point per metric and treatment whose lift was computable.
    pub points: Vec<SnapshotPoint>,
}

/// One lift at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotPoint {
    pub metric: String,
    pub variant: String,
    /// The tested difference: the relative lift or the absolute difference (`relative` says
    /// which).
    pub estimate: f64,
    /// Its interval; infinite bounds are stored as `null`.
    pub ci: [Option<f64>; 2],
    pub relative: bool,
}

impl Snapshot {
    /// The snapshot of an analysis, taken at its `computed_at`.
    pub fn of(results: &Results) -> Snapshot {
        let finite = |v: f64| v.is_finite().then_some(v);
        let points = results
            .metrics
            .iter()
            .flat_map(|m| {
                m.comparisons.iter().filter_map(|c| {
                    let lift = c.tested(results.difference)?;
                    let ci = c.shown_ci(results.difference)?;
                    let relative = results.difference == Scale::Relative;
                    Some(SnapshotPoint {
                        metric: m.name.clone(),
                        variant: c.variant.clone(),
                        estimate: lift.estimate,
                        ci: [finite(ci[0]), finite(ci[1])],
                        relative,
                    })
                })
            })
            .collect();
        Snapshot {
            at: results.computed_at,
            units: results
                .variants
                .iter()
                .map(|v| (v.name.clone(), v.units))
                .collect(),
            points,
        }
    }
}
