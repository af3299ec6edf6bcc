//! OpenFeature evaluation details: what an evaluation returns, serialised exactly as
//! `switchyard flags eval` prints it and as the OFREP adapter maps it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::model::FlagType;

/// Why a value was served (OpenFeature's resolution reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The flag has no rules: every context gets the same serve.
    Static,
    /// A rule (or a split override) matched the context.
    TargetingMatch,
    /// The context was bucketed: a partial rollout or a weighted split decided.
    Split,
    /// Rules exist but none matched, or a prerequisite failed: the default variant.
    Default,
    /// The flag is switched off: the off variant.
    Disabled,
    /// Evaluation failed; see the error code.
    Error,
}

impl Reason {
    /// Whether the flag "served" the context (Unleash's `isEnabled`, and what prerequisites
    /// test): reason `STATIC`, `TARGETING_MATCH` or `SPLIT`.
    pub fn is_served(self) -> bool {
        matches!(self, Self::Static | Self::TargetingMatch | Self::Split)
    }
}

/// OpenFeature error codes.
///
/// The engine produces `FLAG_NOT_FOUND` and `TYPE_MISMATCH`; `PARSE_ERROR`, `INVALID_CONTEXT`,
/// `TARGETING_KEY_MISSING` and `GENERAL` exist for the serving boundary (a request body that does
/// not parse, a context that is not an object, a provider that insists on a targeting key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No flag has this key.
    FlagNotFound,
    /// The flag's type is not the one the caller asked for.
    TypeMismatch,
    /// The flag configuration or the request could not be parsed.
    ParseError,
    /// A targeting key was required and missing.
    TargetingKeyMissing,
    /// The evaluation context is malformed.
    InvalidContext,
    /// Anything else.
    General,
}

/// The result of one evaluation. Borrows from the compiled flags, so producing it does not
/// allocate unless there is an error message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationDetails<'a> {
    /// The flag key asked for.
    pub key: &'a str,
    /// The served value; `null` when there is none (errors, or no default variant).
    pub value: &'a Value,
    /// The served variant's name.
    pub variant: Option<&'a str>,
    /// Why this value.
    pub reason: Reason,
    /// Set when `reason` is `ERROR`.
    pub error_code: Option<ErrorCode>,
    /// A human-readable explanation of the error.
    pub error_message: Option<ErrorMessage<'a>>,
    /// The flag's metadata.
    pub metadata: &'a BTreeMap<String, Value>,
    /// The variant was drawn at random (`random` stickiness, or `default` stickiness without a
    /// targeting key or `sessionId`): another evaluation of the same context may draw another,
    /// and each answer is as right as the other. Not serialised.
    #[serde(skip)]
    pub random: bool,
}

impl EvaluationDetails<'_> {
    /// Whether the flag served the context (see [`Reason::is_served`]).
    pub fn is_served(&self) -> bool {
        self.reason.is_served()
    }
}

/// The human-readable side of an error, formatted only when displayed or serialised (as a
/// string), so that asking for a flag that does not exist costs no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorMessage<'a> {
    /// `flag `key` does not exist`.
    FlagNotFound {
        /// The key asked for.
        key: &'a str,
    },
    /// `flag `key` is a boolean flag, not string`.
    TypeMismatch {
        /// The flag's key.
        key: &'a str,
        /// The flag's type.
        actual: FlagType,
        /// The type asked for.
        expected: FlagType,
    },
    /// A message written by the caller (the serving boundary's parse and context errors).
    Text(std::borrow::Cow<'a, str>),
}

impl std::fmt::Display for ErrorMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FlagNotFound { key } => write!(f, "flag `{key}` does not exist"),
            Self::TypeMismatch {
                key,
                actual,
                expected,
            } => write!(
                f,
                "flag `{key}` is a {} flag, not {}",
                actual.as_str(),
                expected.as_str()
            ),
            Self::Text(text) => f.write_str(text),
        }
    }
}

impl Serialize for ErrorMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
