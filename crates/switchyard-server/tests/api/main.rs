#![allow(clippy::unwrap_used)]

//! The API's handlers through `Router::oneshot`, without a socket: the control layer over fake
//! ports (runtime, router, clock, provider) and the real SQLite store in memory.

mod dataplane;
mod errors;
mod pipelines;
mod security;
mod support;
mod ui;
