//! The error policy of the tick, per rollout (in the spirit of kube-rs's `error_policy`): a
//! rollout whose tick fails is marked with the error, retried after a delay that doubles with
//! each failure in a row (1 s up to 60 s), and reported — in the log once per new error, and in
//! its API view. The other rollouts are never held up; one success clears the mark.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use switchyard_core::Timestamp;
use switchyard_core::ports::RolloutId;

use super::{ControllerError, chain};

/// The first retry comes this long after a failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Retries never wait longer than this.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// Why the controller cannot currently advance a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutTrouble {
    /// The last error, with its causes.
    pub error: String,
    /// Failures in a row.
    pub failures: u32,
    /// When the failure was first seen.
    pub since: Timestamp,
    /// When the controller tries again.
    pub retry_at: Timestamp,
}

/// The troubles of every rollout that has one.
#[derive(Debug, Default)]
pub(crate) struct Troubles(Mutex<HashMap<RolloutId, RolloutTrouble>>);

impl Troubles {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<RolloutId, RolloutTrouble>> {
        // Every update is one insert or remove: a panic cannot leave it half-changed.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether rollout `id` may be ticked at `now`.
    pub(crate) fn due(&self, id: RolloutId, now: Timestamp) -> bool {
        self.map().get(&id).is_none_or(|t| t.retry_at <= now)
    }

    pub(crate) fn get(&self, id: RolloutId) -> Option<RolloutTrouble> {
        self.map().get(&id).cloned()
    }

    pub(crate) fn succeeded(&self, id: RolloutId) {
        if self.map().remove(&id).is_some() {
            tracing::info!(rollout = id, "rollout advances again");
        }
    }

    pub(crate) fn failed(&self, id: RolloutId, error: &ControllerError, now: Timestamp) {
        let error = chain(error);
        let mut map = self.map();
        let previous = map.get(&id);
        let failures = previous.map_or(1, |t| t.failures.saturating_add(1));
        let delay = delay(failures);
        if previous.is_none_or(|t| t.error != error) {
            tracing::error!(rollout = id, %error, failures, retry_in = ?delay, "rollout cannot advance; retrying later, the other rollouts go on");
        }
        let trouble = RolloutTrouble {
            since: previous.map_or(now, |t| t.since),
            error,
            failures,
            retry_at: now.plus(delay),
        };
        map.insert(id, trouble);
    }

    /// Forgets the rollouts for which `keep` is false (finished ones).
    pub(crate) fn retain(&self, keep: impl Fn(RolloutId) -> bool) {
        self.map().retain(|id, _| keep(*id));
    }
}

/// The wait after `failures` failures in a row: 1 s, 2 s, 4 s, ... up to [`MAX_RETRY`].
fn delay(failures: u32) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|n| delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(delay(u32::MAX), MAX_RETRY);
    }
}
