//! Guardrails: a one-sided, always-valid test of "the treatment degrades the metric by more than
//! the limit", so it can be checked at every look and acted on at once.
//!
//! The degradation D is treatment − control (absolute or relative, by the guardrail's scale),
//! signed so that positive is worse for the metric. The confidence sequence of D − limit gives a
//! lower bound (alternative "greater") and an upper bound (alternative "less"), each at level
//! 1 − alpha: the guardrail is violated when the lower bound of D exceeds the limit, and shown to
//! hold when the upper bound is below it. Guardrails use the sequential test whatever the
//! experiment's method, and are not corrected for multiple testing (a false alarm stops an
//! experiment; a missed one ships harm).

use switchyard_core::manifest::experiment::{Better, Scale};
use switchyard_stats::sequential::sequential_from_estimate;
use switchyard_stats::t_test::difference_estimate;
use switchyard_stats::{Alternative, Difference, EffectEstimate};

use super::arms::{Arms, ArmsError};
use super::compare::Setup;
use super::results::{GuardrailEvidence, GuardrailStatus};
use crate::experiment::Guardrail;

/// The status of one guardrail for one treatment.
pub fn status(
    arms: Result<Arms, ArmsError>,
    guardrail: &Guardrail,
    better: Better,
    setup: &Setup,
) -> GuardrailStatus {
    let not_enough = |reason: String| GuardrailStatus::NotEnoughData { reason };
    let arms = match arms {
        Ok(arms) => arms,
        Err(e) => return not_enough(e.to_string()),
    };
    let difference = match guardrail.scale {
        Scale::Absolute => Difference::Absolute,
        Scale::Relative => Difference::Relative,
    };
    let estimate = match difference_estimate(&arms.control, &arms.treatment, difference) {
        Ok(e) => e,
        Err(e) => return not_enough(e.to_string()),
    };
    let worse = match better {
        Better::Lower => 1.0,
        Better::Higher => -1.0,
    };
    let limit = guardrail.max_degradation;
    let degradation = worse * estimate.point_estimate;
    let beyond_limit = EffectEstimate {
        point_estimate: degradation - limit,
        ..estimate
    };
    let n = arms.control.n + arms.treatment.n;
    let bound = |alternative| {
        let options = setup.sequential(difference, alternative);
        sequential_from_estimate(beyond_limit, n, &options)
    };
    let (lower, upper) = match (bound(Alternative::Greater), bound(Alternative::Less)) {
        (Ok(lower), Ok(upper)) => (lower, upper),
        (Err(e), _) | (_, Err(e)) => return not_enough(e.to_string()),
    };
    let evidence = GuardrailEvidence {
        degradation,
        interval: [lower.ci[0] + limit, upper.ci[1] + limit],
        limit,
        p_value: lower.p_value,
    };
    if evidence.interval[0] > limit {
        GuardrailStatus::Violated(evidence)
    } else if evidence.interval[1] < limit {
        GuardrailStatus::WithinLimit(evidence)
    } else {
        GuardrailStatus::Inconclusive(evidence)
    }
}
