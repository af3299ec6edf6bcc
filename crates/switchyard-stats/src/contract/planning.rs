//! `srm`, `adjust`, and `sample-size` / `power` in their three forms.

use serde::Deserialize;
use serde_json::{Value, json};

use super::frequentist::default_alpha;
use super::parse;
use crate::adjust::{AdjustMethod, adjust_p_values};
use crate::error::{Result, StatsError};
use crate::power::variance_based::{PlanningInput, minimum_detectable_effect};
use crate::power::{mean, proportion, variance_based};
use crate::srm::sample_ratio_mismatch;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SrmInput {
    observed: Vec<f64>,
    weights: Vec<f64>,
}

pub(super) fn srm(input: &Value) -> Result<Value> {
    let i: SrmInput = parse(input)?;
    let r = sample_ratio_mismatch(&i.observed, &i.weights)?;
    Ok(json!({"chi2": r.chi2, "p_value": r.p_value}))
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AdjustMethodInput {
    Bonferroni,
    Holm,
    Bh,
    By,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustInput {
    p_values: Vec<f64>,
    method: AdjustMethodInput,
}

pub(super) fn adjust(input: &Value) -> Result<Value> {
    let i: AdjustInput = parse(input)?;
    let method = match i.method {
        AdjustMethodInput::Bonferroni => AdjustMethod::Bonferroni,
        AdjustMethodInput::Holm => AdjustMethod::Holm,
        AdjustMethodInput::Bh => AdjustMethod::BenjaminiHochberg,
        AdjustMethodInput::By => AdjustMethod::BenjaminiYekutieli,
    };
    Ok(json!({"adjusted": adjust_p_values(&i.p_values, method)?}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProportionDesign {
    p1: f64,
    p2: Option<f64>,
    #[serde(default = "default_alpha")]
    alpha: f64,
    power: Option<f64>,
    n_per_arm: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeanDesign {
    delta: Option<f64>,
    sd: f64,
    #[serde(default = "default_alpha")]
    alpha: f64,
    power: Option<f64>,
    n_per_arm: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VarianceDesign {
    mean: f64,
    variance: f64,
    n_total: f64,
    n_variations: f64,
    #[serde(default = "default_alpha")]
    alpha: f64,
    effect: Option<f64>,
    power: Option<f64>,
    sequential_tuning: Option<f64>,
}

/// Dispatches on `kind`; without it, the variance-based form.
pub(super) fn power(input: &Value) -> Result<Value> {
    let Some(kind) = input.get("kind") else {
        return variance_form(parse(input)?);
    };
    let mut rest = input.clone();
    if let Some(object) = rest.as_object_mut() {
        object.remove("kind");
    }
    match kind.as_str() {
        Some("proportion") => proportion_form(parse(&rest)?),
        Some("mean") => mean_form(parse(&rest)?),
        _ => Err(StatsError::InvalidJson {
            field: "/kind".to_owned(),
            message: "unknown variant, expected `proportion` or `mean`".to_owned(),
        }),
    }
}

fn proportion_form(d: ProportionDesign) -> Result<Value> {
    match (d.p2, d.power, d.n_per_arm) {
        (Some(p2), None, Some(n)) => Ok(json!({"power": proportion::power(d.p1, p2, n, d.alpha)?})),
        (Some(p2), Some(power), None) => {
            Ok(json!({"n_per_arm": proportion::sample_size(d.p1, p2, power, d.alpha)?}))
        }
        (None, Some(power), Some(n)) => {
            Ok(json!({"p2": proportion::minimum_detectable_p2(d.p1, n, power, d.alpha)?}))
        }
        _ => Err(StatsError::ExactlyOneOf {
            fields: "p2, power, n_per_arm (give the other two)",
        }),
    }
}

fn mean_form(d: MeanDesign) -> Result<Value> {
    match (d.delta, d.power, d.n_per_arm) {
        (Some(delta), None, Some(n)) => Ok(json!({"power": mean::power(delta, d.sd, n, d.alpha)?})),
        (Some(delta), Some(power), None) => {
            Ok(json!({"n_per_arm": mean::sample_size(delta, d.sd, power, d.alpha)?}))
        }
        (None, Some(power), Some(n)) => {
            Ok(json!({"delta": mean::minimum_detectable_delta(d.sd, n, power, d.alpha)?}))
        }
        _ => Err(StatsError::ExactlyOneOf {
            fields: "delta, power, n_per_arm (give the other two)",
        }),
    }
}

fn variance_form(d: VarianceDesign) -> Result<Value> {
    let input = PlanningInput {
        mean: d.mean,
        variance: d.variance,
        n_total: d.n_total,
        n_variations: d.n_variations,
        alpha: d.alpha,
        sequential_tuning: d.sequential_tuning,
    };
    match (d.effect, d.power) {
        (Some(effect), None) => Ok(json!({"power": variance_based::power(&input, effect)?})),
        (None, Some(power)) => {
            Ok(json!({"mde_relative": minimum_detectable_effect(&input, power)?}))
        }
        _ => Err(StatsError::ExactlyOneOf {
            fields: "effect, power",
        }),
    }
}
