//! Power of two choices over requests in flight: pick two available instances at random and
//! send to the less busy one. Cheap, no shared queue, and avoids herding onto one instance.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;
use tokio::time::Instant;

use crate::endpoint::Endpoint;

/// Why no instance was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoEndpoint {
    /// The release lists no instance at all.
    Empty,
    /// Every instance is ejected, failing health checks or already tried.
    NoneAvailable,
}

/// Picks an available instance not in `tried`.
///
/// # Errors
/// [`NoEndpoint`] when there is none.
pub fn pick(
    endpoints: &[Arc<Endpoint>],
    tried: &[SocketAddr],
    now: Instant,
    rng: &mut impl Rng,
) -> Result<Arc<Endpoint>, NoEndpoint> {
    if endpoints.is_empty() {
        return Err(NoEndpoint::Empty);
    }
    let usable = |e: &&Arc<Endpoint>| !tried.contains(&e.addr) && e.available(now);
    let count = endpoints.iter().filter(usable).count();
    let nth = |n: usize| endpoints.iter().filter(usable).nth(n).cloned();
    match count {
        0 => Err(NoEndpoint::NoneAvailable),
        1 => nth(0).ok_or(NoEndpoint::NoneAvailable),
        _ => {
            let a = rng.random_range(0..count);
            let b = (a + rng.random_range(1..count)) % count;
            let (a, b) = (nth(a), nth(b));
            match (a, b) {
                (Some(a), Some(b)) => Ok(if b.in_flight() < a.in_flight() { b } else { a }),
                _ => Err(NoEndpoint::NoneAvailable),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    fn eps(n: u16) -> Vec<Arc<Endpoint>> {
        (0..n)
            .map(|i| Arc::new(Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 1000 + i)))))
            .collect()
    }

    #[test]
    fn prefers_the_less_busy_of_two() {
        let e = eps(2);
        let _busy: Vec<_> = (0..5).map(|_| e[0].start_request()).collect();
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..20 {
            assert_eq!(
                pick(&e, &[], Instant::now(), &mut rng).unwrap().addr,
                e[1].addr
            );
        }
    }

    #[test]
    fn skips_tried_and_unavailable() {
        let e = eps(3);
        e[1].set_healthy(false);
        let mut rng = SmallRng::seed_from_u64(2);
        let got = pick(&e, &[e[0].addr], Instant::now(), &mut rng).unwrap();
        assert_eq!(got.addr, e[2].addr);
        assert_eq!(
            pick(&e, &[e[0].addr, e[2].addr], Instant::now(), &mut rng).unwrap_err(),
            NoEndpoint::NoneAvailable
        );
        assert_eq!(
            pick(&[], &[], Instant::now(), &mut rng).unwrap_err(),
            NoEndpoint::Empty
        );
    }

    #[test]
    fn spreads_over_idle_instances() {
        let e = eps(4);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(pick(&e, &[], Instant::now(), &mut rng).unwrap().addr);
        }
        assert_eq!(seen.len(), 4);
    }
}
