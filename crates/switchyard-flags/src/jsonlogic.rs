//! flagd targeting: JsonLogic with flagd's operators, evaluated with the semantics of flagd's own
//! Go evaluator (`github.com/open-feature/flagd/core`, which runs `diegoholiveira/jsonlogic`), so
//! that a flagd file gives the same answer here as in flagd, case for case. docs/flags.md lists
//! the semantics (loose equality, truthiness, coercions, how a result names a variant) and the
//! differential test against the Go evaluator checks them.
//!
//! Values are [`Val`]s: JSON plus the non-finite numbers that arithmetic can produce and the
//! integer zero that `{"-": []}` yields. Any failure inside a rule aborts the whole evaluation
//! ([`Abort`]), which flagd reports as `PARSE_ERROR`.

mod cbor;
mod coerce;
mod flagd;
mod lint;
mod operators;

use std::cell::Cell;
use std::collections::BTreeMap;

use crate::model::Fractional;

use serde_json::Value;

pub(crate) use coerce::{encode_json, truncate_to_i64};
pub(crate) use lint::lint;

/// A JsonLogic value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Num(f64),
    /// An integer zero, distinct from `Num(0.0)` only for strict equality, `in` and `fractional`.
    Int0,
    Str(String),
    Arr(Vec<Val>),
    Obj(BTreeMap<String, Val>),
}

/// Evaluation stopped: an operator met arguments it cannot handle (or is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Abort(pub(crate) String);

pub(crate) type Outcome = Result<Val, Abort>;

pub(crate) fn abort<T>(message: impl Into<String>) -> Result<T, Abort> {
    Err(Abort(message.into()))
}

impl Val {
    /// A JSON value as read from a document or a context (numbers become `f64`).
    pub(crate) fn from_json(value: &Value) -> Val {
        match value {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Val::Str(s.clone()),
            Value::Array(items) => Val::Arr(items.iter().map(Val::from_json).collect()),
            Value::Object(map) => Val::Obj(
                map.iter()
                    .map(|(k, v)| (k.clone(), Val::from_json(v)))
                    .collect(),
            ),
        }
    }
}

thread_local! {
    /// The `fractional` generation of the flag being evaluated: a setting of the whole
    /// evaluation, kept beside it rather than passed through every operator.
    static FRACTIONAL: Cell<Fractional> = const { Cell::new(Fractional::V2) };
}

fn fractional_version() -> Fractional {
    FRACTIONAL.with(Cell::get)
}

/// [`apply`] with `fractional` bucketing as the flag pins it.
pub(crate) fn apply_with(rule: &Val, data: &Val, fractional: Fractional) -> Outcome {
    struct Restore(Fractional);
    impl Drop for Restore {
        fn drop(&mut self) {
            FRACTIONAL.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(FRACTIONAL.with(|cell| cell.replace(fractional)));
    apply(rule, data)
}

/// Evaluates `rule` against `data` (the evaluation context with `$flagd` added).
pub(crate) fn apply(rule: &Val, data: &Val) -> Outcome {
    match rule {
        Val::Obj(map) => operators::apply_obj(map, data),
        Val::Arr(items) => items
            .iter()
            .map(|item| operators::eval(item, data))
            .collect::<Result<Vec<_>, _>>()
            .map(Val::Arr),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests;
