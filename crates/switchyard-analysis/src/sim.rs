//! The canary simulator behind `switchyard sim canary`: seeded synthetic traffic for a baseline
//! and a canary, fed second by second, identically, to Switchyard's judge and to Argo-,
//! Flagger- and Kayenta-style rules; each scenario run has an A/A twin (canary = baseline) that
//! measures false rollbacks.
//!
//! - [`config`]: [`SimConfig`], one field per CLI flag.
//! - [`traffic`]: requests, errors and latencies per second.
//! - [`rule`]: the interface of a simulated judge; [`ours`], [`argo`], [`flagger`],
//!   [`kayenta`]: the judges.
//! - [`report`]: [`SimReport`] and its percentiles.
//! - [`grid`]: the scenario grid of `--grid`.
//!
//! Pure and deterministic: the same config gives the same report on any machine with the same
//! `rand` version, whatever the number of threads (each run has its own seed).

pub mod argo;
pub mod config;
pub mod flagger;
pub mod grid;
pub mod kayenta;
pub mod ours;
pub mod report;
pub mod rule;
pub mod traffic;

#[cfg(test)]
mod tests;

use rand::SeedableRng;
use rand::rngs::SmallRng;

pub use config::SimConfig;
pub use report::{JudgeReport, SimReport};

use crate::judge::JudgeState;
use rule::{Signal, SimulatedJudge};
use traffic::{ArmTick, Load, ReleaseModel};

/// A simulation that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A config field is out of range.
    #[error("{field}: must be {expected}, got {value}")]
    Invalid {
        /// Field (CLI flag without `--`, underscores for dashes).
        field: &'static str,
        /// The value.
        value: f64,
        /// Accepted range.
        expected: &'static str,
    },
    /// The judge settings (`margin`, `max_increase`, `alpha`) are out of range.
    #[error("invalid judge settings")]
    Judge(#[source] crate::judge::JudgeError),
}

/// The judges, in report order, with their settings in words (ours are described from the
/// config). The adaptive canary sets its own weight, so it runs on its own traffic, drawn from
/// the same models.
const JUDGES: [(&str, &str); 6] = [
    ("switchyard", ""),
    ("adaptive", ""),
    (
        "argo",
        "Argo docs example: success rate over [5m] every 5m, successCondition result[0] >= 0.95, failureLimit 3",
    ),
    (
        "argo-1m",
        "error rate over [1m] every 1m, successCondition result < 0.05, failureLimit 0",
    ),
    (
        "flagger",
        "Flagger defaults: interval 1m, threshold 5, request-success-rate min 99, request-duration p99 max 500 ms",
    ),
    (
        "kayenta",
        "10-minute fixed windows, 60 s steps, Mann-Whitney 98 %, tolerance 0.25 on error rate and mean latency; fail on High",
    ),
];

/// Index of the adaptive canary in [`JUDGES`].
const ADAPTIVE: usize = 1;
/// Indices in [`JUDGES`] of the judges of a fixed split, which share one stream of traffic.
const FIXED: [usize; JUDGES.len() - 1] = [0, 2, 3, 4, 5];

/// Seconds to rollback per judge, failed canary requests served until then, and seconds to
/// pass for ours.
#[derive(Debug, Clone, Copy, Default)]
struct RunOutcome {
    rollback: [Option<u64>; JUDGES.len()],
    /// Canary errors up to each judge's rollback (to the end of the run without one).
    bad: [u64; JUDGES.len()],
    pass: [Option<u64>; JUDGES.len()],
}

/// Runs the scenario and its A/A twin `config.runs` times each.
///
/// # Errors
/// [`SimError::Invalid`] when a config field is out of range.
pub fn simulate_canary(config: &SimConfig) -> Result<SimReport, SimError> {
    config.validate()?;
    let started = |specs: Vec<_>| -> Result<Vec<JudgeState>, SimError> {
        specs
            .into_iter()
            .map(|spec| {
                let mut state = JudgeState::new(spec).map_err(SimError::Judge)?;
                state.start(0);
                Ok(state)
            })
            .collect()
    };
    let fresh = [
        started(ours::SwitchyardJudge::specs(config))?,
        started(ours::SwitchyardJudge::adaptive_specs(config))?,
    ];
    let scenario = Scenario::new(config, fresh.clone());
    let a_a = Scenario::new(&config.a_a(), fresh);
    let runs = config.runs as usize;
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 8)
        .min(runs);
    let mut outcomes = vec![(RunOutcome::default(), RunOutcome::default()); runs];
    let chunk = runs.div_ceil(threads);
    std::thread::scope(|s| {
        for (c, slots) in outcomes.chunks_mut(chunk).enumerate() {
            let (scenario, a_a) = (&scenario, &a_a);
            s.spawn(move || {
                for (i, slot) in slots.iter_mut().enumerate() {
                    let run = (c * chunk + i) as u64;
                    *slot = (
                        scenario.run(run_seed(config.seed, 2 * run)),
                        a_a.run(run_seed(config.seed, 2 * run + 1)),
                    );
                }
            });
        }
    });
    let judges = JUDGES
        .iter()
        .enumerate()
        .map(|(j, (name, settings))| {
            let main: Vec<_> = outcomes.iter().map(|o| o.0.rollback[j]).collect();
            let aa: Vec<_> = outcomes.iter().map(|o| o.1.rollback[j]).collect();
            let (rollback_rate, median, p90) = report::summarize(&main);
            let (aa_rollback_rate, _, _) = report::summarize(&aa);
            let bad = outcomes.iter().map(|o| o.0.bad[j]).sum::<u64>() as f64
                / outcomes.len().max(1) as f64;
            let pass = (j <= ADAPTIVE).then(|| {
                let pass: Vec<_> = outcomes.iter().map(|o| o.1.pass[j]).collect();
                report::summarize(&pass)
            });
            JudgeReport {
                name: (*name).to_owned(),
                settings: match j {
                    0 => ours::SwitchyardJudge::settings(config),
                    ADAPTIVE => ours::SwitchyardJudge::adaptive_settings(config),
                    _ => (*settings).to_owned(),
                },
                rollback_rate,
                median_detection_s: median,
                p90_detection_s: p90,
                aa_rollback_rate,
                mean_bad_requests: bad,
                aa_pass_rate: pass.map(|p| p.0),
                aa_median_pass_s: pass.and_then(|p| p.1),
            }
        })
        .collect();
    Ok(SimReport {
        judges,
        config: config.clone(),
    })
}

/// SplitMix64 of the seed and the run index: independent streams per run.
fn run_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One scenario's fixed parts, shared by its runs.
struct Scenario {
    canary: ReleaseModel,
    baseline: ReleaseModel,
    load: Load,
    weight: f64,
    duration: u64,
    /// Fresh judges of the fixed split and of the adaptive canary.
    judges: [Vec<JudgeState>; 2],
    adaptive_interval: u64,
}

impl Scenario {
    fn new(config: &SimConfig, judges: [Vec<JudgeState>; 2]) -> Self {
        let model = |error, latency_ms: f64| {
            ReleaseModel::new(error, latency_ms / 1000.0, config.latency_sigma)
                .with_tail(config.tail_share)
        };
        Scenario {
            canary: model(config.canary_error, config.canary_latency_ms),
            baseline: model(config.baseline_error, config.baseline_latency_ms),
            load: Load::new(config.rps, config.diurnal, config.bursts),
            weight: config.weight / 100.0,
            duration: config.duration,
            judges,
            adaptive_interval: config.adaptive_interval,
        }
    }

    fn run(&self, seed: u64) -> RunOutcome {
        let mut outcome = self.run_fixed(seed);
        // The adaptive canary's traffic is its own: another stream of the same run.
        let (rollback, bad, pass) = self.run_adaptive(seed ^ 0xADA9_71FE);
        outcome.rollback[ADAPTIVE] = rollback;
        outcome.bad[ADAPTIVE] = bad;
        outcome.pass[ADAPTIVE] = pass;
        outcome
    }

    /// The adaptive canary: the weight its judge chose at its last look, a look every
    /// `adaptive_interval` seconds. Returns when it rolled back, the canary errors served
    /// until then, and when it first passed.
    fn run_adaptive(&self, seed: u64) -> (Option<u64>, u64, Option<u64>) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut load = self.load.clone();
        let mut judge = ours::SwitchyardJudge::new(self.judges[1].clone());
        let (mut canary, mut baseline) = (ArmTick::default(), ArmTick::default());
        let (mut pending_canary, mut pending_baseline) = (ArmTick::default(), ArmTick::default());
        let (mut bad, mut pass) = (0, None);
        for t in 1..=self.duration {
            let weight = f64::from(judge.weight().unwrap_or(1)) / 100.0;
            let second = load.second(t, &mut rng);
            traffic::tick(
                second,
                weight,
                (&self.canary, &self.baseline),
                &mut rng,
                &mut canary,
                &mut baseline,
            );
            bad += canary.errors;
            pending_canary.merge(&canary);
            pending_baseline.merge(&baseline);
            if t % self.adaptive_interval != 0 {
                continue;
            }
            match judge.observe(t, &pending_canary, &pending_baseline) {
                Signal::Rollback => return (Some(t), bad, pass),
                Signal::Pass => {
                    pass.get_or_insert(t);
                }
                Signal::Continue => {}
            }
            pending_canary.clear();
            pending_baseline.clear();
        }
        (None, bad, pass)
    }

    /// Every judge of a fixed split on one stream of traffic.
    fn run_fixed(&self, seed: u64) -> RunOutcome {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut load = self.load.clone();
        let mut rules: [Box<dyn SimulatedJudge>; FIXED.len()] = [
            Box::new(ours::SwitchyardJudge::new(self.judges[0].clone())),
            Box::new(argo::ArgoRule::new(argo::ARGO_DOCS)),
            Box::new(argo::ArgoRule::new(argo::ARGO_1M)),
            Box::<flagger::FlaggerRule>::default(),
            Box::<kayenta::KayentaRule>::default(),
        ];
        let mut outcome = RunOutcome::default();
        let (mut canary, mut baseline) = (ArmTick::default(), ArmTick::default());
        let mut canary_errors = 0u64;
        for t in 1..=self.duration {
            let second = load.second(t, &mut rng);
            traffic::tick(
                second,
                self.weight,
                (&self.canary, &self.baseline),
                &mut rng,
                &mut canary,
                &mut baseline,
            );
            // Requests of second t are served before a verdict taken at its end.
            canary_errors += canary.errors;
            for (rule, j) in rules.iter_mut().zip(FIXED) {
                if outcome.rollback[j].is_some() {
                    continue;
                }
                outcome.bad[j] = canary_errors;
                match rule.observe(t, &canary, &baseline) {
                    Signal::Rollback => outcome.rollback[j] = Some(t),
                    Signal::Pass if j == 0 => {
                        outcome.pass[0].get_or_insert(t);
                    }
                    Signal::Pass | Signal::Continue => {}
                }
            }
            if FIXED.iter().all(|&j| outcome.rollback[j].is_some()) {
                break;
            }
        }
        outcome
    }
}
