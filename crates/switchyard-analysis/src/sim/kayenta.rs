//! A Kayenta-style judge: fixed, non-overlapping 10-minute windows; in each, the per-step
//! (60 s, Kayenta's usual metric step) error rate and mean latency of canary and baseline are
//! classified by NetflixACAJudge's Mann-Whitney classifier (98 % interval, tolerance 0.25,
//! direction increase); the canary fails the window, and is rolled back at its end, when
//! either metric is High (with two equally weighted metrics one High scores 50, below the
//! usual marginal threshold of 75).

use switchyard_stats::{CanaryClassifierConfig, Classification, Direction, classify_canary};

use crate::sim::rule::{Signal, SimulatedJudge, WindowCounts};
use crate::sim::traffic::ArmTick;

/// Window length, seconds.
pub const WINDOW_S: u64 = 600;
/// Metric step, seconds.
pub const STEP_S: u64 = 60;

#[derive(Debug, Clone, Default)]
struct Series {
    step: WindowCounts,
    step_latency_sum: f64,
    error_rate: Vec<f64>,
    mean_latency: Vec<f64>,
}

impl Series {
    fn add(&mut self, tick: &ArmTick) {
        self.step.add(tick);
        self.step_latency_sum += tick.latency_sum;
    }

    /// Closes a step; a step without requests has no value and is left out (NaN in Kayenta).
    fn close_step(&mut self) {
        if let Some(rate) = self.step.error_rate() {
            self.error_rate.push(rate);
            self.mean_latency
                .push(self.step_latency_sum / self.step.requests as f64);
        }
        self.step = WindowCounts::default();
        self.step_latency_sum = 0.0;
    }

    fn clear(&mut self) {
        self.error_rate.clear();
        self.mean_latency.clear();
    }
}

/// The judge's running state.
#[derive(Debug, Clone, Default)]
pub struct KayentaRule {
    canary: Series,
    baseline: Series,
}

fn high(baseline: &[f64], canary: &[f64]) -> bool {
    let config = CanaryClassifierConfig {
        direction: Direction::Increase,
        ..CanaryClassifierConfig::default()
    };
    classify_canary(baseline, canary, &config)
        .is_ok_and(|c| c.classification == Classification::High)
}

impl SimulatedJudge for KayentaRule {
    fn observe(&mut self, t: u64, canary: &ArmTick, baseline: &ArmTick) -> Signal {
        self.canary.add(canary);
        self.baseline.add(baseline);
        if t % STEP_S == 0 {
            self.canary.close_step();
            self.baseline.close_step();
        }
        if t % WINDOW_S != 0 {
            return Signal::Continue;
        }
        let fail = high(&self.baseline.error_rate, &self.canary.error_rate)
            || high(&self.baseline.mean_latency, &self.canary.mean_latency);
        self.canary.clear();
        self.baseline.clear();
        if fail {
            Signal::Rollback
        } else {
            Signal::Continue
        }
    }
}
