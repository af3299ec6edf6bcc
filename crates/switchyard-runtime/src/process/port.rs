//! Free local ports for new instances.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use switchyard_core::ports::RuntimeError;

/// Picks `count` distinct free ports on 127.0.0.1.
///
/// Each port comes from binding port 0 and reading what the kernel chose. Every listener is kept
/// until all ports are chosen, so the kernel cannot hand out the same port twice in one call; they
/// are then released for the instances to bind. Another program could take a port in between; the
/// instance would then fail its start and the release reports it.
///
/// # Errors
/// [`RuntimeError::NoFreePort`] when the kernel refuses a bind.
pub(crate) fn free_ports(count: u32) -> Result<Vec<u16>, RuntimeError> {
    let mut listeners = Vec::new();
    for instance in 0..count {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|source| RuntimeError::NoFreePort { instance, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| RuntimeError::NoFreePort { instance, source })?
            .port();
        listeners.push((listener, port));
    }
    Ok(listeners.into_iter().map(|(_, port)| port).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_nonzero() {
        let mut ports = free_ports(8).expect("ports");
        assert!(ports.iter().all(|&p| p != 0));
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 8);
    }
}
