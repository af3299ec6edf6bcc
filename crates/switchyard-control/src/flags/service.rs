//! [`FlagService`]: the compiled flag set in memory and the one way to change it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use switchyard_core::Timestamp;
use switchyard_core::ports::{Author, FlagChange, FlagChangeOutcome, FlagEditResult, FlagStore};
use switchyard_flags::FlagSet;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use super::edit;
use super::error::FlagServiceError;
use super::live::LiveFlags;
use super::usage::SdkUsage;

/// Who changes flags and why (recorded in the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub by: Author,
    pub reason: String,
}

/// The live flags and their store.
///
/// Reads are lock-free (`ArcSwap`); changes are serialised by a mutex so that each is compiled
/// against the set it replaces (two concurrent edits could each compile alone and not together).
pub struct FlagService {
    store: Arc<dyn FlagStore>,
    live: ArcSwap<LiveFlags>,
    writer: Mutex<()>,
    changes: watch::Sender<i64>,
    shutdown: CancellationToken,
    usage: SdkUsage,
}

impl std::fmt::Debug for FlagService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagService")
            .field("revision", &self.live.load().revision)
            .finish_non_exhaustive()
    }
}

impl FlagService {
    /// Loads and compiles the stored flags. `shutdown` ends the SSE streams, which would
    /// otherwise hold a graceful shutdown open.
    ///
    /// # Errors
    /// The store fails, or the stored set no longer reads or compiles.
    pub async fn load(
        store: Arc<dyn FlagStore>,
        shutdown: CancellationToken,
    ) -> Result<FlagService, FlagServiceError> {
        let stored = store.flag_documents().await?;
        let set = edit::from_documents(&stored)?;
        let live = LiveFlags::build(stored.revision, set).map_err(FlagServiceError::Invalid)?;
        let (changes, _) = watch::channel(stored.revision);
        Ok(FlagService {
            store,
            live: ArcSwap::from_pointee(live),
            writer: Mutex::new(()),
            changes,
            shutdown,
            usage: SdkUsage::default(),
        })
    }

    /// The current revision, compiled. Cheap: an `Arc` clone.
    pub fn live(&self) -> Arc<LiveFlags> {
        self.live.load_full()
    }

    /// The SDK instances that report using the flags (this replica's reports).
    pub fn usage(&self) -> &SdkUsage {
        &self.usage
    }

    /// The store, for the audit log.
    pub fn store(&self) -> &Arc<dyn FlagStore> {
        &self.store
    }

    /// Receives the revision after every change.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changes.subscribe()
    }

    /// Cancelled when the daemon stops.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Reads the stored flags again when their revision moved on (another replica changed
    /// them), compiles them and makes them live, telling the streams. Returns whether they
    /// changed.
    ///
    /// # Errors
    /// The store fails, or the stored set does not compile; the flags in force stay then.
    pub async fn refresh(&self) -> Result<bool, FlagServiceError> {
        let _writer = self.writer.lock().await;
        let stored = self.store.flag_documents().await?;
        if stored.revision == self.live.load().revision {
            return Ok(false);
        }
        let set = edit::from_documents(&stored)?;
        let live = LiveFlags::build(stored.revision, set).map_err(FlagServiceError::Invalid)?;
        self.live.store(Arc::new(live));
        self.changes.send_replace(stored.revision);
        Ok(true)
    }

    /// Applies `change` to the current set, compiles the whole result, stores the documents that
    /// differ with one audit entry each, and makes the new set live. With `dry_run`, stops after
    /// compiling and reports what would change.
    ///
    /// # Errors
    /// Whatever `change` returns; `Invalid` when the result does not compile (nothing is stored
    /// then); `Store` failures.
    pub async fn change(
        &self,
        who: &Who,
        at: Timestamp,
        dry_run: bool,
        change: impl FnOnce(&FlagSet) -> Result<FlagSet, FlagServiceError>,
    ) -> Result<(Arc<LiveFlags>, FlagChangeOutcome), FlagServiceError> {
        let _writer = self.writer.lock().await;
        let current = self.live.load_full();
        let next = change(&current.set)?;
        edit::check_keys(&current.set, &next)?;
        let mut built =
            LiveFlags::build(current.revision, next).map_err(FlagServiceError::Invalid)?;
        let edits = edit::diff(&current.set, &built.set)?;
        if dry_run || edits.is_empty() {
            let results = edits
                .iter()
                .map(|(e, result)| FlagEditResult {
                    kind: e.kind,
                    key: e.key.clone(),
                    result: (*result).into(),
                })
                .collect();
            let outcome = FlagChangeOutcome {
                revision: current.revision,
                results,
            };
            return Ok((current, outcome));
        }
        let outcome = self
            .store
            .change_flags(&FlagChange {
                by: who.by.clone(),
                reason: who.reason.clone(),
                at,
                edits: edits.into_iter().map(|(e, _)| e).collect(),
            })
            .await?;
        built.revision = outcome.revision;
        let built = Arc::new(built);
        self.live.store(Arc::clone(&built));
        self.changes.send_replace(outcome.revision);
        tracing::info!(revision = outcome.revision, actor = %who.by.actor, "flags changed");
        Ok((built, outcome))
    }
}
