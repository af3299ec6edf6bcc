//! Coercions, truthiness, comparison and JSON output, as the Go evaluator performs them.

use super::{Abort, Val, abort};

/// Why a string is not a number (Go's `strconv.ParseFloat` errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotANumber {
    Syntax,
    /// Out of range: the value is ±∞.
    Range(bool),
}

/// Go's float grammar: the whole string, no surrounding space; `inf`/`infinity`/`nan` in any
/// case; underscores only between digits. Hexadecimal floats are not accepted (they never reach
/// a flag context in practice and are documented as a difference).
pub(super) fn parse_float(s: &str) -> Result<f64, NotANumber> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return if unsigned.len() == s.len() {
            Ok(f64::NAN)
        } else {
            Err(NotANumber::Syntax)
        };
    }
    let digits = strip_underscores(unsigned).ok_or(NotANumber::Syntax)?;
    if !decimal_grammar(&digits) {
        return Err(NotANumber::Syntax);
    }
    let magnitude: f64 = digits.parse().map_err(|_| NotANumber::Syntax)?;
    if magnitude.is_infinite() {
        return Err(NotANumber::Range(negative));
    }
    Ok(if negative { -magnitude } else { magnitude })
}

/// Removes underscores that sit between two digits; `None` if one sits anywhere else.
fn strip_underscores(s: &str) -> Option<String> {
    if !s.contains('_') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let before = i > 0 && bytes[i - 1].is_ascii_digit();
            let after = bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !(before && after) {
                return None;
            }
        } else {
            out.push(b as char);
        }
    }
    Some(out)
}

/// `digits? ('.' digits?)? ([eE] [+-]? digits)?` with at least one mantissa digit.
fn decimal_grammar(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut mantissa = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        mantissa += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            mantissa += 1;
        }
    }
    if mantissa == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Arithmetic's number coercion: unparsable strings are 0; booleans, null, arrays and objects
/// abort.
pub(super) fn num_lenient(v: &Val) -> Result<f64, Abort> {
    match v {
        Val::Num(x) => Ok(*x),
        Val::Int0 => Ok(0.0),
        Val::Str(s) => Ok(match parse_float(s) {
            Ok(x) => x,
            Err(NotANumber::Syntax) => 0.0,
            Err(NotANumber::Range(negative)) => {
                if negative {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            }
        }),
        other => abort(format!("cannot convert {} to a number", kind(other))),
    }
}

/// Comparison's number coercion (never aborts): null 0, booleans 1/0, blank strings 0,
/// unparsable strings, arrays and objects NaN.
pub(super) fn num_js(v: &Val) -> f64 {
    match v {
        Val::Null => 0.0,
        Val::Bool(b) => f64::from(u8::from(*b)),
        Val::Num(x) => *x,
        Val::Int0 => 0.0,
        Val::Str(s) if s.trim().is_empty() => 0.0,
        Val::Str(s) => parse_float(s).unwrap_or(f64::NAN),
        Val::Arr(_) | Val::Obj(_) => f64::NAN,
    }
}

/// String coercion for `cat` and `substr`: numbers in plain decimal, null empty; booleans,
/// arrays and objects abort.
pub(super) fn to_str(v: &Val) -> Result<String, Abort> {
    match v {
        Val::Num(x) => Ok(format_plain(*x)),
        Val::Int0 => Ok("0".to_owned()),
        Val::Null => Ok(String::new()),
        Val::Str(s) => Ok(s.clone()),
        other => abort(format!("cannot convert {} to a string", kind(other))),
    }
}

/// Shortest round-trip digits in plain decimal, never an exponent (Go's `'f', -1`).
pub(super) fn format_plain(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{x}")
    }
}

pub(super) fn truthy(v: &Val) -> bool {
    match v {
        Val::Null => false,
        Val::Bool(b) => *b,
        Val::Num(x) => *x != 0.0,
        Val::Int0 => false,
        Val::Str(s) => !s.is_empty(),
        Val::Arr(items) => !items.is_empty(),
        Val::Obj(map) => !map.is_empty(),
    }
}

/// Loose equality: null equals only null, two strings compare as strings, anything else as
/// numbers.
pub(super) fn equals(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Null, _) | (_, Val::Null) => matches!((a, b), (Val::Null, Val::Null)),
        (Val::Str(x), Val::Str(y)) => x == y,
        _ => num_js(a) == num_js(b),
    }
}

pub(super) fn less(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => x < y,
        _ => num_js(a) < num_js(b),
    }
}

/// The kind names strict equality tells apart.
pub(super) fn kind(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::Int0 => "integer",
        Val::Str(_) => "string",
        Val::Arr(_) => "array",
        Val::Obj(_) => "object",
    }
}

/// Go's `int64(x)` on amd64: truncation toward zero, and `i64::MIN` for NaN, ±∞ and anything out
/// of range.
pub(crate) fn truncate_to_i64(x: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if x.is_nan() || !(-LIMIT..LIMIT).contains(&x) {
        i64::MIN
    } else {
        x.trunc() as i64
    }
}

/// `value` as Go's `encoding/json` writes it (sorted keys, HTML escaping, shortest numbers);
/// `None` when it holds NaN or ±∞, which Go refuses to encode.
pub(crate) fn encode_json(value: &Val) -> Option<String> {
    let mut out = String::new();
    write_json(value, &mut out).then_some(out)
}

fn write_json(value: &Val, out: &mut String) -> bool {
    match value {
        Val::Null => out.push_str("null"),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Int0 => out.push('0'),
        Val::Num(x) => {
            if !x.is_finite() {
                return false;
            }
            out.push_str(&format_json_number(*x));
        }
        Val::Str(s) => write_json_string(s, out),
        Val::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !write_json(item, out) {
                    return false;
                }
            }
            out.push(']');
        }
        Val::Obj(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                if !write_json(item, out) {
                    return false;
                }
            }
            out.push('}');
        }
    }
    true
}

/// Shortest digits; an exponent (without leading zeros) below 1e-6 and from 1e21.
fn format_json_number(x: f64) -> String {
    let magnitude = x.abs();
    if x != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        let text = format!("{x:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    } else {
        format!("{x}")
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_grammar() {
        assert_eq!(parse_float("1_000"), Ok(1000.0));
        assert_eq!(parse_float(".5"), Ok(0.5));
        assert_eq!(parse_float("5."), Ok(5.0));
        assert_eq!(parse_float("-Infinity"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_float("1e400"), Err(NotANumber::Range(false)));
        for bad in [
            "", ".", "e5", " 1", "1 ", "_1", "1_", "1__0", "+nan", "0x10", "1e",
        ] {
            assert_eq!(parse_float(bad), Err(NotANumber::Syntax), "{bad:?}");
        }
        assert!(parse_float("NaN").unwrap().is_nan());
    }

    #[test]
    fn numbers_are_written_as_go_writes_them() {
        for (x, text) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (0.000_001, "0.000001"),
            (-0.0, "-0"),
            (1.234_567_890_123_456_9e23, "1.2345678901234569e+23"),
        ] {
            assert_eq!(format_json_number(x), text);
        }
        assert_eq!(format_plain(1e21), "1000000000000000000000");
        assert_eq!(format_plain(1e-7), "0.0000001");
        assert_eq!(
            encode_json(&Val::Str("<a&\"b\u{1}".into())).unwrap(),
            r#""\u003ca\u0026\"b\u0001""#
        );
        assert_eq!(encode_json(&Val::Num(f64::INFINITY)), None);
    }

    #[test]
    fn loose_equality_and_order() {
        let s = |t: &str| Val::Str(t.into());
        assert!(equals(&Val::Num(1.0), &s("1")));
        assert!(equals(&Val::Num(0.0), &s(" ")));
        assert!(!equals(&s(" 1"), &Val::Num(1.0)));
        assert!(equals(&Val::Bool(true), &s("1.0")));
        assert!(!equals(&Val::Null, &Val::Num(0.0)));
        assert!(!equals(&Val::Arr(vec![]), &Val::Arr(vec![])));
        assert!(less(&s("10"), &s("9")));
        assert!(!less(&s("10"), &Val::Num(9.0)));
        assert!(less(&Val::Null, &Val::Num(1.0)));
        assert_eq!(truncate_to_i64(1e20), i64::MIN);
        assert_eq!(truncate_to_i64(-1.5), -1);
    }
}
