//! Rollback policy checks: thresholds on the canary's traffic over a trailing window.

use serde::{Deserialize, Serialize};
use switchyard_core::WindowStats;
use switchyard_core::manifest::app::RollbackPolicy;

/// The result of one policy check, kept as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyCheck {
    pub canary_requests: u64,
    pub canary_error_rate: Option<f64>,
    pub stable_requests: u64,
    pub stable_error_rate: Option<f64>,
    pub canary_p99: Option<f64>,
    pub stable_p99: Option<f64>,
    pub verdict: PolicyVerdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum PolicyVerdict {
    /// Fewer canary requests than `minRequests`: no judgement.
    NotEnoughData {
        needed: u64,
    },
    Healthy,
    /// The thresholds that were exceeded, in words.
    Breach {
        reasons: Vec<String>,
    },
}

/// Checks `policy` against the canary's and the stable release's windows.
pub fn check(policy: &RollbackPolicy, canary: &WindowStats, stable: &WindowStats) -> PolicyCheck {
    let mut check = PolicyCheck {
        canary_requests: canary.requests,
        canary_error_rate: canary.error_rate(),
        stable_requests: stable.requests,
        stable_error_rate: stable.error_rate(),
        canary_p99: canary.p99,
        stable_p99: stable.p99,
        verdict: PolicyVerdict::Healthy,
    };
    if canary.requests < policy.min_requests {
        check.verdict = PolicyVerdict::NotEnoughData {
            needed: policy.min_requests,
        };
        return check;
    }
    let mut reasons = Vec::new();
    if let (Some(limit), Some(rate)) = (policy.error_rate, canary.error_rate()) {
        if rate > limit.max.get() {
            reasons.push(format!(
                "error rate {:.2}% exceeds {:.2}% ({} of {} requests)",
                rate * 100.0,
                limit.max.get() * 100.0,
                canary.errors(),
                canary.requests
            ));
        }
    }
    if let (Some(limit), Some(rate)) = (policy.success_rate, canary.success_rate()) {
        if rate < limit.min.get() {
            reasons.push(format!(
                "success rate {:.2}% is below {:.2}%",
                rate * 100.0,
                limit.min.get() * 100.0
            ));
        }
    }
    if let (Some(limit), Some(c), Some(s)) = (policy.latency_increase, canary.p99, stable.p99) {
        if s > 0.0 && c / s > limit.max.get() {
            reasons.push(format!(
                "p99 latency {:.1} ms is {:.2}x the stable release's {:.1} ms (max {:.2}x)",
                c * 1e3,
                c / s,
                s * 1e3,
                limit.max.get()
            ));
        }
    }
    if !reasons.is_empty() {
        check.verdict = PolicyVerdict::Breach { reasons };
    }
    check
}
