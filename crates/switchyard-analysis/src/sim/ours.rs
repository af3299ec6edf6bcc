//! Switchyard's judge in the simulator: the error-rate judge, plus the latency judge
//! (`compare: latency`) when the scenario's latencies differ, both
//! looking after every second. Any Fail rolls back; Pass is reported when every judge passed.

use switchyard_core::manifest::analysis::judge::AdaptivePlan;

use crate::judge::spec::share_alpha;
use crate::judge::{
    ArmInterval, Compare, IntervalObservation, JudgeOutcome, JudgeSpec, JudgeState,
};
use crate::sim::SimConfig;
use crate::sim::rule::{Signal, SimulatedJudge};
use crate::sim::traffic::ArmTick;

/// The judges of one run.
#[derive(Debug, Clone)]
pub struct SwitchyardJudge {
    judges: Vec<JudgeState>,
}

impl SwitchyardJudge {
    /// Judges that have been started.
    pub fn new(states: Vec<JudgeState>) -> Self {
        SwitchyardJudge { judges: states }
    }

    /// The error-rate judge, and the latency judge when the scenario's latencies differ.
    pub fn specs(config: &SimConfig) -> Vec<JudgeSpec> {
        let spec = |compare| JudgeSpec {
            margin: config.margin,
            max_increase: config.max_increase,
            alpha: config.alpha,
            ..JudgeSpec::new(compare)
        };
        let mut specs = vec![spec(Compare::ErrorRate)];
        if config.canary_latency_ms != config.baseline_latency_ms {
            specs.push(spec(Compare::Latency));
        }
        // As in a rollout's analysis, the judges share the error budget.
        share_alpha(&mut specs);
        specs
    }

    /// The adaptive canary's judges: the risk-ratio judge that chooses the weight, and the
    /// latency judge when the scenario's latencies differ, sharing alpha.
    pub fn adaptive_specs(config: &SimConfig) -> Vec<JudgeSpec> {
        let mut specs = Self::specs(config);
        specs[0] = JudgeSpec {
            max_increase: config.max_increase,
            alpha: config.alpha,
            adaptive: Some(AdaptivePlan {
                min_weight: config.min_weight as u8,
                max_weight: config.max_weight as u8,
                error_budget: config.error_budget,
            }),
            ..JudgeSpec::new(Compare::ErrorRate)
        };
        for spec in &mut specs {
            spec.alpha = config.alpha;
        }
        share_alpha(&mut specs);
        specs
    }

    /// The adaptive canary's settings in words.
    pub fn adaptive_settings(config: &SimConfig) -> String {
        format!(
            "adaptive step (weight {}-{} %, errorBudget {}, maxIncrease {}, alpha {}){}; looks every {} s",
            config.min_weight,
            config.max_weight,
            config.error_budget,
            config.max_increase,
            config.alpha,
            if config.canary_latency_ms != config.baseline_latency_ms {
                " + latency judge, sharing alpha"
            } else {
                ""
            },
            config.adaptive_interval
        )
    }

    /// The weight the adaptive judge chose, if this is the adaptive canary.
    pub fn weight(&self) -> Option<u8> {
        self.judges.first().and_then(JudgeState::weight)
    }

    /// The settings in words.
    pub fn settings(config: &SimConfig) -> String {
        format!(
            "judge error_rate (maxIncrease {}, margin {}, alpha {}){}; looks every 1 s",
            config.max_increase,
            config.margin,
            config.alpha,
            if config.canary_latency_ms != config.baseline_latency_ms {
                format!(
                    " + latency (maxIncrease {}); the two share alpha",
                    config.max_increase
                )
            } else {
                String::new()
            }
        )
    }
}

fn arm(tick: &ArmTick, with_latency: bool) -> ArmInterval {
    ArmInterval {
        requests: tick.requests,
        errors: tick.errors,
        latency: if with_latency {
            tick.buckets()
        } else {
            Vec::new()
        },
    }
}

impl SimulatedJudge for SwitchyardJudge {
    fn observe(&mut self, t: u64, canary: &ArmTick, baseline: &ArmTick) -> Signal {
        let now_ms = t * 1000;
        let mut passed = 0;
        for judge in &mut self.judges {
            let latency = judge.spec().compare.uses_latency();
            let observation = IntervalObservation {
                at_ms: now_ms,
                canary: arm(canary, latency),
                baseline: arm(baseline, latency),
            };
            // Simulated counts are always consistent, so this cannot fail; if it did, the run
            // would count as undecided rather than as a rollback.
            if judge.record(&observation).is_err() {
                return Signal::Continue;
            }
            match judge.verdict(now_ms).map(|v| v.outcome) {
                Ok(JudgeOutcome::Fail) => return Signal::Rollback,
                Ok(JudgeOutcome::Pass) => passed += 1,
                Ok(JudgeOutcome::Inconclusive) | Err(_) => {}
            }
        }
        if passed == self.judges.len() {
            Signal::Pass
        } else {
            Signal::Continue
        }
    }
}
