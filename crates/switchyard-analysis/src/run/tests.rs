use std::path::Path;

use switchyard_core::expr::Value;
use switchyard_core::manifest::load_str;

use super::*;

fn template(metric_yaml: &str) -> AnalysisTemplateSpec {
    let text = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: t}}\nspec:\n  metrics:\n    - name: m\n      provider: {{builtin: {{metric: error_rate}}}}\n{metric_yaml}"
    );
    load_str(&text, Path::new("t.yaml"))
        .unwrap()
        .templates
        .remove(0)
        .spec
}

fn value(v: f64) -> Result<Observation, MeasureError> {
    Ok(Observation {
        result: Value::Number(v),
        baseline: None,
        samples: Some(100),
    })
}

const T0: Timestamp = Timestamp(1_000_000);

#[test]
fn success_after_count_measurements_at_interval() {
    let spec =
        template("      successCondition: result < 0.05\n      interval: 10s\n      count: 3\n");
    let mut run = AnalysisRun::new([("t", &spec)], T0);
    assert_eq!(run.due(T0), vec![0]);
    for i in 0..3u64 {
        let now = T0.plus(Duration::from_secs(10 * i));
        assert_eq!(run.due(now), vec![0], "due at {i}");
        run.record(0, value(0.01), now).unwrap();
        assert!(run.due(now).is_empty());
    }
    assert_eq!(run.status(), RunStatus::Successful);
    assert_eq!(run.next_deadline(), None);
}

#[test]
fn failure_limit_allows_that_many_failures() {
    let spec = template(
        "      successCondition: result < 0.05\n      interval: 1s\n      count: 5\n      failureLimit: 1\n",
    );
    let mut run = AnalysisRun::new([("t", &spec)], T0);
    let m = run.record(0, value(0.2), T0).unwrap();
    assert_eq!(m.phase, MeasurementPhase::Failed);
    assert!(m.message.contains("does not hold"), "{}", m.message);
    assert_eq!(run.status(), RunStatus::Running);
    run.record(0, value(0.2), T0.plus(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(run.status(), RunStatus::Failed);
}

#[test]
fn both_conditions_false_is_inconclusive() {
    let spec =
        template("      successCondition: result < 0.01\n      failureCondition: result > 0.1\n");
    let mut run = AnalysisRun::new([("t", &spec)], T0);
    assert_eq!(
        run.record(0, value(0.05), T0).unwrap().phase,
        MeasurementPhase::Inconclusive
    );
    assert_eq!(run.status(), RunStatus::Inconclusive);
}

#[test]
fn failure_condition_alone() {
    let spec = template("      failureCondition: result > 0.1\n");
    let mut run = AnalysisRun::new([("t", &spec)], T0);
    assert_eq!(
        run.record(0, value(0.05), T0).unwrap().phase,
        MeasurementPhase::Successful
    );
    assert_eq!(run.status(), RunStatus::Successful);
}

#[test]
fn no_data_is_inconclusive_not_failure() {
    let spec = template(
        "      successCondition: result < 0.05\n      interval: 1s\n      count: 3\n      inconclusiveLimit: 1\n",
    );
    let mut run = AnalysisRun::new([("t", &spec)], T0);
    let m = run
        .record(
            0,
            Err(MeasureError::NoData {
                reason: "quiet".into(),
            }),
            T0,
        )
        .unwrap();
    assert_eq!(m.phase, MeasurementPhase::Inconclusive);
    assert_eq!(run.status(), RunStatus::Running);
}

#[test]
fn consecutive_errors_beyond_limit_err_and_success_resets_them() {
    let spec = template(
        "      successCondition: result < 0.05\n      interval: 1s\n      count: 10\n      consecutiveErrorLimit: 1\n",
    );
    let mut run = AnalysisRun::new([("t", &spec)], T0);
    let down = || {
        Err(MeasureError::Provider {
            reason: "down".into(),
        })
    };
    run.record(0, down(), T0);
    run.record(0, value(0.0), T0);
    run.record(0, down(), T0);
    assert_eq!(run.status(), RunStatus::Running);
    run.record(0, down(), T0);
    assert_eq!(run.status(), RunStatus::Error);
    assert_eq!(run.metrics[0].errors, 3);
}

#[test]
fn dry_run_never_fails_the_run() {
    let spec = template("      successCondition: result < 0.05\n      dryRun: true\n");
    let mut run = AnalysisRun::new([("t", &spec)], T0);
    assert_eq!(
        run.record(0, value(0.5), T0).unwrap().phase,
        MeasurementPhase::Failed
    );
    assert_eq!(run.metrics[0].status, RunStatus::Failed);
    assert_eq!(run.status(), RunStatus::Successful);
}

#[test]
fn initial_delay_postpones_the_first_measurement() {
    let spec = template("      successCondition: result < 0.05\n      initialDelay: 30s\n");
    let run = AnalysisRun::new([("t", &spec)], T0);
    assert!(run.due(T0).is_empty());
    assert_eq!(run.due(T0.plus(Duration::from_secs(30))), vec![0]);
}

#[test]
fn evaluation_errors_are_errors() {
    let spec = template("      successCondition: result[3] < 0.05\n");
    let mut run = AnalysisRun::new([("t", &spec)], T0);
    let obs = Ok(Observation {
        result: Value::List(vec![1.0]),
        baseline: None,
        samples: None,
    });
    assert_eq!(
        run.record(0, obs, T0).unwrap().phase,
        MeasurementPhase::Error
    );
}

#[test]
fn baseline_is_available_to_conditions() {
    let spec = template("      successCondition: result <= baseline * 1.5\n");
    let mut run = AnalysisRun::new([("t", &spec)], T0);
    let obs = Ok(Observation {
        result: Value::Number(0.03),
        baseline: Some(Value::Number(0.01)),
        samples: None,
    });
    assert_eq!(
        run.record(0, obs, T0).unwrap().phase,
        MeasurementPhase::Failed
    );
}

/// The judges of one analysis, across its templates, share the error budget: two judges at
/// alpha 0.01 each run at 0.005, a metric without a judge takes none, a lone judge keeps all.
#[test]
fn judges_of_one_analysis_share_alpha() {
    let load = |text: &str| {
        load_str(text, Path::new("t.yaml"))
            .unwrap()
            .templates
            .remove(0)
            .spec
    };
    let errors = load(
        "apiVersion: switchyard.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: errors}\nspec:\n  metrics:\n    - name: e\n      judge: {compare: error_rate}\n      interval: 1s\n    - name: plain\n      provider: {builtin: {metric: error_rate}}\n      successCondition: result < 0.05\n",
    );
    let latency = load(
        "apiVersion: switchyard.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: latency}\nspec:\n  metrics:\n    - name: l\n      judge: {compare: latency_p99, alpha: 0.02}\n      interval: 1s\n",
    );
    let run = AnalysisRun::new([("errors", &errors), ("latency", &latency)], T0);
    let alphas: Vec<Option<f64>> = run
        .metrics
        .iter()
        .map(|m| m.judge.as_ref().map(|j| j.spec().alpha))
        .collect();
    assert_eq!(alphas, [Some(0.005), None, Some(0.01)]);
    let alone = AnalysisRun::new([("latency", &latency)], T0);
    assert_eq!(alone.metrics[0].judge.as_ref().unwrap().spec().alpha, 0.02);
}
