//! A strategy compiled into the steps the machine runs.
//!
//! Canary steps run as written. A blue-green strategy becomes: preview on, smoke tests,
//! pre-promotion analysis, a pause (timed with `autoPromotionAfter`, else until promoted), the
//! switch (weight 100), post-promotion analysis; the old release then stays warm for
//! `scaleDownDelay`. A rolling strategy becomes one scale step per batch, each followed by its
//! analysis. One machine runs all three, so pauses, gates, commands, persistence and restarts
//! behave the same for every strategy.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::ObjectName;
use switchyard_core::manifest::Percent;
use switchyard_core::manifest::app::{
    BackgroundAnalysis, CanaryStep, PauseStep, SmokeTest, Strategy,
};

/// One step of a compiled plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PlanStep {
    /// A step as a canary strategy writes it.
    Canary(CanaryStep),
    /// The preview listener routes to the new release from now on.
    Preview,
    /// HTTP checks against the preview; any failure rolls back.
    SmokeTests(Vec<SmokeTest>),
    /// A rolling batch: run this many instances of each release, traffic split by instances.
    Batch(Batch),
}

/// Instance counts after one batch of a rolling update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Instances of the new release.
    pub canary: u32,
    /// Instances of the old release.
    pub stable: u32,
}

/// Which strategy a plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StrategyKind {
    Canary,
    BlueGreen,
    Rolling,
    /// `switchyard undo`: straight back to the previous release.
    Undo,
}

/// The steps of a rollout and what runs beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub kind: StrategyKind,
    pub steps: Vec<PlanStep>,
    pub background: Option<BackgroundAnalysis>,
    /// How long the old stable keeps running after promotion.
    pub scale_down_delay: Duration,
}

impl Plan {
    /// Compiles a manifest's strategy for a new release of `instances` instances replacing a
    /// stable release of `stable_instances` (only a rolling update depends on them).
    pub fn of(strategy: &Strategy, instances: u32, stable_instances: u32) -> Plan {
        match strategy {
            Strategy::Rolling(r) => {
                let mut steps = Vec::new();
                let mut previous = 0;
                for (canary, stable) in r.batches(instances, stable_instances) {
                    steps.push(PlanStep::Batch(Batch { canary, stable }));
                    if let Some(a) = r.analysis.as_ref().filter(|_| canary > previous) {
                        steps.push(PlanStep::Canary(CanaryStep::Analysis(a.clone())));
                    }
                    previous = canary;
                }
                Plan {
                    kind: StrategyKind::Rolling,
                    steps,
                    background: None,
                    scale_down_delay: Duration::ZERO,
                }
            }
            Strategy::Canary(c) => Plan {
                kind: StrategyKind::Canary,
                steps: c.steps.iter().cloned().map(PlanStep::Canary).collect(),
                background: c.analysis.clone(),
                scale_down_delay: c.scale_down_delay,
            },
            Strategy::BlueGreen(b) => {
                let mut steps = vec![PlanStep::Preview];
                if !b.smoke_tests.is_empty() {
                    steps.push(PlanStep::SmokeTests(b.smoke_tests.clone()));
                }
                if let Some(a) = &b.pre_promotion_analysis {
                    steps.push(PlanStep::Canary(CanaryStep::Analysis(a.clone())));
                }
                steps.push(PlanStep::Canary(CanaryStep::Pause(PauseStep {
                    duration: b.auto_promotion_after,
                })));
                steps.push(PlanStep::Canary(CanaryStep::SetWeight(Percent::FULL)));
                if let Some(a) = &b.post_promotion_analysis {
                    steps.push(PlanStep::Canary(CanaryStep::Analysis(a.clone())));
                }
                Plan {
                    kind: StrategyKind::BlueGreen,
                    steps,
                    background: None,
                    scale_down_delay: b.scale_down_delay,
                }
            }
        }
    }

    /// Straight back to the previous release, keeping the current one warm as long as the app's
    /// strategy would.
    pub fn undo(scale_down_delay: Duration) -> Plan {
        Plan {
            kind: StrategyKind::Undo,
            steps: vec![PlanStep::Canary(CanaryStep::SetWeight(Percent::FULL))],
            background: None,
            scale_down_delay,
        }
    }

    /// Every analysis template the plan needs.
    pub fn template_names(&self) -> Vec<&ObjectName> {
        let mut names: Vec<&ObjectName> = Vec::new();
        for step in &self.steps {
            match step {
                PlanStep::Canary(CanaryStep::Analysis(a)) => names.extend(&a.templates),
                PlanStep::Canary(CanaryStep::Bake(b)) => names.extend(&b.templates),
                _ => {}
            }
        }
        if let Some(bg) = &self.background {
            names.extend(&bg.templates);
        }
        names
    }

    /// The strategy's scale-down delay for an undo.
    pub fn scale_down_delay_of(strategy: &Strategy) -> Duration {
        match strategy {
            Strategy::Canary(c) => c.scale_down_delay,
            Strategy::BlueGreen(b) => b.scale_down_delay,
            Strategy::Rolling(_) => Duration::ZERO,
        }
    }
}
