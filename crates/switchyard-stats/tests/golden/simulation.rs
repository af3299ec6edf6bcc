//! Null-hypothesis simulations with a fixed seed: fixed-horizon tests reject
//! at about alpha when looked at once; sequential tests keep the rejection
//! rate under alpha even when looked at after every batch (where a repeated
//! fixed-horizon test does not).
//!
//! The fast variant runs in the normal test suite; the large one is
//! `cargo test --release -p switchyard-stats --test golden null_rates_large
//! -- --ignored --nocapture` and prints the rates quoted in docs/statistics.md.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchyard_stats::sequential::SequentialOptions;
use switchyard_stats::{
    ArmSummary, MarginEvidence, Proportion, ProportionCounts, SequentialMethod,
    SequentialProportionConfig, SequentialProportionTest, TTestOptions, sequential_test,
    two_proportion_test, welch_t_test,
};

const ALPHA: f64 = 0.05;

fn normal(rng: &mut StdRng) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Running sums of one arm.
#[derive(Default, Clone, Copy)]
struct Sums {
    n: f64,
    sum: f64,
    sum_squares: f64,
}

impl Sums {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        self.sum += x;
        self.sum_squares += x * x;
    }

    fn summary(&self) -> ArmSummary {
        let mean = self.sum / self.n;
        ArmSummary {
            n: self.n,
            mean,
            variance: (self.sum_squares - self.sum * mean) / (self.n - 1.0),
        }
    }
}

#[derive(Debug, Default)]
pub struct Rates {
    pub welch_once: f64,
    pub z_proportions_once: f64,
    pub welch_peeking: f64,
    pub confidence_sequence_peeking: f64,
    pub msprt_peeking: f64,
    pub two_proportion_peeking: f64,
}

/// Runs `replications` experiments of `batches` looks with `batch` units per arm per look.
pub fn simulate(seed: u64, replications: u32, batches: u32, batch: u32) -> Rates {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = [0u32; 6];
    let msprt = SequentialOptions {
        method: SequentialMethod::Msprt { tau: None },
        ..SequentialOptions::default()
    };
    for _ in 0..replications {
        let (mut c, mut t) = (Sums::default(), Sums::default());
        let mut rejected = [false; 4];
        let mut judge = SequentialProportionTest::new(SequentialProportionConfig {
            margin: 0.0,
            ..SequentialProportionConfig::default()
        })
        .expect("valid config");
        let (mut errors_c, mut errors_t, mut total) = (0u64, 0u64, 0u64);
        for _ in 0..batches {
            let (mut bc, mut bt) = (0u64, 0u64);
            for _ in 0..batch {
                c.push(normal(&mut rng));
                t.push(normal(&mut rng));
                bc += u64::from(rng.random::<f64>() < 0.05);
                bt += u64::from(rng.random::<f64>() < 0.05);
            }
            errors_c += bc;
            errors_t += bt;
            total += u64::from(batch);
            let (cs, ts) = (c.summary(), t.summary());
            let welch = welch_t_test(&cs, &ts, &TTestOptions::default()).expect("welch");
            rejected[0] |= welch.p_value < ALPHA;
            let cs_result = sequential_test(&cs, &ts, &SequentialOptions::default()).expect("cs");
            rejected[1] |= cs_result.p_value < ALPHA;
            rejected[2] |= sequential_test(&cs, &ts, &msprt).expect("msprt").p_value < ALPHA;
            judge
                .record(
                    ProportionCounts {
                        trials: u64::from(batch),
                        successes: bc,
                    },
                    ProportionCounts {
                        trials: u64::from(batch),
                        successes: bt,
                    },
                )
                .expect("counts");
            rejected[3] |=
                judge.evaluate().expect("snapshot").evidence == MarginEvidence::AboveMargin;
        }
        let (cs, ts) = (c.summary(), t.summary());
        counts[0] += u32::from(
            welch_t_test(&cs, &ts, &TTestOptions::default())
                .expect("w")
                .p_value
                < ALPHA,
        );
        let z = two_proportion_test(
            &Proportion {
                n: total as f64,
                successes: errors_c as f64,
            },
            &Proportion {
                n: total as f64,
                successes: errors_t as f64,
            },
            ALPHA,
        )
        .expect("z");
        counts[1] += u32::from(z.p_value < ALPHA);
        for (k, r) in rejected.iter().enumerate() {
            counts[2 + k] += u32::from(*r);
        }
    }
    let rate = |k: usize| f64::from(counts[k]) / f64::from(replications);
    Rates {
        welch_once: rate(0),
        z_proportions_once: rate(1),
        welch_peeking: rate(2),
        confidence_sequence_peeking: rate(3),
        msprt_peeking: rate(4),
        two_proportion_peeking: rate(5),
    }
}

#[test]
fn null_rates_fast() {
    let r = simulate(7, 1000, 10, 50);
    // Binomial(1000, 0.05) has sd ≈ 0.007; allow about three.
    assert!((0.028..=0.072).contains(&r.welch_once), "{r:?}");
    assert!((0.028..=0.072).contains(&r.z_proportions_once), "{r:?}");
    assert!(
        r.welch_peeking > 0.08,
        "peeking should inflate a fixed-horizon test: {r:?}"
    );
    assert!(r.confidence_sequence_peeking <= ALPHA, "{r:?}");
    assert!(r.msprt_peeking <= ALPHA, "{r:?}");
    assert!(
        r.two_proportion_peeking <= ALPHA / 2.0 + 0.01,
        "one-sided use of a two-sided CS: {r:?}"
    );
}

#[test]
#[ignore = "large run for docs/statistics.md; use --release"]
fn null_rates_large() {
    let r = simulate(20240601, 10_000, 20, 100);
    println!("{r:#?}");
    assert!(r.confidence_sequence_peeking <= ALPHA && r.msprt_peeking <= ALPHA);
}
