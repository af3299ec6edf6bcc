//! `switchyard sim canary --grid`: the judges over a grid of scenarios — traffic levels, canary
//! weights, baseline error rates, error regressions, a latency shift, a heavy latency tail,
//! shared error bursts and diurnal traffic — each cell with its A/A twin, so one command shows
//! where each rule is fast, slow or wrong.

use crate::sim::{SimConfig, SimError, SimReport, simulate_canary};

/// Total requests per second of the grid.
pub const RPS: [f64; 3] = [20.0, 100.0, 1000.0];
/// Canary weights, percent.
pub const WEIGHTS: [f64; 2] = [5.0, 20.0];
/// Baseline error rates.
pub const BASELINE_ERRORS: [f64; 3] = [0.001, 0.01, 0.05];
/// Canary error rate as a multiple of the baseline's.
pub const ERROR_FACTORS: [f64; 2] = [2.0, 5.0];
/// Canary median latency as a multiple of the baseline's, in the latency cells (1 % errors both).
pub const LATENCY_FACTOR: f64 = 1.5;
/// Share of 20 × slower requests (both releases) in the heavy-tail cell.
pub const TAIL_SHARE: f64 = 0.02;
/// Shared error bursts per hour in the burst cell (errors 1 % -> 2 %).
pub const BURSTS_PER_HOUR: f64 = 6.0;
/// Diurnal swing of the traffic in the diurnal cell (errors 1 % -> 2 %).
pub const DIURNAL: f64 = 0.8;

/// The grid's scenarios: `base` with traffic, weight, error rates and latencies set per cell
/// (the judge settings, runs, duration, seed and latency spread stay `base`'s).
pub fn cells(base: &SimConfig) -> Vec<SimConfig> {
    let mut cells = Vec::new();
    for rps in RPS {
        for weight in WEIGHTS {
            let cell = SimConfig {
                rps,
                weight,
                canary_latency_ms: base.baseline_latency_ms,
                ..base.clone()
            };
            for baseline_error in BASELINE_ERRORS {
                for factor in ERROR_FACTORS {
                    cells.push(SimConfig {
                        baseline_error,
                        canary_error: (baseline_error * factor).min(1.0),
                        ..cell.clone()
                    });
                }
            }
            let slower = SimConfig {
                baseline_error: 0.01,
                canary_error: 0.01,
                canary_latency_ms: base.baseline_latency_ms * LATENCY_FACTOR,
                ..cell.clone()
            };
            cells.push(slower.clone());
            // What the independent, constant-rate model leaves out: a heavy latency tail on
            // both releases, shared error bursts, traffic that follows the time of day.
            cells.push(SimConfig {
                tail_share: TAIL_SHARE,
                ..slower
            });
            let doubled = SimConfig {
                baseline_error: 0.01,
                canary_error: 0.02,
                ..cell
            };
            cells.push(SimConfig {
                bursts: BURSTS_PER_HOUR,
                ..doubled.clone()
            });
            cells.push(SimConfig {
                diurnal: DIURNAL,
                ..doubled
            });
        }
    }
    cells
}

/// Simulates every cell of the grid, in [`cells`] order.
///
/// # Errors
/// As [`simulate_canary`].
pub fn simulate_grid(base: &SimConfig) -> Result<Vec<SimReport>, SimError> {
    cells(base).iter().map(simulate_canary).collect()
}

/// A cell in words: `100 rps, canary 5 %: errors 1 % -> 2 %`.
pub fn describe(config: &SimConfig) -> String {
    let percent = |x: f64| format!("{}", (x * 1e4).round() / 1e2);
    let mut text = format!(
        "{} rps, canary {} %: errors {} % -> {} %",
        config.rps,
        config.weight,
        percent(config.baseline_error),
        percent(config.canary_error)
    );
    if config.canary_latency_ms != config.baseline_latency_ms {
        text.push_str(&format!(
            ", latency {} -> {} ms",
            config.baseline_latency_ms, config.canary_latency_ms
        ));
    }
    if config.tail_share > 0.0 {
        text.push_str(&format!(
            ", {} % of requests 20 x slower",
            config.tail_share * 100.0
        ));
    }
    if config.bursts > 0.0 {
        text.push_str(&format!(", {} error bursts an hour", config.bursts));
    }
    if config.diurnal > 0.0 {
        text.push_str(&format!(
            ", traffic ±{} % over 30 min",
            config.diurnal * 100.0
        ));
    }
    text
}
