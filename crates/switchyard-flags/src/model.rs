//! The native flag model as written by people: serde structs with `deny_unknown_fields` and
//! documented defaults. Nothing here is validated; [`crate::compile`] turns it into a plan that
//! cannot be invalid.

mod condition;
mod rule;

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use condition::{AttributeCondition, Condition, Operator};
pub use rule::{
    DEFAULT_STICKINESS, Override, Prerequisite, RANDOM_STICKINESS, Ramp, Rollout, Rule, Serve,
    Split, WeightedVariant,
};

use crate::hashing::HashVersion;

/// A set of flags and the segments they share. The unit that is loaded, compiled and served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagSet {
    /// The flags, in the order they were written (kept for export).
    // YAML would otherwise write enums as tags (`!all [...]`); single-key maps read the same in
    // YAML and JSON.
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub flags: Vec<FlagDefinition>,
    /// Reusable named conditions, referenced from rules as `{segment: name}`.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "serde_yaml_ng::with::singleton_map_recursive"
    )]
    pub segments: BTreeMap<String, Condition>,
}

/// The value type every variant of a flag has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagType {
    /// `true` / `false`.
    Boolean,
    /// A string.
    String,
    /// A 64-bit signed integer.
    Integer,
    /// A floating-point number (integers are accepted).
    Float,
    /// A JSON object (OpenFeature "structure").
    Object,
}

impl FlagType {
    /// The lowercase name used in documents and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::Object => "object",
        }
    }

    /// Whether `value` is a valid value of this type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            Self::Boolean => value.is_boolean(),
            Self::String => value.is_string(),
            Self::Integer => value.is_i64(),
            Self::Float => value.is_number(),
            Self::Object => value.is_object(),
        }
    }
}

/// One feature flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagDefinition {
    /// Unique key within the flag set.
    pub key: String,
    /// The type of every variant's value.
    #[serde(rename = "type")]
    pub flag_type: FlagType,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The kill switch. Default `true`. When `false` the flag serves `offVariant` with reason
    /// `DISABLED` and no rule runs.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Per-environment kill switch, overriding `enabled` when the set is compiled for that
    /// environment. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, EnvironmentState>,
    /// Named values. Every name referenced anywhere in the flag must be here.
    pub variants: BTreeMap<String, Value>,
    /// Served (reason `DEFAULT`) when the flag is on and no rule matches. Optional: without it the
    /// caller's own default is used (reason `DEFAULT`, value `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_variant: Option<String>,
    /// Served when the flag is off or a prerequisite fails. Default: `defaultVariant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_variant: Option<String>,
    /// What the flag serves when it has no rules (reason `STATIC`, or `SPLIT`), and what a rule
    /// without its own `serve` serves. Default: `defaultVariant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve: Option<Serve>,
    /// Ordered targeting rules; the first that matches decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Flags that must be in a given state before this flag's rules run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Prerequisite>,
    /// The bucketing generation (see [`HashVersion`]). Default `v1`. Never change it on a live
    /// flag: doing so reshuffles users.
    #[serde(default, skip_serializing_if = "HashVersion::is_default")]
    pub hashing: HashVersion,
    /// Scalar values returned as OpenFeature flag metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// Whose rules the flag follows (see [`Semantics`]). Default `native`.
    #[serde(default, skip_serializing_if = "Semantics::is_native")]
    pub semantics: Semantics,
    /// flagd targeting: a JsonLogic expression (with flagd's `fractional`, `starts_with`,
    /// `ends_with` and `sem_ver`) whose result names the variant. Only with `semantics: flagd`.
    /// Present-but-null is kept (flagd then answers `DEFAULT` rather than `STATIC`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub targeting: Option<Value>,
    /// How flagd's `fractional` buckets (see [`Fractional`]). Default `v2`. Only with
    /// `semantics: flagd`; never change it on a live flag: doing so reshuffles users.
    #[serde(default, skip_serializing_if = "Fractional::is_default")]
    pub fractional: Fractional,
}

/// The generations of flagd's `fractional` bucketing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fractional {
    /// flagd's current evaluator (Go flagd v0.17): murmur3 of the bucketing string (or of the
    /// flag key and targeting key); a bucketing value that is not a string falls back to the
    /// targeting key.
    #[default]
    V2,
    /// The newer scheme of the flagd specification (`@fractional-v3`, Python flagd-core 2.0):
    /// murmur3 of the canonical CBOR encoding of the bucketing value, which may be any JSON value
    /// (integral floats encode as integers); the shorthand hashes `[flagKey, targetingKey]`.
    V3,
}

impl Fractional {
    /// Whether this is the default, [`Fractional::V2`].
    // serde's skip_serializing_if hands a reference.
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub fn is_default(&self) -> bool {
        *self == Fractional::V2
    }
}

/// Whose evaluation rules a flag follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Semantics {
    /// Switchyard's own: `rules`, `serve`, `offVariant`, prerequisites, typed variants.
    #[default]
    Native,
    /// flagd's, exactly as flagd's own evaluator: `targeting` in JsonLogic; a disabled flag, or
    /// one without a default variant, answers the caller's default; the requested type is
    /// checked against the served value (variants may mix types) and an integer request
    /// truncates a fractional number. What a flagd file imports to.
    Flagd,
}

impl Semantics {
    /// Whether this is the default, [`Semantics::Native`].
    // serde's skip_serializing_if hands a reference.
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub fn is_native(&self) -> bool {
        *self == Semantics::Native
    }
}

/// A field that is present, even as `null`, is `Some`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The state of a flag in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentState {
    /// The kill switch for this environment.
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

// serde's skip_serializing_if hands a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(value: &bool) -> bool {
    *value
}
