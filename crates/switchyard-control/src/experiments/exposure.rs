//! Exposures recorded where units are assigned (a flag evaluation, a request through a traffic
//! experiment's proxy), queued without blocking the caller and written to the store in batches.
//!
//! Each exposure becomes an `$exposure` event whose idempotency key is derived from the unit, so
//! a unit evaluated a thousand times is counted once; the queue also drops repeats it has seen.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::{EXPOSURE_EVENT, REQUEST_EVENT, SERVER_ERROR_EVENT};
use switchyard_experiments::port::ExperimentStore;
use switchyard_experiments::{CompiledExperiment, EventKind, ValidEvent};
use tokio::sync::mpsc;

/// Queued events wait at most this long before they are written.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Largest batch written at once.
const BATCH: usize = 500;
/// Events the queue holds; beyond it new ones are dropped (and counted) rather than block.
const QUEUE: usize = 50_000;
/// Units remembered as exposed, per process; beyond it repeats go to the store's key check.
const REMEMBERED: usize = 1_000_000;

/// Something the data plane observed about a unit of a running experiment.
#[derive(Debug, Clone, PartialEq)]
pub enum Exposure {
    /// The unit was assigned to `variant`.
    Assigned {
        experiment: String,
        unit: String,
        variant: String,
        at: Timestamp,
    },
    /// A request of the unit went through a traffic experiment's proxy.
    Request {
        experiment: String,
        unit: String,
        variant: String,
        latency_ms: f64,
        server_error: bool,
        at: Timestamp,
    },
}

/// The sending side, cheap to clone.
#[derive(Debug, Clone)]
pub struct ExposureQueue {
    tx: mpsc::Sender<Exposure>,
    seen: Arc<Mutex<HashSet<(String, String)>>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl ExposureQueue {
    /// Queues an exposure without waiting; repeats of an assignment already queued are skipped,
    /// and a unit's first request is preceded by its assignment.
    pub fn record(&self, exposure: Exposure) {
        let (experiment, unit, variant, at) = match &exposure {
            Exposure::Assigned {
                experiment,
                unit,
                variant,
                at,
            }
            | Exposure::Request {
                experiment,
                unit,
                variant,
                at,
                ..
            } => (experiment, unit, variant, *at),
        };
        let first = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.len() >= REMEMBERED {
                seen.clear();
            }
            seen.insert((experiment.clone(), unit.clone()))
        };
        if let Exposure::Request { .. } = &exposure {
            if first {
                self.send(Exposure::Assigned {
                    experiment: experiment.clone(),
                    unit: unit.clone(),
                    variant: variant.clone(),
                    at,
                });
            }
        } else if !first {
            return;
        }
        self.send(exposure);
    }

    fn send(&self, exposure: Exposure) {
        if self.tx.try_send(exposure).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Exposures dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Starts the writer task; it ends when every [`ExposureQueue`] is dropped.
pub fn spawn(
    store: Arc<dyn ExperimentStore>,
    compiled: impl Fn() -> Arc<BTreeMap<String, CompiledExperiment>> + Send + 'static,
) -> ExposureQueue {
    let (tx, mut rx) = mpsc::channel::<Exposure>(QUEUE);
    let queue = ExposureQueue {
        tx,
        seen: Arc::default(),
        dropped: Arc::default(),
    };
    tokio::spawn(async move {
        let mut sequence = 0u64;
        loop {
            let Some(first) = rx.recv().await else { return };
            let mut pending = vec![first];
            let deadline = tokio::time::sleep(FLUSH_EVERY);
            tokio::pin!(deadline);
            while pending.len() < BATCH {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some(e) => pending.push(e),
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
            let experiments = compiled();
            let events: Vec<ValidEvent> = pending
                .into_iter()
                .flat_map(|e| events_of(e, &mut sequence))
                .collect();
            let now = events.last().map_or(Timestamp::from_millis(0), |e| e.at);
            if let Err(error) = store.ingest(&experiments, &events, false, now).await {
                tracing::error!(%error, count = events.len(), "exposures could not be stored");
            }
        }
    });
    queue
}

/// The events an observation stands for. Assignments are keyed by unit (one per unit ever);
/// requests by a per-process sequence and their time.
fn events_of(exposure: Exposure, sequence: &mut u64) -> Vec<ValidEvent> {
    match exposure {
        Exposure::Assigned {
            experiment,
            unit,
            variant,
            at,
        } => vec![ValidEvent {
            index: 0,
            id: format!("{EXPOSURE_EVENT}:{unit}"),
            experiment,
            unit,
            at,
            kind: EventKind::Exposure { variant },
        }],
        Exposure::Request {
            experiment,
            unit,
            variant,
            latency_ms,
            server_error,
            at,
        } => {
            let mut events = Vec::with_capacity(2);
            *sequence += 1;
            let id = format!("{}:{}:{sequence}", at.as_millis(), std::process::id());
            events.push(ValidEvent {
                index: 0,
                id: format!("{REQUEST_EVENT}:{id}"),
                experiment: experiment.clone(),
                unit: unit.clone(),
                at,
                kind: EventKind::Metric {
                    event: REQUEST_EVENT.to_owned(),
                    value: latency_ms,
                    variant: Some(variant.clone()),
                },
            });
            if server_error {
                events.push(ValidEvent {
                    index: 0,
                    id: format!("{SERVER_ERROR_EVENT}:{id}"),
                    experiment,
                    unit,
                    at,
                    kind: EventKind::Metric {
                        event: SERVER_ERROR_EVENT.to_owned(),
                        value: 1.0,
                        variant: Some(variant),
                    },
                });
            }
            events
        }
    }
}
