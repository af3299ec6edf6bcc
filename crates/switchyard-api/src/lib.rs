//! The REST API's wire types, shared by the server and the CLI, and the client the CLI uses.
//!
//! - [`types`]: request and response bodies, and the stable error body
//!   `{"error": {"code", "message", "details"}}`.
//! - [`client`]: a typed HTTP client for the daemon.
//! - [`flags`]: wire types of the flag API (the client methods are in `client/flags.rs`).

pub mod client;
pub mod flags;
pub mod types;

pub use client::{Client, ClientError};
pub use types::*;
