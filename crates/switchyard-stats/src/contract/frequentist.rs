//! `ttest`, `sequential`, `proportions`, `cuped`, `ratio` and `bayes`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::arm_input::{numbers, parse_arm};
use super::{interval, number, parse};
use crate::arm::ArmSummary;
use crate::bayes::{NormalPrior, bayesian_test};
use crate::cuped::{CupedArm, cuped_test};
use crate::error::{Result, StatsError};
use crate::proportions::{Proportion, two_proportion_test};
use crate::ratio::{RatioArm, ratio_test};
use crate::sequential::{DEFAULT_TUNING, SequentialMethod, SequentialOptions, sequential_test};
use crate::t_test::{Alternative, Difference, TTestOptions, TTestResult, welch_t_test};

pub(super) fn default_alpha() -> f64 {
    0.05
}

fn default_tuning() -> f64 {
    DEFAULT_TUNING
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DifferenceInput {
    #[default]
    Absolute,
    Relative,
}

impl From<DifferenceInput> for Difference {
    fn from(d: DifferenceInput) -> Self {
        match d {
            DifferenceInput::Absolute => Difference::Absolute,
            DifferenceInput::Relative => Difference::Relative,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AlternativeInput {
    #[default]
    TwoSided,
    Greater,
    Less,
}

impl From<AlternativeInput> for Alternative {
    fn from(a: AlternativeInput) -> Self {
        match a {
            AlternativeInput::TwoSided => Alternative::TwoSided,
            AlternativeInput::Greater => Alternative::Greater,
            AlternativeInput::Less => Alternative::Less,
        }
    }
}

fn arms(control: &Value, treatment: &Value) -> Result<(ArmSummary, ArmSummary)> {
    Ok((
        parse_arm(control, "/control")?.summarize("/control")?,
        parse_arm(treatment, "/treatment")?.summarize("/treatment")?,
    ))
}

fn t_output(r: &TTestResult) -> Value {
    json!({
        "point_estimate": r.point_estimate,
        "std_error": r.std_error,
        "ci": interval(r.ci),
        "p_value": r.p_value,
        "df": number(r.df),
        "statistic": r.statistic,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TTestInput {
    control: Value,
    treatment: Value,
    #[serde(default)]
    difference: DifferenceInput,
    #[serde(default)]
    alternative: AlternativeInput,
    #[serde(default = "default_alpha")]
    alpha: f64,
}

pub(super) fn ttest(input: &Value) -> Result<Value> {
    let i: TTestInput = parse(input)?;
    let (c, t) = arms(&i.control, &i.treatment)?;
    let options = TTestOptions {
        difference: i.difference.into(),
        alternative: i.alternative.into(),
        alpha: i.alpha,
    };
    Ok(t_output(&welch_t_test(&c, &t, &options)?))
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum SequentialMethodInput {
    #[default]
    ConfidenceSequence,
    Msprt,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SequentialInput {
    control: Value,
    treatment: Value,
    #[serde(default)]
    difference: DifferenceInput,
    #[serde(default)]
    alternative: AlternativeInput,
    #[serde(default = "default_alpha")]
    alpha: f64,
    #[serde(default)]
    method: SequentialMethodInput,
    #[serde(default = "default_tuning")]
    tuning: f64,
    tau: Option<f64>,
}

pub(super) fn sequential(input: &Value) -> Result<Value> {
    let i: SequentialInput = parse(input)?;
    let (c, t) = arms(&i.control, &i.treatment)?;
    let method = match (i.method, i.tau) {
        (SequentialMethodInput::ConfidenceSequence, Some(_)) => {
            return Err(StatsError::InvalidJson {
                field: "/tau".to_owned(),
                message: "`tau` is only used with method `msprt`".to_owned(),
            });
        }
        (SequentialMethodInput::ConfidenceSequence, None) => SequentialMethod::ConfidenceSequence,
        (SequentialMethodInput::Msprt, tau) => SequentialMethod::Msprt { tau },
    };
    let options = SequentialOptions {
        method,
        difference: i.difference.into(),
        alternative: i.alternative.into(),
        alpha: i.alpha,
        tuning: i.tuning,
    };
    let r = sequential_test(&c, &t, &options)?;
    Ok(json!({
        "point_estimate": r.point_estimate,
        "std_error": r.std_error,
        "ci": interval(r.ci),
        "p_value": r.p_value,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProportionInput {
    n: f64,
    successes: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProportionsInput {
    control: ProportionInput,
    treatment: ProportionInput,
    #[serde(default = "default_alpha")]
    alpha: f64,
}

pub(super) fn proportions(input: &Value) -> Result<Value> {
    let i: ProportionsInput = parse(input)?;
    let c = Proportion {
        n: i.control.n,
        successes: i.control.successes,
    };
    let t = Proportion {
        n: i.treatment.n,
        successes: i.treatment.successes,
    };
    let r = two_proportion_test(&c, &t, i.alpha)?;
    Ok(json!({
        "difference": r.difference,
        "z": r.z,
        "p_value": r.p_value,
        "chi2": r.chi2,
        "chi2_p_value": r.chi2_p_value,
        "chi2_yates": r.chi2_yates,
        "chi2_yates_p_value": r.chi2_yates_p_value,
        "ci": interval(r.ci),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CupedArmInput {
    pre: Value,
    post: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CupedInput {
    control: CupedArmInput,
    treatment: CupedArmInput,
    #[serde(default)]
    difference: DifferenceInput,
    #[serde(default)]
    alternative: AlternativeInput,
    #[serde(default = "default_alpha")]
    alpha: f64,
}

pub(super) fn cuped(input: &Value) -> Result<Value> {
    let i: CupedInput = parse(input)?;
    let (c_pre, c_post) = (
        numbers(&i.control.pre, "/control/pre")?,
        numbers(&i.control.post, "/control/post")?,
    );
    let (t_pre, t_post) = (
        numbers(&i.treatment.pre, "/treatment/pre")?,
        numbers(&i.treatment.post, "/treatment/post")?,
    );
    let r = cuped_test(
        &CupedArm {
            pre: &c_pre,
            post: &c_post,
        },
        &CupedArm {
            pre: &t_pre,
            post: &t_post,
        },
        i.difference.into(),
        i.alternative.into(),
        i.alpha,
    )?;
    let mut out = t_output(&r.test);
    out["theta"] = json!(r.theta);
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatioArmInput {
    numerator: Value,
    denominator: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatioInput {
    control: RatioArmInput,
    treatment: RatioArmInput,
    #[serde(default)]
    difference: DifferenceInput,
    #[serde(default)]
    alternative: AlternativeInput,
    #[serde(default = "default_alpha")]
    alpha: f64,
}

pub(super) fn ratio(input: &Value) -> Result<Value> {
    let i: RatioInput = parse(input)?;
    let c = (
        numbers(&i.control.numerator, "/control/numerator")?,
        numbers(&i.control.denominator, "/control/denominator")?,
    );
    let t = (
        numbers(&i.treatment.numerator, "/treatment/numerator")?,
        numbers(&i.treatment.denominator, "/treatment/denominator")?,
    );
    let options = TTestOptions {
        difference: i.difference.into(),
        alternative: i.alternative.into(),
        alpha: i.alpha,
    };
    let r = ratio_test(
        &RatioArm {
            numerator: &c.0,
            denominator: &c.1,
        },
        &RatioArm {
            numerator: &t.0,
            denominator: &t.1,
        },
        &options,
    )?;
    Ok(t_output(&r))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorInput {
    mean: f64,
    variance: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BayesInput {
    control: Value,
    treatment: Value,
    prior: Option<PriorInput>,
    #[serde(default = "default_alpha")]
    alpha: f64,
}

pub(super) fn bayes(input: &Value) -> Result<Value> {
    let i: BayesInput = parse(input)?;
    let (c, t) = arms(&i.control, &i.treatment)?;
    let prior = i.prior.map(|p| NormalPrior {
        mean: p.mean,
        variance: p.variance,
    });
    let r = bayesian_test(&c, &t, prior, i.alpha)?;
    Ok(json!({
        "posterior_mean": r.posterior_mean,
        "posterior_sd": r.posterior_sd,
        "credible_interval": interval(r.credible_interval),
        "chance_to_win": r.chance_to_win,
        "risk": r.risk,
    }))
}
