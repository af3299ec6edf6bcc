//! Talking to flagd's own evaluator (`tests/flagd-reference`, built by `scripts/flagd-reference`),
//! and comparing its answers with Switchyard's.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Map, Value, json};
use switchyard_flags::EvaluationDetails;

/// Sends one request line per document (`{"document", "cases"}`) to the reference program named
/// by `SWITCHYARD_FLAGD_REFERENCE` and returns its answer lines, in order.
pub fn ask(requests: Vec<String>) -> Vec<Value> {
    let reference = std::env::var("SWITCHYARD_FLAGD_REFERENCE")
        .expect("SWITCHYARD_FLAGD_REFERENCE names the flagd reference program");
    let count = requests.len();
    let mut child = Command::new(&reference)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {reference}: {e}"));
    // Written from another thread: the reference answers while it reads.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for line in requests {
            writeln!(stdin, "{line}").unwrap();
        }
    });
    let answers: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    writer.join().unwrap();
    assert!(
        child.wait().unwrap().success(),
        "the reference program failed"
    );
    assert_eq!(answers.len(), count, "one answer per request");
    answers
}

/// One request line: a document and its cases (`{"flag", "type", "context"}`).
pub fn request(document: &str, cases: Vec<Value>) -> String {
    json!({"document": document, "cases": cases}).to_string()
}

/// Switchyard's details in the reference program's terms: value (null when the caller's default
/// applies), variant, reason, error code.
pub fn details(d: &EvaluationDetails<'_>) -> Value {
    let mut out = Map::new();
    out.insert("value".into(), d.value.clone());
    if let Some(variant) = d.variant {
        out.insert("variant".into(), json!(variant));
    }
    out.insert("reason".into(), serde_json::to_value(d.reason).unwrap());
    if let Some(code) = d.error_code {
        out.insert("error_code".into(), serde_json::to_value(code).unwrap());
    }
    Value::Object(out)
}

/// Equal details; numbers compare by value (the reference prints integers as integers).
pub fn same(ours: &Value, theirs: &Value) -> bool {
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    ["variant", "reason", "error_code"]
        .iter()
        .all(|k| field(ours, k) == field(theirs, k))
        && numbers_equal(&field(ours, "value"), &field(theirs, "value"))
}

/// JSON equality where numbers compare as `f64`.
pub fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| numbers_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| numbers_equal(v, w)))
        }
        _ => a == b,
    }
}
