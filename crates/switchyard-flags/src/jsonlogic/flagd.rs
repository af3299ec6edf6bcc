//! flagd's operators: `fractional`, `starts_with`/`ends_with` and `sem_ver`. They receive
//! evaluated arguments and answer null (never abort) when the arguments do not fit.

use std::cmp::Ordering;

use super::Val;
use super::coerce::truncate_to_i64;
use crate::hashing::murmur3_parts;

/// Largest weight, and largest total, flagd accepts.
const MAX_WEIGHT: i64 = i32::MAX as i64;

/// `fractional`: hashes the bucketing value (the first argument when it is a string, else the
/// flag key followed by the targeting key) with murmur3 and picks a bucket by weight.
pub(super) fn fractional(args: &Val, data: &Val) -> Val {
    let Val::Arr(items) = args else {
        return Val::Null;
    };
    let Some(first) = items.first() else {
        return Val::Null;
    };
    let Val::Obj(context) = data else {
        return Val::Null;
    };
    let flag_key = flag_key(context);
    let (parts, distributions): ([&[u8]; 2], &[Val]) = match first {
        Val::Str(value) => ([value.as_bytes(), b""], &items[1..]),
        other => {
            let distributions = if matches!(other, Val::Null) {
                &items[1..]
            } else {
                &items[..]
            };
            match context.get("targetingKey") {
                Some(Val::Str(key)) if !key.is_empty() => {
                    ([flag_key.as_bytes(), key.as_bytes()], distributions)
                }
                _ => return Val::Null,
            }
        }
    };
    let mut buckets: Vec<(&Val, i64)> = Vec::with_capacity(distributions.len());
    let mut total = 0i64;
    for distribution in distributions {
        let Val::Arr(entry) = distribution else {
            return Val::Null;
        };
        let Some(variant) = entry.first() else {
            return Val::Null;
        };
        if !matches!(
            variant,
            Val::Str(_) | Val::Bool(_) | Val::Num(_) | Val::Null
        ) {
            return Val::Null;
        }
        let mut weight = match entry.get(1) {
            None | Some(Val::Null) => 1,
            Some(Val::Num(w)) => {
                let whole = truncate_to_i64(*w);
                if whole as f64 != *w {
                    return Val::Null;
                }
                whole
            }
            Some(_) => return Val::Null,
        };
        if weight > MAX_WEIGHT {
            return Val::Null;
        }
        weight = weight.max(0);
        total += weight;
        buckets.push((variant, weight));
    }
    pick(&buckets, total, murmur3_parts(&parts, 0))
}

/// The flag key flagd put into the data (`$flagd.flagKey`), or empty.
fn flag_key(context: &std::collections::BTreeMap<String, Val>) -> &str {
    match context.get("$flagd") {
        Some(Val::Obj(flagd)) => match flagd.get("flagKey") {
            Some(Val::Str(key)) => key.as_str(),
            _ => "",
        },
        _ => "",
    }
}

/// The variant whose cumulative weight first exceeds `(hash × total) >> 32`; null for a total
/// of 0 or above flagd's limit.
fn pick(buckets: &[(&Val, i64)], total: i64, hash: u32) -> Val {
    if total > MAX_WEIGHT || total <= 0 {
        return Val::Null;
    }
    let bucket = (u64::from(hash) * total as u64) >> 32;
    let mut reached = 0u64;
    for (variant, weight) in buckets {
        reached += *weight as u64;
        if bucket < reached {
            return (*variant).clone();
        }
    }
    Val::Null
}

/// `fractional` v3 (the flagd specification's newer scheme): the bucketing value is the first
/// argument whatever its JSON type (null: no answer), or `[flagKey, targetingKey]` for the
/// shorthand; murmur3 of its canonical CBOR encoding picks the bucket as in v2.
pub(super) fn fractional_v3(args: &Val, data: &Val) -> Val {
    let Val::Arr(items) = args else {
        return Val::Null;
    };
    let Some(first) = items.first() else {
        return Val::Null;
    };
    let (bucket_by, distributions) = if matches!(first, Val::Arr(_)) {
        let Val::Obj(context) = data else {
            return Val::Null;
        };
        let Some(Val::Str(key)) = context
            .get("targetingKey")
            .filter(|k| !matches!(k, Val::Str(s) if s.is_empty()))
        else {
            return Val::Null;
        };
        (
            Val::Arr(vec![
                Val::Str(flag_key(context).to_owned()),
                Val::Str(key.clone()),
            ]),
            &items[..],
        )
    } else {
        (first.clone(), &items[1..])
    };
    if bucket_by == Val::Null {
        return Val::Null;
    }
    let mut buckets: Vec<(&Val, i64)> = Vec::with_capacity(distributions.len());
    let mut total = 0i64;
    for distribution in distributions {
        let Val::Arr(entry) = distribution else {
            return Val::Null;
        };
        let (variant, weight) = match entry.as_slice() {
            [variant] => (variant, 1),
            [variant, Val::Num(w)] if w.fract() == 0.0 && w.abs() <= MAX_WEIGHT as f64 => {
                (variant, (*w as i64).max(0))
            }
            _ => return Val::Null,
        };
        total += weight;
        buckets.push((variant, weight));
    }
    let encoded = super::cbor::encode(&bucket_by);
    pick(&buckets, total, murmur3_parts(&[&encoded], 0))
}

/// `starts_with` (`prefix`) or `ends_with`: two strings, else null.
pub(super) fn affix(args: &Val, prefix: bool) -> Val {
    match args {
        Val::Arr(items) => match items.as_slice() {
            [Val::Str(text), Val::Str(part)] => Val::Bool(if prefix {
                text.starts_with(part.as_str())
            } else {
                text.ends_with(part.as_str())
            }),
            _ => Val::Null,
        },
        _ => Val::Null,
    }
}

/// `sem_ver`: `[version, operator, version]`, versions as Go's `golang.org/x/mod/semver` reads
/// them (`v` prefix optional, `1` and `1.2` shorthands); null when anything is invalid.
pub(super) fn sem_ver(args: &Val) -> Val {
    let Val::Arr(items) = args else {
        return Val::Null;
    };
    let [left, Val::Str(op), right] = items.as_slice() else {
        return Val::Null;
    };
    let (Some(a), Some(b)) = (Version::read(left), Version::read(right)) else {
        return Val::Null;
    };
    let order = a.cmp_precedence(&b);
    let result = match op.as_str() {
        "=" => order == Ordering::Equal,
        "!=" => order != Ordering::Equal,
        "<" => order == Ordering::Less,
        "<=" => order != Ordering::Greater,
        ">" => order == Ordering::Greater,
        ">=" => order != Ordering::Less,
        "^" => a.major == b.major,
        "~" => a.major == b.major && a.minor == b.minor,
        _ => return Val::Null,
    };
    Val::Bool(result)
}

struct Version {
    major: String,
    minor: String,
    patch: String,
    prerelease: Vec<String>,
}

impl Version {
    fn read(value: &Val) -> Option<Version> {
        let text = match value {
            Val::Str(s) => s.clone(),
            // Go prints other numbers with an exponent, which is never a valid version.
            Val::Num(x) if *x == 0.0 || (1e-4..1e6).contains(&x.abs()) => format!("{x}"),
            Val::Int0 => "0".to_owned(),
            _ => return None,
        };
        let normalized = if text.starts_with('v') {
            text
        } else {
            format!("v{}", text.strip_prefix('V').unwrap_or(&text))
        };
        Version::parse(&normalized[1..])
    }

    fn parse(text: &str) -> Option<Version> {
        let (major, rest) = number(text)?;
        let mut version = Version {
            major: major.to_owned(),
            minor: "0".to_owned(),
            patch: "0".to_owned(),
            prerelease: Vec::new(),
        };
        if rest.is_empty() {
            return Some(version);
        }
        let (minor, rest) = number(rest.strip_prefix('.')?)?;
        version.minor = minor.to_owned();
        if rest.is_empty() {
            return Some(version);
        }
        let (patch, mut rest) = number(rest.strip_prefix('.')?)?;
        version.patch = patch.to_owned();
        if let Some(after) = rest.strip_prefix('-') {
            let end = after.find('+').unwrap_or(after.len());
            for identifier in after[..end].split('.') {
                let numeric = identifier.bytes().all(|b| b.is_ascii_digit());
                if !valid_identifier(identifier)
                    || (numeric && identifier.len() > 1 && identifier.starts_with('0'))
                {
                    return None;
                }
                version.prerelease.push(identifier.to_owned());
            }
            rest = &after[end..];
        }
        if let Some(build) = rest.strip_prefix('+') {
            if !build.split('.').all(valid_identifier) {
                return None;
            }
            rest = "";
        }
        rest.is_empty().then_some(version)
    }

    fn cmp_precedence(&self, other: &Version) -> Ordering {
        compare_numbers(&self.major, &other.major)
            .then_with(|| compare_numbers(&self.minor, &other.minor))
            .then_with(|| compare_numbers(&self.patch, &other.patch))
            .then_with(
                || match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => {
                        for (a, b) in self.prerelease.iter().zip(&other.prerelease) {
                            let order = compare_identifiers(a, b);
                            if order != Ordering::Equal {
                                return order;
                            }
                        }
                        self.prerelease.len().cmp(&other.prerelease.len())
                    }
                },
            )
    }
}

/// Leading decimal digits without a leading zero (`0` itself is fine), and the rest.
fn number(text: &str) -> Option<(&str, &str)> {
    let end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    let digits = &text[..end];
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    Some((digits, &text[end..]))
}

fn valid_identifier(identifier: &str) -> bool {
    !identifier.is_empty()
        && identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn compare_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn compare_identifiers(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        (true, true) => compare_numbers(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}
