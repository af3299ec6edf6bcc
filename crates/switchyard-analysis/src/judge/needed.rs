//! How much more canary traffic an undecided judge needs: the number of canary requests at
//! which the one-sided confidence sequence, at the current effect size, per-request variance and traffic
//! split, would be narrow enough to clear the boundary. An estimate for operators ("waiting for
//! about 1 800 more canary requests"), not a promise: the effect estimate moves as data comes.

use switchyard_stats::sequential::confidence_sequence;

use crate::judge::spec::DEFAULT_TUNING;

/// Additional canary requests needed for the interval half-width to fall below `distance`
/// (|estimate − boundary|), given the current standard error `std_error` after `canary` canary
/// requests out of `total`; `None` when no amount would do (no effect, no data).
pub fn additional_canary_requests(
    distance: f64,
    std_error: f64,
    canary: u64,
    total: u64,
    alpha: f64,
) -> Option<u64> {
    if !(distance.is_finite() && distance > 0.0 && std_error.is_finite() && std_error > 0.0)
        || canary == 0
    {
        return None;
    }
    let (nc, ratio) = (canary as f64, total as f64 / canary as f64);
    // The per-canary-request standard deviation stays as measured; the interval shrinks with
    // canary requests x (and ratio · x total).
    let unit = std_error * nc.sqrt();
    let rho = confidence_sequence::rho(alpha, DEFAULT_TUNING, false);
    let narrow = |x: f64| {
        confidence_sequence::halfwidth_one_sided(unit / x.sqrt(), ratio * x, alpha, rho) < distance
    };
    if narrow(nc) {
        return Some(0);
    }
    let (mut lo, mut hi) = (nc, nc * 2.0);
    while !narrow(hi) {
        if hi > 1e15 {
            return None;
        }
        lo = hi;
        hi *= 2.0;
    }
    // Geometric bisection to 1 %: precise enough for an estimate.
    while hi / lo > 1.01 {
        let mid = (lo * hi).sqrt();
        if narrow(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some((hi - nc).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_effect_needs_less_traffic() {
        let small = additional_canary_requests(0.01, 0.01, 1000, 10_000, 0.01).unwrap();
        let large = additional_canary_requests(0.02, 0.01, 1000, 10_000, 0.01).unwrap();
        assert!(small > large && large > 0, "{small} {large}");
        assert_eq!(
            additional_canary_requests(1.0, 0.01, 1000, 10_000, 0.01),
            Some(0)
        );
        assert_eq!(
            additional_canary_requests(0.0, 0.01, 1000, 10_000, 0.01),
            None
        );
    }
}
