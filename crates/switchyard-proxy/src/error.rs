//! Errors of the proxy's own API (binding, configuring); request failures are answers, see
//! [`crate::failure`].

use std::net::SocketAddr;

use thiserror::Error;

/// What went wrong starting a listener.
#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the bound address of the listener for {addr}")]
    LocalAddr {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
