//! The ingestion schema of `POST /api/v1/events` and its validation.
//!
//! ```json
//! {"events": [
//!   {"id": "e-1", "experiment": "checkout-redesign", "unit": "user-1",
//!    "event": "$exposure", "variant": "redesign", "timestamp": "2024-05-01T12:00:00Z"},
//!   {"id": "e-2", "experiment": "checkout-redesign", "unit": "user-1",
//!    "event": "purchase", "value": 12.5}
//! ]}
//! ```
//!
//! A batch that is not of this shape, or holds more than [`MAX_BATCH_EVENTS`] events, is refused
//! whole ([`BatchError`]). Otherwise every event is checked on its own: valid ones are returned
//! for the store, invalid ones as [`EventError`]s with a JSON pointer and a message, so a client
//! can fix and resend exactly those.
//!
//! `id` is the event's idempotency key. Two events of one batch with the same id are the same
//! event: the later ones are refused here. Ids already stored by earlier batches are the store's
//! to skip; nothing here remembers past batches.

mod timestamp;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::{
    EXPOSURE_EVENT, REQUEST_EVENT, SERVER_ERROR_EVENT, check_event_text,
};

pub use timestamp::parse_rfc3339;

use crate::experiment::CompiledExperiment;
use crate::moments::UnitEvent;

/// Most events one batch may hold.
pub const MAX_BATCH_EVENTS: usize = 1000;
/// How far in the future (by the server's clock) an event's timestamp may be.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// Longest idempotency key.
pub const MAX_ID_CHARS: usize = 128;
/// Longest unit key.
pub const MAX_UNIT_CHARS: usize = 256;

/// The fields of an event, in the order they are documented.
pub const FIELDS: [&str; 7] = [
    "id",
    "experiment",
    "unit",
    "event",
    "value",
    "variant",
    "timestamp",
];

/// Where experiments are looked up by key.
pub trait ExperimentCatalog {
    fn experiment(&self, key: &str) -> Option<&CompiledExperiment>;
}

impl ExperimentCatalog for BTreeMap<String, CompiledExperiment> {
    fn experiment(&self, key: &str) -> Option<&CompiledExperiment> {
        self.get(key)
    }
}

impl ExperimentCatalog for [CompiledExperiment] {
    fn experiment(&self, key: &str) -> Option<&CompiledExperiment> {
        self.iter().find(|e| e.key() == key)
    }
}

/// A batch refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("the body must be a JSON object with an `events` array")]
    NotAnObject,
    #[error("missing field `events`")]
    MissingEvents,
    #[error("`events` must be an array of events")]
    EventsNotAnArray,
    #[error("unknown field `{0}`: the body holds only `events`")]
    UnknownField(String),
    #[error("a batch holds at most {max} events, got {count}: split it")]
    TooLarge { count: usize, max: usize },
}

impl BatchError {
    /// JSON pointer of what is wrong.
    pub fn pointer(&self) -> String {
        match self {
            BatchError::NotAnObject => String::new(),
            BatchError::UnknownField(name) => format!("/{}", escape_pointer(name)),
            BatchError::MissingEvents
            | BatchError::EventsNotAnArray
            | BatchError::TooLarge { .. } => "/events".to_owned(),
        }
    }
}

/// One problem with one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventError {
    /// Position of the event in `events`.
    pub index: usize,
    /// JSON pointer of the offending value, such as `/events/3/value`.
    pub pointer: String,
    pub message: String,
}

/// A checked event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidEvent {
    /// Position of the event in `events`.
    pub index: usize,
    /// The idempotency key.
    pub id: String,
    pub experiment: String,
    pub unit: String,
    /// The event's time: its `timestamp`, or when it was received.
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What an event records.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The unit was assigned (and exposed) to `variant`.
    Exposure { variant: String },
    /// A metric event. `variant`, when sent, must match the unit's assignment (the store checks).
    Metric {
        event: String,
        value: f64,
        variant: Option<String>,
    },
}

impl ValidEvent {
    /// The event as it changes a unit's metric values; `None` for an exposure.
    pub fn unit_event(&self) -> Option<UnitEvent<'_>> {
        match &self.kind {
            EventKind::Exposure { .. } => None,
            EventKind::Metric { event, value, .. } => Some(UnitEvent {
                name: event,
                value: *value,
                at: self.at,
            }),
        }
    }
}

/// The outcome of a batch that has the right shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ValidatedBatch {
    /// Valid events, in batch order.
    pub events: Vec<ValidEvent>,
    /// Every problem of every invalid event, in batch order (an event may have several).
    pub errors: Vec<EventError>,
}

/// Checks a batch against the experiments of `catalog`, with `now` as the server's time.
///
/// # Errors
/// A body that is not `{"events": [...]}` or holds more than [`MAX_BATCH_EVENTS`] events.
pub fn validate_batch<C: ExperimentCatalog + ?Sized>(
    body: &Value,
    catalog: &C,
    now: Timestamp,
) -> Result<ValidatedBatch, BatchError> {
    let object = body.as_object().ok_or(BatchError::NotAnObject)?;
    if let Some(other) = object.keys().find(|k| *k != "events") {
        return Err(BatchError::UnknownField(other.clone()));
    }
    let events = object
        .get("events")
        .ok_or(BatchError::MissingEvents)?
        .as_array()
        .ok_or(BatchError::EventsNotAnArray)?;
    if events.len() > MAX_BATCH_EVENTS {
        return Err(BatchError::TooLarge {
            count: events.len(),
            max: MAX_BATCH_EVENTS,
        });
    }
    let mut batch = ValidatedBatch::default();
    let mut first_with_id: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, raw) in events.iter().enumerate() {
        let mut check = EventCheck {
            index,
            errors: Vec::new(),
        };
        let event = check.event(raw, catalog, now);
        if let Some(id) = raw.get("id").and_then(Value::as_str) {
            match first_with_id.entry(id) {
                Entry::Vacant(e) => {
                    e.insert(index);
                }
                Entry::Occupied(e) => check.error(
                    "id",
                    format!(
                        "duplicate id `{id}`: the same event is at /events/{}",
                        e.get()
                    ),
                ),
            }
        }
        match event {
            Some(event) if check.errors.is_empty() => batch.events.push(event),
            _ => batch.errors.extend(check.errors),
        }
    }
    Ok(batch)
}

/// The problems found so far in one event.
struct EventCheck {
    index: usize,
    errors: Vec<EventError>,
}

impl EventCheck {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        let pointer = if field.is_empty() {
            format!("/events/{}", self.index)
        } else {
            format!("/events/{}/{}", self.index, escape_pointer(field))
        };
        self.errors.push(EventError {
            index: self.index,
            pointer,
            message: message.into(),
        });
    }

    /// A required string of at most `max` characters.
    fn text<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        field: &str,
        max: usize,
    ) -> Option<&'a str> {
        match object.get(field) {
            None | Some(Value::Null) => {
                self.error(field, format!("missing field `{field}`"));
                None
            }
            Some(Value::String(s)) if s.is_empty() => {
                self.error(field, "must not be empty");
                None
            }
            Some(Value::String(s)) if s.chars().count() > max => {
                self.error(
                    field,
                    format!("at most {max} characters, got {}", s.chars().count()),
                );
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.error(
                    field,
                    format!("expected a string, got {}", json_kind(other)),
                );
                None
            }
        }
    }

    fn event<C: ExperimentCatalog + ?Sized>(
        &mut self,
        raw: &Value,
        catalog: &C,
        now: Timestamp,
    ) -> Option<ValidEvent> {
        let Some(object) = raw.as_object() else {
            self.error(
                "",
                format!("expected an event object, got {}", json_kind(raw)),
            );
            return None;
        };
        for key in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            self.error(
                key,
                format!(
                    "unknown field `{key}`, expected one of {}",
                    FIELDS.join(", ")
                ),
            );
        }
        let id = self.text(object, "id", MAX_ID_CHARS);
        let unit = self.text(object, "unit", MAX_UNIT_CHARS);
        let experiment = self.experiment(object, catalog);
        let name = self.text(object, "event", usize::MAX);
        let value = self.value(object);
        let variant = self.variant(object, experiment);
        let at = self.timestamp(object, now);
        let kind = match (name, experiment) {
            (Some(name), Some(experiment)) => self.kind(name, value, variant, experiment),
            _ => None,
        };
        Some(ValidEvent {
            index: self.index,
            id: id?.to_owned(),
            experiment: experiment?.key().to_owned(),
            unit: unit?.to_owned(),
            at: at?,
            kind: kind?,
        })
    }

    fn experiment<'c, C: ExperimentCatalog + ?Sized>(
        &mut self,
        object: &Map<String, Value>,
        catalog: &'c C,
    ) -> Option<&'c CompiledExperiment> {
        let key = self.text(object, "experiment", usize::MAX)?;
        let found = catalog.experiment(key);
        if found.is_none() {
            self.error("experiment", format!("unknown experiment `{key}`"));
        }
        found
    }

    /// `Ok(None)` when absent; `Err(())` when present and invalid (already reported).
    fn value(&mut self, object: &Map<String, Value>) -> Result<Option<f64>, ()> {
        match object.get("value") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if v.is_finite() => Ok(Some(v)),
                _ => {
                    self.error("value", "must be a finite number");
                    Err(())
                }
            },
            Some(other) => {
                self.error(
                    "value",
                    format!("expected a number, got {}", json_kind(other)),
                );
                Err(())
            }
        }
    }

    /// `Ok(None)` when absent; `Err(())` when present and invalid (already reported).
    fn variant(
        &mut self,
        object: &Map<String, Value>,
        experiment: Option<&CompiledExperiment>,
    ) -> Result<Option<String>, ()> {
        match object.get("variant") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(name)) => match experiment {
                Some(e) if e.variant(name).is_none() => {
                    let known: Vec<String> = e
                        .variants()
                        .iter()
                        .map(|v| format!("`{}`", v.name))
                        .collect();
                    self.error(
                        "variant",
                        format!(
                            "experiment `{}` has no variant `{name}`; its variants are {}",
                            e.key(),
                            known.join(", ")
                        ),
                    );
                    Err(())
                }
                _ => Ok(Some(name.clone())),
            },
            Some(other) => {
                self.error(
                    "variant",
                    format!("expected a string, got {}", json_kind(other)),
                );
                Err(())
            }
        }
    }

    fn timestamp(&mut self, object: &Map<String, Value>, now: Timestamp) -> Option<Timestamp> {
        let text = match object.get("timestamp") {
            None | Some(Value::Null) => return Some(now),
            Some(Value::String(text)) => text,
            Some(other) => {
                let kind = json_kind(other);
                self.error(
                    "timestamp",
                    format!("expected an RFC 3339 string, got {kind}"),
                );
                return None;
            }
        };
        let Some(at) = parse_rfc3339(text) else {
            self.error(
                "timestamp",
                format!("`{text}` is not an RFC 3339 date-time such as 2024-05-01T12:00:00Z"),
            );
            return None;
        };
        if at > now.plus(MAX_CLOCK_SKEW) {
            let ahead = at.since(now).as_secs();
            self.error(
                "timestamp",
                format!(
                    "`{text}` is {ahead} s in the future; at most {} s of clock skew is accepted",
                    MAX_CLOCK_SKEW.as_secs()
                ),
            );
            return None;
        }
        Some(at)
    }

    fn kind(
        &mut self,
        name: &str,
        value: Result<Option<f64>, ()>,
        variant: Result<Option<String>, ()>,
        experiment: &CompiledExperiment,
    ) -> Option<EventKind> {
        if name == EXPOSURE_EVENT {
            if matches!(value, Ok(Some(_))) {
                self.error("value", "an exposure carries no value");
            }
            return match variant {
                Ok(Some(variant)) => Some(EventKind::Exposure { variant }),
                Ok(None) => {
                    self.error(
                        "variant",
                        "an exposure needs the `variant` the unit was assigned",
                    );
                    None
                }
                Err(()) => None,
            };
        }
        if name == REQUEST_EVENT || name == SERVER_ERROR_EVENT {
            self.error(
                "event",
                format!(
                    "`{name}` is recorded by the proxy of a traffic experiment and cannot be sent"
                ),
            );
            return None;
        }
        if let Err(message) = check_event_text(name) {
            self.error("event", message);
            return None;
        }
        if experiment.metrics_reading(name).next().is_none() {
            let known: Vec<String> = experiment
                .events()
                .filter(|e| !e.starts_with('$'))
                .map(|e| format!("`{e}`"))
                .collect();
            self.error(
                "event",
                format!(
                    "no metric of experiment `{}` reads event `{name}`; it reads {} (and `{EXPOSURE_EVENT}`)",
                    experiment.key(),
                    if known.is_empty() { "no client events".to_owned() } else { known.join(", ") }
                ),
            );
            return None;
        }
        Some(EventKind::Metric {
            event: name.to_owned(),
            value: value.ok()?.unwrap_or(1.0),
            variant: variant.ok()?,
        })
    }
}

/// RFC 6901 escaping of one pointer token.
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
