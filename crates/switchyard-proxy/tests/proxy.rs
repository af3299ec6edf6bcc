//! Integration tests of the data plane through real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used)]

#[path = "proxy/support.rs"]
mod support;

#[path = "proxy/split.rs"]
mod split;

#[path = "proxy/zero_loss.rs"]
mod zero_loss;

#[path = "proxy/routing.rs"]
mod routing;

#[path = "proxy/resilience.rs"]
mod resilience;

#[path = "proxy/limits.rs"]
mod limits;

#[path = "proxy/mirror.rs"]
mod mirror;

#[path = "proxy/telemetry.rs"]
mod telemetry;

#[path = "proxy/http_handling.rs"]
mod http_handling;

#[path = "proxy/upstream_framing.rs"]
mod upstream_framing;

#[path = "proxy/exposure.rs"]
mod exposure;

#[path = "proxy/host.rs"]
mod host;

#[path = "proxy/tls.rs"]
mod tls;

#[path = "proxy/client_framing.rs"]
mod client_framing;
