//! The traits adapters implement: the state store, the flag store and the workload runtime.
//! Callers depend on these, never on an adapter, so SQLite can become PostgreSQL and processes
//! can become pods without changing them.

pub mod flags;
pub mod notifications;
pub mod runtime;
pub mod store;
pub mod tokens;

pub use flags::{
    FlagAuditEntry, FlagAuditProblem, FlagAuditQuery, FlagAuditVerification, FlagChange,
    FlagChangeOutcome, FlagDocument, FlagDocuments, FlagEdit, FlagEditResult, FlagObjectKind,
    FlagStore, GENESIS_HASH,
};
pub use notifications::{Delivery, NewNotification, NotificationRecord, NotificationStore};
pub use runtime::{RuntimeError, WorkloadRuntime};
pub use store::{
    AppRecord, ApplyOutcome, Author, DeploymentRecord, EventKind, EventLogProblem,
    EventLogVerification, EventQuery, EventRecord, NewEvent, RolloutId, RolloutRecord,
    RolloutUpdate, RunId, RunRecord, RunUpdate, StateStore, StoreError,
};
pub use tokens::{TokenRecord, TokenStore};

/// A boxed error from an adapter's backend (database driver, operating system).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
