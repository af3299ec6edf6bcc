//! Parses an arm given in any of the four accepted JSON forms, naming
//! unknown, missing or mistyped fields by JSON pointer.

use serde_json::{Map, Value};

use crate::arm::Arm;
use crate::error::{Result, StatsError, pointer};

const FORMS: &str =
    "an array of samples, {n, mean, variance}, {n, sum, sum_squares} or {n, successes}";

fn invalid(field: String, message: impl Into<String>) -> StatsError {
    StatsError::InvalidJson {
        field,
        message: message.into(),
    }
}

/// A required number.
fn number(object: &Map<String, Value>, key: &str, field: &str) -> Result<f64> {
    match object.get(key) {
        None => Err(invalid(
            pointer(field, key),
            format!("missing field `{key}`"),
        )),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| invalid(pointer(field, key), format!("`{key}` must be a number"))),
    }
}

/// A list of numbers.
pub(super) fn numbers(value: &Value, field: &str) -> Result<Vec<f64>> {
    let items = value
        .as_array()
        .ok_or_else(|| invalid(field.to_owned(), "expected an array of numbers"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_f64()
                .ok_or_else(|| invalid(pointer(field, &i.to_string()), "expected a number"))
        })
        .collect()
}

/// Parses the arm at `field`.
pub(super) fn parse_arm(value: &Value, field: &str) -> Result<Arm> {
    if value.is_array() {
        return Ok(Arm::Samples(numbers(value, field)?));
    }
    let object = value
        .as_object()
        .ok_or_else(|| invalid(field.to_owned(), format!("expected {FORMS}")))?;
    let has = |k: &str| object.contains_key(k);
    let allowed: &[&str] = if has("successes") {
        &["n", "successes"]
    } else if has("sum") || has("sum_squares") {
        &["n", "sum", "sum_squares"]
    } else if has("mean") || has("variance") {
        &["n", "mean", "variance"]
    } else {
        return Err(invalid(field.to_owned(), format!("expected {FORMS}")));
    };
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(
            pointer(field, unknown),
            format!(
                "unknown field `{unknown}`, expected one of {}",
                allowed.join(", ")
            ),
        ));
    }
    let n = number(object, "n", field)?;
    Ok(match allowed[1] {
        "successes" => Arm::Proportion {
            n,
            successes: number(object, "successes", field)?,
        },
        "sum" => Arm::Sums {
            n,
            sum: number(object, "sum", field)?,
            sum_squares: number(object, "sum_squares", field)?,
        },
        _ => Arm::Moments {
            n,
            mean: number(object, "mean", field)?,
            variance: number(object, "variance", field)?,
        },
    })
}
