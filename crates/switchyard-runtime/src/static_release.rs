//! A `static` release: addresses that run elsewhere. Starting one only checks that every address
//! is healthy; stopping it only forgets the addresses.

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_core::Release;
use switchyard_core::ports::RuntimeError;

use crate::health;

/// Health-checks every address in parallel, with the rules of process instances.
///
/// # Errors
/// [`RuntimeError::NoAddresses`] for an empty list; [`RuntimeError::NeverHealthy`] for the first
/// address (in list order) that is not healthy within `start_timeout`.
pub(crate) async fn check(
    release: &Release,
    addresses: &[SocketAddr],
    start_timeout: Duration,
) -> Result<Vec<SocketAddr>, RuntimeError> {
    if addresses.is_empty() {
        return Err(RuntimeError::NoAddresses {
            version: release.version.clone(),
        });
    }
    // Spawned so that the checks run in parallel; awaited in order so the first failure in list
    // order is the one reported.
    let checks: Vec<_> = addresses
        .iter()
        .map(|&address| {
            let check = release.health_check.clone();
            tokio::spawn(async move { health::wait_healthy(address, &check, start_timeout).await })
        })
        .collect();
    let mut first_failure = None;
    for ((instance, &address), joined) in (0u32..).zip(addresses).zip(checks) {
        let outcome = joined
            .await
            .unwrap_or_else(|join_error| Err(join_error.to_string()));
        if let Err(last_error) = outcome {
            first_failure.get_or_insert(RuntimeError::NeverHealthy {
                instance,
                address,
                timeout: start_timeout,
                last_error,
            });
        }
    }
    first_failure.map_or_else(|| Ok(addresses.to_vec()), Err)
}
