//! The JsonLogic operators, with the Go evaluator's argument handling: which arguments are
//! evaluated and when, what each accepts, and what aborts.

use std::collections::BTreeMap;

use super::coerce::{
    equals, format_plain, kind, less, num_lenient, to_str, truncate_to_i64, truthy,
};
use super::{Abort, Outcome, Val, abort, flagd};
use crate::model::Fractional;

/// Evaluates an argument: operations inside objects run, arrays are evaluated element-wise.
pub(super) fn eval(v: &Val, data: &Val) -> Outcome {
    match v {
        Val::Obj(map) => apply_obj(map, data),
        Val::Arr(items) if !items.is_empty() => items
            .iter()
            .map(|item| eval(item, data))
            .collect::<Result<Vec<_>, _>>()
            .map(Val::Arr),
        other => Ok(other.clone()),
    }
}

/// An object with one key is an operation; any other object is a literal.
pub(super) fn apply_obj(map: &BTreeMap<String, Val>, data: &Val) -> Outcome {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some((op, args)), None) => dispatch(op, args, data),
        _ => Ok(Val::Obj(map.clone())),
    }
}

/// Every operator [`dispatch`] knows; anything else aborts the evaluation that reaches it.
pub(super) const OPERATORS: &[&str] = &[
    "var",
    "missing",
    "missing_some",
    "if",
    "?:",
    "and",
    "or",
    "!",
    "!!",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!=",
    "===",
    "!==",
    "+",
    "-",
    "*",
    "/",
    "%",
    "abs",
    "max",
    "min",
    "in",
    "cat",
    "substr",
    "merge",
    "map",
    "filter",
    "reduce",
    "all",
    "none",
    "some",
    "set",
    "contains_all",
    "contains_any",
    "contains_none",
    "fractional",
    "starts_with",
    "ends_with",
    "sem_ver",
];

fn dispatch(op: &str, args: &Val, data: &Val) -> Outcome {
    match op {
        "var" => var(args, data),
        "missing" => missing(args, data),
        "missing_some" => missing_some(args, data),
        "if" | "?:" => if_(args, data),
        "and" => and_or(args, data, false),
        "or" => and_or(args, data, true),
        "!" => Ok(Val::Bool(!first_truthy(&eval(args, data)?))),
        "!!" => Ok(Val::Bool(first_truthy(&eval(args, data)?))),
        "<" | "<=" | ">" | ">=" => compare(op, args, data),
        "==" => loose(args, data).map(Val::Bool),
        "!=" => loose(args, data).map(|b| Val::Bool(!b)),
        "===" => Ok(Val::Bool(strict(&eval(args, data)?))),
        "!==" => Ok(Val::Bool(!strict(&eval(args, data)?))),
        "+" => plus(args, data),
        "-" => minus(args, data),
        "*" => {
            let items = list(eval(args, data)?, op)?;
            items
                .iter()
                .try_fold(1.0, |acc, item| Ok(acc * num_lenient(item)?))
                .map(Val::Num)
        }
        "/" => divide(args, data),
        "%" => {
            let items = list(eval(args, data)?, op)?;
            match items.as_slice() {
                [a, b, ..] => Ok(Val::Num(num_lenient(a)? % num_lenient(b)?)),
                _ => abort("`%` needs two arguments"),
            }
        }
        "abs" => match eval(args, data)? {
            Val::Arr(items) => match items.first() {
                Some(first) => Ok(Val::Num(num_lenient(first)?.abs())),
                None => abort("`abs` needs an argument"),
            },
            other => Ok(Val::Num(num_lenient(&other)?.abs())),
        },
        "max" => extreme(args, data, true),
        "min" => extreme(args, data, false),
        "in" => in_(args, data),
        "cat" => cat(args, data),
        "substr" => substr(args, data),
        "merge" => merge(args, data),
        "map" => map(args, data),
        "filter" => filter(args, data),
        "reduce" => reduce(args, data),
        "all" => all(args, data),
        "none" => none_or_some(args, data, false),
        "some" => none_or_some(args, data, true),
        "set" => set(args, data),
        "contains_all" | "contains_any" | "contains_none" => contains(op, &eval(args, data)?),
        "fractional" => {
            let args = eval(args, data)?;
            Ok(match super::fractional_version() {
                Fractional::V2 => flagd::fractional(&args, data),
                Fractional::V3 => flagd::fractional_v3(&args, data),
            })
        }
        "starts_with" => Ok(flagd::affix(&eval(args, data)?, true)),
        "ends_with" => Ok(flagd::affix(&eval(args, data)?, false)),
        "sem_ver" => Ok(flagd::sem_ver(&eval(args, data)?)),
        other => abort(format!("the operator \"{other}\" is not supported")),
    }
}

fn list(value: Val, op: &str) -> Result<Vec<Val>, Abort> {
    match value {
        Val::Arr(items) => Ok(items),
        other => abort(format!("`{op}` needs an array, got {}", kind(&other))),
    }
}

fn raw_list<'a>(args: &'a Val, op: &str) -> Result<&'a [Val], Abort> {
    match args {
        Val::Arr(items) => Ok(items),
        other => abort(format!("`{op}` needs an array, got {}", kind(other))),
    }
}

/// `!`/`!!` look at the first element of a non-empty array, else at the value itself.
fn first_truthy(value: &Val) -> bool {
    match value {
        Val::Arr(items) if !items.is_empty() => truthy(&items[0]),
        other => truthy(other),
    }
}

pub(super) fn var(args: &Val, data: &Val) -> Outcome {
    let mut path = eval(args, data)?;
    match &path {
        Val::Null => {
            return Ok(match data {
                Val::Bool(_) | Val::Num(_) | Val::Int0 | Val::Str(_) => data.clone(),
                _ => Val::Null,
            });
        }
        Val::Str(s) if s.is_empty() => return Ok(data.clone()),
        Val::Num(x) => path = Val::Str(format_plain(*x)),
        Val::Int0 => path = Val::Str("0".to_owned()),
        _ => {}
    }
    let mut default = Val::Null;
    if let Val::Arr(mut items) = path {
        match items.len() {
            0 => return Ok(data.clone()),
            2 => default = items.pop().unwrap_or(Val::Null),
            _ => {}
        }
        path = items.swap_remove(0);
        if !matches!(path, Val::Str(_)) {
            return abort("`var` needs a string path");
        }
    }
    if matches!(data, Val::Null) {
        return Ok(default);
    }
    let Val::Str(path) = path else {
        return abort("`var` needs a string path");
    };
    let mut current = data;
    for part in path.split('.') {
        if part.is_empty() {
            continue;
        }
        current = match current {
            Val::Obj(map) => map.get(part).unwrap_or(&Val::Null),
            Val::Arr(items) => {
                let index = truncate_to_i64(num_lenient(&Val::Str(part.to_owned()))?);
                match usize::try_from(index).ok().and_then(|i| items.get(i)) {
                    Some(item) => item,
                    None => return Ok(default),
                }
            }
            _ => return Ok(default),
        };
        if matches!(current, Val::Null) {
            return Ok(default);
        }
    }
    Ok(current.clone())
}

fn missing(args: &Val, data: &Val) -> Outcome {
    let names = match eval(args, data)? {
        Val::Str(s) => vec![Val::Str(s)],
        other => list(other, "missing")?,
    };
    let mut out = Vec::new();
    for name in names {
        if matches!(var(&name, data)?, Val::Null) {
            out.push(name);
        }
    }
    Ok(Val::Arr(out))
}

fn missing_some(args: &Val, data: &Val) -> Outcome {
    let items = list(eval(args, data)?, "missing_some")?;
    let Some(first) = items.first() else {
        return abort("`missing_some` needs arguments");
    };
    let need = truncate_to_i64(num_lenient(first)?);
    let Some(Val::Arr(names)) = items.get(1) else {
        return abort("`missing_some` needs a list of names");
    };
    let (mut absent, mut found) = (Vec::new(), 0i64);
    for name in names {
        if matches!(var(name, data)?, Val::Null) {
            absent.push(name.clone());
        } else {
            found += 1;
        }
    }
    Ok(Val::Arr(if need > found { absent } else { Vec::new() }))
}

fn if_(args: &Val, data: &Val) -> Outcome {
    let items = raw_list(args, "if")?;
    let clause = |branch: &Val| match eval(branch, data)? {
        // A branch that evaluates to an object is evaluated once more.
        Val::Obj(map) => apply_obj(&map, data),
        other => Ok(other),
    };
    let n = items.len();
    let mut i = 0;
    while i + 1 < n {
        if truthy(&eval(&items[i], data)?) {
            return clause(&items[i + 1]);
        }
        i += 2;
    }
    if n % 2 == 1 {
        clause(&items[n - 1])
    } else {
        Ok(Val::Null)
    }
}

fn and_or(args: &Val, data: &Val, or: bool) -> Outcome {
    let mut last = Val::Null;
    for item in raw_list(args, if or { "or" } else { "and" })? {
        last = eval(item, data)?;
        if truthy(&last) == or {
            return Ok(last);
        }
    }
    Ok(last)
}

fn compare(op: &str, args: &Val, data: &Val) -> Outcome {
    let items = list(eval(args, data)?, op)?;
    let le = |a: &Val, b: &Val| less(a, b) || equals(a, b);
    let result = match (op, items.as_slice()) {
        (_, [] | [_]) => false,
        ("<", [a, b, c]) => less(a, b) && less(b, c),
        ("<=", [a, b, c]) => le(a, b) && le(b, c),
        (">", [a, b, c]) => less(c, b) && less(b, a),
        (">=", [a, b, c]) => le(c, b) && le(b, a),
        ("<", [a, b, ..]) => less(a, b),
        ("<=", [a, b, ..]) => le(a, b),
        (">", [a, b, ..]) => less(b, a),
        (_, [a, b, ..]) => le(b, a),
    };
    Ok(Val::Bool(result))
}

fn loose(args: &Val, data: &Val) -> Result<bool, Abort> {
    let items = list(eval(args, data)?, "==")?;
    Ok(match items.as_slice() {
        [a, b, ..] => equals(a, b),
        _ => false,
    })
}

fn strict(value: &Val) -> bool {
    let Val::Arr(items) = value else {
        return false;
    };
    let [a, b, ..] = items.as_slice() else {
        return false;
    };
    match (a, b) {
        (Val::Null, _) | (_, Val::Null) => matches!((a, b), (Val::Null, Val::Null)),
        (Val::Arr(_), _) | (Val::Obj(_), _) => false,
        _ if kind(a) != kind(b) => false,
        _ => equals(a, b),
    }
}

fn plus(args: &Val, data: &Val) -> Outcome {
    match eval(args, data)? {
        Val::Arr(items) => items
            .iter()
            .try_fold(0.0, |acc, item| Ok(acc + num_lenient(item)?))
            .map(Val::Num),
        other => num_lenient(&other).map(Val::Num),
    }
}

fn minus(args: &Val, data: &Val) -> Outcome {
    let items = list(eval(args, data)?, "-")?;
    match items.as_slice() {
        [] => Ok(Val::Int0),
        [one] => Ok(Val::Num(-num_lenient(one)?)),
        [first, rest @ ..] => rest
            .iter()
            .try_fold(
                num_lenient(first)?,
                |acc, item| Ok(acc - num_lenient(item)?),
            )
            .map(Val::Num),
    }
}

fn divide(args: &Val, data: &Val) -> Outcome {
    let items = list(eval(args, data)?, "/")?;
    match items.as_slice() {
        [] => Ok(Val::Int0),
        [first, rest @ ..] => rest
            .iter()
            .try_fold(
                num_lenient(first)?,
                |acc, item| Ok(acc / num_lenient(item)?),
            )
            .map(Val::Num),
    }
}

fn extreme(args: &Val, data: &Val, max: bool) -> Outcome {
    let items = list(eval(args, data)?, if max { "max" } else { "min" })?;
    let Some((first, rest)) = items.split_first() else {
        return Ok(Val::Null);
    };
    let mut best = num_lenient(first)?;
    for item in rest {
        let x = num_lenient(item)?;
        if (max && x > best) || (!max && best > x) {
            best = x;
        }
    }
    Ok(Val::Num(best))
}

fn in_(args: &Val, data: &Val) -> Outcome {
    let items = list(eval(args, data)?, "in")?;
    let Some(needle) = items.first() else {
        return abort("`in` needs arguments");
    };
    let haystack = items.get(1).unwrap_or(&Val::Null);
    match haystack {
        Val::Str(text) => match needle {
            Val::Str(part) => Ok(Val::Bool(text.contains(part.as_str()))),
            other => abort(format!("`in` a string needs a string, got {}", kind(other))),
        },
        Val::Arr(elements) => {
            for element in elements {
                if member(needle, element)? {
                    return Ok(Val::Bool(true));
                }
            }
            Ok(Val::Bool(false))
        }
        _ => Ok(Val::Bool(false)),
    }
}

fn member(needle: &Val, element: &Val) -> Result<bool, Abort> {
    if let Val::Arr(range) = element {
        let [low, high, ..] = range.as_slice() else {
            return abort("a range in `in` needs two bounds");
        };
        let x = num_lenient(needle)?;
        return Ok(x >= num_lenient(low)? && num_lenient(high)? >= x);
    }
    match needle {
        Val::Num(x) => Ok(num_lenient(element)? == *x),
        Val::Int0 => num_lenient(element).map(|_| false),
        _ => match (needle, element) {
            (Val::Obj(_), Val::Obj(_)) => abort("`in` cannot compare objects"),
            (Val::Null, Val::Null) => Ok(true),
            (Val::Bool(a), Val::Bool(b)) => Ok(a == b),
            (Val::Str(a), Val::Str(b)) => Ok(a == b),
            _ => Ok(false),
        },
    }
}

fn cat(args: &Val, data: &Val) -> Outcome {
    match eval(args, data)? {
        Val::Str(s) => Ok(Val::Str(s)),
        other => {
            let items = list(other, "cat")?;
            match items.as_slice() {
                [] => Ok(Val::Str(String::new())),
                [one] => to_str(one).map(Val::Str),
                many => {
                    let mut out = String::new();
                    for item in many {
                        out.push_str(&to_str(item)?);
                    }
                    Ok(Val::Str(out.trim().to_owned()))
                }
            }
        }
    }
}

fn substr(args: &Val, data: &Val) -> Outcome {
    let items = list(eval(args, data)?, "substr")?;
    let [text, start, rest @ ..] = items.as_slice() else {
        return abort("`substr` needs a string and a start");
    };
    let text = to_str(text)?;
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len() as i64;
    let mut from = truncate_to_i64(num_lenient(start)?);
    if from < 0 {
        from = n.wrapping_add(from);
    }
    if from < 0 || from > n {
        return Ok(Val::Str(text));
    }
    let length = match rest {
        [length] => truncate_to_i64(num_lenient(length)?),
        _ => n,
    };
    let to = if length < 0 {
        n.wrapping_add(length)
    } else {
        from.wrapping_add(length)
    }
    .min(n);
    if to < from || to < 0 {
        return abort("`substr` bounds are out of range");
    }
    Ok(Val::Str(chars[from as usize..to as usize].iter().collect()))
}

fn merge(args: &Val, data: &Val) -> Outcome {
    match eval(args, data)? {
        Val::Arr(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Val::Arr(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Ok(Val::Arr(out))
        }
        Val::Null | Val::Obj(_) => abort("`merge` needs values"),
        scalar => Ok(Val::Arr(vec![scalar])),
    }
}

/// The list an iterating operator works on: a literal array as written (not evaluated), the
/// result of an operation, or null for anything else.
fn subject(items: &[Val], data: &Val) -> Outcome {
    match items.first() {
        Some(Val::Arr(literal)) => Ok(Val::Arr(literal.clone())),
        Some(Val::Obj(map)) => apply_obj(map, data),
        Some(_) => Ok(Val::Null),
        None => abort("an iterating operator needs a list"),
    }
}

/// Replaces `var`s that resolve in `context` by their values (the Go evaluator does this to a
/// predicate before iterating).
fn presubstitute(logic: &Val, context: &Val) -> Outcome {
    match logic {
        Val::Obj(map) => {
            let mut out = BTreeMap::new();
            for (key, value) in map {
                if key == "var" {
                    let relative =
                        matches!(value, Val::Str(s) if s.is_empty() || s.starts_with('.'));
                    if !relative {
                        let resolved = var(value, context)?;
                        if !matches!(resolved, Val::Null) {
                            return Ok(resolved);
                        }
                    }
                    out.insert(key.clone(), value.clone());
                } else {
                    out.insert(key.clone(), presubstitute(value, context)?);
                }
            }
            Ok(Val::Obj(out))
        }
        Val::Arr(items) => items
            .iter()
            .map(|item| presubstitute(item, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Val::Arr),
        other => Ok(other.clone()),
    }
}

fn map(args: &Val, data: &Val) -> Outcome {
    let items = raw_list(args, "map")?;
    if items.len() < 2 {
        return Ok(Val::Arr(Vec::new()));
    }
    match subject(items, data)? {
        Val::Null => Ok(Val::Arr(Vec::new())),
        Val::Arr(elements) => elements
            .iter()
            .map(|element| eval(&items[1], element))
            .collect::<Result<Vec<_>, _>>()
            .map(Val::Arr),
        other => abort(format!("`map` needs a list, got {}", kind(&other))),
    }
}

fn filter(args: &Val, data: &Val) -> Outcome {
    let items = raw_list(args, "filter")?;
    if items.len() < 2 {
        return Ok(Val::Arr(Vec::new()));
    }
    match subject(items, data)? {
        Val::Null => Ok(Val::Arr(Vec::new())),
        Val::Arr(elements) => {
            if elements.is_empty() {
                return Ok(Val::Arr(elements));
            }
            let logic = presubstitute(&items[1], data)?;
            let mut out = Vec::new();
            for element in elements {
                if truthy(&eval(&logic, &element)?) {
                    out.push(element);
                }
            }
            Ok(Val::Arr(out))
        }
        other => abort(format!("`filter` needs a list, got {}", kind(&other))),
    }
}

fn reduce(args: &Val, data: &Val) -> Outcome {
    let items = raw_list(args, "reduce")?;
    if items.len() < 3 {
        return Ok(Val::Num(0.0));
    }
    let initial = match &items[2] {
        Val::Obj(map) => apply_obj(map, data)?,
        other => other.clone(),
    };
    #[derive(Clone, Copy)]
    enum Kind {
        Bool,
        Number,
        Text,
    }
    let (kind_of, mut accumulator) = match initial {
        Val::Bool(_) => (Kind::Bool, initial),
        Val::Num(_) | Val::Int0 => (Kind::Number, Val::Num(num_lenient(&initial)?)),
        Val::Str(_) => (Kind::Text, initial),
        other => return abort(format!("`reduce` cannot start from {}", kind(&other))),
    };
    let elements = match subject(items, data)? {
        Val::Null => return Ok(Val::Num(0.0)),
        Val::Arr(elements) => elements,
        other => return abort(format!("`reduce` needs a list, got {}", kind(&other))),
    };
    let Val::Obj(reducer) = &items[1] else {
        return abort("`reduce` needs an operation");
    };
    for element in elements {
        if matches!(element, Val::Null) {
            continue;
        }
        let mut context = BTreeMap::new();
        context.insert("current".to_owned(), element);
        context.insert("accumulator".to_owned(), accumulator.clone());
        let value_type = match kind_of {
            Kind::Bool => "bool",
            Kind::Number => "number",
            Kind::Text => "string",
        };
        context.insert("valueType".to_owned(), Val::Str(value_type.to_owned()));
        let value = apply_obj(reducer, &Val::Obj(context))?;
        accumulator = match kind_of {
            Kind::Bool => Val::Bool(truthy(&value)),
            Kind::Number => Val::Num(num_lenient(&value)?),
            Kind::Text => Val::Str(to_str(&value)?),
        };
    }
    Ok(accumulator)
}

fn predicate<'a>(condition: &'a Val, what: &str) -> Result<&'a BTreeMap<String, Val>, Abort> {
    match condition {
        Val::Obj(map) => Ok(map),
        other => abort(format!("`{what}` needs an operation, got {}", kind(other))),
    }
}

fn all(args: &Val, data: &Val) -> Outcome {
    let items = raw_list(args, "all")?;
    let subject = subject(items, data)?;
    if !truthy(&subject) {
        return Ok(Val::Bool(false));
    }
    let Val::Arr(elements) = subject else {
        return abort("`all` needs a list");
    };
    let Some(logic) = items.get(1) else {
        return abort("`all` needs a condition");
    };
    for element in &elements {
        let condition = presubstitute(logic, element)?;
        if !truthy(&apply_obj(predicate(&condition, "all")?, element)?) {
            return Ok(Val::Bool(false));
        }
    }
    Ok(Val::Bool(true))
}

fn none_or_some(args: &Val, data: &Val, some: bool) -> Outcome {
    let what = if some { "some" } else { "none" };
    let items = raw_list(args, what)?;
    let subject = subject(items, data)?;
    if !truthy(&subject) {
        return Ok(Val::Bool(!some));
    }
    let Val::Arr(elements) = subject else {
        return abort(format!("`{what}` needs a list"));
    };
    let Some(logic) = items.get(1) else {
        return abort(format!("`{what}` needs a condition"));
    };
    let logic = presubstitute(logic, data)?;
    for element in &elements {
        let condition = if some {
            presubstitute(&logic, element)?
        } else {
            logic.clone()
        };
        if truthy(&apply_obj(predicate(&condition, what)?, element)?) {
            return Ok(Val::Bool(some));
        }
    }
    Ok(Val::Bool(!some))
}

fn set(args: &Val, data: &Val) -> Outcome {
    let items = list(eval(args, data)?, "set")?;
    match items.as_slice() {
        [] => Ok(Val::Null),
        [first] | [first, _] => Ok(first.clone()),
        [Val::Obj(map), key, value, ..] => {
            let Val::Str(key) = key else {
                return abort("`set` needs a string key");
            };
            let mut out = map.clone();
            out.insert(key.clone(), eval(value, data)?);
            Ok(Val::Obj(out))
        }
        [first, ..] => Ok(first.clone()),
    }
}

fn contains(op: &str, value: &Val) -> Outcome {
    let pair = match value {
        Val::Arr(items) => match items.as_slice() {
            [Val::Arr(a), Val::Arr(b)] => Some((a, b)),
            _ => None,
        },
        _ => None,
    };
    let Some((haystack, needles)) = pair else {
        return Ok(Val::Bool(op == "contains_none"));
    };
    let matches = |needle: &Val| -> Result<bool, Abort> {
        for candidate in haystack {
            let equal = match (candidate, needle) {
                (Val::Obj(_), Val::Obj(_)) => return abort("cannot compare objects"),
                (Val::Null, Val::Null) => true,
                (Val::Bool(a), Val::Bool(b)) => a == b,
                (Val::Str(a), Val::Str(b)) => a == b,
                (Val::Num(a), Val::Num(b)) => a == b,
                (Val::Int0, Val::Int0) => true,
                (Val::Num(a), Val::Int0) | (Val::Int0, Val::Num(a)) => *a == 0.0,
                _ => false,
            };
            if equal {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let result = match op {
        "contains_all" => {
            let mut every = true;
            for needle in needles {
                if !matches(needle)? {
                    every = false;
                    break;
                }
            }
            every
        }
        _ => {
            let mut any = false;
            for needle in needles {
                if matches(needle)? {
                    any = true;
                    break;
                }
            }
            if op == "contains_any" { any } else { !any }
        }
    };
    Ok(Val::Bool(result))
}
