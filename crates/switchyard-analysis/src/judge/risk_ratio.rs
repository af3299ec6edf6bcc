//! The error-rate test of an adaptive canary: a likelihood-ratio martingale on the risk ratio
//! ρ = canary error rate / baseline error rate, valid however the traffic split is chosen.
//!
//! **Why conditioning.** Within one interval, let the canary serve n_c requests and the
//! baseline n_b, and E errors happen between them. Given E (and the request counts, which do
//! not depend on whether a request fails), the number of those errors that were the canary's
//! is Binomial(E, q) with q = n_c·ρ / (n_c·ρ + n_b) when errors arrive as independent rare
//! events. The baseline's own error rate cancels out: it may drift, follow the time of day or
//! jump with a shared dependency's outage, and only ρ is left. The split n_c : n_b may be
//! anything chosen before the interval, in particular chosen by the judge from earlier
//! intervals, which is what an adaptive canary does.
//!
//! **The tests.** For the question "is ρ above `maxIncrease` = ρ₀?" the judge multiplies, over
//! intervals, the likelihood ratio of an alternative ρ₁ > ρ₀ against ρ₀, where ρ₁ is estimated
//! from the intervals *before* the current one (a predictable plug-in). Whatever the true
//! ρ ≤ ρ₀, each factor has expectation at most 1 (the binomial is monotone in q), so the
//! product is a nonnegative supermartingale and by Ville's inequality it ever reaches 1/α with
//! probability at most α: a canary within the boundary is rolled back with probability at most
//! α, after any number of looks, under any data-dependent allocation. The pass side is the
//! mirror image (alternatives below ρ₀). The same two martingales run against every point of a
//! fixed log grid; the always-valid interval is the set of grid points neither has rejected,
//! so it excludes the boundary exactly when the verdict is Fail or Pass.
//!
//! Pure: counts in, numbers out; the state is a few hundred numbers and serialises with the
//! rollout.

use serde::{Deserialize, Serialize};

/// Grid points on each side of the boundary.
const HALF: usize = 40;
/// Spacing of the grid in ln ρ (10.5 % per point), so the grid spans ρ₀·e^±4.
const STEP: f64 = 0.1;

/// Running state of the test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskRatio {
    boundary: f64,
    /// Totals over every interval.
    pub canary_requests: u64,
    pub canary_errors: u64,
    pub baseline_requests: u64,
    pub baseline_errors: u64,
    /// Per grid point ρ_j = ρ₀·e^{(j−HALF)·STEP}: ln of the martingale against "ρ ≤ ρ_j" (the
    /// alternative max(plug-in, ρ_{j+1})), and its running maximum. At j = HALF it is the
    /// fail side of the verdict.
    above: Vec<f64>,
    above_max: Vec<f64>,
    /// The same against "ρ ≥ ρ_j" (alternative min(plug-in, ρ_{j−1})): the pass side.
    below: Vec<f64>,
    below_max: Vec<f64>,
    /// Σ of each interval's log-likelihood at every grid point (for the estimate).
    grid: Vec<f64>,
}

/// What the test says after the last interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskRatioEvidence {
    /// Maximum-likelihood ρ on the grid (interpolated); `None` before any informative interval.
    pub estimate: Option<f64>,
    /// Always-valid interval for ρ at level 1 − 2α (each end one-sided at α), clamped to the
    /// grid: the grid points neither side has rejected. It excludes the boundary exactly when
    /// the verdict is Fail or Pass.
    pub interval: [f64; 2],
    /// The boundary ρ₀.
    pub boundary: f64,
    /// Always-valid p-value of the side the estimate lies on.
    pub p_value: f64,
    /// The canary has been shown above the boundary.
    pub fail: bool,
    /// The canary has been shown below the boundary.
    pub pass: bool,
}

impl RiskRatio {
    /// An empty test against boundary `max_increase` (≥ 1).
    pub fn new(max_increase: f64) -> Self {
        let zeros = vec![0.0; 2 * HALF + 1];
        RiskRatio {
            boundary: max_increase,
            canary_requests: 0,
            canary_errors: 0,
            baseline_requests: 0,
            baseline_errors: 0,
            above: zeros.clone(),
            above_max: zeros.clone(),
            below: zeros.clone(),
            below_max: zeros.clone(),
            grid: zeros,
        }
    }

    /// ρ at grid index `j` (may lie one step beyond either end).
    fn grid_point(&self, j: isize) -> f64 {
        self.boundary * ((j - HALF as isize) as f64 * STEP).exp()
    }

    fn lowest(&self) -> f64 {
        self.grid_point(0)
    }

    fn highest(&self) -> f64 {
        self.grid_point(2 * HALF as isize)
    }

    /// The predictable estimate of ρ from the intervals so far (rates smoothed by half an error,
    /// so an arm without errors still gives a finite ratio), clamped to the grid.
    pub fn plug_in(&self) -> f64 {
        let rate = |errors: u64, requests: u64| (errors as f64 + 0.5) / (requests as f64 + 1.0);
        if self.canary_requests == 0 || self.baseline_requests == 0 {
            return self.boundary;
        }
        let rho = rate(self.canary_errors, self.canary_requests)
            / rate(self.baseline_errors, self.baseline_requests);
        rho.clamp(self.lowest(), self.highest())
    }

    /// Adds one interval: requests and errors of both releases.
    pub fn record(&mut self, canary: (u64, u64), baseline: (u64, u64)) {
        let ((nc, xc), (nb, xb)) = (canary, baseline);
        let errors = xc + xb;
        if nc > 0 && nb > 0 && errors > 0 {
            let (ncf, nbf, x, e) = (nc as f64, nb as f64, xc as f64, errors as f64);
            // Log-likelihood of x canary errors out of e at ratio rho, up to a constant.
            let ll = |rho: f64| x * rho.ln() - e * (ncf * rho + nbf).ln();
            let estimate = self.plug_in();
            let at_estimate = ll(estimate);
            let points = 2 * HALF + 1;
            // Log-likelihoods at the grid points and one beyond each end.
            let at: Vec<f64> = (-1..=points as isize)
                .map(|j| ll(self.grid_point(j)))
                .collect();
            for j in 0..points {
                let (here, next, previous) = (at[j + 1], at[j + 2], at[j]);
                let rho = self.grid_point(j as isize);
                let up = if estimate >= rho * STEP.exp() {
                    at_estimate
                } else {
                    next
                };
                let down = if estimate <= rho * (-STEP).exp() {
                    at_estimate
                } else {
                    previous
                };
                self.above[j] += up - here;
                self.below[j] += down - here;
                self.above_max[j] = self.above_max[j].max(self.above[j]);
                self.below_max[j] = self.below_max[j].max(self.below[j]);
                self.grid[j] += here;
            }
        }
        self.canary_requests += nc;
        self.canary_errors += xc;
        self.baseline_requests += nb;
        self.baseline_errors += xb;
    }

    /// Whether any interval had errors and traffic on both sides.
    pub fn informed(&self) -> bool {
        self.grid.iter().any(|&l| l != 0.0)
    }

    /// The always-valid interval, each end one-sided at `alpha`: from the lowest grid point the
    /// fail side has never rejected to the highest the pass side has never rejected (the whole
    /// grid before any information).
    pub fn interval(&self, alpha: f64) -> [f64; 2] {
        let threshold = (1.0 / alpha).ln();
        let points = self.grid.len();
        let lower = (0..points)
            .find(|&j| self.above_max[j] < threshold)
            .unwrap_or(points - 1);
        let upper = (0..points)
            .rev()
            .find(|&j| self.below_max[j] < threshold)
            .unwrap_or(0);
        [
            self.grid_point(lower as isize),
            self.grid_point(upper.max(lower) as isize),
        ]
    }

    /// The maximum-likelihood ρ, with a parabola through the best grid point and its
    /// neighbours in ln ρ.
    pub fn estimate(&self) -> Option<f64> {
        if !self.informed() {
            return None;
        }
        let best = (0..self.grid.len())
            .max_by(|&a, &b| self.grid[a].total_cmp(&self.grid[b]))
            .unwrap_or(HALF);
        let mut offset = 0.0;
        if best > 0 && best + 1 < self.grid.len() {
            let (l, m, r) = (self.grid[best - 1], self.grid[best], self.grid[best + 1]);
            let curvature = l - 2.0 * m + r;
            if curvature < 0.0 {
                offset = (0.5 * (l - r) / curvature).clamp(-0.5, 0.5);
            }
        }
        Some(self.boundary * ((best as f64 - HALF as f64 + offset) * STEP).exp())
    }

    /// The test's state at level `alpha`.
    pub fn evidence(&self, alpha: f64) -> RiskRatioEvidence {
        let threshold = (1.0 / alpha).ln();
        let estimate = self.estimate();
        let (fail, pass) = (self.above_max[HALF], self.below_max[HALF]);
        let side = if estimate.unwrap_or(self.boundary) >= self.boundary {
            fail
        } else {
            pass
        };
        RiskRatioEvidence {
            estimate,
            interval: self.interval(alpha),
            boundary: self.boundary,
            p_value: (-side).exp().min(1.0),
            fail: fail >= threshold,
            pass: pass >= threshold,
        }
    }

    /// Estimated further canary requests before the side the estimate lies on reaches 1/alpha,
    /// at the current estimate and traffic split; `None` without an estimate or an effect.
    pub fn needed_more(&self, alpha: f64) -> Option<u64> {
        let rho = self.estimate()?;
        let (nc, nb) = (self.canary_requests as f64, self.baseline_requests as f64);
        let w = nc / (nc + nb);
        let q = |r: f64| w * r / (w * r + 1.0 - w);
        let (qt, q0) = (q(rho), q(self.boundary));
        let kl = qt * (qt / q0).ln() + (1.0 - qt) * ((1.0 - qt) / (1.0 - q0)).ln();
        let side = if rho >= self.boundary {
            self.above[HALF]
        } else {
            self.below[HALF]
        };
        let missing = (1.0 / alpha).ln() - side;
        if !(kl.is_finite() && kl > 1e-12) {
            return None;
        }
        if missing <= 0.0 {
            return Some(0);
        }
        // Errors still needed, the canary's share of them, and the canary's error rate.
        let canary_rate = (self.canary_errors as f64 + 0.5) / (nc + 1.0);
        Some((missing / kl * qt / canary_rate).ceil() as u64)
    }

    /// The extra failed requests the canary has served so far: its errors beyond what the
    /// baseline's error rate over all intervals predicts (never below zero).
    pub fn extra_failures(&self) -> f64 {
        if self.baseline_requests == 0 {
            return self.canary_errors as f64;
        }
        let baseline_rate = self.baseline_errors as f64 / self.baseline_requests as f64;
        (self.canary_errors as f64 - self.canary_requests as f64 * baseline_rate).max(0.0)
    }

    /// The baseline's error rate, smoothed by half an error.
    pub fn baseline_rate(&self) -> f64 {
        (self.baseline_errors as f64 + 0.5) / (self.baseline_requests as f64 + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn binomial(rng: &mut SmallRng, n: u64, p: f64) -> u64 {
        (0..n).filter(|_| rng.random::<f64>() < p).count() as u64
    }

    #[test]
    fn a_tenfold_canary_fails_and_an_equal_one_never_does() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut bad = RiskRatio::new(1.2);
        let mut same = RiskRatio::new(1.2);
        for _ in 0..600 {
            bad.record(
                (10, binomial(&mut rng, 10, 0.1)),
                (90, binomial(&mut rng, 90, 0.01)),
            );
            same.record(
                (10, binomial(&mut rng, 10, 0.01)),
                (90, binomial(&mut rng, 90, 0.01)),
            );
        }
        let e = bad.evidence(0.01);
        assert!(e.fail && !e.pass, "{e:?}");
        let rho = e.estimate.unwrap();
        assert!((7.0..14.0).contains(&rho), "{rho}");
        assert!(
            e.interval[0] > 1.2 && e.interval[0] < rho && rho < e.interval[1],
            "{e:?}"
        );
        assert!(e.p_value < 0.01);
        let e = same.evidence(0.01);
        assert!(!e.fail, "{e:?}");
        assert!(e.interval[0] < 1.0 && e.interval[1] > 1.0);
    }

    #[test]
    fn verdicts_agree_with_their_interval() {
        let mut rng = SmallRng::seed_from_u64(11);
        for (canary_rate, seed) in [(0.005, 1), (0.01, 2), (0.02, 3), (0.05, 4)] {
            let mut test = RiskRatio::new(1.2);
            let mut rng2 = SmallRng::seed_from_u64(seed);
            for look in 0..400 {
                let w = 5 + (look % 7) * 5;
                test.record(
                    (w * 10, binomial(&mut rng, w * 10, canary_rate)),
                    ((100 - w) * 10, binomial(&mut rng2, (100 - w) * 10, 0.01)),
                );
                let e = test.evidence(0.01);
                assert_eq!(e.fail, e.interval[0] > 1.2, "{canary_rate} {look} {e:?}");
                assert_eq!(e.pass, e.interval[1] < 1.2, "{canary_rate} {look} {e:?}");
            }
        }
    }

    #[test]
    fn the_baseline_rate_cancels_out() {
        // Baseline errors jump tenfold for a while, the canary's with them: no evidence of harm.
        let mut rng = SmallRng::seed_from_u64(3);
        let mut test = RiskRatio::new(1.2);
        for t in 0..1200 {
            let rate = if (300..600).contains(&t) { 0.1 } else { 0.01 };
            let w = if t < 600 { 20 } else { 50 };
            test.record(
                (w, binomial(&mut rng, w, rate)),
                (100 - w, binomial(&mut rng, 100 - w, rate)),
            );
        }
        let e = test.evidence(0.01);
        assert!(!e.fail, "{e:?}");
        assert!((0.8..1.25).contains(&e.estimate.unwrap()), "{e:?}");
    }

    #[test]
    fn without_errors_or_traffic_there_is_no_information() {
        let mut test = RiskRatio::new(1.2);
        test.record((0, 0), (100, 3));
        test.record((10, 0), (90, 0));
        assert!(!test.informed());
        assert_eq!(test.estimate(), None);
        let e = test.evidence(0.01);
        assert!(!e.fail && !e.pass);
        assert_eq!(e.p_value, 1.0);
        assert_eq!(test.canary_requests, 10);
        assert_eq!(test.baseline_errors, 3);
    }

    #[test]
    fn extra_failures_count_errors_beyond_the_baseline_rate() {
        let mut test = RiskRatio::new(1.2);
        test.record((100, 5), (900, 9));
        assert!((test.extra_failures() - 4.0).abs() < 1e-9);
        test.record((100, 0), (100, 50));
        assert_eq!(test.extra_failures(), 0.0);
    }
}
