//! The JSON contract behind `switchyard stats METHOD`: [`run_method`] takes
//! the method name and the parsed JSON input and returns the JSON output, so
//! the CLI only reads stdin and prints. Still pure: no IO here.
//!
//! Field names are the contract (see `docs/statistics.md`). Unknown fields
//! are rejected, and every error names the offending field as a JSON pointer.

mod arm_input;
mod frequentist;
mod nonparametric;
mod planning;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Result, StatsError};

/// Every method [`run_method`] accepts.
pub const METHODS: &[&str] = &[
    "ttest",
    "sequential",
    "proportions",
    "mann-whitney",
    "srm",
    "adjust",
    "cuped",
    "ratio",
    "bayes",
    "sample-size",
    "power",
    "canary-judge",
];

const METHOD_LIST: &str = "ttest, sequential, proportions, mann-whitney, srm, adjust, cuped, \
                           ratio, bayes, sample-size, power, canary-judge";

/// Runs one statistics method on a JSON input.
///
/// # Errors
/// [`StatsError::UnknownMethod`] for an unknown name;
/// [`StatsError::InvalidJson`] for unknown, missing or mistyped fields; and
/// the method's own errors for invalid values. All name the field.
pub fn run_method(method: &str, input: &Value) -> Result<Value> {
    match method {
        "ttest" => frequentist::ttest(input),
        "sequential" => frequentist::sequential(input),
        "proportions" => frequentist::proportions(input),
        "cuped" => frequentist::cuped(input),
        "ratio" => frequentist::ratio(input),
        "bayes" => frequentist::bayes(input),
        "mann-whitney" => nonparametric::mann_whitney(input),
        "canary-judge" => nonparametric::canary_judge(input),
        "srm" => planning::srm(input),
        "adjust" => planning::adjust(input),
        "sample-size" | "power" => planning::power(input),
        _ => Err(StatsError::UnknownMethod {
            method: method.to_owned(),
            expected: METHOD_LIST,
        }),
    }
}

/// Deserialises `input`, turning serde's complaint into an error at a JSON pointer.
pub(crate) fn parse<T: DeserializeOwned>(input: &Value) -> Result<T> {
    serde_path_to_error::deserialize(input).map_err(|err| {
        let mut field = String::new();
        for segment in err.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    field.push('/');
                    field.push_str(&index.to_string());
                }
                serde_path_to_error::Segment::Map { key } => {
                    field.push('/');
                    field.push_str(key);
                }
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        let message = err.inner().to_string();
        StatsError::InvalidJson {
            field,
            message: strip_position(&message),
        }
    })
}

/// serde_json appends " at line 1 column 2", meaningless for a `Value`.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// `[lo, hi]` as JSON; infinite bounds of one-sided intervals become `null`.
pub(crate) fn interval(ci: [f64; 2]) -> Value {
    Value::Array(ci.iter().map(|v| number(*v)).collect())
}

/// A number, or `null` when not finite.
pub(crate) fn number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(method: &str, input: Value) -> String {
        match run_method(method, &input) {
            Err(StatsError::InvalidJson { field, .. }) => field,
            Err(StatsError::OutOfRange { field, .. }) => field,
            Err(StatsError::Empty { field }) => field,
            Err(StatsError::TooFewObservations { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_method() {
        assert!(matches!(
            run_method("anova", &json!({})),
            Err(StatsError::UnknownMethod { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_named() {
        let input = json!({"control": [1, 2, 3], "treatment": [2, 3, 4], "alpah": 0.1});
        assert_eq!(field_of("ttest", input), "/alpah");
        let input = json!({"control": {"n": 5, "mean": 1, "variance": 1, "sd": 1},
                           "treatment": [1, 2]});
        assert_eq!(field_of("ttest", input), "/control/sd");
        let input = json!({"control": {"n": 5, "successes": 2, "extra": 1},
                           "treatment": {"n": 5, "successes": 3}});
        assert_eq!(field_of("proportions", input), "/control/extra");
    }

    #[test]
    fn invalid_values_are_named() {
        let input = json!({"control": {"n": 0, "mean": 1, "variance": 1},
                           "treatment": {"n": 5, "mean": 1, "variance": 1}});
        assert_eq!(field_of("ttest", input), "/control/n");
        let input = json!({"control": {"n": 10, "mean": 1, "variance": -1},
                           "treatment": {"n": 5, "mean": 1, "variance": 1}});
        assert_eq!(field_of("ttest", input), "/control/variance");
        assert_eq!(
            field_of("ttest", json!({"control": [], "treatment": [1, 2]})),
            "/control"
        );
        assert_eq!(
            field_of("srm", json!({"observed": [10, 12], "weights": [0, 0]})),
            "/weights"
        );
        assert_eq!(
            field_of("adjust", json!({"p_values": [0.1, 1.2], "method": "holm"})),
            "/p_values/1"
        );
        assert_eq!(
            field_of("adjust", json!({"p_values": [0.1], "method": "sidak"})),
            "/method"
        );
        assert_eq!(field_of("ttest", json!({"treatment": [1, 2]})), "");
    }

    #[test]
    fn one_sided_interval_has_null_bound() {
        let out = run_method(
            "ttest",
            &json!({"control": [1, 2, 3, 4], "treatment": [2, 3, 4, 6], "alternative": "greater"}),
        )
        .expect("ok");
        assert!(out["ci"][1].is_null());
    }
}
