//! Reading a measured value out of JSON (web answers, command output).

use switchyard_core::expr::Value;

use crate::provider::MeasureError;

/// A number (or a string holding one), a boolean, or a list of numbers. `null` is "no data":
/// a source's way of saying it has nothing to report yet.
///
/// # Errors
/// `NoData` for `null`; `Provider` for anything else that is not a value, naming `what`.
pub(crate) fn from_json(json: &serde_json::Value, what: &str) -> Result<Value, MeasureError> {
    let wrong = |found: &str| MeasureError::Provider {
        reason: format!("{what} is {found}; expected a number, a boolean or a list of numbers"),
    };
    match json {
        serde_json::Value::Null => Err(MeasureError::NoData {
            reason: format!("{what} is null"),
        }),
        serde_json::Value::Bool(b) => Ok(Value::Bool(*b)),
        serde_json::Value::Number(_) | serde_json::Value::String(_) => number(json)
            .map(Value::Number)
            .ok_or_else(|| wrong(&format!("`{}`", crate::http::snippet(&json.to_string())))),
        serde_json::Value::Array(items) => items
            .iter()
            .map(number)
            .collect::<Option<Vec<f64>>>()
            .map(Value::List)
            .ok_or_else(|| wrong("a list with an element that is not a number")),
        serde_json::Value::Object(_) => Err(wrong("an object")),
    }
}

/// A JSON number, or a string holding one (`"0.5"`, `"NaN"`, `"+Inf"`), as many APIs (and
/// Prometheus) write them.
pub(crate) fn number(json: &serde_json::Value) -> Option<f64> {
    match json {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn maps_numbers_booleans_lists_and_null() {
        assert_eq!(from_json(&json!(0.5), "x"), Ok(Value::Number(0.5)));
        assert_eq!(from_json(&json!("2"), "x"), Ok(Value::Number(2.0)));
        assert!(matches!(from_json(&json!("NaN"), "x"), Ok(Value::Number(n)) if n.is_nan()));
        assert_eq!(
            from_json(&json!("+Inf"), "x"),
            Ok(Value::Number(f64::INFINITY))
        );
        assert_eq!(from_json(&json!(true), "x"), Ok(Value::Bool(true)));
        assert_eq!(
            from_json(&json!([1, "2", 3.5]), "x"),
            Ok(Value::List(vec![1.0, 2.0, 3.5]))
        );
        assert_eq!(from_json(&json!([]), "x"), Ok(Value::List(vec![])));
        assert!(matches!(
            from_json(&json!(null), "x"),
            Err(MeasureError::NoData { .. })
        ));
    }

    #[test]
    fn other_shapes_are_provider_errors_that_say_what_was_found() {
        for (json, found) in [
            (json!({"a": 1}), "an object"),
            (json!("ok"), "`\"ok\"`"),
            (json!([1, "x"]), "not a number"),
        ] {
            let Err(MeasureError::Provider { reason }) = from_json(&json, "the value at /v") else {
                panic!("{json} should be a provider error");
            };
            assert!(reason.starts_with("the value at /v is"), "{reason}");
            assert!(reason.contains(found), "{reason}");
        }
    }
}
