//! `mann-whitney` and `canary-judge`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{interval, parse};
use crate::error::Result;
use crate::kayenta::classifier::{CanaryClassifierConfig, Direction, classify_canary};

fn default_confidence() -> f64 {
    0.95
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MannWhitneyInput {
    control: Vec<f64>,
    treatment: Vec<f64>,
    #[serde(default = "default_confidence")]
    confidence_level: f64,
}

pub(super) fn mann_whitney(input: &Value) -> Result<Value> {
    let i: MannWhitneyInput = parse(input)?;
    let r = crate::mann_whitney::mann_whitney(&i.control, &i.treatment, i.confidence_level)?;
    Ok(json!({"u": r.u, "p_value": r.p_value, "estimate": r.estimate, "ci": interval(r.ci)}))
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DirectionInput {
    Increase,
    Decrease,
    #[default]
    Either,
}

fn defaults() -> CanaryClassifierConfig {
    CanaryClassifierConfig::default()
}

fn default_judge_confidence() -> f64 {
    defaults().confidence_level
}

fn default_tolerance() -> f64 {
    defaults().tolerance
}

fn default_allowed() -> f64 {
    1.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryJudgeInput {
    control: Vec<f64>,
    experiment: Vec<f64>,
    #[serde(default = "default_judge_confidence")]
    confidence_level: f64,
    #[serde(default = "default_tolerance")]
    tolerance: f64,
    #[serde(default)]
    direction: DirectionInput,
    #[serde(default = "default_allowed")]
    allowed_increase: f64,
    #[serde(default = "default_allowed")]
    allowed_decrease: f64,
    #[serde(default)]
    remove_outliers: bool,
}

pub(super) fn canary_judge(input: &Value) -> Result<Value> {
    let i: CanaryJudgeInput = parse(input)?;
    let config = CanaryClassifierConfig {
        confidence_level: i.confidence_level,
        tolerance: i.tolerance,
        direction: match i.direction {
            DirectionInput::Increase => Direction::Increase,
            DirectionInput::Decrease => Direction::Decrease,
            DirectionInput::Either => Direction::Either,
        },
        allowed_increase: i.allowed_increase,
        allowed_decrease: i.allowed_decrease,
        remove_outliers: i.remove_outliers,
    };
    let r = classify_canary(&i.control, &i.experiment, &config)?;
    Ok(json!({
        "classification": r.classification.as_str(),
        "estimate": r.estimate,
        "ci": r.ci.map(interval),
        "bounds": r.bounds.map(interval),
        "mean_ratio": r.mean_ratio,
    }))
}
