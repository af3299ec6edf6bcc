//! The analysis of an experiment from its aggregates: per metric and treatment the estimates,
//! lifts with intervals and the evidence of the configured method; the multiple-testing
//! correction across metrics × treatments; the sample-ratio-mismatch check; guardrails; the
//! sample still needed; and a recommendation.
//!
//! [`analyze`] is a pure function of the compiled experiment, its data and `now`.

mod arms;
mod compare;
mod decide;
mod guardrail;
mod plan;
mod results;
mod table;

use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::{Better, Cap, Correction, Method};
use switchyard_stats::sequential::DEFAULT_TUNING;
use switchyard_stats::{
    AdjustMethod, NormalPrior, StatsError, adjust_p_values, sample_ratio_mismatch,
};

pub use arms::{ArmsError, MIN_UNITS};
pub use results::{
    AppliedCap, Comparison, GuardrailEvidence, GuardrailResult, GuardrailStatus, Lift,
    MetricEstimate, MetricResult, MetricWindow, Recommendation, Results, SRM_THRESHOLD, SamplePlan,
    SrmCheck, StopReason, VariantUnits, Verdict,
};

use crate::data::ExperimentData;
use crate::experiment::{CompiledExperiment, Metric, MetricKind};
use crate::moments::Moments;
use compare::Setup;

/// Data that does not fit the experiment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalysisError {
    #[error("the data has variant `{variant}`, which experiment `{experiment}` does not have")]
    UnknownVariant { experiment: String, variant: String },
    #[error(
        "variant `{variant}` has aggregates of metric `{metric}`, which experiment `{experiment}` does not have"
    )]
    UnknownMetric {
        experiment: String,
        variant: String,
        metric: String,
    },
    #[error(
        "variant `{variant}`, metric `{metric}`: {values} units have values but only {units} units are exposed"
    )]
    MoreValuesThanUnits {
        variant: String,
        metric: String,
        values: u64,
        units: u64,
    },
}

/// The data of one experiment arranged by variant and metric, in the experiment's order.
struct Table {
    units: Vec<u64>,
    /// `moments[variant][metric]`, padded to the variant's units.
    moments: Vec<Vec<Moments>>,
}

impl Table {
    fn new(experiment: &CompiledExperiment, data: &ExperimentData) -> Result<Table, AnalysisError> {
        let key = || experiment.key().to_owned();
        if let Some(variant) = data
            .variants
            .keys()
            .find(|v| experiment.variant(v).is_none())
        {
            let variant = variant.clone();
            return Err(AnalysisError::UnknownVariant {
                experiment: key(),
                variant,
            });
        }
        let mut units = Vec::new();
        let mut moments = Vec::new();
        for v in experiment.variants() {
            let data = data.variants.get(&v.name);
            let n = data.map_or(0, |d| d.units);
            if let Some(metric) = data
                .into_iter()
                .flat_map(|d| d.metrics.keys())
                .find(|name| experiment.metric(name).is_none())
            {
                return Err(AnalysisError::UnknownMetric {
                    experiment: key(),
                    variant: v.name.clone(),
                    metric: metric.clone(),
                });
            }
            let mut row = Vec::new();
            for metric in experiment.metrics() {
                let m = data
                    .and_then(|d| d.metrics.get(&metric.name))
                    .copied()
                    .unwrap_or_default();
                if m.n > n {
                    return Err(AnalysisError::MoreValuesThanUnits {
                        variant: v.name.clone(),
                        metric: metric.name.clone(),
                        values: m.n,
                        units: n,
                    });
                }
                row.push(m.with_units(n));
            }
            units.push(n);
            moments.push(row);
        }
        Ok(Table { units, moments })
    }
}

/// Analyses an experiment's data at `now`.
///
/// # Errors
/// Data that names variants or metrics the experiment does not have, or more units with values
/// than exposed units.
pub fn analyze(
    experiment: &CompiledExperiment,
    data: &ExperimentData,
    now: Timestamp,
) -> Result<Results, AnalysisError> {
    let table = Table::new(experiment, data)?;
    let settings = experiment.settings();
    let setup = Setup {
        method: settings.method,
        alpha: settings.alpha,
        // The confidence sequences are tightest around N* units of the two arms compared.
        tuning: settings
            .sequential_tuning
            .unwrap_or_else(|| (2.0 * experiment.minimum_sample_size() as f64).max(DEFAULT_TUNING)),
        difference: settings.difference,
        proportions: settings.proportions,
        prior: settings.prior.map(|p| NormalPrior {
            mean: p.mean,
            variance: p.stddev * p.stddev,
        }),
    };
    let mut metrics: Vec<MetricResult> = experiment
        .metrics()
        .iter()
        .enumerate()
        .filter(|(_, m)| m.is_goal())
        .map(|(i, m)| {
            let cap = applied_cap(m, data);
            metric_result(experiment, &table, i, m, &setup, settings.cuped, cap)
        })
        .collect();
    correct(&mut metrics, settings.correction, &setup);
    let guardrails = guardrails(experiment, &table, &setup, settings.cuped);
    let srm = srm(experiment, &table.units);
    let plan = sample_plan(experiment, &table, &setup, metrics.len());
    let active: Vec<String> = experiment.variants()[1..]
        .iter()
        .filter(|v| v.weight > 0)
        .map(|v| v.name.clone())
        .collect();
    let recommendation = decide::recommend(&decide::Decision {
        method: settings.method,
        guardrails: &guardrails,
        srm: srm.as_ref(),
        metrics: &metrics,
        plan: &plan,
        active_treatments: &active,
        elapsed: now.since(data.started_at),
        max_duration: experiment.max_duration(),
    });
    Ok(Results {
        experiment: experiment.key().to_owned(),
        computed_at: now,
        started_at: data.started_at,
        method: settings.method,
        alpha: settings.alpha,
        correction: settings.correction,
        difference: settings.difference,
        proportions: settings.proportions,
        sequential_tuning: (settings.method == Method::Sequential).then_some(setup.tuning),
        prior: settings.prior,
        cuped: settings.cuped,
        cuped_lookback_s: settings
            .cuped_lookback
            .filter(|_| settings.cuped)
            .map(|d| d.as_secs_f64()),
        variants: variant_units(experiment, &table.units),
        srm,
        metrics,
        guardrails,
        sample: plan,
        recommendation,
    })
}

/// The sample plan of the primary metric; `goals` metrics are compared for each treatment.
fn sample_plan(
    experiment: &CompiledExperiment,
    table: &Table,
    setup: &Setup,
    goals: usize,
) -> SamplePlan {
    let settings = experiment.settings();
    let comparisons = goals * (experiment.variants().len() - 1);
    plan::plan(&plan::PlanInput {
        minimum_per_variant: experiment.minimum_sample_size(),
        effect: settings
            .minimum_detectable_effect
            .map(|e| (e, settings.power)),
        // A valid experiment has a primary metric (index 0) and control (index 0).
        control: experiment
            .metrics()
            .first()
            .and_then(|m| arms::single(m.kind(), &table.moments[0][0]).ok()),
        alpha: match settings.correction {
            Correction::Holm | Correction::Bonferroni => settings.alpha / comparisons.max(1) as f64,
            Correction::BenjaminiHochberg | Correction::None => settings.alpha,
        },
        sequential_tuning: (settings.method == Method::Sequential).then_some(setup.tuning),
        variants: experiment.variants(),
        units: &table.units,
    })
}

/// The cap the metric's units were counted with.
fn applied_cap(metric: &Metric, data: &ExperimentData) -> Option<AppliedCap> {
    Some(match metric.cap? {
        Cap::Value { value } => AppliedCap {
            value: Some(value),
            percentile: None,
            ignore_zeros: false,
        },
        Cap::Percentile {
            percentile,
            ignore_zeros,
        } => AppliedCap {
            value: data.caps.get(&metric.name).copied(),
            percentile: Some(percentile),
            ignore_zeros,
        },
    })
}

fn value(metric: &Metric, moments: &Moments) -> Option<f64> {
    match metric.kind() {
        MetricKind::Ratio => moments.ratio(),
        MetricKind::Conversion | MetricKind::Continuous => moments.mean_x(),
    }
}

fn metric_result(
    experiment: &CompiledExperiment,
    table: &Table,
    index: usize,
    metric: &Metric,
    setup: &Setup,
    cuped: bool,
    cap: Option<AppliedCap>,
) -> MetricResult {
    let variants = experiment
        .variants()
        .iter()
        .zip(&table.moments)
        .map(|(v, row)| MetricEstimate {
            variant: v.name.clone(),
            units: row[index].n,
            value: value(metric, &row[index]),
        })
        .collect();
    let control = &table.moments[0][index];
    let comparisons = experiment.variants()[1..]
        .iter()
        .zip(&table.moments[1..])
        .map(|(v, row)| {
            let (outcome, theta) = match arms::arms(metric.kind(), control, &row[index], cuped) {
                Ok(arms) => (compare::compare(setup, &arms, metric.better), arms.theta),
                Err(e) => {
                    let notes = vec![e.to_string()];
                    (
                        compare::Outcome {
                            notes,
                            ..Default::default()
                        },
                        None,
                    )
                }
            };
            Comparison {
                variant: v.name.clone(),
                absolute: outcome.absolute,
                relative: outcome.relative,
                p_value: outcome.p_value,
                adjusted_p_value: None,
                adjusted_ci: None,
                chance_to_win: outcome.chance_to_win,
                expected_loss: outcome.expected_loss,
                cuped_theta: theta,
                verdict: Verdict::NotEnoughData,
                notes: outcome.notes,
            }
        })
        .collect();
    MetricResult {
        name: metric.name.clone(),
        kind: metric.kind(),
        better: metric.better,
        role: metric.role,
        window: metric.window.map(|(delay, duration)| MetricWindow {
            delay_s: delay.as_secs_f64(),
            duration_s: duration.as_secs_f64(),
        }),
        cap,
        variants,
        comparisons,
    }
}

/// Adjusts the p-values of every comparison together, then gives each its verdict.
fn correct(metrics: &mut [MetricResult], correction: Correction, setup: &Setup) {
    let raw: Vec<f64> = metrics
        .iter()
        .flat_map(|m| &m.comparisons)
        .filter_map(|c| c.p_value)
        .collect();
    let method = match correction {
        Correction::Holm => Some(AdjustMethod::Holm),
        Correction::BenjaminiHochberg => Some(AdjustMethod::BenjaminiHochberg),
        Correction::Bonferroni => Some(AdjustMethod::Bonferroni),
        Correction::None => None,
    };
    let adjusted = match method {
        // p-values from switchyard-stats are in [0, 1], and `raw` is not empty here.
        Some(method) if !raw.is_empty() => adjust_p_values(&raw, method).unwrap_or(raw),
        _ => raw,
    };
    let mut adjusted = adjusted.into_iter();
    for m in metrics.iter_mut() {
        let better = m.better;
        for c in &mut m.comparisons {
            if c.p_value.is_some() {
                c.adjusted_p_value = adjusted.next();
                if method.is_some() {
                    c.adjusted_ci = widened(c, setup);
                }
            }
            c.verdict = verdict(c, better, setup);
        }
    }
}

/// The tested difference's interval widened to the adjusted p-value, as GrowthBook's
/// `adjustedCI`: estimate ± z(1 − α/2) · |estimate / z(1 − p_adj/2)|, the interval of the same
/// estimate whose standard error makes its p-value the adjusted one; unbounded when the adjusted
/// p-value is 1. `None` when it is not wider than the test's own interval.
fn widened(c: &Comparison, setup: &Setup) -> Option<[f64; 2]> {
    let lift = c.tested(setup.difference)?;
    let p = c.adjusted_p_value?;
    if p <= c.p_value? {
        return None;
    }
    let z_alpha = switchyard_stats::dist::norm_quantile("/alpha", 1.0 - setup.alpha / 2.0).ok()?;
    let z_p = switchyard_stats::dist::norm_quantile("/p", 1.0 - p / 2.0).ok();
    let half = match z_p {
        Some(z) if z > 0.0 => z_alpha * (lift.estimate / z).abs(),
        _ => f64::INFINITY,
    };
    let ci = [lift.estimate - half, lift.estimate + half];
    (ci[1] - ci[0] > lift.ci[1] - lift.ci[0]).then_some(ci)
}

fn verdict(c: &Comparison, better: Better, setup: &Setup) -> Verdict {
    let alpha = setup.alpha;
    let improves = |estimate: f64| match better {
        Better::Higher => estimate > 0.0,
        Better::Lower => estimate < 0.0,
    };
    match setup.method {
        Method::Fixed | Method::Sequential => {
            let (Some(p), Some(lift)) = (c.adjusted_p_value, c.tested(setup.difference)) else {
                return Verdict::NotEnoughData;
            };
            if p >= alpha || lift.estimate == 0.0 {
                Verdict::Inconclusive
            } else if improves(lift.estimate) {
                Verdict::Better
            } else {
                Verdict::Worse
            }
        }
        Method::Bayesian => match c.chance_to_win {
            None => Verdict::NotEnoughData,
            Some(p) if p >= 1.0 - alpha => Verdict::Better,
            Some(p) if p <= alpha => Verdict::Worse,
            Some(_) => Verdict::Inconclusive,
        },
    }
}

fn guardrails(
    experiment: &CompiledExperiment,
    table: &Table,
    setup: &Setup,
    cuped: bool,
) -> Vec<GuardrailResult> {
    let mut out = Vec::new();
    for g in experiment.guardrails() {
        let Some(index) = experiment.metrics().iter().position(|m| m.name == g.metric) else {
            continue;
        };
        let metric = &experiment.metrics()[index];
        let control = &table.moments[0][index];
        for (v, row) in experiment.variants()[1..].iter().zip(&table.moments[1..]) {
            let arms = arms::arms(metric.kind(), control, &row[index], cuped);
            out.push(GuardrailResult {
                metric: g.metric.clone(),
                variant: v.name.clone(),
                max_degradation: g.max_degradation,
                scale: g.scale,
                control_value: value(metric, control),
                variant_value: value(metric, &row[index]),
                status: guardrail::status(arms, g, metric.better, setup),
            });
        }
    }
    out
}

fn variant_units(experiment: &CompiledExperiment, units: &[u64]) -> Vec<VariantUnits> {
    let total: u64 = units.iter().sum();
    experiment
        .variants()
        .iter()
        .zip(units)
        .map(|(v, &n)| VariantUnits {
            name: v.name.clone(),
            weight: v.weight,
            expected_share: v.share,
            units: n,
            observed_share: (total > 0).then(|| n as f64 / total as f64),
        })
        .collect()
}

/// Expected units per variant below which the chi-square approximation is not trusted.
const SRM_MIN_EXPECTED: f64 = 5.0;

fn srm(experiment: &CompiledExperiment, units: &[u64]) -> Option<SrmCheck> {
    let total: u64 = units.iter().sum();
    let enough = experiment
        .variants()
        .iter()
        .filter(|v| v.share > 0.0)
        .all(|v| v.share * total as f64 >= SRM_MIN_EXPECTED);
    if !enough {
        return None;
    }
    let observed: Vec<f64> = units.iter().map(|&n| n as f64).collect();
    let weights: Vec<f64> = experiment
        .variants()
        .iter()
        .map(|v| f64::from(v.weight))
        .collect();
    let (chi2, p_value) = match sample_ratio_mismatch(&observed, &weights) {
        Ok(r) => (r.chi2, r.p_value),
        // Units in a variant of weight 0: a certain mismatch.
        Err(StatsError::OutOfRange { .. }) => (f64::INFINITY, 0.0),
        Err(_) => return None,
    };
    let mismatch = p_value < SRM_THRESHOLD;
    let warning = mismatch.then(|| {
        let shares = |f: &dyn Fn(usize) -> f64| {
            (0..units.len())
                .map(|i| format!("{:.1} %", 100.0 * f(i)))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        format!(
            "SAMPLE RATIO MISMATCH (p = {p_value:.1e} < {SRM_THRESHOLD}): units split {} where the \
             weights ask for {}. Assignment or exposure recording is broken, so no result of this \
             experiment can be trusted until the cause is found.",
            shares(&|i| units[i] as f64 / total as f64),
            shares(&|i| experiment.variants()[i].share),
        )
    });
    Some(SrmCheck {
        chi2,
        p_value,
        mismatch,
        warning,
    })
}

#[cfg(test)]
mod tests;
