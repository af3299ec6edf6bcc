//! flagd targeting (JsonLogic plus flagd's operators) lowered to native rules and conditions.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::unsupported;
use crate::context::{CURRENT_TIME, TARGETING_KEY};
use crate::error::ImportError;
use crate::model::{
    AttributeCondition, Condition, Operator, Rollout, Rule, Serve, Split, WeightedVariant,
};

/// Lowers a flag's targeting expression into ordered rules.
pub(super) fn lower_targeting(
    key: &str,
    targeting: &Value,
    variants: &BTreeMap<String, Value>,
) -> Result<Vec<Rule>, ImportError> {
    let lowerer = Lowerer { key, variants };
    let mut rules = Vec::new();
    lowerer.variant_expression(targeting, &[], "targeting", &mut rules)?;
    Ok(rules)
}

struct Lowerer<'a> {
    key: &'a str,
    variants: &'a BTreeMap<String, Value>,
}

/// A JsonLogic operand: a context attribute or a literal.
enum Operand {
    Attribute(String),
    Literal(Value),
}

fn single_op(value: &Value) -> Option<(&str, &Value)> {
    let object: &Map<String, Value> = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object.iter().next().map(|(op, args)| (op.as_str(), args))
}

fn args_of(args: &Value) -> Vec<&Value> {
    match args {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn guarded(guard: &[Condition]) -> Option<Condition> {
    match guard {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(Condition::All(many.to_vec())),
    }
}

fn attribute(name: &str, op: Operator, values: Vec<Value>) -> Condition {
    Condition::Attribute(AttributeCondition {
        name: name.to_owned(),
        op,
        values,
        case_insensitive: false,
    })
}

impl Lowerer<'_> {
    fn fail(&self, path: &str, problem: impl Into<String>) -> ImportError {
        unsupported(self.key, path, problem)
    }

    /// An expression that yields a variant name (or `null`), under `guard`.
    fn variant_expression(
        &self,
        expr: &Value,
        guard: &[Condition],
        path: &str,
        rules: &mut Vec<Rule>,
    ) -> Result<(), ImportError> {
        let name = match expr {
            // `null`: this branch falls back to the default variant; guards keep later branches out.
            Value::Null => return Ok(()),
            Value::String(name) => name.clone(),
            Value::Bool(b) => b.to_string(),
            _ => match single_op(expr) {
                Some(("if", args)) => {
                    return self.if_chain(&args_of(args), guard, &format!("{path}.if"), rules);
                }
                Some(("fractional", args)) => {
                    return self.fractional(
                        &args_of(args),
                        guard,
                        &format!("{path}.fractional"),
                        rules,
                    );
                }
                _ => {
                    return Err(self.fail(
                        path,
                        "targeting must yield a variant name, `if` or `fractional`",
                    ));
                }
            },
        };
        if !self.variants.contains_key(&name) {
            return Err(self.fail(path, format!("targeting names unknown variant `{name}`")));
        }
        rules.push(Rule {
            name: None,
            when: guarded(guard),
            rollout: None,
            serve: Some(Serve::Variant(name)),
        });
        Ok(())
    }

    fn if_chain(
        &self,
        args: &[&Value],
        guard: &[Condition],
        path: &str,
        rules: &mut Vec<Rule>,
    ) -> Result<(), ImportError> {
        let mut negated: Vec<Condition> = guard.to_vec();
        let mut index = 0;
        while index + 1 < args.len() {
            let condition = self.condition(args[index], &format!("{path}[{index}]"))?;
            let mut branch = negated.clone();
            branch.push(condition.clone());
            self.variant_expression(
                args[index + 1],
                &branch,
                &format!("{path}[{}]", index + 1),
                rules,
            )?;
            negated.push(Condition::Not(Box::new(condition)));
            index += 2;
        }
        if let Some(otherwise) = args.get(index) {
            self.variant_expression(otherwise, &negated, &format!("{path}[{index}]"), rules)?;
        }
        Ok(())
    }

    fn fractional(
        &self,
        args: &[&Value],
        guard: &[Condition],
        path: &str,
        rules: &mut Vec<Rule>,
    ) -> Result<(), ImportError> {
        let (salt, stickiness, buckets) = match args.first() {
            Some(Value::Array(_)) => (self.key.to_owned(), TARGETING_KEY.to_owned(), args),
            Some(first) => {
                let (salt, stickiness) = self.bucketing_key(first, &format!("{path}[0]"))?;
                (salt, stickiness, &args[1..])
            }
            None => return Err(self.fail(path, "`fractional` needs buckets")),
        };
        let mut arms = Vec::with_capacity(buckets.len());
        for (i, bucket) in buckets.iter().enumerate() {
            let bucket_path = format!("{path}[{i}]");
            let items = bucket
                .as_array()
                .ok_or_else(|| self.fail(&bucket_path, "bucket is not an array"))?;
            let name = match items.first() {
                Some(Value::String(name)) => name.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => {
                    return Err(
                        self.fail(&bucket_path, "bucket name must be a literal variant name")
                    );
                }
            };
            if !self.variants.contains_key(&name) {
                return Err(self.fail(
                    &bucket_path,
                    format!("bucket names unknown variant `{name}`"),
                ));
            }
            // flagd: weight defaults to 1, fractions are truncated, negatives count as 0.
            let weight = match items.get(1) {
                None => 1,
                Some(Value::Number(n)) => {
                    n.as_f64().unwrap_or(0.0).clamp(0.0, f64::from(i32::MAX)) as u32
                }
                Some(_) => {
                    return Err(self.fail(&bucket_path, "bucket weight must be a literal number"));
                }
            };
            arms.push(WeightedVariant {
                variant: name,
                weight,
            });
        }
        if arms.iter().all(|arm| arm.weight == 0) {
            // flagd treats an all-zero distribution as an error, i.e. the default variant.
            return Ok(());
        }
        rules.push(Rule {
            name: Some("fractional".to_owned()),
            when: guarded(guard),
            // A 100% gate on the bucketing attribute: a context without it gets the default, as
            // in flagd, instead of a random bucket.
            rollout: Some(Rollout {
                percentage: Some(100.0),
                ramp: None,
                stickiness: stickiness.clone(),
                salt: None,
            }),
            serve: Some(Serve::Split(Split {
                variants: arms,
                stickiness,
                salt: Some(salt),
                overrides: Vec::new(),
            })),
        });
        Ok(())
    }

    /// `{"var": x}` or `{"cat": [literal | $flagd.flagKey ..., {"var": x}]}` → (salt, attribute).
    fn bucketing_key(&self, expr: &Value, path: &str) -> Result<(String, String), ImportError> {
        if let Some(("var", _)) = single_op(expr) {
            if let Operand::Attribute(name) = self.operand(expr, path)? {
                return Ok((String::new(), name));
            }
        }
        let Some(("cat", parts)) = single_op(expr) else {
            return Err(self.fail(
                path,
                "bucketing key must be a `var` or a `cat` ending in a `var`",
            ));
        };
        let parts = args_of(parts);
        let mut salt = String::new();
        for (i, part) in parts.iter().enumerate() {
            match self.operand(part, &format!("{path}.cat[{i}]"))? {
                Operand::Literal(Value::String(text)) => salt.push_str(&text),
                Operand::Attribute(name) if i + 1 == parts.len() => return Ok((salt, name)),
                _ => break,
            }
        }
        Err(self.fail(
            path,
            "`cat` bucketing key must be literals followed by one `var`",
        ))
    }

    fn operand(&self, expr: &Value, path: &str) -> Result<Operand, ImportError> {
        if let Some(("var", args)) = single_op(expr) {
            let args = args_of(args);
            let name = match args.as_slice() {
                [Value::String(name)] => name.as_str(),
                _ => {
                    return Err(self.fail(path, "`var` must name one attribute, without a default"));
                }
            };
            return Ok(match name {
                "$flagd.flagKey" => Operand::Literal(Value::String(self.key.to_owned())),
                "$flagd.timestamp" => Operand::Attribute(CURRENT_TIME.to_owned()),
                other => Operand::Attribute(other.to_owned()),
            });
        }
        match expr {
            Value::Object(_) => {
                Err(self.fail(path, "nested expressions are not supported as operands"))
            }
            literal => Ok(Operand::Literal(literal.clone())),
        }
    }

    fn condition(&self, expr: &Value, path: &str) -> Result<Condition, ImportError> {
        match expr {
            Value::Bool(true) => return Ok(Condition::All(Vec::new())),
            Value::Bool(false) | Value::Null => return Ok(Condition::Any(Vec::new())),
            _ => {}
        }
        let Some((op, args)) = single_op(expr) else {
            return Err(self.fail(path, "condition must be a single-operator JsonLogic object"));
        };
        let args = args_of(args);
        let path = format!("{path}.{op}");
        let children = |build: fn(Vec<Condition>) -> Condition| {
            args.iter()
                .enumerate()
                .map(|(i, a)| self.condition(a, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(build)
        };
        match op {
            "and" => children(Condition::All),
            "or" => children(Condition::Any),
            "!" => Ok(Condition::Not(Box::new(self.one_condition(&args, &path)?))),
            "!!" => self.one_condition(&args, &path),
            "==" | "===" => self.equality(&args, false, &path),
            "!=" | "!==" => self.equality(&args, true, &path),
            "<" | "<=" | ">" | ">=" => self.numeric(op, &args, &path),
            "in" => self.membership(&args, &path),
            "starts_with" => self.string_test(Operator::StartsWith, &args, &path),
            "ends_with" => self.string_test(Operator::EndsWith, &args, &path),
            "sem_ver" => self.semver(&args, &path),
            other => Err(self.fail(
                &path,
                format!("operator `{other}` is not supported in conditions"),
            )),
        }
    }

    fn one_condition(&self, args: &[&Value], path: &str) -> Result<Condition, ImportError> {
        match args {
            [one] => self.condition(one, &format!("{path}[0]")),
            _ => Err(self.fail(path, "expects one argument")),
        }
    }

    fn pair(&self, args: &[&Value], path: &str) -> Result<(Operand, Operand), ImportError> {
        match args {
            [a, b] => Ok((
                self.operand(a, &format!("{path}[0]"))?,
                self.operand(b, &format!("{path}[1]"))?,
            )),
            _ => Err(self.fail(path, "expects two arguments")),
        }
    }

    fn equality(
        &self,
        args: &[&Value],
        negate: bool,
        path: &str,
    ) -> Result<Condition, ImportError> {
        let op = if negate {
            Operator::NotIn
        } else {
            Operator::In
        };
        match self.pair(args, path)? {
            (Operand::Attribute(name), Operand::Literal(value))
            | (Operand::Literal(value), Operand::Attribute(name))
                if !value.is_object() && !value.is_array() && !value.is_null() =>
            {
                Ok(attribute(&name, op, vec![value]))
            }
            (Operand::Literal(a), Operand::Literal(b)) => Ok(if (a == b) != negate {
                Condition::All(Vec::new())
            } else {
                Condition::Any(Vec::new())
            }),
            _ => Err(self.fail(path, "equality needs one `var` and one scalar literal")),
        }
    }

    fn numeric(&self, op: &str, args: &[&Value], path: &str) -> Result<Condition, ImportError> {
        let (less, greater) = match op {
            "<" => (Operator::NumLt, Operator::NumGt),
            "<=" => (Operator::NumLte, Operator::NumGte),
            ">" => (Operator::NumGt, Operator::NumLt),
            _ => (Operator::NumGte, Operator::NumLte),
        };
        let number = |operand: Operand| match operand {
            Operand::Literal(value) if value.is_number() => Some(value),
            _ => None,
        };
        if let [low, middle, high] = args {
            // JsonLogic's "between": low < x < high.
            let name = match self.operand(middle, &format!("{path}[1]"))? {
                Operand::Attribute(name) => name,
                Operand::Literal(_) => {
                    return Err(self.fail(path, "between needs a `var` in the middle"));
                }
            };
            let low = number(self.operand(low, &format!("{path}[0]"))?);
            let high = number(self.operand(high, &format!("{path}[2]"))?);
            return match (low, high) {
                (Some(low), Some(high)) => Ok(Condition::All(vec![
                    attribute(&name, greater, vec![low]),
                    attribute(&name, less, vec![high]),
                ])),
                _ => Err(self.fail(path, "between bounds must be numbers")),
            };
        }
        match self.pair(args, path)? {
            (Operand::Attribute(name), Operand::Literal(value)) if value.is_number() => {
                Ok(attribute(&name, less, vec![value]))
            }
            (Operand::Literal(value), Operand::Attribute(name)) if value.is_number() => {
                Ok(attribute(&name, greater, vec![value]))
            }
            _ => Err(self.fail(path, "comparison needs one `var` and one number")),
        }
    }

    fn membership(&self, args: &[&Value], path: &str) -> Result<Condition, ImportError> {
        match self.pair(args, path)? {
            (Operand::Literal(Value::String(needle)), Operand::Attribute(name)) => Ok(attribute(
                &name,
                Operator::Contains,
                vec![Value::String(needle)],
            )),
            (Operand::Attribute(name), Operand::Literal(Value::Array(items)))
                if items
                    .iter()
                    .all(|i| !i.is_object() && !i.is_array() && !i.is_null()) =>
            {
                Ok(attribute(&name, Operator::In, items))
            }
            _ => Err(self.fail(
                path,
                "`in` needs a literal string and a `var`, or a `var` and a literal array",
            )),
        }
    }

    fn string_test(
        &self,
        op: Operator,
        args: &[&Value],
        path: &str,
    ) -> Result<Condition, ImportError> {
        match self.pair(args, path)? {
            (Operand::Attribute(name), Operand::Literal(Value::String(text))) => {
                Ok(attribute(&name, op, vec![Value::String(text)]))
            }
            _ => Err(self.fail(path, "needs a `var` and a literal string")),
        }
    }

    fn semver(&self, args: &[&Value], path: &str) -> Result<Condition, ImportError> {
        let [value, Value::String(op), target] = args else {
            return Err(self.fail(
                path,
                "`sem_ver` needs a `var`, an operator and a literal version",
            ));
        };
        let Operand::Attribute(name) = self.operand(value, &format!("{path}[0]"))? else {
            return Err(self.fail(path, "`sem_ver` needs a `var` first"));
        };
        let Some(version) = target.as_str().and_then(normalise_version) else {
            // flagd evaluates an unparsable version to false.
            return Ok(Condition::Any(Vec::new()));
        };
        let test = |op| attribute(&name, op, vec![Value::String(version.clone())]);
        Ok(match op.as_str() {
            "=" => test(Operator::SemverEq),
            "!=" => Condition::Any(vec![test(Operator::SemverLt), test(Operator::SemverGt)]),
            "<" => test(Operator::SemverLt),
            "<=" => test(Operator::SemverLte),
            ">" => test(Operator::SemverGt),
            ">=" => test(Operator::SemverGte),
            "^" => test(Operator::SemverCaret),
            "~" => test(Operator::SemverTilde),
            // flagd: an unknown operator evaluates to false.
            _ => Condition::Any(Vec::new()),
        })
    }
}

/// flagd (Go's `x/mod/semver`) accepts `v1.2.3` and the shorthands `1` and `1.2`.
fn normalise_version(text: &str) -> Option<String> {
    let text = text.strip_prefix('v').unwrap_or(text);
    let candidate = match text.split('.').count() {
        1 if text.chars().all(|c| c.is_ascii_digit()) => format!("{text}.0.0"),
        2 if text.chars().all(|c| c.is_ascii_digit() || c == '.') => format!("{text}.0"),
        _ => text.to_owned(),
    };
    semver::Version::parse(&candidate)
        .is_ok()
        .then_some(candidate)
}
