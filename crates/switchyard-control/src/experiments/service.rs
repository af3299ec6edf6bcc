//! [`ExperimentService`]: the applied experiments compiled in memory, the flags of flag
//! experiments, and every operation on experiments (ingest, results, report, stop, guardrails).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use switchyard_core::AppName;
use switchyard_core::manifest::experiment::{FlagServing, SplitSpec};
use switchyard_core::ports::{Author, StoreError};
use switchyard_core::{Clock, Timestamp};
use switchyard_experiments::data::{ExperimentData, percentile_capped, percentile_caps};
use switchyard_experiments::port::{ExperimentRecord, ExperimentStatus, ExperimentStore, Ingested};
use switchyard_experiments::{
    AnalysisError, BatchError, CompiledExperiment, EventError, GuardrailStatus, Recommendation,
    Results, Snapshot, StopReason, analyze, render_html, validate_batch,
};
use switchyard_flags::{
    AttributeRef, CompiledFlags, EvaluationContext, EvaluationDetails, FlagError, FlagSet, Reason,
};
use tokio::sync::{Mutex, watch};

use super::exposure::{self, Exposure, ExposureQueue};
use crate::traffic::SplitClaims;

/// Snapshots for the report's lift-over-time plot are kept at most this often.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(5);

/// Why an experiment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentServiceError {
    #[error("experiment `{0}` does not exist; apply its manifest first")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("{error}")]
    Batch { error: BatchError },
    #[error("stored experiment `{key}` no longer compiles: {message}")]
    Invalid { key: String, message: String },
    #[error("the flags of the experiments do not compile: {0}")]
    Flags(#[source] FlagError),
    #[error("experiment `{key}`: {source}")]
    Analysis {
        key: String,
        #[source]
        source: AnalysisError,
    },
}

/// The experiments as applied, compiled, and the flags of the flag experiments.
#[derive(Debug)]
pub struct LiveExperiments {
    pub records: BTreeMap<String, ExperimentRecord>,
    pub compiled: Arc<BTreeMap<String, CompiledExperiment>>,
    /// One flag per flag experiment: the split while it runs, control once stopped.
    pub flags: CompiledFlags,
    /// How many flags `flags` holds.
    pub flag_count: usize,
}

impl LiveExperiments {
    fn build(records: Vec<ExperimentRecord>) -> Result<Self, ExperimentServiceError> {
        let mut compiled = BTreeMap::new();
        let mut set = FlagSet::default();
        let mut by_key = BTreeMap::new();
        for record in records {
            let key = record.manifest.key().to_owned();
            let experiment = CompiledExperiment::new(&record.manifest).map_err(|e| {
                ExperimentServiceError::Invalid {
                    key: key.clone(),
                    message: e.to_string(),
                }
            })?;
            let control = record
                .manifest
                .control()
                .map(|c| c.name.to_string())
                .unwrap_or_default();
            let serving = match &record.status {
                ExperimentStatus::Running => FlagServing::Split,
                ExperimentStatus::Stopped { .. } => FlagServing::Variant(&control),
            };
            if let Some(flag) = record.manifest.flag_definition(serving) {
                set.flags.push(flag);
            }
            compiled.insert(key.clone(), experiment);
            by_key.insert(key, record);
        }
        let flag_count = set.flags.len();
        let flags = set.compile().map_err(ExperimentServiceError::Flags)?;
        Ok(LiveExperiments {
            records: by_key,
            compiled: Arc::new(compiled),
            flags,
            flag_count,
        })
    }

    /// Whether `key` is the flag of a flag experiment.
    pub fn has_flag(&self, key: &str) -> bool {
        self.flags.flag_type(key).is_some()
    }
}

/// What `POST /api/v1/events` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestReport {
    /// Events counted now.
    pub accepted: usize,
    /// Events whose idempotency key was already stored: counted before, not again.
    pub duplicates: usize,
    /// Events refused, each with a JSON pointer into the body.
    pub rejected: usize,
    pub errors: Vec<EventError>,
}

/// The applied experiments and what can be done with them.
pub struct ExperimentService {
    store: Arc<dyn ExperimentStore>,
    clock: Arc<dyn Clock>,
    live: Arc<ArcSwap<LiveExperiments>>,
    exposures: ExposureQueue,
    /// Keep raw events beside their idempotency keys.
    keep_raw: bool,
    /// Serialises refreshes and stops so that each rebuild sees the latest store.
    writer: Mutex<()>,
    last_snapshot: std::sync::Mutex<BTreeMap<String, Timestamp>>,
    /// Bumped after every rebuild of the live experiments, so the data plane can follow them.
    revision: watch::Sender<u64>,
    /// Exposures dropped (queue full) as of the last check, to log only new drops.
    dropped_seen: std::sync::atomic::AtomicU64,
    /// Per experiment with a percentile cap, its last recounted data (see `data`).
    recounted: std::sync::Mutex<BTreeMap<String, Recounted>>,
}

/// Data recounted with percentile caps, and what it was read at.
struct Recounted {
    generation: u64,
    counted_events: u64,
    data: ExperimentData,
}

impl std::fmt::Debug for ExperimentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExperimentService")
            .field("experiments", &self.live.load().records.len())
            .finish_non_exhaustive()
    }
}

impl ExperimentService {
    /// Loads and compiles the stored experiments and starts the exposure writer.
    ///
    /// # Errors
    /// The store fails, or a stored experiment no longer compiles.
    pub async fn load(
        store: Arc<dyn ExperimentStore>,
        clock: Arc<dyn Clock>,
        keep_raw: bool,
    ) -> Result<ExperimentService, ExperimentServiceError> {
        let live = Arc::new(ArcSwap::from_pointee(LiveExperiments::build(
            store.experiments().await?,
        )?));
        let reader = Arc::clone(&live);
        let exposures = exposure::spawn(Arc::clone(&store), move || {
            Arc::clone(&reader.load().compiled)
        });
        Ok(ExperimentService {
            store,
            clock,
            live,
            exposures,
            keep_raw,
            writer: Mutex::new(()),
            last_snapshot: std::sync::Mutex::default(),
            revision: watch::Sender::new(0),
            dropped_seen: std::sync::atomic::AtomicU64::new(0),
            recounted: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// The experiments in force. Cheap: an `Arc` clone.
    pub fn live(&self) -> Arc<LiveExperiments> {
        self.live.load_full()
    }

    /// Reads the experiments again (after an apply or a stop).
    ///
    /// # Errors
    /// As [`ExperimentService::load`]; the experiments in force stay then.
    pub async fn refresh(&self) -> Result<(), ExperimentServiceError> {
        let _guard = self.writer.lock().await;
        let live = LiveExperiments::build(self.store.experiments().await?)?;
        self.live.store(Arc::new(live));
        self.revision.send_modify(|r| *r += 1);
        Ok(())
    }

    /// Notifies each time the experiments in force change (after every
    /// [`ExperimentService::refresh`]: an apply, a stop by an operator or by
    /// [`ExperimentService::check`]). The value is a revision number; only its changes matter,
    /// and several changes in a row may be seen as one.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Where the data plane reports exposures.
    pub fn exposures(&self) -> &ExposureQueue {
        &self.exposures
    }

    /// Evaluates the flag of a flag experiment (`None` when `key` is not one), recording the
    /// unit's exposure when the split assigned it.
    pub fn evaluate<'a>(
        &self,
        live: &'a LiveExperiments,
        key: &'a str,
        context: &EvaluationContext,
        now: switchyard_flags::Timestamp,
    ) -> Option<EvaluationDetails<'a>> {
        if !live.has_flag(key) {
            return None;
        }
        let details = live.flags.evaluate(key, None, context, now);
        self.note_exposure(live, &details, context, now);
        Some(details)
    }

    fn note_exposure(
        &self,
        live: &LiveExperiments,
        details: &EvaluationDetails<'_>,
        context: &EvaluationContext,
        now: switchyard_flags::Timestamp,
    ) {
        if details.reason != Reason::Split {
            return;
        }
        let (Some(variant), Some(experiment)) = (details.variant, live.compiled.get(details.key))
        else {
            return;
        };
        let switchyard_experiments::Split::Flag { unit } = experiment.split() else {
            return;
        };
        let unit = match context.get(unit) {
            Some(AttributeRef::Str(s)) => s.to_owned(),
            Some(AttributeRef::Number(n)) => n.to_string(),
            Some(AttributeRef::Bool(b)) => b.to_string(),
            _ => return,
        };
        let at = Timestamp::from_millis(u64::try_from(now.unix_millis()).unwrap_or(0));
        self.exposures.record(Exposure::Assigned {
            experiment: details.key.to_owned(),
            unit,
            variant: variant.to_owned(),
            at,
        });
    }

    /// Validates and stores a batch of events.
    ///
    /// # Errors
    /// A body that is not a batch ([`ExperimentServiceError::NotJson`],
    /// [`ExperimentServiceError::Batch`]) or a store failure; per-event problems are in the
    /// report instead, and the valid events of the batch are stored.
    pub async fn ingest(&self, body: &[u8]) -> Result<IngestReport, ExperimentServiceError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(ExperimentServiceError::NotJson)?;
        let now = self.clock.now();
        let live = self.live();
        let batch = validate_batch(&value, live.compiled.as_ref(), now)
            .map_err(|error| ExperimentServiceError::Batch { error })?;
        let outcomes = self
            .store
            .ingest(&live.compiled, &batch.events, self.keep_raw, now)
            .await?;
        let mut report = IngestReport {
            errors: batch.errors,
            ..IngestReport::default()
        };
        for (event, outcome) in batch.events.iter().zip(outcomes) {
            match outcome {
                Ingested::Counted => report.accepted += 1,
                Ingested::Duplicate => report.duplicates += 1,
                Ingested::Rejected { message } => report.errors.push(EventError {
                    index: event.index,
                    pointer: format!("/events/{}", event.index),
                    message,
                }),
            }
        }
        report.errors.sort_by_key(|e| e.index);
        let mut indexes: Vec<usize> = report.errors.iter().map(|e| e.index).collect();
        indexes.dedup();
        report.rejected = indexes.len();
        Ok(report)
    }

    /// The record of one experiment.
    ///
    /// # Errors
    /// Unknown experiment.
    pub fn record(&self, key: &str) -> Result<ExperimentRecord, ExperimentServiceError> {
        self.live()
            .records
            .get(key)
            .cloned()
            .ok_or_else(|| ExperimentServiceError::Unknown(key.to_owned()))
    }

    /// The analysis of an experiment now.
    ///
    /// # Errors
    /// Unknown experiment, store failure, or aggregates that do not fit the experiment.
    pub async fn results(&self, key: &str) -> Result<Results, ExperimentServiceError> {
        let live = self.live();
        let experiment = live
            .compiled
            .get(key)
            .ok_or_else(|| ExperimentServiceError::Unknown(key.to_owned()))?;
        let generation = live.records.get(key).map_or(0, |r| r.generation);
        let data = self.data(key, experiment, generation).await?;
        analyze(experiment, &data, self.clock.now()).map_err(|source| {
            ExperimentServiceError::Analysis {
                key: key.to_owned(),
                source,
            }
        })
    }

    /// The aggregates to analyse. A metric capped at a percentile needs every exposed unit's
    /// value (one read of all units); that recount is kept until the experiment counts another
    /// event or is applied again, so idle experiments are not read again at every check.
    async fn data(
        &self,
        key: &str,
        experiment: &CompiledExperiment,
        generation: u64,
    ) -> Result<ExperimentData, ExperimentServiceError> {
        let unknown = || ExperimentServiceError::Unknown(key.to_owned());
        let capped = percentile_capped(experiment);
        if capped.is_empty() {
            return self.store.data(key).await?.ok_or_else(unknown);
        }
        // Counted before the data is read: events that arrive in between make the next
        // count differ, so the cache can only be too fresh, never stale.
        let counted_events = self.store.counted_events(key).await?;
        if let Some(hit) = self
            .recounted_lock()
            .get(key)
            .filter(|r| r.generation == generation && r.counted_events == counted_events)
        {
            return Ok(hit.data.clone());
        }
        let mut data = self.store.data(key).await?.ok_or_else(unknown)?;
        let units = self.store.exposed_units(key, &capped).await?;
        percentile_caps(experiment, &mut data, &units);
        self.recounted_lock().insert(
            key.to_owned(),
            Recounted {
                generation,
                counted_events,
                data: data.clone(),
            },
        );
        Ok(data)
    }

    fn recounted_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Recounted>> {
        self.recounted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The self-contained HTML report of an experiment.
    ///
    /// # Errors
    /// As [`ExperimentService::results`].
    pub async fn report(&self, key: &str) -> Result<String, ExperimentServiceError> {
        let (results, snapshots) = self.results_over_time(key).await?;
        Ok(render_html(&results, &snapshots))
    }

    /// The analysis now, with the snapshots kept so far and one of now (what the report
    /// draws the lift over time from).
    ///
    /// # Errors
    /// As [`ExperimentService::results`].
    pub async fn results_over_time(
        &self,
        key: &str,
    ) -> Result<(Results, Vec<Snapshot>), ExperimentServiceError> {
        let results = self.results(key).await?;
        let mut snapshots = self.store.snapshots(key).await?;
        snapshots.push(Snapshot::of(&results));
        Ok((results, snapshots))
    }

    /// Stops an experiment: its flag serves control from now on. Returns `false` when it had
    /// already stopped.
    ///
    /// # Errors
    /// Unknown experiment or store failure.
    pub async fn stop(
        &self,
        key: &str,
        reason: &str,
        by: &Author,
    ) -> Result<bool, ExperimentServiceError> {
        self.record(key)?;
        let stopped = self.store.stop(key, reason, by, self.clock.now()).await?;
        self.refresh().await?;
        Ok(stopped)
    }

    /// One pass over the running experiments: keeps a snapshot of each one's results (at most
    /// every few seconds) and stops those whose guardrail is violated or whose maximum
    /// duration has passed. Returns the keys it stopped, with why.
    ///
    /// # Errors
    /// Store failures; an experiment whose analysis fails is logged and skipped.
    pub async fn check(&self) -> Result<Vec<(String, String)>, ExperimentServiceError> {
        let dropped = self.exposures.dropped();
        let before = self
            .dropped_seen
            .swap(dropped, std::sync::atomic::Ordering::Relaxed);
        if dropped > before {
            tracing::warn!(
                dropped = dropped - before,
                total = dropped,
                "exposures dropped: the queue to the store was full"
            );
        }
        let live = self.live();
        let now = self.clock.now();
        let mut stopped = Vec::new();
        for (key, record) in &live.records {
            if record.status != ExperimentStatus::Running {
                continue;
            }
            let results = match self.results(key).await {
                Ok(results) => results,
                Err(ExperimentServiceError::Store(e)) => return Err(e.into()),
                Err(error) => {
                    tracing::warn!(experiment = %key, %error, "experiment cannot be analysed");
                    continue;
                }
            };
            if self.snapshot_due(key, now) {
                self.store
                    .add_snapshot(key, &Snapshot::of(&results))
                    .await?;
            }
            if let Some(why) = stop_reason(&results) {
                if self
                    .store
                    .stop(key, &why, &Author::system("guardrail"), now)
                    .await?
                {
                    tracing::warn!(experiment = %key, reason = %why, "experiment stopped");
                    stopped.push((key.clone(), why));
                }
            }
        }
        if !stopped.is_empty() {
            self.refresh().await?;
        }
        Ok(stopped)
    }

    fn snapshot_due(&self, key: &str, now: Timestamp) -> bool {
        let mut last = self
            .last_snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.get(key) {
            Some(at) if now.since(*at) < SNAPSHOT_EVERY => false,
            _ => {
                last.insert(key.to_owned(), now);
                true
            }
        }
    }
}

/// Why the daemon stops an experiment by itself: a violated guardrail or its maximum duration.
/// Other recommendations (ship, a worse treatment, SRM) are for people to act on.
fn stop_reason(results: &Results) -> Option<String> {
    if let Some(g) = results
        .guardrails
        .iter()
        .find(|g| matches!(g.status, GuardrailStatus::Violated(_)))
    {
        return Some(format!(
            "guardrail `{}` violated by variant `{}`: {}",
            g.metric,
            g.variant,
            serde_json::to_string(&g.status).unwrap_or_default()
        ));
    }
    match &results.recommendation {
        Recommendation::Stop {
            reason: StopReason::MaxDurationReached,
        } => Some("maximum duration reached without a winner".into()),
        _ => None,
    }
}

impl SplitClaims for ExperimentService {
    /// A running traffic experiment claims its app from the moment it is applied until it
    /// stops, whether or not its split is in place yet.
    fn splitting(&self, app: &AppName) -> Option<String> {
        let live = self.live();
        live.records
            .values()
            .find(|r| {
                r.status == ExperimentStatus::Running
                    && matches!(&r.manifest.spec.split, SplitSpec::Traffic(t) if &t.app == app)
            })
            .map(|r| r.manifest.key().to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use switchyard_core::manifest::load_str;
    use switchyard_core::ports::StateStore;
    use switchyard_core::{SystemClock, Timestamp};
    use switchyard_store::SqliteStore;

    use super::*;

    const EXPERIMENT: &str = "apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: capped}
spec:
  split: {flag: {unit: userId}}
  variants: [{name: control, weight: 1}, {name: new, weight: 1}]
  metrics:
    - {name: revenue, continuous: {event: purchase}, cap: {percentile: 0.5}}
";

    fn events(list: &[(&str, &str, &str, f64)]) -> Vec<u8> {
        let events: Vec<serde_json::Value> = list
            .iter()
            .map(|(id, unit, variant, value)| {
                if variant.is_empty() {
                    serde_json::json!({"id": id, "experiment": "capped", "unit": unit,
                                       "event": "purchase", "value": value})
                } else {
                    serde_json::json!({"id": id, "experiment": "capped", "unit": unit,
                                       "event": "$exposure", "variant": variant})
                }
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap()
    }

    fn cap(results: &Results) -> f64 {
        results.metrics[0].cap.unwrap().value.unwrap()
    }

    /// The recount with a percentile cap is kept while nothing is counted and redone as soon
    /// as an event changes the units, or the experiment is applied again.
    #[tokio::test]
    async fn a_percentile_cap_follows_every_counted_event() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let set = load_str(EXPERIMENT, Path::new("e.yaml")).unwrap();
        store
            .apply(&set, &Author::system("test"), Timestamp::from_millis(1))
            .await
            .unwrap();
        let service =
            ExperimentService::load(Arc::new(store.clone()), Arc::new(SystemClock), false)
                .await
                .unwrap();
        let report = service
            .ingest(&events(&[
                ("x1", "a", "control", 0.0),
                ("x2", "b", "new", 0.0),
                ("p1", "a", "", 10.0),
                ("p2", "b", "", 30.0),
            ]))
            .await
            .unwrap();
        assert_eq!(report.rejected, 0, "{report:?}");
        let first = service.results("capped").await.unwrap();
        assert_eq!(cap(&first), 20.0);
        assert_eq!(cap(&service.results("capped").await.unwrap()), 20.0);

        service
            .ingest(&events(&[("p3", "b", "", 40.0)]))
            .await
            .unwrap();
        // 10 and 70: the median is 40.
        assert_eq!(cap(&service.results("capped").await.unwrap()), 40.0);
        // A duplicate counts nothing: the same recount.
        service
            .ingest(&events(&[("p3", "b", "", 40.0)]))
            .await
            .unwrap();
        assert_eq!(cap(&service.results("capped").await.unwrap()), 40.0);

        let changed = EXPERIMENT.replace("percentile: 0.5", "percentile: 0.25");
        store
            .apply(
                &load_str(&changed, Path::new("e.yaml")).unwrap(),
                &Author::system("test"),
                Timestamp::from_millis(2),
            )
            .await
            .unwrap();
        service.refresh().await.unwrap();
        // 10 + 0.25 · 60.
        assert_eq!(cap(&service.results("capped").await.unwrap()), 25.0);
    }
}
