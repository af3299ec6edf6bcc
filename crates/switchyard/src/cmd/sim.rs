//! `switchyard sim canary`: the canary judges side by side on identical simulated traffic.

use std::process::ExitCode;

use switchyard_analysis::sim::{SimConfig, SimReport, grid, simulate_canary};

use crate::cli::SimCanaryArgs;

pub fn canary(args: &SimCanaryArgs) -> anyhow::Result<ExitCode> {
    let config = SimConfig {
        baseline_error: args.baseline_error,
        canary_error: args.canary_error,
        baseline_latency_ms: args.baseline_latency_ms,
        canary_latency_ms: args.canary_latency_ms,
        latency_sigma: args.latency_sigma,
        rps: args.rps,
        weight: args.weight,
        duration: args.duration,
        runs: args.runs,
        seed: args.seed,
        margin: args.margin,
        max_increase: args.max_increase,
        alpha: args.alpha,
        max_weight: args.max_weight,
        min_weight: args.min_weight,
        error_budget: args.error_budget,
        adaptive_interval: args.adaptive_interval,
        diurnal: args.diurnal,
        bursts: args.bursts,
        tail_share: args.tail_share,
    };
    if args.grid {
        let cells = grid::simulate_grid(&config)?;
        if args.json {
            let body = serde_json::json!({ "cells": cells });
            outln!("{}", serde_json::to_string_pretty(&body)?);
            return Ok(ExitCode::SUCCESS);
        }
        outln!(
            "{} runs of {} s per cell, seed {}; BAD REQ: failed canary requests served before the verdict (mean per run)",
            config.runs,
            config.duration,
            config.seed
        );
        for cell in &cells {
            outln!("\n{}", grid::describe(&cell.config));
            print_judges(cell);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = simulate_canary(&config)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let c = &report.config;
    outln!(
        "{} runs of {} s at {} rps, canary {}%: errors {} vs {}, median latency {} ms vs {} ms (sigma {}), seed {}",
        c.runs,
        c.duration,
        c.rps,
        c.weight,
        c.canary_error,
        c.baseline_error,
        c.canary_latency_ms,
        c.baseline_latency_ms,
        c.latency_sigma,
        c.seed
    );
    print_judges(&report);
    Ok(ExitCode::SUCCESS)
}

fn print_judges(report: &SimReport) {
    outln!(
        "{:<10} {:>10} {:>12} {:>10} {:>12} {:>10}  SETTINGS",
        "JUDGE",
        "ROLLBACK",
        "MEDIAN s",
        "P90 s",
        "A/A FALSE",
        "BAD REQ"
    );
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{s:.0}"));
    for j in &report.judges {
        outln!(
            "{:<10} {:>9.1}% {:>12} {:>10} {:>11.1}% {:>10.1}  {}",
            j.name,
            j.rollback_rate * 100.0,
            secs(j.median_detection_s),
            secs(j.p90_detection_s),
            j.aa_rollback_rate * 100.0,
            j.mean_bad_requests,
            j.settings
        );
    }
}
