//! The crate's one integration-test binary: golden values from reference
//! implementations (`tests/data/*.json`), property tests, and null-hypothesis
//! simulations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod extra;
mod properties;
mod public;
mod published;
mod simulation;

use serde_json::Value;

/// Default tolerance: 1e-6 relative, absolute near zero.
pub const TOLERANCE: f64 = 1e-6;

/// Loads `tests/data/NAME` as a list of cases.
pub fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("golden file readable");
    serde_json::from_str(&text).expect("golden file is JSON")
}

/// The case called `name`.
pub fn case<'a>(cases: &'a [Value], name: &str) -> &'a Value {
    cases
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

/// Asserts |actual − expected| ≤ tol·max(1, |expected|)... relative for large
/// values, absolute near zero.
pub fn assert_close(what: &str, actual: f64, expected: f64, tol: f64) {
    let scale = expected.abs().max(1e-300);
    let ok = if expected.abs() < 1e-3 {
        (actual - expected).abs() <= tol * 1e-3 || (actual - expected).abs() <= tol * scale
    } else {
        (actual - expected).abs() <= tol * scale
    };
    assert!(
        ok,
        "{what}: got {actual:.15e}, expected {expected:.15e} (rel diff {:.3e})",
        (actual - expected).abs() / scale
    );
}

/// Compares a JSON number or array of numbers.
pub fn assert_json_close(what: &str, actual: &Value, expected: &Value, tol: f64) {
    match (actual, expected) {
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{what}: length");
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                assert_json_close(&format!("{what}[{i}]"), x, y, tol);
            }
        }
        (_, Value::String(s)) => assert_eq!(actual.as_str(), Some(s.as_str()), "{what}"),
        (_, Value::Null) => assert!(actual.is_null(), "{what}: expected null, got {actual}"),
        _ => {
            let a = actual
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: not a number: {actual}"));
            let e = expected.as_f64().expect("expected number");
            assert_close(what, a, e, tol);
        }
    }
}
