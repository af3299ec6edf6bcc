//! Feature flags as stored: one JSON document per flag and per segment, and an append-only,
//! hash-chained audit log of every change.
//!
//! The store does not read the documents: they belong to the flag engine (`switchyard-flags`),
//! which core does not depend on. A flag's per-environment on/off state is part of its document
//! (`environments: {production: {enabled: false}}`), so toggling it is a change like any other,
//! with its audit entry. Validation (compiling the whole resulting set) happens before a change
//! reaches the store.

use serde::{Deserialize, Serialize};

use super::store::StoreError;
use crate::time::Timestamp;

/// `prev_hash` of the first audit entry: 64 zeros (SHA-256 width).
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Stored flag documents and their audit log.
#[async_trait::async_trait]
pub trait FlagStore: Send + Sync + 'static {
    /// Every flag (in the order they were first stored) and every segment, with the revision
    /// (the id of the latest audit entry) they reflect.
    ///
    /// # Errors
    /// Backend failures; a stored document that is not JSON (`Corrupt`).
    async fn flag_documents(&self) -> Result<FlagDocuments, StoreError>;

    /// Applies every edit and appends one audit entry per document that actually changed, in
    /// one transaction. Edits that change nothing are reported `unchanged` and not logged.
    ///
    /// # Errors
    /// Backend failures; nothing is stored then.
    async fn change_flags(&self, change: &FlagChange) -> Result<FlagChangeOutcome, StoreError>;

    /// Audit entries matching `query`, oldest first.
    ///
    /// # Errors
    /// Backend failures, or an entry whose documents are not JSON (`Corrupt`).
    async fn flag_audit(&self, query: &FlagAuditQuery) -> Result<Vec<FlagAuditEntry>, StoreError>;

    /// Recomputes the whole hash chain and compares the stored documents with the state the
    /// log leads to. Tampering is reported in the result, not as an error.
    ///
    /// # Errors
    /// Backend failures.
    async fn verify_flag_audit(&self) -> Result<FlagAuditVerification, StoreError>;
}

/// What a stored document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagObjectKind {
    Flag,
    Segment,
}

impl FlagObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagObjectKind::Flag => "flag",
            FlagObjectKind::Segment => "segment",
        }
    }
}

/// One stored flag or segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagDocument {
    /// The flag key or segment name.
    pub key: String,
    /// The native flag (or the segment's condition) as JSON.
    pub document: serde_json::Value,
    pub updated_at: Timestamp,
}

/// Everything stored, at one revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlagDocuments {
    /// The id of the latest audit entry; 0 before the first change.
    pub revision: i64,
    pub flags: Vec<FlagDocument>,
    pub segments: Vec<FlagDocument>,
}

/// One atomic change: who, when, why, and the documents it writes or removes.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagChange {
    /// Who, and from where (recorded in the flag audit log and, per document, in the event
    /// log).
    pub by: super::store::Author,
    /// Why, in a sentence.
    pub reason: String,
    pub at: Timestamp,
    pub edits: Vec<FlagEdit>,
}

/// Writes (`Some`) or removes (`None`) one document.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagEdit {
    pub kind: FlagObjectKind,
    pub key: String,
    pub after: Option<serde_json::Value>,
}

/// What a change did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlagChangeOutcome {
    /// The revision after the change.
    pub revision: i64,
    pub results: Vec<FlagEditResult>,
}

/// What happened to one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagEditResult {
    pub kind: FlagObjectKind,
    pub key: String,
    /// `created`, `configured`, `deleted` or `unchanged`.
    pub result: String,
}

/// One audit entry. `hash` is the SHA-256 of the canonical serialisation of every other field
/// (see the store's documentation), `prev_hash` the previous entry's `hash` (or
/// [`GENESIS_HASH`]): editing, removing or reordering an entry breaks the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagAuditEntry {
    /// Consecutive from 1.
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub reason: String,
    pub kind: FlagObjectKind,
    pub key: String,
    /// The document before the change; `None` when it was created.
    pub before: Option<serde_json::Value>,
    /// The document after the change; `None` when it was deleted.
    pub after: Option<serde_json::Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagAuditQuery {
    /// Only entries about this flag or segment.
    pub key: Option<String>,
    /// Only entries with a larger id.
    pub after: Option<i64>,
    /// At most this many, the most recent ones (still returned oldest first).
    pub limit: Option<u32>,
}

/// The outcome of checking the audit chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlagAuditVerification {
    /// No problem found.
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// The hash of the last entry; `None` when the log is empty.
    pub head: Option<String>,
    pub problems: Vec<FlagAuditProblem>,
}

/// One break in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagAuditProblem {
    /// The entry at fault; `None` for a stored document the log does not account for.
    pub id: Option<i64>,
    pub message: String,
}
