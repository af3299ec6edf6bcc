//! What can go wrong with a flag operation.

use switchyard_core::ports::StoreError;
use switchyard_flags::{FlagError, ImportError};

/// Why a flag operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FlagServiceError {
    #[error("flag `{0}` does not exist")]
    UnknownFlag(String),
    /// The resulting set does not compile (or a native document does not parse).
    #[error("{}", describe(.0))]
    Invalid(#[source] FlagError),
    #[error("{}", describe(.0))]
    Import(#[source] ImportError),
    #[error("the flag document is not a native flag: {0}")]
    InvalidDocument(#[source] serde_json::Error),
    #[error("the document's key `{document}` differs from `{path}` in the path")]
    KeyMismatch { path: String, document: String },
    #[error("flag key `{0}` is reserved by the API (`audit` and `stream` are paths)")]
    ReservedKey(String),
    /// `key` is cut to its first 64 characters.
    #[error("{kind} key {key:?} {source}")]
    InvalidKey {
        kind: &'static str,
        key: String,
        #[source]
        source: switchyard_core::NameError,
    },
    #[error("environment name `{0}` must be 1-63 letters, digits, `-`, `_` or `.`")]
    InvalidEnvironment(String),
    #[error("unknown action `{0}`; use enable or disable")]
    UnknownAction(String),
    #[error("stored flags cannot be read back: {0}")]
    Corrupt(#[source] serde_json::Error),
    #[error("flag store failed")]
    Store(#[from] StoreError),
}

/// The error's text followed by its causes, once each (the flag engine's messages already
/// repeat their cause; parse errors keep the line and column in theirs).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

impl FlagServiceError {
    /// The flag (or segment) and field path the error is about, when it names one.
    pub fn location(&self) -> (Option<String>, Option<String>) {
        match self {
            FlagServiceError::Invalid(FlagError::InvalidFlag { flag, path, .. }) => {
                (Some(flag.clone()), Some(path.clone()))
            }
            FlagServiceError::Invalid(FlagError::InvalidSegment { segment, path, .. }) => {
                (Some(segment.clone()), Some(path.clone()))
            }
            FlagServiceError::Invalid(FlagError::DuplicateFlag(flag))
            | FlagServiceError::ReservedKey(flag)
            | FlagServiceError::InvalidKey { key: flag, .. } => (Some(flag.clone()), None),
            FlagServiceError::Import(ImportError::Unsupported { flag, path, .. }) => {
                (Some(flag.clone()), Some(path.clone()))
            }
            _ => (None, None),
        }
    }
}
