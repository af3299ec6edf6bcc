//! Synthetic traffic: each second, the requests of that second are routed to the canary with
//! probability `weight`, fail independently with their release's error rate, and take a
//! log-normal latency drawn on the judge's latency grid. [`Load`] sets how many requests a
//! second has (constant, or swinging over a compressed day) and when shared error bursts hit
//! both releases; a release may have a heavy tail of requests 20 × slower.
//!
//! Latencies are drawn from the log-normal discretised onto the grid of
//! [`crate::judge::histogram`] with an alias table (one random number per request), which is
//! exact for the histogram the judge keeps and several times faster than drawing normals.

use rand::RngCore;
use rand::rngs::SmallRng;
use switchyard_stats::dist::norm_cdf;

use crate::judge::histogram::{BUCKETS_PER_DOUBLING, bucket_index, upper_bound};

/// Parameters of one release.
#[derive(Debug, Clone)]
pub struct ReleaseModel {
    /// Error probability per request.
    error: f64,
    latency: AliasTable,
    /// Share of requests 20 × slower.
    tail_share: f64,
}

/// Grid buckets of a 20 × slowdown (16 per doubling × log2 20).
const TAIL_BUCKETS: i32 = 69;
/// Length of a shared error burst, seconds.
pub const BURST_S: u64 = 20;
/// Share of requests that fail during a burst (on top of the release's own errors).
pub const BURST_ERROR: f64 = 0.5;
/// Period of the diurnal cycle, seconds.
pub const DIURNAL_PERIOD_S: f64 = 1800.0;

impl ReleaseModel {
    /// A release failing with probability `error` with log-normal latency of median
    /// `median_s` and log-spread `sigma`.
    pub fn new(error: f64, median_s: f64, sigma: f64) -> Self {
        ReleaseModel {
            error,
            latency: AliasTable::log_normal(median_s, sigma),
            tail_share: 0.0,
        }
    }

    /// The same release with `share` of its requests 20 × slower.
    pub fn with_tail(self, share: f64) -> Self {
        ReleaseModel {
            tail_share: share,
            ..self
        }
    }
}

/// One release's traffic in one second.
#[derive(Debug, Clone, Default)]
pub struct ArmTick {
    /// Requests.
    pub requests: u64,
    /// Errors.
    pub errors: u64,
    /// Latency grid index of every request.
    pub latency: Vec<i32>,
    /// Sum of latencies, seconds (bucket midpoints).
    pub latency_sum: f64,
}

impl ArmTick {
    /// Adds another tick's traffic (the seconds between two looks).
    pub fn merge(&mut self, other: &ArmTick) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latency.extend_from_slice(&other.latency);
        self.latency_sum += other.latency_sum;
    }

    /// Empties the tick.
    pub fn clear(&mut self) {
        self.requests = 0;
        self.errors = 0;
        self.latency.clear();
        self.latency_sum = 0.0;
    }

    fn push(&mut self, model: &ReleaseModel, burst: bool, rng: &mut SmallRng) {
        self.requests += 1;
        // Draws only what the scenario uses, so scenarios without bursts or tails replay the
        // same random streams as before those existed.
        if unit(rng) < model.error || (burst && unit(rng) < BURST_ERROR) {
            self.errors += 1;
        }
        let (mut k, mut mid) = model.latency.sample(rng);
        if model.tail_share > 0.0 && unit(rng) < model.tail_share {
            k += TAIL_BUCKETS;
            mid *= (f64::from(TAIL_BUCKETS) / BUCKETS_PER_DOUBLING).exp2();
        }
        self.latency.push(k);
        self.latency_sum += mid;
    }

    /// The tick's latencies as `(upper_bound_s, count)` buckets, as the proxy reports them.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let mut sorted = self.latency.clone();
        sorted.sort_unstable();
        let mut out: Vec<(f64, u64)> = Vec::new();
        let mut last = None;
        for k in sorted {
            if last == Some(k) {
                if let Some(entry) = out.last_mut() {
                    entry.1 += 1;
                }
            } else {
                out.push((upper_bound(k), 1));
                last = Some(k);
            }
        }
        out
    }
}

/// Uniform in [0, 1) from the top 53 bits.
fn unit(rng: &mut SmallRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// How many requests each second has, and which seconds are in a shared error burst.
#[derive(Debug, Clone)]
pub struct Load {
    rps: f64,
    diurnal: f64,
    /// Probability that a burst starts in a given second.
    burst_start: f64,
    burst_until: u64,
}

impl Load {
    /// `rps` on average, swinging by ± `diurnal` × `rps` over [`DIURNAL_PERIOD_S`], with
    /// `bursts_per_hour` shared error bursts.
    pub fn new(rps: f64, diurnal: f64, bursts_per_hour: f64) -> Self {
        Load {
            rps,
            diurnal,
            burst_start: bursts_per_hour / 3600.0,
            burst_until: 0,
        }
    }

    /// Requests arrived by the end of second `t`: the integral of the rate.
    fn arrived(&self, t: u64) -> f64 {
        let t = t as f64;
        let omega = std::f64::consts::TAU / DIURNAL_PERIOD_S;
        self.rps * (t + self.diurnal * (1.0 - (omega * t).cos()) / omega)
    }

    /// Second `t` (from 1): its whole number of requests (fractions carried over, so 2.5 rps
    /// alternates 2 and 3) and whether a burst is under way.
    pub fn second(&mut self, t: u64, rng: &mut SmallRng) -> (u64, bool) {
        let total = self.arrived(t).floor() as u64 - self.arrived(t - 1).floor() as u64;
        if self.burst_start > 0.0 && t >= self.burst_until && unit(rng) < self.burst_start {
            self.burst_until = t + BURST_S;
        }
        (total, t < self.burst_until)
    }
}

/// Fills `canary` and `baseline` with one second's traffic: `requests` requests, each to the
/// canary with probability `weight`.
pub fn tick(
    (requests, burst): (u64, bool),
    weight: f64,
    models: (&ReleaseModel, &ReleaseModel),
    rng: &mut SmallRng,
    canary: &mut ArmTick,
    baseline: &mut ArmTick,
) {
    canary.clear();
    baseline.clear();
    for _ in 0..requests {
        if unit(rng) < weight {
            canary.push(models.0, burst, rng);
        } else {
            baseline.push(models.1, burst, rng);
        }
    }
}

/// Walker/Vose alias table over grid buckets.
#[derive(Debug, Clone)]
struct AliasTable {
    first: i32,
    prob: Vec<f64>,
    alias: Vec<u32>,
    midpoint: Vec<f64>,
}

impl AliasTable {
    fn log_normal(median_s: f64, sigma: f64) -> Self {
        let center = bucket_index(median_s);
        if sigma <= 0.0 {
            return AliasTable::new(center, vec![1.0]);
        }
        let per_log = BUCKETS_PER_DOUBLING / std::f64::consts::LN_2;
        let span = (8.0 * sigma * per_log).ceil() as i32 + 1;
        let (first, last) = (center - span, center + span);
        let mu = median_s.ln();
        let cdf = |k: i32| norm_cdf((upper_bound(k).ln() - mu) / sigma);
        let weights = (first..=last).map(|k| cdf(k) - cdf(k - 1)).collect();
        AliasTable::new(first, weights)
    }

    fn new(first: i32, weights: Vec<f64>) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut prob = vec![1.0; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            prob[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        let midpoint = (0..n as i32)
            .map(|i| ((f64::from(first + i) - 0.5) / BUCKETS_PER_DOUBLING).exp2())
            .collect();
        AliasTable {
            first,
            prob,
            alias,
            midpoint,
        }
    }

    /// A grid index and its bucket's (geometric) midpoint in seconds.
    fn sample(&self, rng: &mut SmallRng) -> (i32, f64) {
        let x = rng.next_u64();
        let column = (((x >> 32) * self.prob.len() as u64) >> 32) as usize;
        let coin = (x & 0xffff_ffff) as f64 / 4_294_967_296.0;
        let i = if coin < self.prob[column] {
            column
        } else {
            self.alias[column] as usize
        };
        (self.first + i as i32, self.midpoint[i])
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn samples_follow_the_model() {
        let model = ReleaseModel::new(0.1, 0.1, 0.5);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut arm = ArmTick::default();
        for _ in 0..100_000 {
            arm.push(&model, false, &mut rng);
        }
        let rate = arm.errors as f64 / arm.requests as f64;
        assert!((rate - 0.1).abs() < 0.005, "{rate}");
        arm.latency.sort_unstable();
        let median = upper_bound(arm.latency[arm.latency.len() / 2]);
        assert!((median / 0.1 - 1.0).abs() < 0.05, "{median}");
        // Mean of a log-normal: median · exp(σ²/2).
        let mean = arm.latency_sum / arm.requests as f64;
        assert!((mean / (0.1 * 0.125f64.exp()) - 1.0).abs() < 0.02, "{mean}");
    }
}
