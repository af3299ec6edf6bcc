use reqwest::StatusCode;

use super::*;

fn ok(body: &str) -> Result<Value, MeasureError> {
    decode(StatusCode::OK, body, "q")
}

fn reason(outcome: Result<Value, MeasureError>) -> String {
    match outcome {
        Err(MeasureError::Provider { reason }) => reason,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

#[test]
fn vectors_are_numbers_or_lists_ordered_by_labels() {
    let one = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"version":"v2"},"value":[1700000000.5,"0.25"]}]}}"#;
    assert_eq!(ok(one), Ok(Value::Number(0.25)));
    let two = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"version":"v2"},"value":[1,"2"]},
        {"metric":{"version":"v1"},"value":[1,"+Inf"]}]}}"#;
    assert_eq!(ok(two), Ok(Value::List(vec![f64::INFINITY, 2.0])));
    let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    assert!(
        matches!(ok(empty), Err(MeasureError::NoData { reason }) if reason.contains("empty vector"))
    );
}

#[test]
fn scalars_and_numeric_strings_are_numbers() {
    let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#;
    assert!(matches!(ok(scalar), Ok(Value::Number(n)) if n.is_nan()));
    let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"3"]}}"#;
    assert_eq!(ok(string), Ok(Value::Number(3.0)));
    let word = r#"{"status":"success","data":{"resultType":"string","result":[1,"up"]}}"#;
    assert!(reason(ok(word)).contains("not a number"));
}

#[test]
fn errors_matrices_and_foreign_bodies_are_provider_errors() {
    let refused = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
    let r = reason(decode(StatusCode::BAD_REQUEST, refused, "sum("));
    assert!(r.contains("refused query `sum(`"), "{r}");
    assert!(r.contains("bad_data: parse error"), "{r}");
    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    assert!(reason(ok(matrix)).contains("range vector"));
    let r = reason(decode(StatusCode::BAD_GATEWAY, "<html>proxy</html>", "q"));
    assert!(r.contains("502 Bad Gateway"), "{r}");
    assert!(r.contains("<html>proxy</html>"), "{r}");
    let histogram = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{},"histogram":[1,{}]}]}}"#;
    assert!(reason(ok(histogram)).contains("native histogram"));
}
