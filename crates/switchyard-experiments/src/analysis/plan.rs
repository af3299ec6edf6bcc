//! The sample an experiment needs: `minimumSampleSize` per variant, and, with a
//! `minimumDetectableEffect`, the units per variant that detect it on the primary metric with the
//! configured power (switchyard-stats' variance-based planner, from control's observed mean and
//! variance, inflated for confidence sequences under the sequential method).

use switchyard_stats::ArmSummary;
use switchyard_stats::power::variance_based::{PlanningInput, power};

use crate::experiment::Variant;

/// Largest total the planner searches; beyond it the effect is undetectable in practice.
const MAX_TOTAL_UNITS: f64 = 2e9;

/// What the plan needs from the analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanInput<'a> {
    pub minimum_per_variant: u64,
    /// `(relative effect, power)` when an effect size is configured.
    pub effect: Option<(f64, f64)>,
    /// Control's arm of the primary metric, when it has enough units.
    pub control: Option<ArmSummary>,
    /// Significance level of one comparison (after a Bonferroni-style split, if any).
    pub alpha: f64,
    /// N* under the sequential method.
    pub sequential_tuning: Option<f64>,
    pub variants: &'a [Variant],
    /// Units per variant, in the order of `variants`.
    pub units: &'a [u64],
}

pub use super::results::SamplePlan;

/// Computes the plan.
pub fn plan(input: &PlanInput<'_>) -> SamplePlan {
    let (power_per_variant, note) = match (input.effect, input.control) {
        (None, _) => (None, None),
        (Some(_), None) => (
            None,
            Some(
                "waiting for units in control to estimate the primary metric's variance".to_owned(),
            ),
        ),
        (Some((effect, target)), Some(control)) => {
            match per_variant_for_power(&control, effect, target, input) {
                Ok(n) => (Some(n), None),
                Err(note) => (None, Some(note)),
            }
        }
    };
    let required = power_per_variant
        .unwrap_or(0)
        .max(input.minimum_per_variant);
    let active = || {
        input
            .variants
            .iter()
            .zip(input.units)
            .filter(|(v, _)| v.share > 0.0)
    };
    let smallest = active().map(|(_, &n)| n).min().unwrap_or(0);
    let units_needed = active()
        .map(|(v, &n)| (required.saturating_sub(n) as f64 / v.share).ceil())
        .fold(0.0, f64::max);
    SamplePlan {
        minimum_per_variant: input.minimum_per_variant,
        power_per_variant,
        required_per_variant: required,
        smallest_variant: smallest,
        // Bounded by MAX_TOTAL_UNITS / the smallest share, far inside u64.
        units_needed: units_needed as u64,
        note,
    }
}

/// Smallest units per variant whose two-arm comparison reaches `target` power.
fn per_variant_for_power(
    control: &ArmSummary,
    effect: f64,
    target: f64,
    input: &PlanInput<'_>,
) -> Result<u64, String> {
    let planning = |n_total: f64| PlanningInput {
        mean: control.mean,
        variance: control.variance,
        n_total,
        n_variations: 2.0,
        alpha: input.alpha,
        sequential_tuning: input.sequential_tuning,
    };
    let reaches = |n_total: f64| {
        power(&planning(n_total), effect)
            .map(|p| p >= target)
            .map_err(|e| format!("no power plan: {e}"))
    };
    let mut high = 4.0;
    while !reaches(high)? {
        high *= 2.0;
        if high > MAX_TOTAL_UNITS {
            return Err(format!(
                "a {:.1} % effect is not detectable with fewer than {MAX_TOTAL_UNITS:.0} units",
                effect * 100.0
            ));
        }
    }
    let mut low = high / 2.0;
    while high - low > 1.0 {
        let mid = ((low + high) / 2.0).floor();
        if reaches(mid)? {
            high = mid;
        } else {
            low = mid;
        }
    }
    Ok((high / 2.0).ceil() as u64)
}
