//! One upstream instance as the data plane sees it: requests in flight, passive ejection and
//! active health, and the token that cuts its requests when a drain runs out of time.
//!
//! Ejection and health are small explicit state machines over plain data (no clock inside), so
//! they are tested without sockets or sleeps.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::uri::Authority;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Passive ejection after consecutive failures (connect failures or 5xx answers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ejection {
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
}

impl Ejection {
    /// Whether the instance may take traffic at `now`.
    pub fn available(&self, now: Instant) -> bool {
        self.ejected_until.is_none_or(|until| now >= until)
    }

    pub fn on_success(&mut self) {
        self.consecutive_failures = 0;
        self.ejected_until = None;
    }

    /// Counts a failure; returns true when this failure ejects the instance.
    pub fn on_failure(&mut self, now: Instant, threshold: u32, duration: Duration) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        // Once the ejection has expired, one more failure ejects again at once: the instance was
        // given a trial request and failed it.
        if self.consecutive_failures >= threshold.max(1) && self.available(now) {
            self.ejected_until = Some(now + duration);
            return true;
        }
        false
    }
}

/// Active health: `healthy_threshold` successes in a row bring an instance in,
/// `unhealthy_threshold` failures in a row take it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    healthy: bool,
    streak: u32,
}

impl Default for Health {
    /// New instances are trusted until checks say otherwise, so that a table swap does not
    /// stall traffic for `healthy_threshold × interval`.
    fn default() -> Self {
        Health {
            healthy: true,
            streak: 0,
        }
    }
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Records one check; returns the new state when it changed.
    pub fn observe(
        &mut self,
        ok: bool,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> Option<bool> {
        if ok == self.healthy {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let threshold = if ok {
            healthy_threshold
        } else {
            unhealthy_threshold
        };
        if self.streak >= threshold.max(1) {
            self.healthy = ok;
            self.streak = 0;
            return Some(ok);
        }
        None
    }
}

/// Shared state of one instance; lives as long as some routing table (or request) refers to it.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `ip:port`, the metric label.
    pub label: String,
    /// `ip:port` as the authority of upstream request URIs, parsed once rather than per request.
    pub authority: Authority,
    in_flight: AtomicUsize,
    healthy: AtomicBool,
    ejection: Mutex<Ejection>,
    /// True while `ejection` is in its initial state (no failure counted, not ejected), which is
    /// the state of nearly every request: then availability and successes need no lock. Written
    /// only under the `ejection` lock.
    clean: AtomicBool,
    /// Cancelled when a removed instance's drain deadline passes: its requests are cut.
    pub removed: CancellationToken,
    /// `removed` as a flag that bodies read on every poll without the token's lock.
    cut: AtomicBool,
}

impl Endpoint {
    pub fn new(addr: SocketAddr) -> Self {
        let label = addr.to_string();
        // A socket address always formats as a valid authority (`ip:port`, `[v6]:port`).
        let authority = Authority::try_from(label.as_str())
            .unwrap_or_else(|_| Authority::from_static("invalid"));
        Endpoint {
            addr,
            label,
            authority,
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            ejection: Mutex::new(Ejection::default()),
            clean: AtomicBool::new(true),
            removed: CancellationToken::new(),
            cut: AtomicBool::new(false),
        }
    }

    /// Cuts the requests still on this removed instance (its drain deadline passed).
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        self.removed.cancel();
    }

    /// Whether [`Endpoint::cut`] was called.
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request (including its streaming response body) until the guard drops.
    pub fn start_request(self: &Arc<Self>) -> EndpointGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        EndpointGuard(self.clone())
    }

    pub fn available(&self, now: Instant) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && (self.clean.load(Ordering::Relaxed) || self.lock_ejection().available(now))
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    pub fn on_success(&self) {
        if self.clean.load(Ordering::Relaxed) {
            return;
        }
        let mut ejection = self.lock_ejection();
        ejection.on_success();
        self.clean.store(true, Ordering::Relaxed);
    }

    /// Returns true when this failure ejected the instance.
    pub fn on_failure(&self, now: Instant, threshold: u32, duration: Duration) -> bool {
        let mut ejection = self.lock_ejection();
        self.clean.store(false, Ordering::Relaxed);
        ejection.on_failure(now, threshold, duration)
    }

    fn lock_ejection(&self) -> std::sync::MutexGuard<'_, Ejection> {
        self.ejection.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Decrements the instance's in-flight count on drop.
#[derive(Debug)]
pub struct EndpointGuard(Arc<Endpoint>);

impl Drop for EndpointGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejects_after_threshold_and_returns_after_duration() {
        let t0 = Instant::now();
        let d = Duration::from_secs(10);
        let mut e = Ejection::default();
        assert!(!e.on_failure(t0, 3, d));
        assert!(!e.on_failure(t0, 3, d));
        assert!(e.on_failure(t0, 3, d));
        assert!(!e.available(t0 + Duration::from_secs(9)));
        assert!(e.available(t0 + d));
        // A failed trial re-ejects at once.
        assert!(e.on_failure(t0 + d, 3, d));
        e.on_success();
        assert!(e.available(t0 + d));
        assert!(!e.on_failure(t0 + d, 3, d));
    }

    #[test]
    fn endpoint_ejects_and_recovers_through_the_lock_free_path() {
        let t0 = Instant::now();
        let d = Duration::from_secs(10);
        let e = Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 1)));
        assert!(e.available(t0));
        e.on_success();
        assert!(!e.on_failure(t0, 2, d));
        assert!(e.available(t0), "one failure does not eject");
        assert!(e.on_failure(t0, 2, d));
        assert!(!e.available(t0));
        assert!(e.available(t0 + d), "the trial after the ejection");
        e.on_success();
        assert!(e.available(t0));
        // The streak starts over after a success.
        assert!(!e.on_failure(t0 + d, 2, d));
        e.on_success();
        assert!(!e.on_failure(t0 + d, 2, d));
        assert!(e.available(t0 + d));
        assert_eq!(e.authority.as_str(), "127.0.0.1:1");
        assert!(!e.is_cut());
        e.cut();
        assert!(e.is_cut() && e.removed.is_cancelled());
    }

    #[test]
    fn health_needs_streaks_both_ways() {
        let mut h = Health::default();
        assert_eq!(h.observe(false, 2, 3), None);
        assert_eq!(h.observe(false, 2, 3), None);
        assert_eq!(h.observe(true, 2, 3), None);
        assert_eq!(h.observe(false, 2, 3), None);
        assert_eq!(h.observe(false, 2, 3), None);
        assert_eq!(h.observe(false, 2, 3), Some(false));
        assert!(!h.is_healthy());
        assert_eq!(h.observe(true, 2, 3), None);
        assert_eq!(h.observe(true, 2, 3), Some(true));
    }
}
