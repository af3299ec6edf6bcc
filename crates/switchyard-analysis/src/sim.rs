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
use traffic::{ArmTick, ReleaseModel};

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

/// The judges, in report order, with their settings in words (ours is described from the
/// config).
const JUDGES: [(&str, &str); 5] = [
    ("switchyard", ""),
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

/// Seconds to rollback per judge, failed canary requests served until then, and seconds to
/// pass for ours.
#[derive(Debug, Clone, Copy, Default)]
struct RunOutcome {
    rollback: [Option<u64>; JUDGES.len()],
    /// Canary errors up to each judge's rollback (to the end of the run without one).
    bad: [u64; JUDGES.len()],
    pass: Option<u64>,
}

/// Runs the scenario and its A/A twin `config.runs` times each.
///
/// # Errors
/// [`SimError::Invalid`] when a config field is out of range.
pub fn simulate_canary(config: &SimConfig) -> Result<SimReport, SimError> {
    config.validate()?;
    let mut fresh = Vec::new();
    for spec in ours::SwitchyardJudge::specs(config) {
        let mut state = JudgeState::new(spec).map_err(SimError::Judge)?;
        state.start(0);
        fresh.push(state);
    }
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
            let pass = (j == 0).then(|| {
                let pass: Vec<_> = outcomes.iter().map(|o| o.1.pass).collect();
                report::summarize(&pass)
            });
            JudgeReport {
                name: (*name).to_owned(),
                settings: if j == 0 {
                    ours::SwitchyardJudge::settings(config)
                } else {
                    (*settings).to_owned()
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
    rps: f64,
    weight: f64,
    duration: u64,
    judges: Vec<JudgeState>,
}

impl Scenario {
    fn new(config: &SimConfig, judges: Vec<JudgeState>) -> Self {
        Scenario {
            canary: ReleaseModel::new(
                config.canary_error,
                config.canary_latency_ms / 1000.0,
                config.latency_sigma,
            ),
            baseline: ReleaseModel::new(
                config.baseline_error,
                config.baseline_latency_ms / 1000.0,
                config.latency_sigma,
            ),
            rps: config.rps,
            weight: config.weight / 100.0,
            duration: config.duration,
            judges,
        }
    }

    fn run(&self, seed: u64) -> RunOutcome {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut rules: [Box<dyn SimulatedJudge>; JUDGES.len()] = [
            Box::new(ours::SwitchyardJudge::new(self.judges.clone())),
            Box::new(argo::ArgoRule::new(argo::ARGO_DOCS)),
            Box::new(argo::ArgoRule::new(argo::ARGO_1M)),
            Box::<flagger::FlaggerRule>::default(),
            Box::<kayenta::KayentaRule>::default(),
        ];
        let mut outcome = RunOutcome::default();
        let (mut canary, mut baseline) = (ArmTick::default(), ArmTick::default());
        let mut canary_errors = 0u64;
        for t in 1..=self.duration {
            traffic::tick(
                t,
                self.rps,
                self.weight,
                (&self.canary, &self.baseline),
                &mut rng,
                &mut canary,
                &mut baseline,
            );
            // Requests of second t are served before a verdict taken at its end.
            canary_errors += canary.errors;
            for (j, rule) in rules.iter_mut().enumerate() {
                if outcome.rollback[j].is_some() {
                    continue;
                }
                outcome.bad[j] = canary_errors;
                match rule.observe(t, &canary, &baseline) {
                    Signal::Rollback => outcome.rollback[j] = Some(t),
                    Signal::Pass if j == 0 => {
                        outcome.pass.get_or_insert(t);
                    }
                    Signal::Pass | Signal::Continue => {}
                }
            }
            if outcome.rollback.iter().all(Option::is_some) {
                break;
            }
        }
        outcome
    }
}
