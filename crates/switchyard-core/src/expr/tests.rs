use super::*;

fn check(src: &str, result: Value) -> bool {
    Condition::parse(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .evaluate(&result, None)
        .unwrap()
}

#[test]
fn comparisons_and_logic() {
    assert!(check("result < 0.01", Value::Number(0.005)));
    assert!(!check("result < 0.01", Value::Number(0.02)));
    assert!(check("result >= 0.95 && result <= 1", Value::Number(0.97)));
    assert!(check("result > 2 or result < 1", Value::Number(0.5)));
    assert!(check("not (result == 3)", Value::Number(2.0)));
    assert!(check("-result < -1e-3", Value::Number(0.5)));
    assert!(check("result * 2 + 1 == 2", Value::Number(0.5)));
}

#[test]
fn lists_functions_and_short_circuit() {
    let list = Value::List(vec![3.0, 7.0]);
    assert!(check(
        "len(result) == 2 && result[1] > result[0]",
        list.clone()
    ));
    assert!(check("max(result) == 7 && min(result, 1) == 1", list));
    assert!(!check(
        "len(result) > 0 && result[0] < 1",
        Value::List(vec![])
    ));
    assert!(check("isNaN(result)", Value::Number(f64::NAN)));
    assert!(
        check("result < 1", Value::List(vec![0.5])),
        "single-element lists act as scalars"
    );
}

#[test]
fn baseline_comparison() {
    let c = Condition::parse("result <= baseline * 1.2").unwrap();
    assert!(
        c.evaluate(&Value::Number(1.1), Some(&Value::Number(1.0)))
            .unwrap()
    );
    assert!(
        !c.evaluate(&Value::Number(1.3), Some(&Value::Number(1.0)))
            .unwrap()
    );
    assert_eq!(
        c.evaluate(&Value::Number(1.0), None),
        Err(EvalError::Unbound {
            name: "baseline".into()
        })
    );
}

#[test]
fn parse_errors_name_the_column() {
    let e = Condition::parse("result < ").unwrap_err();
    assert_eq!(e.column, 10);
    let e = Condition::parse("reslt < 1").unwrap_err();
    assert_eq!(e.column, 1);
    assert!(e.message.contains("unknown name `reslt`"), "{e}");
    let e = Condition::parse("result < 1 )").unwrap_err();
    assert_eq!(e.column, 12);
    let e = Condition::parse("result @ 1").unwrap_err();
    assert!(e.message.contains("unexpected character `@`"));
    assert!(Condition::parse("").is_err());
    assert!(
        Condition::parse("frob(result)")
            .unwrap_err()
            .message
            .contains("unknown function")
    );
    assert!(Condition::parse("len(result, 1)").is_err());
}

#[test]
fn type_errors_are_errors_not_false() {
    let c = Condition::parse("result").unwrap();
    assert_eq!(
        c.evaluate(&Value::Number(1.0), None),
        Err(EvalError::NotBoolean { got: "number" })
    );
    let c = Condition::parse("result[5] < 1").unwrap();
    assert!(matches!(
        c.evaluate(&Value::List(vec![1.0]), None),
        Err(EvalError::Index { .. })
    ));
}
