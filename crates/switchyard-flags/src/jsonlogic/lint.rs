//! What a flagd targeting rule would fail on only when an evaluation reaches it: flagd loads such
//! flags (and so does Switchyard), so these are warnings at apply time, or refusals with
//! `flags apply --strict`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::operators::OPERATORS;

/// Problems of `targeting` (a flagd rule), as `(path, problem)` with paths like
/// `targeting.if[1]`: unsupported operators, `$ref`s to no evaluator, and results that name no
/// variant.
pub(crate) fn lint(targeting: &Value, variants: &BTreeMap<String, Value>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    operators(targeting, "targeting", &mut problems);
    results(targeting, "targeting", variants, &mut problems);
    problems
}

fn operators(rule: &Value, path: &str, problems: &mut Vec<(String, String)>) {
    match rule {
        Value::Object(map) if map.len() == 1 => {
            let Some((op, args)) = map.iter().next() else {
                return;
            };
            if op == "$ref" {
                problems.push((
                    path.to_owned(),
                    format!("`$ref` to {args}, which is not an evaluator of the file"),
                ));
                return;
            }
            if !OPERATORS.contains(&op.as_str()) {
                problems.push((
                    path.to_owned(),
                    format!("the operator `{op}` is not supported"),
                ));
            }
            operators(args, &format!("{path}.{op}"), problems);
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                operators(item, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

/// Checks the literals the rule can result in (through `if` branches and `fractional` buckets).
fn results(
    rule: &Value,
    path: &str,
    variants: &BTreeMap<String, Value>,
    problems: &mut Vec<(String, String)>,
) {
    let literal = match rule {
        Value::String(name) => Some(name.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    if let Some(name) = literal {
        if !variants.contains_key(&name) {
            problems.push((path.to_owned(), format!("`{name}` names no variant")));
        }
        return;
    }
    let Value::Object(map) = rule else {
        return;
    };
    let mut entries = map.iter();
    let (Some((op, Value::Array(args))), None) = (entries.next(), entries.next()) else {
        return;
    };
    match op.as_str() {
        "if" | "?:" => {
            for (i, branch) in args.iter().enumerate() {
                // [condition, then, condition, then, ..., else]
                let is_result = i % 2 == 1 || (args.len() % 2 == 1 && i == args.len() - 1);
                if is_result && args.len() > 1 {
                    results(branch, &format!("{path}.{op}[{i}]"), variants, problems);
                }
            }
        }
        "fractional" => {
            for (i, bucket) in args.iter().enumerate() {
                if let Value::Array(bucket) = bucket {
                    if let Some(Value::String(name)) = bucket.first() {
                        if !variants.contains_key(name) {
                            problems.push((
                                format!("{path}.fractional[{i}][0]"),
                                format!("`{name}` names no variant"),
                            ));
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn variants() -> BTreeMap<String, Value> {
        [("on", json!(true)), ("off", json!(false))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    #[test]
    fn a_sound_rule_has_no_problems() {
        let rule = json!({"if": [{"starts_with": [{"var": "email"}, "a"]}, "on",
            {"fractional": [["on", 50], ["off", 50]]}]});
        assert_eq!(lint(&rule, &variants()), Vec::<(String, String)>::new());
    }

    #[test]
    fn unknown_operators_refs_and_missing_variants_are_named_with_their_path() {
        let rule = json!({"if": [{"regex": [{"var": "email"}, "a"]}, "onn",
            {"$ref": "nope"}, {"fractional": [["on", 50], ["of", 50]]}]});
        let problems = lint(&rule, &variants());
        assert_eq!(
            problems,
            [
                (
                    "targeting.if[0]".to_owned(),
                    "the operator `regex` is not supported".to_owned()
                ),
                (
                    "targeting.if[2]".to_owned(),
                    "`$ref` to \"nope\", which is not an evaluator of the file".to_owned()
                ),
                (
                    "targeting.if[1]".to_owned(),
                    "`onn` names no variant".to_owned()
                ),
                (
                    "targeting.if[3].fractional[1][0]".to_owned(),
                    "`of` names no variant".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn every_listed_operator_is_one_the_evaluator_knows() {
        let data = super::super::Val::Null;
        for op in OPERATORS {
            let rule = super::super::Val::from_json(&json!({ *op: [] }));
            if let Err(abort) = super::super::apply(&rule, &data) {
                assert!(!abort.0.contains("not supported"), "{op}: {}", abort.0);
            }
        }
        let unknown = super::super::Val::from_json(&json!({"regex": []}));
        assert!(super::super::apply(&unknown, &data).is_err());
    }
}
