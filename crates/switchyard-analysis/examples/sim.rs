//! Runs the canary simulator and prints its JSON report, as `switchyard sim canary --json` does,
//! without building the whole binary. Flags mirror the CLI's: `--baseline-error 0.01
//! --canary-error 0.05 --rps 100 --weight 10 --duration 600 --runs 1000 --seed 1` (and
//! `--baseline-latency-ms`, `--canary-latency-ms`, `--latency-sigma`, the judge's `--margin`,
//! `--max-increase`, `--alpha`, the adaptive canary's `--max-weight`, `--min-weight`,
//! `--error-budget`, `--adaptive-interval`, and the traffic's `--diurnal`, `--bursts`,
//! `--tail-share`). Run in release:
//!
//! ```sh
//! cargo run --release -p switchyard-analysis --example sim -- --canary-error 0.05
//! ```

use std::process::ExitCode;

use switchyard_analysis::{SimConfig, simulate_canary};

fn parse(args: &[String]) -> Result<SimConfig, String> {
    let mut config = SimConfig::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag}: missing value"))?;
        let float = || value.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        let int = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--baseline-error" => config.baseline_error = float()?,
            "--canary-error" => config.canary_error = float()?,
            "--baseline-latency-ms" => config.baseline_latency_ms = float()?,
            "--canary-latency-ms" => config.canary_latency_ms = float()?,
            "--latency-sigma" => config.latency_sigma = float()?,
            "--rps" => config.rps = float()?,
            "--weight" => config.weight = float()?,
            "--duration" => config.duration = int()?,
            "--runs" => {
                config.runs = u32::try_from(int()?).map_err(|e| format!("{flag}: {e}"))?;
            }
            "--seed" => config.seed = int()?,
            "--margin" => config.margin = float()?,
            "--max-increase" => config.max_increase = float()?,
            "--alpha" => config.alpha = float()?,
            "--max-weight" => config.max_weight = float()?,
            "--min-weight" => config.min_weight = float()?,
            "--error-budget" => config.error_budget = float()?,
            "--adaptive-interval" => config.adaptive_interval = int()?,
            "--diurnal" => config.diurnal = float()?,
            "--bursts" => config.bursts = float()?,
            "--tail-share" => config.tail_share = float()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let report = parse(&args).and_then(|c| simulate_canary(&c).map_err(|e| e.to_string()));
    match report.and_then(|r| serde_json::to_string_pretty(&r).map_err(|e| e.to_string())) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
