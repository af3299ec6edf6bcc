//! The evaluation context (OpenFeature's targeting key plus attributes) and the clock input.

mod attributes;
mod key;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use attributes::Attributes;
pub(crate) use key::{AttributeKey, KeyKind};

/// Attribute name that resolves to [`EvaluationContext::targeting_key`] in conditions and
/// stickiness (OpenFeature's name; Unleash's `userId` imports to it).
pub const TARGETING_KEY: &str = "targetingKey";
/// Attribute name that, when absent from the context, resolves to the evaluation time `now`
/// (Unleash's `currentTime`; flagd's `$flagd.timestamp` imports to it).
pub const CURRENT_TIME: &str = "currentTime";
/// Attribute name of the session identifier (used by Unleash's `default` stickiness).
pub const SESSION_ID: &str = "sessionId";

/// What a flag is evaluated for: an optional targeting key and free-form attributes.
///
/// Serialises as OpenFeature/OFREP does: `{"targetingKey": "...", "<attribute>": <value>, ...}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluationContext {
    /// The subject of the evaluation (a user id, a session, a tenant).
    #[serde(
        rename = "targetingKey",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub targeting_key: Option<String>,
    /// Every other attribute. `null` values count as absent.
    #[serde(flatten)]
    pub attributes: Attributes,
}

impl EvaluationContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the targeting key.
    #[must_use]
    pub fn with_targeting_key(mut self, key: impl Into<String>) -> Self {
        self.targeting_key = Some(key.into());
        self
    }

    /// Sets one attribute.
    #[must_use]
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Looks up an attribute; `targetingKey` reads the targeting key. `null` counts as absent.
    pub fn get(&self, name: &str) -> Option<AttributeRef<'_>> {
        self.resolve(name, KeyKind::of(name))
    }

    /// [`EvaluationContext::get`] for a name the compiler has already classified.
    #[inline]
    pub(crate) fn lookup(&self, key: &AttributeKey) -> Option<AttributeRef<'_>> {
        self.resolve(key.name(), key.kind())
    }

    #[inline]
    fn resolve(&self, name: &str, kind: KeyKind) -> Option<AttributeRef<'_>> {
        let value = match kind {
            KeyKind::TargetingKey => match &self.targeting_key {
                Some(targeting_key) => return Some(AttributeRef::Str(targeting_key)),
                None => self.attributes.get(name)?,
            },
            KeyKind::Plain => self.attributes.get(name)?,
            // JsonLogic-style paths (`user.name`) reach into object attributes; only tried on a
            // miss so that an attribute named with dots still wins.
            KeyKind::Dotted => match self.attributes.get(name) {
                Some(value) => value,
                None => self.nested(name)?,
            },
        };
        AttributeRef::of(value)
    }

    /// An attribute that is neither `targetingKey` nor a dotted path (`sessionId`).
    pub(crate) fn plain(&self, name: &str) -> Option<AttributeRef<'_>> {
        AttributeRef::of(self.attributes.get(name)?)
    }

    fn nested(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let first = parts.next()?;
        if first.len() == path.len() {
            return None;
        }
        let mut value = self.attributes.get(first)?;
        for part in parts {
            value = value.as_object()?.get(part)?;
        }
        Some(value)
    }
}

impl<'a> AttributeRef<'a> {
    /// `null` counts as absent.
    #[inline]
    fn of(value: &'a Value) -> Option<Self> {
        match value {
            Value::Null => None,
            Value::String(s) => Some(Self::Str(s)),
            Value::Number(n) => n.as_f64().map(Self::Number),
            Value::Bool(b) => Some(Self::Bool(*b)),
            other => Some(Self::Other(other)),
        }
    }
}

/// A borrowed attribute value, so matching never clones the context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttributeRef<'a> {
    /// A string attribute.
    Str(&'a str),
    /// A numeric attribute.
    Number(f64),
    /// A boolean attribute.
    Bool(bool),
    /// An array or object (only `in`-style operators can never match it).
    Other(&'a Value),
}

/// A point in time, in milliseconds since the Unix epoch. Evaluation takes it as an input so that
/// it stays a pure function (scheduled ramps and date operators read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// The current wall-clock time (for callers at the edge; the engine never calls it).
    pub fn now() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self(millis)
    }
}
