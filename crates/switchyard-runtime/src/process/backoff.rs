//! How long to wait before restarting a crashed instance.
//!
//! Pure state over durations: the caller measures uptime and sleeps; this only decides.

use std::time::Duration;

/// First restart delay.
pub(crate) const INITIAL_DELAY: Duration = Duration::from_millis(500);
/// The delay doubles up to this.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(30);
/// An instance that ran this long before exiting is considered to have recovered: its next
/// restart starts again from [`INITIAL_DELAY`].
pub(crate) const RESET_AFTER: Duration = Duration::from_secs(60);

/// Exponential restart backoff: 0.5 s, 1 s, 2 s, ... 30 s, reset after 60 s of uptime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestartBackoff {
    next: Duration,
}

impl Default for RestartBackoff {
    fn default() -> Self {
        Self {
            next: INITIAL_DELAY,
        }
    }
}

impl RestartBackoff {
    /// The delay before the next restart of an instance that exited after running for `uptime`.
    pub(crate) fn next_delay(&mut self, uptime: Duration) -> Duration {
        if uptime >= RESET_AFTER {
            self.next = INITIAL_DELAY;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_half_a_second_up_to_thirty_seconds() {
        let mut backoff = RestartBackoff::default();
        let delays: Vec<_> = (0..9).map(|_| backoff.next_delay(ms(10))).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000].map(ms)
        );
    }

    #[test]
    fn resets_after_a_minute_of_uptime() {
        let mut backoff = RestartBackoff::default();
        for _ in 0..5 {
            backoff.next_delay(ms(10));
        }
        assert_eq!(backoff.next_delay(RESET_AFTER), INITIAL_DELAY);
        assert_eq!(backoff.next_delay(ms(10)), ms(1000));
    }

    #[test]
    fn just_under_a_minute_does_not_reset() {
        let mut backoff = RestartBackoff::default();
        backoff.next_delay(ms(10));
        assert_eq!(backoff.next_delay(RESET_AFTER - ms(1)), ms(1000));
    }
}
