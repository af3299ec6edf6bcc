use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::experiments::exposure;
use switchyard_core::manifest::app::Stickiness;
use switchyard_core::ports::{Author, StoreError};
use switchyard_core::{AppName, Timestamp, Version};
use switchyard_experiments::data::ExposedUnits;
use switchyard_experiments::port::{ExperimentRecord, ExperimentStore, Ingested};
use switchyard_experiments::{CompiledExperiment, EventKind, ExperimentData, Snapshot, ValidEvent};

use super::*;
use crate::traffic_experiments::plan::Arm;

/// Keeps what the exposure writer stores.
#[derive(Default)]
struct Recorded(Mutex<Vec<ValidEvent>>);

#[async_trait::async_trait]
impl ExperimentStore for Recorded {
    async fn experiments(&self) -> Result<Vec<ExperimentRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn experiment(&self, _: &str) -> Result<Option<ExperimentRecord>, StoreError> {
        Ok(None)
    }
    async fn ingest(
        &self,
        _: &BTreeMap<String, CompiledExperiment>,
        events: &[ValidEvent],
        _: bool,
        _: Timestamp,
    ) -> Result<Vec<Ingested>, StoreError> {
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(vec![Ingested::Counted; events.len()])
    }
    async fn data(&self, _: &str) -> Result<Option<ExperimentData>, StoreError> {
        Ok(None)
    }
    async fn exposed_units(&self, _: &str, _: &[String]) -> Result<ExposedUnits, StoreError> {
        Ok(ExposedUnits::default())
    }
    async fn counted_events(&self, _: &str) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn stop(&self, _: &str, _: &str, _: &Author, _: Timestamp) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn add_snapshot(&self, _: &str, _: &Snapshot) -> Result<(), StoreError> {
        Ok(())
    }
    async fn snapshots(&self, _: &str) -> Result<Vec<Snapshot>, StoreError> {
        Ok(Vec::new())
    }
}

struct At(Timestamp);

impl Clock for At {
    fn now(&self) -> Timestamp {
        self.0
    }
}

fn split() -> Split {
    let arm = |variant: &str, version: &str| Arm {
        variant: variant.into(),
        version: Version::new(version).unwrap(),
        weight: 50,
    };
    Split {
        experiment: "shop-ab".into(),
        app: AppName::new("shop").unwrap(),
        unit: Stickiness::Header("x-user-id".into()),
        arms: vec![arm("control", "v1"), arm("treatment", "v2")],
    }
}

fn exposure(experiment: &str, unit: &str, release: &str, status: u16) -> RequestExposure {
    RequestExposure {
        experiment: experiment.into(),
        unit: unit.into(),
        release: release.into(),
        status,
        latency: Duration::from_micros(2500),
    }
}

/// The events written once the queue's writer has flushed (time is paused, so its timer fires
/// at once when every task is idle).
async fn written(store: &Recorded, at_least: usize) -> Vec<ValidEvent> {
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let events = store.0.lock().unwrap().clone();
        if events.len() >= at_least {
            return events;
        }
    }
    panic!("fewer than {at_least} events written");
}

#[tokio::test(start_paused = true)]
async fn exposures_are_recorded_under_the_variant_of_their_release() {
    let store = Arc::new(Recorded::default());
    let queue = exposure::spawn(store.clone(), || Arc::new(BTreeMap::new()));
    let at = Timestamp::from_millis(1_700_000_000_000);
    let relay = ExposureRelay::new(queue, Arc::new(At(at)));
    // Before `serve`, and for experiments it does not serve, nothing is recorded.
    relay.record(exposure("shop-ab", "u0", "v2", 200));
    relay.serve(&split());
    relay.record(exposure("other", "u0", "v2", 200));
    relay.record(exposure("shop-ab", "u0", "v9", 200));
    relay.record(exposure("shop-ab", "u1", "v2", 200));
    relay.record(exposure("shop-ab", "u1", "v2", 500));
    relay.record(exposure("shop-ab", "u2", "v1", 499));

    let events = written(&store, 6).await;
    let described: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            assert_eq!(e.experiment, "shop-ab");
            assert_eq!(e.at, at);
            let what = match &e.kind {
                EventKind::Exposure { variant } => format!("exposure {variant}"),
                EventKind::Metric {
                    event,
                    value,
                    variant,
                } => format!("{event}={value} {}", variant.as_deref().unwrap_or("-")),
            };
            (e.unit.clone(), what, e.id.clone())
        })
        .collect();
    let kinds: Vec<(&str, &str)> = described
        .iter()
        .map(|(u, w, _)| (u.as_str(), w.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("u1", "exposure treatment"),
            ("u1", "$request=2.5 treatment"),
            ("u1", "$request=2.5 treatment"),
            ("u1", "$server_error=1 treatment"),
            ("u2", "exposure control"),
            ("u2", "$request=2.5 control"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_forgotten_experiment_records_nothing() {
    let store = Arc::new(Recorded::default());
    let queue = exposure::spawn(store.clone(), || Arc::new(BTreeMap::new()));
    let relay = ExposureRelay::new(queue, Arc::new(At(Timestamp::from_millis(1))));
    relay.serve(&split());
    relay.record(exposure("shop-ab", "u1", "v1", 200));
    written(&store, 2).await;
    relay.forget("shop-ab");
    relay.record(exposure("shop-ab", "u2", "v1", 200));
    relay.serve(&Split {
        experiment: "other".into(),
        ..split()
    });
    relay.record(exposure("other", "u3", "v1", 200));
    let events = written(&store, 4).await;
    let units: Vec<&str> = events.iter().map(|e| e.unit.as_str()).collect();
    assert_eq!(units, ["u1", "u1", "u3", "u3"], "u2 came after the stop");
}
