//! Conditions: boolean trees (`all`, `any`, `not`) over attribute tests and segment references.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A condition over the evaluation context.
///
/// Written as a single-key map: `{all: [...]}`, `{any: [...]}`, `{not: ...}`, `{segment: name}` or
/// `{attribute: {name, op, values}}`. `{all: []}` is true and `{any: []}` is false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Condition {
    /// True when every child is true.
    All(Vec<Condition>),
    /// True when at least one child is true.
    Any(Vec<Condition>),
    /// Negation.
    Not(Box<Condition>),
    /// The named segment of the flag set.
    Segment(String),
    /// A test on one attribute.
    Attribute(AttributeCondition),
}

/// A test of one context attribute.
///
/// A missing attribute (absent or `null`) makes every operator false except `notIn`, which is
/// true (Unleash's semantics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeCondition {
    /// The attribute name. `targetingKey` is the targeting key; `currentTime` falls back to `now`.
    pub name: String,
    /// The operator.
    pub op: Operator,
    /// Operands. List operators (`in`, `notIn`, `contains`, `startsWith`, `endsWith`, `inCidr`)
    /// match when any operand matches; every other operator takes exactly one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
    /// Compare strings ignoring case (string operators and `in`/`notIn`). Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub case_insensitive: bool,
}

/// Attribute operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operator {
    /// The attribute (as a string) is one of the values; indexed, O(1) for any list size.
    In,
    /// The attribute is none of the values (true when the attribute is missing).
    NotIn,
    /// The string attribute contains one of the values.
    Contains,
    /// The string attribute starts with one of the values.
    StartsWith,
    /// The string attribute ends with one of the values.
    EndsWith,
    /// The string attribute matches the regular expression (Rust `regex` syntax, unanchored).
    Matches,
    /// Numeric `==` (strings holding numbers are parsed).
    NumEq,
    /// Numeric `<`.
    NumLt,
    /// Numeric `<=`.
    NumLte,
    /// Numeric `>`.
    NumGt,
    /// Numeric `>=`.
    NumGte,
    /// Semantic-version `==`.
    SemverEq,
    /// Semantic-version `<`.
    SemverLt,
    /// Semantic-version `<=`.
    SemverLte,
    /// Semantic-version `>`.
    SemverGt,
    /// Semantic-version `>=`.
    SemverGte,
    /// Same major version and at least the operand (npm `^`).
    SemverCaret,
    /// Same major and minor version and at least the operand (npm `~`).
    SemverTilde,
    /// The RFC 3339 date attribute is strictly before the operand.
    DateBefore,
    /// The RFC 3339 date attribute is strictly after the operand.
    DateAfter,
    /// The IP address attribute is inside one of the CIDR blocks (a bare address is a /32 or /128).
    InCidr,
}

impl Operator {
    /// Whether the operator takes a list of operands rather than exactly one.
    pub fn takes_list(self) -> bool {
        matches!(
            self,
            Self::In
                | Self::NotIn
                | Self::Contains
                | Self::StartsWith
                | Self::EndsWith
                | Self::InCidr
        )
    }
}
