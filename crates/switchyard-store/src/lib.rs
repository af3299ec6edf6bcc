//! Switchyard's durable state on SQLite: applied manifests, each app's stable release, rollouts
//! and the append-only event log, behind [`switchyard_core::ports::StateStore`].
//!
//! It does not interpret what it stores: rollout state belongs to the rollout engine, manifests
//! are validated by `switchyard-core` before they get here. Its job is that every write happens
//! whole (with its events) or not at all, and survives a restart. See `docs/store.md` for the
//! schema, its invariants and backups.
//!
//! - [`store`]: [`SqliteStore`], opening the database file and the `StateStore` implementation.
//! - [`error`]: [`SqliteStoreError`], what can fail while opening or backing up.
//! - [`flag_audit`]: the flag audit log's hash chain (canonical form, hashing, verification).
//! - [`event_chain`]: the event log's hash chain, the same way.
//!   `SqliteStore` also implements [`switchyard_core::ports::FlagStore`].

mod codec;
pub mod error;
pub mod event_chain;
pub mod flag_audit;
pub mod sqlite;

pub use error::SqliteStoreError;
pub use sqlite::{DB_FILE_NAME, SqliteStore};
