//! What the store hands to the analysis: when the experiment started and, per variant, its
//! exposed units and the moments of each metric; and the recount of metrics capped at a
//! percentile, whose cap depends on every unit's value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::Cap;

use crate::experiment::{CompiledExperiment, capped};
use crate::moments::{Moments, UnitValue};

/// The aggregates of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentData {
    /// When the experiment started (its first possible exposure).
    pub started_at: Timestamp,
    /// Per variant name. A variant without an entry has no units yet.
    pub variants: BTreeMap<String, VariantData>,
    /// Per metric capped at a percentile, the cap its moments were recounted with (see
    /// [`percentile_caps`]); absent while no unit is exposed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub caps: BTreeMap<String, f64>,
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

/// The exposed units of an experiment as one read of the store found them: how many per
/// variant and, per metric asked for, (variant, value) for each exposed unit that has a value
/// (every other exposed unit's value is zero).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExposedUnits {
    pub units: BTreeMap<String, u64>,
    pub values: BTreeMap<String, Vec<(String, UnitValue)>>,
}

/// The names of the metrics capped at a percentile: the store reads their units' values for
/// [`percentile_caps`].
pub fn percentile_capped(experiment: &CompiledExperiment) -> Vec<String> {
    experiment
        .metrics()
        .iter()
        .filter(|m| matches!(m.cap, Some(Cap::Percentile { .. })))
        .map(|m| m.name.clone())
        .collect()
}

/// Caps each metric of [`percentile_capped`] at its percentile and recounts its moments.
///
/// The cap is the `percentile`-quantile (linear interpolation between order statistics, as SQL's
/// `PERCENTILE_CONT` that GrowthBook uses on PostgreSQL) of the metric's value over every exposed
/// unit, all variants pooled, units without a value counting as 0; with `ignore_zeros`, units
/// whose value is 0 are left out of the quantile (they still count, as 0, in the analysis).
/// Each unit's value and covariate then count at most the cap. A metric with no value to take a
/// quantile of keeps its moments and gets no cap.
///
/// `units` comes from one read, so the quantile and the recounted moments agree with each other
/// even while events arrive; a variant's unit count is the larger of the two reads'.
pub fn percentile_caps(
    experiment: &CompiledExperiment,
    data: &mut ExperimentData,
    units: &ExposedUnits,
) {
    let exposed: u64 = units.units.values().sum();
    for metric in experiment.metrics() {
        let Some(Cap::Percentile {
            percentile,
            ignore_zeros,
        }) = metric.cap
        else {
            continue;
        };
        let values = units
            .values
            .get(&metric.name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut sample: Vec<f64> = values
            .iter()
            .map(|(_, v)| v.x)
            .filter(|x| !(ignore_zeros && *x == 0.0))
            .collect();
        if !ignore_zeros {
            let without = exposed.saturating_sub(values.len() as u64);
            sample.extend(std::iter::repeat_n(0.0, without as usize));
        }
        sample.sort_unstable_by(f64::total_cmp);
        let Some(cap) = switchyard_stats::percentile_r7(&sample, percentile) else {
            continue;
        };
        for (name, variant) in &mut data.variants {
            let moments = Moments::of(
                values
                    .iter()
                    .filter(|(v, _)| v == name)
                    .map(|(_, value)| capped(*value, cap)),
            )
            .with_units(
                variant
                    .units
                    .max(units.units.get(name).copied().unwrap_or(0)),
            );
            variant.metrics.insert(metric.name.clone(), moments);
        }
        data.caps.insert(metric.name.clone(), cap);
    }
}
