//! Incidents: every automatic rollback, with what the decision rested on. At the rollback the
//! controller keeps, in the `rolled_back` event, what only its memory holds then: the traffic
//! each release took ([`Exposure`]) and the rollout's traffic samples. The rest — the judge's
//! looks, the policy's breaches, the timeline — is in the event log already. An incident's id
//! is its rollout's.

use serde::{Deserialize, Serialize};
use switchyard_analysis::Measurement;
use switchyard_core::ports::{
    EventKind, EventQuery, EventRecord, RolloutId, StateStore, StoreError,
};
use switchyard_core::{AppName, ReleaseMetrics, Timestamp};
use switchyard_rollout::machine::{Phase, Rollout};

use crate::controller::history::TrafficSample;

/// The traffic each release of a rolled-back rollout took, counted by the proxies over the
/// releases' lives (for the canary: while the rollout ran).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    pub canary: ReleaseExposure,
    pub stable: ReleaseExposure,
    /// The largest canary weight of the rollout, percent.
    pub max_weight: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseExposure {
    pub version: String,
    pub requests: u64,
    /// Answered 5xx (the proxy's own answers when no instance answered included).
    pub errors: u64,
}

/// What the `rolled_back` event keeps besides the machine's own data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AtRollback {
    exposure: Exposure,
    #[serde(default)]
    traffic: Vec<TrafficSample>,
}

/// The data to add to the `rolled_back` event of `rollout` (as it was before the rollback).
pub fn at_rollback(
    app: &str,
    rollout: &Rollout,
    metrics: &dyn ReleaseMetrics,
    traffic: Vec<TrafficSample>,
) -> serde_json::Value {
    let exposure = |release: &switchyard_core::Release| {
        let totals = metrics
            .totals(app, release.version.as_str())
            .unwrap_or_default();
        ReleaseExposure {
            version: release.version.to_string(),
            requests: totals.requests,
            errors: totals.errors,
        }
    };
    let max_weight = traffic
        .iter()
        .map(|s| s.weight)
        .chain([rollout.weight])
        .max()
        .unwrap_or(0);
    serde_json::to_value(AtRollback {
        exposure: Exposure {
            canary: exposure(&rollout.canary),
            stable: exposure(&rollout.stable),
            max_weight,
        },
        traffic,
    })
    .unwrap_or_default()
}

/// An incident in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentSummary {
    /// The rollout's id.
    pub id: RolloutId,
    pub app: String,
    pub version: String,
    pub decided_at: Timestamp,
    /// Who decided: `analysis` (an analysis step or the judge), `policy` (the rollback policy),
    /// `controller` (the release did not stay healthy, a webhook asked).
    pub decided_by: String,
    pub reason: String,
}

/// One incident, whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    #[serde(flatten)]
    pub summary: IncidentSummary,
    pub stable_version: String,
    pub started_at: Timestamp,
    /// From the canary's first request to the rollback.
    pub detected_after_s: Option<f64>,
    /// `None` for a rollback recorded before exposures were kept.
    pub exposure: Option<Exposure>,
    /// With sticky routing, the share of users the canary served (its largest weight).
    pub sticky_share: Option<f64>,
    pub traffic: Vec<TrafficSample>,
    /// Every measurement of the rollout, oldest first (the judge's with its evidence).
    pub measurements: Vec<Measurement>,
    /// The rollout's events but its measurements, oldest first.
    pub timeline: Vec<EventRecord>,
    /// What to look at next.
    pub next: Vec<String>,
}

/// Every automatic rollback, newest first.
///
/// # Errors
/// Store failures.
pub async fn list(store: &dyn StateStore) -> Result<Vec<IncidentSummary>, StoreError> {
    let events = store
        .events(&EventQuery {
            kinds: vec![EventKind::RolledBack],
            ..EventQuery::default()
        })
        .await?;
    let mut out = Vec::with_capacity(events.len());
    for e in events.into_iter().rev() {
        let Some(id) = e.event.rollout else { continue };
        let version = match kept(&e) {
            Some(at) => at.exposure.canary.version,
            None => match store.rollout(id).await? {
                Some(record) => record.version.to_string(),
                None => continue,
            },
        };
        out.push(summary(id, &e, version));
    }
    Ok(out)
}

fn kept(e: &EventRecord) -> Option<AtRollback> {
    serde_json::from_value(e.event.data.clone()).ok()
}

fn summary(id: RolloutId, e: &EventRecord, version: String) -> IncidentSummary {
    IncidentSummary {
        id,
        app: e
            .event
            .app
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        version,
        decided_at: e.event.at,
        decided_by: e.event.actor.clone(),
        reason: e.event.reason.clone(),
    }
}

/// The incident of rollout `id`; `None` unless that rollout was rolled back.
///
/// # Errors
/// Store failures; a rollout state that no longer reads.
pub async fn get(store: &dyn StateStore, id: RolloutId) -> Result<Option<Incident>, StoreError> {
    let Some(record) = store.rollout(id).await? else {
        return Ok(None);
    };
    let rollout: Rollout =
        serde_json::from_value(record.state).map_err(|source| StoreError::Corrupt {
            what: format!("the state of rollout {id}"),
            source,
        })?;
    if rollout.phase != Phase::RolledBack {
        return Ok(None);
    }
    let events = store
        .events(&EventQuery {
            rollout: Some(id),
            ..EventQuery::default()
        })
        .await?;
    let Some(decision) = events
        .iter()
        .rev()
        .find(|e| e.event.kind == EventKind::RolledBack)
        .cloned()
    else {
        return Ok(None);
    };
    let at = kept(&decision);
    let sticky = store
        .app(&record.app)
        .await?
        .is_some_and(|a| a.manifest.spec.strategy.stickiness().is_some());
    let (measurements, timeline): (Vec<EventRecord>, Vec<EventRecord>) = events
        .into_iter()
        .partition(|e| e.event.kind == EventKind::Measurement);
    let measurements: Vec<Measurement> = measurements
        .into_iter()
        .filter_map(|e| serde_json::from_value(e.event.data).ok())
        .collect();
    let mut incident = Incident {
        summary: summary(id, &decision, rollout.canary.version.to_string()),
        stable_version: rollout.stable.version.to_string(),
        started_at: rollout.started_at,
        detected_after_s: decision
            .event
            .data
            .get("detected_after_s")
            .and_then(serde_json::Value::as_f64),
        sticky_share: at
            .as_ref()
            .filter(|_| sticky)
            .map(|a| f64::from(a.exposure.max_weight) / 100.0),
        exposure: at.as_ref().map(|a| a.exposure.clone()),
        traffic: at.map(|a| a.traffic).unwrap_or_default(),
        measurements,
        timeline,
        next: Vec::new(),
    };
    incident.next = next_steps(&incident, &record.app);
    Ok(Some(incident))
}

/// What to look at next, from what decided.
fn next_steps(incident: &Incident, app: &AppName) -> Vec<String> {
    let s = &incident.summary;
    let version = &s.version;
    let mut next = Vec::new();
    let failed = incident
        .measurements
        .iter()
        .rev()
        .find(|m| matches!(m.phase, switchyard_analysis::MeasurementPhase::Failed));
    match (s.decided_by.as_str(), failed) {
        ("analysis", Some(m)) => {
            let compared = m
                .evidence
                .as_ref()
                .and_then(|e| e.get("compare"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            next.push(format!(
                "The analysis `{}/{}` failed: {}.",
                m.template, m.metric, m.message
            ));
            if compared.contains("error") {
                next.push(format!(
                    "Look at what {version} answered with 5xx: its instances' logs around {}, and the requests the canary served.",
                    s.decided_at
                ));
            } else if compared.contains("latency") || m.metric.contains("latency") {
                next.push(format!(
                    "Look at {version}'s slow requests: its instances' logs and traces around {}, and what it calls that {} does not.",
                    s.decided_at, incident.stable_version
                ));
            }
        }
        ("policy", _) => next.push(format!(
            "The rollback policy saw: {}. Look at {version}'s instances over that window.",
            s.reason
        )),
        _ => next.push(format!(
            "{} decided: {}. Look at {version}'s instances (their logs and health checks).",
            s.decided_by, s.reason
        )),
    }
    next.push(format!(
        "The whole record: `switchyard history {app}` and `switchyard analysis {app}`."
    ));
    next.push(format!(
        "Ship a fixed release with `switchyard deploy {app} --version ...`, or `switchyard retry {app}` if the cause was outside {version}."
    ));
    next
}
