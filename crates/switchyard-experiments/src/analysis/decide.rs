//! The recommendation, from the analysed results. The first rule that applies decides:
//!
//! 1. a guardrail is violated → stop;
//! 2. sample-ratio mismatch → stop (the data cannot be trusted);
//! 3. once the sample is enough to decide (fixed: the full plan, including the power plan;
//!    sequential and Bayesian: `minimumSampleSize`):
//!    - a treatment is better on the primary metric and worse on no other metric → ship it (the
//!      best by relative lift when several are);
//!    - every treatment is worse on the primary metric → stop;
//!    - fixed horizon: no winner at the planned sample → stop;
//! 4. `maxDuration` has passed → stop;
//! 5. otherwise keep running, with the units still needed.

use std::time::Duration;

use switchyard_core::manifest::experiment::{Better, Method};

use super::results::{
    GuardrailResult, GuardrailStatus, MetricResult, Recommendation, SamplePlan, SrmCheck,
    StopReason, Verdict,
};
use crate::experiment::MetricRole;

/// Everything the rules read.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub method: Method,
    pub guardrails: &'a [GuardrailResult],
    pub srm: Option<&'a SrmCheck>,
    /// Goal metrics, primary first.
    pub metrics: &'a [MetricResult],
    pub plan: &'a SamplePlan,
    /// Treatments with a positive weight (those still taking units).
    pub active_treatments: &'a [String],
    pub elapsed: Duration,
    pub max_duration: Duration,
}

/// Applies the rules.
pub fn recommend(d: &Decision<'_>) -> Recommendation {
    if let Some((g, evidence)) = d.guardrails.iter().find_map(|g| match &g.status {
        GuardrailStatus::Violated(evidence) => Some((g, evidence)),
        _ => None,
    }) {
        let reason = StopReason::GuardrailViolated {
            metric: g.metric.clone(),
            variant: g.variant.clone(),
            evidence: *evidence,
        };
        return Recommendation::Stop { reason };
    }
    if let Some(srm) = d.srm.filter(|s| s.mismatch) {
        let reason = StopReason::SampleRatioMismatch {
            p_value: srm.p_value,
        };
        return Recommendation::Stop { reason };
    }
    let ready = match d.method {
        Method::Fixed => d.plan.smallest_variant >= d.plan.required_per_variant,
        Method::Sequential | Method::Bayesian => {
            d.plan.smallest_variant >= d.plan.minimum_per_variant
        }
    };
    if let (true, Some(primary)) = (ready, d.metrics.first()) {
        if let Some(variant) = winner(primary, d.metrics) {
            return Recommendation::Ship { variant };
        }
        let worse: Vec<String> = primary
            .comparisons
            .iter()
            .filter(|c| c.verdict == Verdict::Worse)
            .map(|c| c.variant.clone())
            .collect();
        let all_worse = !d.active_treatments.is_empty()
            && d.active_treatments.iter().all(|t| worse.contains(t));
        if all_worse {
            let reason = StopReason::TreatmentWorse {
                metric: primary.name.clone(),
                variants: worse,
            };
            return Recommendation::Stop { reason };
        }
        if d.method == Method::Fixed {
            let reason = StopReason::NoWinnerAtPlannedSample;
            return Recommendation::Stop { reason };
        }
    }
    if d.elapsed >= d.max_duration {
        let reason = StopReason::MaxDurationReached;
        return Recommendation::Stop { reason };
    }
    Recommendation::KeepRunning {
        units_needed: d.plan.units_needed,
    }
}

/// The treatment better on the primary metric and worse on no metric, with the best lift.
fn winner(primary: &MetricResult, metrics: &[MetricResult]) -> Option<String> {
    debug_assert!(primary.role == MetricRole::Primary);
    let harmless = |variant: &str| {
        metrics.iter().all(|m| {
            m.comparisons
                .iter()
                .all(|c| c.variant != variant || c.verdict != Verdict::Worse)
        })
    };
    let signed = |lift: f64| match primary.better {
        Better::Higher => lift,
        Better::Lower => -lift,
    };
    primary
        .comparisons
        .iter()
        .filter(|c| c.verdict == Verdict::Better && harmless(&c.variant))
        .max_by(|a, b| {
            let lift = |c: &super::results::Comparison| {
                c.relative
                    .or(c.absolute)
                    .map_or(0.0, |l| signed(l.estimate))
            };
            lift(a).total_cmp(&lift(b))
        })
        .map(|c| c.variant.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::results::{Comparison, GuardrailEvidence, Lift};
    use crate::experiment::MetricKind;
    use switchyard_core::manifest::experiment::Scale;

    fn comparison(variant: &str, verdict: Verdict, lift: f64) -> Comparison {
        Comparison {
            variant: variant.into(),
            absolute: Some(Lift::new(lift, [lift - 1.0, lift + 1.0])),
            relative: Some(Lift::new(lift, [lift - 1.0, lift + 1.0])),
            p_value: None,
            adjusted_p_value: None,
            adjusted_ci: None,
            chance_to_win: None,
            expected_loss: None,
            cuped_theta: None,
            verdict,
            notes: Vec::new(),
        }
    }

    fn metric(role: MetricRole, better: Better, comparisons: Vec<Comparison>) -> MetricResult {
        MetricResult {
            name: format!("{role:?}"),
            kind: MetricKind::Continuous,
            better,
            role,
            window: None,
            cap: None,
            variants: Vec::new(),
            comparisons,
        }
    }

    fn plan(smallest: u64) -> SamplePlan {
        SamplePlan {
            minimum_per_variant: 100,
            power_per_variant: Some(400),
            required_per_variant: 400,
            smallest_variant: smallest,
            units_needed: 2 * 400u64.saturating_sub(smallest),
            note: None,
        }
    }

    fn evidence() -> GuardrailEvidence {
        GuardrailEvidence {
            degradation: 0.3,
            interval: [0.2, 0.4],
            limit: 0.1,
            p_value: 0.001,
        }
    }

    struct Case {
        method: Method,
        guardrails: Vec<GuardrailResult>,
        srm: Option<SrmCheck>,
        metrics: Vec<MetricResult>,
        plan: SamplePlan,
        treatments: Vec<String>,
        elapsed_days: u64,
    }

    impl Case {
        fn new(method: Method, primary: Vec<Comparison>) -> Case {
            let treatments = primary.iter().map(|c| c.variant.clone()).collect();
            Case {
                method,
                guardrails: Vec::new(),
                srm: None,
                metrics: vec![metric(MetricRole::Primary, Better::Higher, primary)],
                plan: plan(1000),
                treatments,
                elapsed_days: 1,
            }
        }

        fn run(&self) -> Recommendation {
            recommend(&Decision {
                method: self.method,
                guardrails: &self.guardrails,
                srm: self.srm.as_ref(),
                metrics: &self.metrics,
                plan: &self.plan,
                active_treatments: &self.treatments,
                elapsed: Duration::from_secs(self.elapsed_days * 86_400),
                max_duration: Duration::from_secs(14 * 86_400),
            })
        }
    }

    #[test]
    fn the_best_harmless_winner_ships() {
        let case = Case::new(
            Method::Sequential,
            vec![
                comparison("a", Verdict::Better, 0.05),
                comparison("b", Verdict::Better, 0.10),
                comparison("c", Verdict::Inconclusive, 0.20),
            ],
        );
        assert_eq!(
            case.run(),
            Recommendation::Ship {
                variant: "b".into()
            }
        );
        // A significant harm on a secondary metric disqualifies `b`.
        let mut case = case;
        case.metrics.push(metric(
            MetricRole::Secondary,
            Better::Higher,
            vec![comparison("b", Verdict::Worse, -0.1)],
        ));
        assert_eq!(
            case.run(),
            Recommendation::Ship {
                variant: "a".into()
            }
        );
    }

    #[test]
    fn lower_is_better_picks_the_largest_decrease() {
        let mut case = Case::new(
            Method::Sequential,
            vec![
                comparison("a", Verdict::Better, -0.05),
                comparison("b", Verdict::Better, -0.10),
            ],
        );
        case.metrics[0].better = Better::Lower;
        assert_eq!(
            case.run(),
            Recommendation::Ship {
                variant: "b".into()
            }
        );
    }

    #[test]
    fn guardrails_then_srm_come_first() {
        let mut case = Case::new(
            Method::Sequential,
            vec![comparison("a", Verdict::Better, 0.1)],
        );
        case.srm = Some(SrmCheck {
            chi2: 30.0,
            p_value: 1e-6,
            mismatch: true,
            warning: None,
        });
        assert!(matches!(
            case.run(),
            Recommendation::Stop {
                reason: StopReason::SampleRatioMismatch { .. }
            }
        ));
        case.guardrails.push(GuardrailResult {
            metric: "errors".into(),
            variant: "a".into(),
            max_degradation: 0.1,
            scale: Scale::Absolute,
            control_value: None,
            variant_value: None,
            status: GuardrailStatus::Violated(evidence()),
        });
        let Recommendation::Stop {
            reason:
                StopReason::GuardrailViolated {
                    metric, variant, ..
                },
        } = case.run()
        else {
            panic!("guardrail stop")
        };
        assert_eq!((metric.as_str(), variant.as_str()), ("errors", "a"));
    }

    #[test]
    fn fixed_horizon_waits_for_the_planned_sample() {
        let mut case = Case::new(Method::Fixed, vec![comparison("a", Verdict::Better, 0.1)]);
        case.plan = plan(300);
        assert_eq!(
            case.run(),
            Recommendation::KeepRunning { units_needed: 200 }
        );
        // Sequential may decide as soon as the minimum is there.
        case.method = Method::Sequential;
        assert_eq!(
            case.run(),
            Recommendation::Ship {
                variant: "a".into()
            }
        );
        case.method = Method::Fixed;
        case.plan = plan(400);
        assert_eq!(
            case.run(),
            Recommendation::Ship {
                variant: "a".into()
            }
        );
        case.metrics[0].comparisons[0].verdict = Verdict::Inconclusive;
        assert_eq!(
            case.run(),
            Recommendation::Stop {
                reason: StopReason::NoWinnerAtPlannedSample
            }
        );
    }

    #[test]
    fn all_worse_stops_and_time_runs_out() {
        let case = Case::new(
            Method::Sequential,
            vec![
                comparison("a", Verdict::Worse, -0.1),
                comparison("b", Verdict::Worse, -0.2),
            ],
        );
        assert!(matches!(
            case.run(),
            Recommendation::Stop {
                reason: StopReason::TreatmentWorse { .. }
            }
        ));
        let mut case = Case::new(
            Method::Sequential,
            vec![
                comparison("a", Verdict::Worse, -0.1),
                comparison("b", Verdict::Inconclusive, 0.0),
            ],
        );
        assert!(matches!(case.run(), Recommendation::KeepRunning { .. }));
        case.elapsed_days = 14;
        assert_eq!(
            case.run(),
            Recommendation::Stop {
                reason: StopReason::MaxDurationReached
            }
        );
    }

    #[test]
    fn below_the_minimum_nothing_is_decided() {
        let mut case = Case::new(
            Method::Bayesian,
            vec![comparison("a", Verdict::Better, 0.1)],
        );
        case.plan = plan(50);
        assert_eq!(
            case.run(),
            Recommendation::KeepRunning { units_needed: 700 }
        );
    }
}
