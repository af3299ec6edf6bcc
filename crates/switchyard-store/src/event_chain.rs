//! The event log's hash chain, as pure functions: the canonical form of an event, its SHA-256
//! with the previous event's hash, and the verification of the whole log.
//!
//! Canonical form: the JSON object `{actor, app, at, data, id, kind, prev_hash, reason,
//! rollout, source}` with keys sorted at every depth and no whitespace (as the flag audit log's,
//! see [`crate::flag_audit`]); absent values are `null`.

use sha2::{Digest, Sha256};
use switchyard_core::ports::{EventRecord, GENESIS_HASH};

use crate::flag_audit::{hex, write_canonical};

/// One event as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEvent {
    pub record: EventRecord,
    /// `None` for events written before the log was chained.
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// The canonical serialisation of `event`, following `prev_hash`.
pub fn canonical(event: &EventRecord, prev_hash: &str) -> String {
    let e = &event.event;
    let value = serde_json::json!({
        "actor": e.actor,
        "app": e.app.as_ref().map(|a| a.as_str()),
        "at": e.at.as_millis(),
        "data": e.data,
        "id": event.id,
        "kind": e.kind.as_str(),
        "prev_hash": prev_hash,
        "reason": e.reason,
        "rollout": e.rollout,
        "source": e.source,
    });
    let mut out = String::new();
    write_canonical(&mut out, &value);
    out
}

/// The lowercase hex SHA-256 of [`canonical`].
pub fn event_hash(event: &EventRecord, prev_hash: &str) -> String {
    hex(&Sha256::digest(canonical(event, prev_hash).as_bytes()))
}

/// What a check of the chain found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainCheck {
    pub checked: u64,
    /// The hash of the last event; `None` for an empty log.
    pub head: Option<String>,
    /// `(event id, what is wrong)`.
    pub problems: Vec<(i64, String)>,
}

/// Walks the log oldest first: ids consecutive from the first, each stored `prev_hash` the
/// previous event's hash, each stored `hash` recomputed. Unhashed (older) events are chained
/// as they are.
pub fn verify(events: &[ChainedEvent]) -> ChainCheck {
    let mut check = ChainCheck::default();
    let mut previous = GENESIS_HASH.to_string();
    let mut expected = events.first().map_or(1, |e| e.record.id);
    for e in events {
        let id = e.record.id;
        if id != expected {
            check.problems.push((
                id,
                format!("expected event {expected} here, found {id}: events were removed"),
            ));
        }
        if let Some(prev) = &e.prev_hash {
            if *prev != previous {
                check.problems.push((
                    id,
                    format!("prev_hash {prev} does not match the previous event's hash {previous}"),
                ));
            }
        }
        let computed = event_hash(&e.record, &previous);
        if let Some(stored) = &e.hash {
            if *stored != computed {
                check.problems.push((
                    id,
                    format!(
                        "content does not match its hash (stored {stored}, computed {computed}): the event was edited"
                    ),
                ));
            }
        }
        // Keep going from what is stored, so one edit is reported once, not for every
        // later event.
        previous = e.hash.clone().unwrap_or(computed);
        expected = id + 1;
        check.checked += 1;
    }
    check.head = events.last().map(|_| previous);
    check
}
