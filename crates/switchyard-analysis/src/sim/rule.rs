//! What every simulated judge implements: it sees each second's traffic of both releases, in
//! order, and may roll the canary back (or, for ours, pass it).

use crate::sim::traffic::ArmTick;

/// What a judge decides after a second of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Keep going.
    Continue,
    /// Roll the canary back now.
    Rollback,
    /// The canary passed (only judges that can promote early say this); the simulation keeps
    /// watching, so a later rollback still counts.
    Pass,
}

/// A judge under simulation.
pub trait SimulatedJudge {
    /// Second `t` (from 1) of traffic.
    fn observe(&mut self, t: u64, canary: &ArmTick, baseline: &ArmTick) -> Signal;
}

/// Counts of a window being accumulated.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowCounts {
    pub requests: u64,
    pub errors: u64,
}

impl WindowCounts {
    pub fn add(&mut self, tick: &ArmTick) {
        self.requests += tick.requests;
        self.errors += tick.errors;
    }

    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}
