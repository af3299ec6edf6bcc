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
    let worse = match better {
        Better::Lower => 1.0,
        Better::Higher => -1.0,
    };
    let limit = guardrail.max_degradation;
    if let Some(status) = exact(&arms, guardrail.scale, worse, limit) {
        return status;
    }
    let difference = match guardrail.scale {
        Scale::Absolute => Difference::Absolute,
        Scale::Relative => Difference::Relative,
    };
    let estimate = match difference_estimate(&arms.control, &arms.treatment, difference) {
        Ok(e) => e,
        Err(e) => return not_enough(e.to_string()),
    };
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

/// Units each arm needs before a difference without variation counts as a violation.
const EXACT_MIN_UNITS: f64 = 30.0;

/// Both arms without any variation (every control unit alike, every treatment unit alike — a
/// release whose every request fails against one that never fails): a test of the difference
/// would divide by a zero variance, yet the degradation is plain. With at least
/// [`EXACT_MIN_UNITS`] units in each arm, a degradation beyond the limit is a violation. A
/// difference within the limit is not taken as proof (no variation in a few dozen units says
/// little about rare events): that stays "not enough data" until the units vary. `None` when
/// either arm varies or the rule does not apply.
fn exact(arms: &Arms, scale: Scale, worse: f64, limit: f64) -> Option<GuardrailStatus> {
    let (c, t) = (&arms.control, &arms.treatment);
    if c.n < EXACT_MIN_UNITS || t.n < EXACT_MIN_UNITS || c.variance != 0.0 || t.variance != 0.0 {
        return None;
    }
    let difference = worse * (t.mean - c.mean);
    let degradation = match scale {
        Scale::Absolute => difference,
        Scale::Relative if c.mean != 0.0 => difference / c.mean.abs(),
        // Relative to a control of exactly zero: any worsening is infinitely large.
        Scale::Relative if difference > 0.0 => f64::INFINITY,
        Scale::Relative => return None,
    };
    (degradation > limit).then_some(GuardrailStatus::Violated(GuardrailEvidence {
        degradation,
        interval: [degradation, degradation],
        limit,
        p_value: 0.0,
    }))
}
