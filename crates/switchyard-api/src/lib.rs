//! The REST API's wire types, shared by the server and the CLI, and the client the CLI uses.
//!
//! - [`types`]: request and response bodies, and the stable error body
//!   `{"error": {"code", "message", "details"}}`.
//! - [`client`]: a typed HTTP client for the daemon.

pub mod client;
pub mod types;

pub use client::{Client, ClientError};
pub use types::*;
