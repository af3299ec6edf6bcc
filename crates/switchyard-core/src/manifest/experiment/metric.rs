//! Metrics of an experiment: what is measured per unit, from which events, and which direction
//! is an improvement. Also the built-in metrics a traffic experiment gets from the proxy.
//!
//! ```yaml
//! metrics:
//!   - {name: purchased, conversion: {event: purchase}}
//!   - {name: revenue, continuous: {event: purchase}}
//!   - name: order-value
//!     ratio: {numerator: {sum: purchase}, denominator: {count: purchase}}
//!   - {name: load-time, continuous: {event: page-load}, better: lower}
//!   - {name: $errors}                 # built-in (traffic experiments)
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::duration::serde_humantime;
use crate::manifest::one_of::one_of;

/// Event that records a unit's exposure (assignment) to a variant.
pub const EXPOSURE_EVENT: &str = "$exposure";
/// Event the proxy records for every request of a traffic experiment; its value is the request's
/// latency in milliseconds.
pub const REQUEST_EVENT: &str = "$request";
/// Event the proxy records for every request of a traffic experiment answered 5xx (or never
/// answered).
pub const SERVER_ERROR_EVENT: &str = "$server_error";
/// Built-in metric: share of a unit's requests that failed (5xx), as a ratio.
pub const ERRORS_METRIC: &str = "$errors";
/// Built-in metric: mean latency of a unit's requests in milliseconds, as a ratio.
pub const LATENCY_METRIC: &str = "$latency_ms";

/// The longest metric or event name.
const MAX_NAME: usize = 128;

/// The name of a metric: letters, digits, `-`, `_` and `.` (starting with a letter or digit), or
/// one of the built-in names that start with `$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetricName(String);

impl MetricName {
    /// # Errors
    /// Returns what is wrong with the name.
    pub fn new(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        if let Some(rest) = text.strip_prefix('$') {
            if BuiltinMetric::from_name(&text).is_none() {
                return Err(format!(
                    "unknown built-in metric `${rest}`: names starting with `$` are reserved for {}",
                    BuiltinMetric::ALL
                        .map(|b| format!("`{}`", b.name()))
                        .join(", ")
                ));
            }
            return Ok(MetricName(text));
        }
        check_plain_name(&text, "a metric name")?;
        Ok(MetricName(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The built-in metric this name reserves, if it is one.
    pub fn builtin(&self) -> Option<BuiltinMetric> {
        BuiltinMetric::from_name(&self.0)
    }
}

impl TryFrom<String> for MetricName {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        MetricName::new(text)
    }
}

impl From<MetricName> for String {
    fn from(name: MetricName) -> String {
        name.0
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of an event sent to `POST /api/v1/events`: 1 to 128 characters without control
/// characters or surrounding spaces (`purchase`, `checkout.completed`, `Order Placed`). Names
/// starting with `$` are reserved for Switchyard's own events and cannot be written in a
/// manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventName(String);

impl EventName {
    /// # Errors
    /// Returns what is wrong with the name.
    pub fn new(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        if text.starts_with('$') {
            return Err(format!(
                "event names starting with `$` are reserved for Switchyard's own events, got `{text}`"
            ));
        }
        check_event_text(&text)?;
        Ok(EventName(text))
    }

    /// A reserved event name (`$request`, `$server_error`), for built-in metrics.
    fn reserved(text: &'static str) -> Self {
        EventName(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks the text of an event name (reserved or not).
///
/// # Errors
/// Returns what is wrong: empty, too long, surrounding spaces or control characters.
pub fn check_event_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("an event name must not be empty".into());
    }
    if text.chars().count() > MAX_NAME {
        return Err(format!(
            "an event name has at most {MAX_NAME} characters, got {}",
            text.chars().count()
        ));
    }
    if text.trim() != text {
        return Err(format!(
            "an event name must not start or end with spaces, got `{text}`"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("an event name must not contain control characters".into());
    }
    Ok(())
}

fn check_plain_name(text: &str, what: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if text.len() > MAX_NAME {
        return Err(format!(
            "{what} has at most {MAX_NAME} characters, got {}",
            text.len()
        ));
    }
    for (i, ch) in text.chars().enumerate() {
        let ok = ch.is_ascii_alphanumeric() || (i > 0 && matches!(ch, '-' | '_' | '.'));
        if !ok {
            return Err(format!(
                "{what} contains `{ch}`; use letters, digits, `-`, `_` and `.` (and start with a letter or digit)"
            ));
        }
    }
    Ok(())
}

impl TryFrom<String> for EventName {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        EventName::new(text)
    }
}

impl From<EventName> for String {
    fn from(name: EventName) -> String {
        name.0
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which direction of a metric is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// More is better (conversions, revenue).
    #[default]
    Higher,
    /// Less is better (errors, latency, churn).
    Lower,
}

/// One metric of an experiment as written: a name and exactly one definition, except for the
/// built-in `$` metrics, which take none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricSpec {
    pub name: MetricName,
    /// 1 for a unit with at least one `event` after its exposure, else 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<EventMetric>,
    /// The sum of the values of a unit's `event`s after its exposure (a value defaults to 1, so
    /// without values this counts events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<EventMetric>,
    /// Σ numerator / Σ denominator over all units of a variant (delta method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<RatioMetric>,
    /// Which direction is an improvement (default `higher`; built-ins know their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub better: Option<Better>,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Only events from `delay` after the unit's exposure until `duration` later count
    /// (GrowthBook's conversion window); every event after the exposure when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSpec>,
    /// Each unit's value counts at most this much (winsorisation), for continuous metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<CapSpec>,
}

/// `{delay, duration}` after a unit's exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    #[serde(default, with = "serde_humantime")]
    pub delay: std::time::Duration,
    #[serde(with = "serde_humantime")]
    pub duration: std::time::Duration,
}

/// Exactly one of `{value: V}` (a unit's value above V counts as V) or
/// `{percentile: P, ignoreZeros: B}` (V is the P-quantile of the exposed units' values, pooled
/// over variants, computed at each analysis; with `ignoreZeros`, units whose value is 0 do not
/// enter the quantile, as GrowthBook's option of that name).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CapSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_zeros: bool,
}

/// A checked [`CapSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cap {
    /// Values above `value` count as `value`.
    Value { value: f64 },
    /// Values above the `percentile`-quantile (a fraction, 0.99 = 99th) of the units' values
    /// count as that quantile.
    Percentile { percentile: f64, ignore_zeros: bool },
}

impl CapSpec {
    /// The cap this spec describes, once [`Experiment::validate`](super::Experiment::validate)
    /// accepted it; `None` for a spec with neither field.
    pub fn cap(&self) -> Option<Cap> {
        match (self.value, self.percentile) {
            (Some(value), _) => Some(Cap::Value { value }),
            (None, Some(percentile)) => Some(Cap::Percentile {
                percentile,
                ignore_zeros: self.ignore_zeros,
            }),
            (None, None) => None,
        }
    }
}

/// `{event: NAME}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMetric {
    pub event: EventName,
}

/// `{numerator: {sum: EVENT}, denominator: {count: EVENT}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioMetric {
    pub numerator: EventAggregate,
    pub denominator: EventAggregate,
}

/// One side of a ratio: exactly one of `sum` (of the event's values) or `count` (of events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EventAggregate {
    Sum(EventName),
    Count(EventName),
}

impl EventAggregate {
    pub fn event(&self) -> &EventName {
        match self {
            EventAggregate::Sum(e) | EventAggregate::Count(e) => e,
        }
    }

    /// What one event adds to this side: its value for `sum`, 1 for `count`.
    pub fn contribution(&self, value: f64) -> f64 {
        match self {
            EventAggregate::Sum(_) => value,
            EventAggregate::Count(_) => 1.0,
        }
    }
}

one_of!(EventAggregate { "sum" => Sum(EventName), "count" => Count(EventName) });

/// What a metric measures per unit, resolved from its spec (or built in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricDefinition {
    Conversion {
        event: EventName,
    },
    Continuous {
        event: EventName,
    },
    Ratio {
        numerator: EventAggregate,
        denominator: EventAggregate,
    },
}

impl MetricDefinition {
    /// The manifest key of the definition.
    pub fn kind(&self) -> &'static str {
        match self {
            MetricDefinition::Conversion { .. } => "conversion",
            MetricDefinition::Continuous { .. } => "continuous",
            MetricDefinition::Ratio { .. } => "ratio",
        }
    }

    /// The events the metric reads.
    pub fn events(&self) -> Vec<&EventName> {
        match self {
            MetricDefinition::Conversion { event } | MetricDefinition::Continuous { event } => {
                vec![event]
            }
            MetricDefinition::Ratio {
                numerator,
                denominator,
            } => vec![numerator.event(), denominator.event()],
        }
    }
}

/// The metrics the proxy measures for a traffic experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuiltinMetric {
    /// `$errors`: Σ failed requests / Σ requests (5xx or no answer).
    #[serde(rename = "$errors")]
    Errors,
    /// `$latency_ms`: Σ latency / Σ requests, in milliseconds.
    #[serde(rename = "$latency_ms")]
    LatencyMs,
}

impl BuiltinMetric {
    pub const ALL: [BuiltinMetric; 2] = [BuiltinMetric::Errors, BuiltinMetric::LatencyMs];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinMetric::Errors => ERRORS_METRIC,
            BuiltinMetric::LatencyMs => LATENCY_METRIC,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Both are ratios over the proxy's `$request` events.
    pub fn definition(self) -> MetricDefinition {
        let requests = EventAggregate::Count(EventName::reserved(REQUEST_EVENT));
        let numerator = match self {
            BuiltinMetric::Errors => EventAggregate::Count(EventName::reserved(SERVER_ERROR_EVENT)),
            BuiltinMetric::LatencyMs => EventAggregate::Sum(EventName::reserved(REQUEST_EVENT)),
        };
        MetricDefinition::Ratio {
            numerator,
            denominator: requests,
        }
    }

    /// Fewer errors and less latency are better.
    pub fn better(self) -> Better {
        Better::Lower
    }
}

impl MetricSpec {
    /// The definition: the built-in's, or the one written.
    ///
    /// # Errors
    /// The path (relative to the metric) and problem when a custom metric does not have exactly
    /// one of `conversion`, `continuous`, `ratio`, or a built-in has one.
    pub fn definition(&self) -> Result<MetricDefinition, (&'static str, super::ExperimentProblem)> {
        use super::ExperimentProblem as P;
        let written: Vec<(&'static str, MetricDefinition)> = [
            self.conversion.as_ref().map(|m| {
                let event = m.event.clone();
                ("conversion", MetricDefinition::Conversion { event })
            }),
            self.continuous.as_ref().map(|m| {
                let event = m.event.clone();
                ("continuous", MetricDefinition::Continuous { event })
            }),
            self.ratio.as_ref().map(|r| {
                let d = MetricDefinition::Ratio {
                    numerator: r.numerator.clone(),
                    denominator: r.denominator.clone(),
                };
                ("ratio", d)
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(builtin) = self.name.builtin() {
            if let Some((field, _)) = written.first() {
                return Err((
                    field,
                    P::BuiltinRedefined {
                        name: builtin.name(),
                    },
                ));
            }
            if self.better.is_some() {
                return Err((
                    "better",
                    P::BuiltinRedefined {
                        name: builtin.name(),
                    },
                ));
            }
            return Ok(builtin.definition());
        }
        let mut written = written.into_iter();
        match (written.next(), written.next()) {
            (Some((_, definition)), None) => Ok(definition),
            (None, _) => Err(("", P::MetricDefinition)),
            (Some(_), Some((second, _))) => Err((second, P::MetricDefinition)),
        }
    }

    /// Which direction is an improvement.
    pub fn better(&self) -> Better {
        match self.name.builtin() {
            Some(builtin) => builtin.better(),
            None => self.better.unwrap_or_default(),
        }
    }
}
