//! An Argo Rollouts-style rule: every `interval` measure the canary's error rate over the last
//! `interval` (a Prometheus `[interval]` range), fail the measurement when it is at or above
//! `max_error_rate` (i.e. `successCondition: result < max`, or `result[0] >= 1 − max` on the
//! success rate), and abort when failed measurements exceed `failureLimit`. A window without
//! requests gives no value, which Argo counts as an Error; more than `consecutiveErrorLimit`
//! (default 4) Errors in a row abort too (Argo #1466).
//!
//! The first measurement is taken one interval after the start, as with
//! `initialDelay: interval` or a query whose range must fill first.

use crate::sim::rule::{Signal, SimulatedJudge, WindowCounts};
use crate::sim::traffic::ArmTick;

/// Argo's default `consecutiveErrorLimit`.
pub const CONSECUTIVE_ERROR_LIMIT: u32 = 4;

/// Settings of the rule.
#[derive(Debug, Clone, Copy)]
pub struct ArgoSettings {
    /// Seconds between measurements, and the range of the query.
    pub interval_s: u64,
    /// A measurement fails at or above this canary error rate.
    pub max_error_rate: f64,
    /// Failed measurements tolerated.
    pub failure_limit: u32,
}

/// The documented example of Argo Rollouts' analysis guide: success rate over `[5m]` every
/// `5m`, `successCondition: result[0] >= 0.95`, `failureLimit: 3`.
pub const ARGO_DOCS: ArgoSettings = ArgoSettings {
    interval_s: 300,
    max_error_rate: 0.05,
    failure_limit: 3,
};

/// A tighter variant: error rate over `[1m]` every `1m`, `successCondition: result < 0.05`,
/// `failureLimit: 0` (Argo's default limit).
pub const ARGO_1M: ArgoSettings = ArgoSettings {
    interval_s: 60,
    max_error_rate: 0.05,
    failure_limit: 0,
};

/// The rule's running state.
#[derive(Debug, Clone)]
pub struct ArgoRule {
    settings: ArgoSettings,
    window: WindowCounts,
    failed: u32,
    errors_in_a_row: u32,
}

impl ArgoRule {
    pub fn new(settings: ArgoSettings) -> Self {
        ArgoRule {
            settings,
            window: WindowCounts::default(),
            failed: 0,
            errors_in_a_row: 0,
        }
    }
}

impl SimulatedJudge for ArgoRule {
    fn observe(&mut self, t: u64, canary: &ArmTick, _baseline: &ArmTick) -> Signal {
        self.window.add(canary);
        if t % self.settings.interval_s != 0 {
            return Signal::Continue;
        }
        let rate = self.window.error_rate();
        self.window = WindowCounts::default();
        match rate {
            None => {
                self.errors_in_a_row += 1;
                if self.errors_in_a_row > CONSECUTIVE_ERROR_LIMIT {
                    return Signal::Rollback;
                }
            }
            Some(rate) => {
                self.errors_in_a_row = 0;
                if rate >= self.settings.max_error_rate {
                    self.failed += 1;
                    if self.failed > self.settings.failure_limit {
                        return Signal::Rollback;
                    }
                }
            }
        }
        Signal::Continue
    }
}
