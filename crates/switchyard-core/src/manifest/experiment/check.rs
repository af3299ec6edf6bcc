//! What spans the fields of one experiment: variant names and weights, the split's needs, metric
//! definitions, guardrail references, the numbers of the analysis, and the targeting condition
//! compiled by the flag engine exactly as the experiment's flag will be.

use std::collections::BTreeSet;

use serde_json::Value;
use switchyard_flags::{FlagError, FlagSet, FlagType, Problem};

use super::{
    Better, Experiment, ExperimentSpec, FlagServing, Method, MetricDefinition, MetricName,
    SplitSpec,
};

/// What is wrong with an experiment.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentProblem {
    #[error("an experiment needs at least two variants (the first is control), got {found}")]
    TooFewVariants { found: usize },
    #[error("variant `{name}` is defined twice")]
    DuplicateVariant { name: String },
    #[error("weights must sum to a positive number, got {sum}")]
    WeightsNotPositive { sum: u64 },
    #[error("control (the first variant) needs a positive weight")]
    ControlWithoutWeight,
    #[error("at least one variant besides control needs a positive weight")]
    NoTreatmentWeight,
    #[error(
        "a flag experiment serves each variant's `value`; `version` is for traffic experiments"
    )]
    VersionInFlagExperiment,
    #[error("a traffic experiment routes to releases: give `version`, not `value`")]
    ValueInTrafficExperiment,
    #[error("a traffic experiment needs the `version` (release) that serves this variant")]
    MissingVersion,
    #[error("version `{version}` serves two variants")]
    DuplicateVersion { version: String },
    #[error("variant values must all have one type: control's is {expected}, this one is {found}")]
    MixedValueTypes {
        expected: &'static str,
        found: &'static str,
    },
    #[error("a flag cannot serve {found}: use a boolean, number, string or object")]
    UnsupportedValue { found: &'static str },
    #[error(
        "`{unit}` is not an attribute: name the attribute that identifies a unit, such as `userId`"
    )]
    UnitNotAnAttribute { unit: String },
    #[error(
        "targeting applies to flag experiments; a traffic experiment takes every request of the app"
    )]
    TargetingInTrafficExperiment,
    #[error("experiment targeting cannot use segments (`{name}`): write the condition inline")]
    TargetingSegment { name: String },
    /// The flag engine's complaint about the condition, with its causes.
    #[error("{message}")]
    Targeting { message: String },
    #[error("an experiment needs at least one metric (the first is the primary metric)")]
    NoMetrics,
    #[error("metric `{name}` is defined twice")]
    DuplicateMetric { name: String },
    #[error("a metric needs exactly one of `conversion`, `continuous` or `ratio`")]
    MetricDefinition,
    #[error("`{name}` is a built-in metric: it takes no definition and no `better`")]
    BuiltinRedefined { name: &'static str },
    #[error(
        "`{name}` is measured by the proxy of a traffic experiment; a flag experiment has no such metric"
    )]
    BuiltinInFlagExperiment { name: String },
    #[error("unknown metric `{name}`; the experiment's metrics are {known}")]
    UnknownGuardrailMetric { name: String, known: String },
    #[error("metric `{name}` has two guardrails")]
    DuplicateGuardrail { name: String },
    #[error("{value} is out of range: expected a value {expected}")]
    OutOfRange { value: f64, expected: &'static str },
    #[error("`minimumSampleSize` must be at least 2 units per variant, got {value}")]
    MinimumSampleSize { value: u64 },
    #[error("`maxDuration` must be longer than zero")]
    ZeroMaxDuration,
    #[error("applies to `method: {method}` only")]
    OnlyFor { method: &'static str },
    #[error("a built-in metric takes no {what}: the proxy measures it per request")]
    NotForBuiltin { what: &'static str },
    #[error("a window must last longer than zero")]
    ZeroWindow,
    #[error(
        "a cap applies to continuous metrics (a conversion is 0 or 1; a ratio is capped by its parts' events)"
    )]
    CapNotContinuous,
    #[error("a cap needs exactly one of `value` or `percentile`")]
    CapKind,
    #[error("`ignoreZeros` applies to a `percentile` cap only")]
    IgnoreZerosWithoutPercentile,
    #[error("`cupedLookback` needs `cuped: true`")]
    LookbackWithoutCuped,
    #[error("a lookback must last longer than zero")]
    ZeroLookback,
}

/// An experiment problem and the field path where it is, such as `spec.variants[2].name`.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct InvalidExperiment {
    pub path: String,
    #[source]
    pub problem: ExperimentProblem,
}

type Checked = Result<(), InvalidExperiment>;

fn fail(path: impl Into<String>, problem: ExperimentProblem) -> Checked {
    Err(InvalidExperiment {
        path: path.into(),
        problem,
    })
}

impl Experiment {
    /// Checks what spans fields; the first problem found is returned with its field path.
    ///
    /// # Errors
    /// See [`ExperimentProblem`].
    pub fn validate(&self) -> Result<(), InvalidExperiment> {
        let spec = &self.spec;
        check_variants(spec)?;
        check_split(spec)?;
        check_metrics(spec)?;
        check_guardrails(spec)?;
        check_numbers(spec)?;
        if matches!(spec.split, SplitSpec::Flag(_)) {
            check_targeting(self)?;
        }
        Ok(())
    }
}

fn check_variants(spec: &ExperimentSpec) -> Checked {
    let variants = &spec.variants;
    if variants.len() < 2 {
        let found = variants.len();
        return fail("spec.variants", ExperimentProblem::TooFewVariants { found });
    }
    let mut seen = BTreeSet::new();
    for (i, v) in variants.iter().enumerate() {
        if !seen.insert(v.name.as_str()) {
            let name = v.name.to_string();
            return fail(
                format!("spec.variants[{i}].name"),
                ExperimentProblem::DuplicateVariant { name },
            );
        }
    }
    let sum = spec.total_weight();
    if sum == 0 {
        return fail(
            "spec.variants",
            ExperimentProblem::WeightsNotPositive { sum },
        );
    }
    if variants[0].weight == 0 {
        return fail(
            "spec.variants[0].weight",
            ExperimentProblem::ControlWithoutWeight,
        );
    }
    if variants[1..].iter().all(|v| v.weight == 0) {
        return fail("spec.variants", ExperimentProblem::NoTreatmentWeight);
    }
    Ok(())
}

fn check_split(spec: &ExperimentSpec) -> Checked {
    match &spec.split {
        SplitSpec::Flag(flag) => {
            let unit = flag.unit.as_str();
            let reserved = [
                switchyard_flags::DEFAULT_STICKINESS,
                switchyard_flags::RANDOM_STICKINESS,
            ];
            if unit.trim().is_empty() || reserved.contains(&unit) {
                let unit = unit.to_owned();
                return fail(
                    "spec.split.flag.unit",
                    ExperimentProblem::UnitNotAnAttribute { unit },
                );
            }
            check_flag_values(spec)
        }
        SplitSpec::Traffic(_) => {
            if spec.targeting.is_some() {
                return fail(
                    "spec.targeting",
                    ExperimentProblem::TargetingInTrafficExperiment,
                );
            }
            let mut versions = BTreeSet::new();
            for (i, v) in spec.variants.iter().enumerate() {
                if v.value.is_some() {
                    return fail(
                        format!("spec.variants[{i}].value"),
                        ExperimentProblem::ValueInTrafficExperiment,
                    );
                }
                let Some(version) = &v.version else {
                    return fail(
                        format!("spec.variants[{i}]"),
                        ExperimentProblem::MissingVersion,
                    );
                };
                if !versions.insert(version.as_str()) {
                    let version = version.to_string();
                    return fail(
                        format!("spec.variants[{i}].version"),
                        ExperimentProblem::DuplicateVersion { version },
                    );
                }
            }
            Ok(())
        }
    }
}

fn check_flag_values(spec: &ExperimentSpec) -> Checked {
    let mut expected: Option<&'static str> = None;
    for (i, v) in spec.variants.iter().enumerate() {
        if v.version.is_some() {
            return fail(
                format!("spec.variants[{i}].version"),
                ExperimentProblem::VersionInFlagExperiment,
            );
        }
        let found = value_kind(v.value.as_ref());
        if matches!(found, "an array" | "null") {
            return fail(
                format!("spec.variants[{i}].value"),
                ExperimentProblem::UnsupportedValue { found },
            );
        }
        match expected {
            None => expected = Some(found),
            Some(expected) if expected != found => {
                return fail(
                    format!("spec.variants[{i}].value"),
                    ExperimentProblem::MixedValueTypes { expected, found },
                );
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The kind of a variant value, as the flag type it needs; a missing value is the name (a
/// string). Integers and other numbers are one kind: a `float` flag serves both.
fn value_kind(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::String(_)) => "a string",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::Object(_)) => "an object",
        Some(Value::Array(_)) => "an array",
        Some(Value::Null) => "null",
    }
}

/// The flag type that serves the variants' values (valid specs only).
pub(super) fn flag_type(spec: &ExperimentSpec) -> FlagType {
    let values = || spec.variants.iter().map(|v| v.value.as_ref());
    match value_kind(values().next().flatten()) {
        "a boolean" => FlagType::Boolean,
        "a number" if values().all(|v| v.is_some_and(Value::is_i64)) => FlagType::Integer,
        "a number" => FlagType::Float,
        "an object" => FlagType::Object,
        _ => FlagType::String,
    }
}

fn check_metrics(spec: &ExperimentSpec) -> Checked {
    if spec.metrics.is_empty() {
        return fail("spec.metrics", ExperimentProblem::NoMetrics);
    }
    let traffic = matches!(spec.split, SplitSpec::Traffic(_));
    let mut seen = BTreeSet::new();
    for (i, m) in spec.metrics.iter().enumerate() {
        let path = format!("spec.metrics[{i}]");
        if !seen.insert(m.name.as_str()) {
            let name = m.name.to_string();
            return fail(
                format!("{path}.name"),
                ExperimentProblem::DuplicateMetric { name },
            );
        }
        if let Err((field, problem)) = m.definition() {
            let path = if field.is_empty() {
                path
            } else {
                format!("{path}.{field}")
            };
            return fail(path, problem);
        }
        if m.name.builtin().is_some() && !traffic {
            let name = m.name.to_string();
            return fail(
                format!("{path}.name"),
                ExperimentProblem::BuiltinInFlagExperiment { name },
            );
        }
        check_window_and_cap(m, &path)?;
    }
    Ok(())
}

/// A window needs a duration and events (not a built-in); a cap a positive value on a
/// continuous metric.
fn check_window_and_cap(m: &super::MetricSpec, path: &str) -> Checked {
    if let Some(window) = &m.window {
        if m.name.builtin().is_some() {
            return fail(
                format!("{path}.window"),
                ExperimentProblem::NotForBuiltin { what: "window" },
            );
        }
        if window.duration.is_zero() {
            return fail(
                format!("{path}.window.duration"),
                ExperimentProblem::ZeroWindow,
            );
        }
    }
    if let Some(cap) = &m.cap {
        if m.continuous.is_none() {
            return fail(format!("{path}.cap"), ExperimentProblem::CapNotContinuous);
        }
        match (cap.value, cap.percentile) {
            (Some(_), Some(_)) | (None, None) => {
                return fail(format!("{path}.cap"), ExperimentProblem::CapKind);
            }
            (Some(value), None) => {
                if !(value.is_finite() && value > 0.0) {
                    let expected = "> 0 (the most a unit's value counts for)";
                    return fail(
                        format!("{path}.cap.value"),
                        ExperimentProblem::OutOfRange { value, expected },
                    );
                }
                if cap.ignore_zeros {
                    return fail(
                        format!("{path}.cap.ignoreZeros"),
                        ExperimentProblem::IgnoreZerosWithoutPercentile,
                    );
                }
            }
            (None, Some(value)) => {
                if !(value > 0.0 && value < 1.0) {
                    let expected = "between 0 and 1, exclusive (0.99 caps at the 99th percentile)";
                    return fail(
                        format!("{path}.cap.percentile"),
                        ExperimentProblem::OutOfRange { value, expected },
                    );
                }
            }
        }
    }
    Ok(())
}

fn check_guardrails(spec: &ExperimentSpec) -> Checked {
    let traffic = matches!(spec.split, SplitSpec::Traffic(_));
    let mut seen = BTreeSet::new();
    for (i, g) in spec.guardrails.iter().enumerate() {
        let path = format!("spec.guardrails[{i}]");
        let name = g.metric.to_string();
        let defined = spec.metrics.iter().any(|m| m.name == g.metric);
        if !defined && g.metric.builtin().is_none() {
            let mut known: Vec<String> = spec
                .metrics
                .iter()
                .map(|m| format!("`{}`", m.name))
                .collect();
            if traffic {
                known.extend(super::BuiltinMetric::ALL.map(|b| format!("`{}`", b.name())));
            }
            let known = known.join(", ");
            return fail(
                format!("{path}.metric"),
                ExperimentProblem::UnknownGuardrailMetric { name, known },
            );
        }
        if g.metric.builtin().is_some() && !traffic {
            return fail(
                format!("{path}.metric"),
                ExperimentProblem::BuiltinInFlagExperiment { name },
            );
        }
        if !seen.insert(g.metric.as_str()) {
            return fail(
                format!("{path}.metric"),
                ExperimentProblem::DuplicateGuardrail { name },
            );
        }
        let value = g.max_degradation;
        if !(value.is_finite() && value >= 0.0) {
            let expected = ">= 0 (the tolerated degradation)";
            return fail(
                format!("{path}.maxDegradation"),
                ExperimentProblem::OutOfRange { value, expected },
            );
        }
    }
    Ok(())
}

fn check_numbers(spec: &ExperimentSpec) -> Checked {
    if spec.minimum_sample_size < 2 {
        let value = spec.minimum_sample_size;
        return fail(
            "spec.minimumSampleSize",
            ExperimentProblem::MinimumSampleSize { value },
        );
    }
    if spec.max_duration.is_zero() {
        return fail("spec.maxDuration", ExperimentProblem::ZeroMaxDuration);
    }
    let a = &spec.analysis;
    let out_of_range = |field: &str, value: f64, expected| {
        fail(
            format!("spec.analysis.{field}"),
            ExperimentProblem::OutOfRange { value, expected },
        )
    };
    if !(a.alpha > 0.0 && a.alpha <= 0.5) {
        return out_of_range("alpha", a.alpha, "in (0, 0.5]");
    }
    if !(a.power > a.alpha && a.power < 1.0) {
        return out_of_range("power", a.power, "in (alpha, 1)");
    }
    if let Some(mde) = a.minimum_detectable_effect {
        if !(mde.is_finite() && mde > 0.0) {
            return out_of_range("minimumDetectableEffect", mde, "> 0 (a relative lift)");
        }
    }
    if let Some(n) = a.sequential_tuning {
        if !(n.is_finite() && n >= 1.0) {
            return out_of_range("sequentialTuning", n, ">= 1 (total units of two arms)");
        }
        if a.method != Method::Sequential {
            return fail(
                "spec.analysis.sequentialTuning",
                ExperimentProblem::OnlyFor {
                    method: Method::Sequential.as_str(),
                },
            );
        }
    }
    if let Some(prior) = a.prior {
        if !prior.mean.is_finite() {
            return out_of_range("prior.mean", prior.mean, "a finite number");
        }
        if !(prior.stddev.is_finite() && prior.stddev > 0.0) {
            return out_of_range("prior.stddev", prior.stddev, "> 0");
        }
        if a.method != Method::Bayesian {
            return fail(
                "spec.analysis.prior",
                ExperimentProblem::OnlyFor {
                    method: Method::Bayesian.as_str(),
                },
            );
        }
    }
    if let Some(lookback) = a.cuped_lookback {
        let field = "spec.analysis.cupedLookback";
        if lookback.is_zero() {
            return fail(field, ExperimentProblem::ZeroLookback);
        }
        if !a.cuped {
            return fail(field, ExperimentProblem::LookbackWithoutCuped);
        }
    }
    Ok(())
}

/// Compiles the experiment's flag with the flag engine, so an experiment that loads is a flag
/// that compiles.
fn check_targeting(experiment: &Experiment) -> Checked {
    let Some(flag) = experiment.flag_definition(FlagServing::Split) else {
        return Ok(());
    };
    let set = FlagSet {
        flags: vec![flag],
        segments: Default::default(),
    };
    match set.compile() {
        Ok(_) => Ok(()),
        Err(FlagError::InvalidFlag { path, problem, .. }) => {
            let path = match path.strip_prefix(super::flag::TARGETING_PATH) {
                Some(rest) => format!("spec.targeting{rest}"),
                None => "spec".to_owned(),
            };
            let problem = match problem {
                Problem::UnknownSegment(name) => ExperimentProblem::TargetingSegment { name },
                other => ExperimentProblem::Targeting {
                    message: with_causes(&other),
                },
            };
            fail(path, problem)
        }
        Err(other) => fail(
            "spec",
            ExperimentProblem::Targeting {
                message: with_causes(&other),
            },
        ),
    }
}

/// An error's message followed by those of its causes.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    message
}

/// Every metric of a valid spec with its definition and direction: `metrics` first, then the
/// built-ins named only by guardrails.
pub(super) fn all_metrics(spec: &ExperimentSpec) -> Vec<(MetricName, MetricDefinition, Better)> {
    let mut all: Vec<(MetricName, MetricDefinition, Better)> = spec
        .metrics
        .iter()
        .filter_map(|m| {
            let definition = m.definition().ok()?;
            Some((m.name.clone(), definition, m.better()))
        })
        .collect();
    for g in &spec.guardrails {
        if let Some(builtin) = g.metric.builtin() {
            if !all.iter().any(|(name, ..)| *name == g.metric) {
                all.push((g.metric.clone(), builtin.definition(), builtin.better()));
            }
        }
    }
    all
}
