//! Which (app, release) entries telemetry keeps. An entry lives while a routing table (or a
//! request in flight) holds its recording handle, and after that until its ring window holds no
//! data any more, so the analysis engine can still query the final window of a release that was
//! just removed (a rolled-back canary). Then it is dropped with its Prometheus series: memory
//! follows the live releases, not every release ever served (each one's ring can hold hundreds
//! of histograms).
//!
//! "Held" is the handle's reference count: the map's own `Arc` is the only one left once no
//! table or request refers to the release. Counting happens under the map's lock, and new
//! handles are only handed out under that lock, so an entry seen unheld cannot gain a holder
//! while it is being removed. Sweeps are lazy (on table swaps, window queries and scrapes), so
//! waiting is a comparison of seconds, not a timer task.

use std::collections::HashMap;
use std::sync::Arc;

/// The key of an entry: (app, release).
pub type ReleaseKey = (String, String);

/// The last second in which an entry recorded anything (or was created).
pub trait LastActive {
    fn last_active(&self) -> u64;
}

/// Entries by (app, release), dropped once unheld and a window past their last activity.
#[derive(Debug)]
pub struct Retention<T> {
    entries: HashMap<ReleaseKey, Arc<T>>,
    window_seconds: u64,
    last_sweep: Option<u64>,
}

impl<T: LastActive> Retention<T> {
    pub fn new(window_seconds: u64) -> Self {
        Retention {
            entries: HashMap::new(),
            window_seconds,
            last_sweep: None,
        }
    }

    /// The entry for `key`, created with `make` when absent.
    pub fn get_or_insert_with(&mut self, key: ReleaseKey, make: impl FnOnce() -> T) -> Arc<T> {
        self.entries
            .entry(key)
            .or_insert_with(|| Arc::new(make()))
            .clone()
    }

    pub fn get(&self, key: &ReleaseKey) -> Option<Arc<T>> {
        self.entries.get(key).cloned()
    }

    /// Drops entries that nobody holds and whose window (as of `now`, a second count) holds
    /// nothing, and returns their keys. Sweeps at most once per second: callers include the
    /// analysis engine's window queries.
    pub fn sweep(&mut self, now: u64) -> Vec<ReleaseKey> {
        if self.last_sweep == Some(now) {
            return Vec::new();
        }
        self.last_sweep = Some(now);
        let window = self.window_seconds;
        let expired: Vec<ReleaseKey> = self
            .entries
            .iter()
            .filter(|(_, v)| {
                Arc::strong_count(v) == 1 && now.saturating_sub(v.last_active()) >= window
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            self.entries.remove(key);
        }
        expired
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&ReleaseKey, &Arc<T>)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[derive(Debug)]
    struct Activity(AtomicU64);

    impl LastActive for Activity {
        fn last_active(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn key(release: &str) -> ReleaseKey {
        ("shop".to_owned(), release.to_owned())
    }

    fn active_at(second: u64) -> impl FnOnce() -> Activity {
        move || Activity(AtomicU64::new(second))
    }

    #[test]
    fn unheld_entries_go_one_window_after_their_last_activity() {
        let mut r = Retention::new(10);
        let held = r.get_or_insert_with(key("stable"), active_at(0));
        drop(r.get_or_insert_with(key("canary"), active_at(100)));
        assert!(r.sweep(109).is_empty(), "its window still has data");
        assert_eq!(r.sweep(110), vec![key("canary")]);
        assert_eq!(r.len(), 1);
        assert!(r.get(&key("canary")).is_none());
        assert!(r.sweep(10_000).is_empty(), "a held entry stays");
        drop(held);
        assert_eq!(r.sweep(10_001), vec![key("stable")]);
    }

    #[test]
    fn activity_and_new_holders_keep_an_entry() {
        let mut r = Retention::new(10);
        let canary = r.get_or_insert_with(key("canary"), active_at(100));
        canary.0.store(105, Ordering::Relaxed);
        drop(canary);
        assert!(r.sweep(114).is_empty());
        let again = r.get_or_insert_with(key("canary"), active_at(0));
        assert_eq!(
            again.last_active(),
            105,
            "the same entry comes back with its history"
        );
        assert!(r.sweep(200).is_empty(), "held again");
        drop(again);
        assert_eq!(r.sweep(201), vec![key("canary")]);
    }

    #[test]
    fn sweeps_at_most_once_per_second() {
        let mut r = Retention::new(0);
        drop(r.get_or_insert_with(key("canary"), active_at(5)));
        assert_eq!(r.sweep(5).len(), 1);
        drop(r.get_or_insert_with(key("canary"), active_at(5)));
        assert!(r.sweep(5).is_empty());
        assert_eq!(r.sweep(6).len(), 1);
    }
}
