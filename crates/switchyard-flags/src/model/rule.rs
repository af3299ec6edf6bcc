//! Rules, rollouts, splits and prerequisites.

use serde::{Deserialize, Serialize};

use super::Condition;

/// A targeting rule: when `when` holds and the context falls inside `rollout`, serve `serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// A label for people and for error messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The condition. Default: always true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// A percentage gate after the condition. Default: everyone who matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// What to serve. Default: the flag's `serve`, then its `defaultVariant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve: Option<Serve>,
}

/// A percentage of the contexts matching a rule, chosen by hashing a stickiness attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// 0–100. Exactly one of `percentage` and `ramp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// A scheduled ramp. Exactly one of `percentage` and `ramp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Ramp>,
    /// The attribute hashed for bucketing. Default `default`: the targeting key, else `sessionId`,
    /// else random. `random` draws per evaluation. Any other name: that attribute, and a context
    /// without it is outside the rollout.
    #[serde(
        default = "default_stickiness",
        skip_serializing_if = "is_default_stickiness"
    )]
    pub stickiness: String,
    /// Hash salt. Default: the flag key. Give two flags the same salt to roll out to the same users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

/// A time-based ramp from `from`% to `to`% between `start` and `end` (RFC 3339), linear in between,
/// `from` before `start` and `to` after `end`. `to` must be at least `from`, so as the ramp grows
/// nobody who was inside leaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ramp {
    /// Starting percentage.
    pub from: f64,
    /// Final percentage.
    pub to: f64,
    /// When the ramp starts (RFC 3339).
    pub start: String,
    /// When the ramp reaches `to` (RFC 3339).
    pub end: String,
}

/// What a rule (or a flag with no rules) serves: one variant or a weighted split.
/// Written `{variant: name}` or `{split: {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Serve {
    /// Always this variant.
    Variant(String),
    /// A weighted choice.
    Split(Split),
}

/// A weighted, sticky choice among variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Split {
    /// The variants and their integer weights (relative; they need not sum to 100).
    pub variants: Vec<WeightedVariant>,
    /// The hashed attribute, as for [`Rollout::stickiness`]; a context without it gets a random
    /// variant. Default `default`.
    #[serde(
        default = "default_stickiness",
        skip_serializing_if = "is_default_stickiness"
    )]
    pub stickiness: String,
    /// Hash salt. Default: the flag key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Checked in order before hashing; the first whose condition holds decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

/// One arm of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedVariant {
    /// Variant name.
    pub variant: String,
    /// Relative weight.
    pub weight: u32,
}

/// Serve `variant` to contexts matching `when`, bypassing the split's hashing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Override {
    /// Variant name.
    pub variant: String,
    /// The condition.
    pub when: Condition,
}

/// Another flag that must be in a given state for this flag's rules to run; otherwise the flag
/// serves its `offVariant` with reason `DEFAULT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Prerequisite {
    /// The other flag's key.
    pub flag: String,
    /// Whether the other flag must be serving (`true`, reason `STATIC`, `TARGETING_MATCH` or
    /// `SPLIT`) or not serving (`false`). Default `true`.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// When not empty, the other flag's variant must be one of these. Default: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

/// Name of the stickiness that tries the targeting key, then `sessionId`, then random.
pub const DEFAULT_STICKINESS: &str = "default";
/// Name of the stickiness that draws a fresh bucket per evaluation.
pub const RANDOM_STICKINESS: &str = "random";

fn default_stickiness() -> String {
    DEFAULT_STICKINESS.to_owned()
}

fn is_default_stickiness(value: &str) -> bool {
    value == DEFAULT_STICKINESS
}

fn default_true() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(value: &bool) -> bool {
    *value
}
