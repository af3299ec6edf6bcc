//! Lowering of [`Condition`]s into [`Matcher`]s: operands parsed, sets indexed, regexes built.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::lookup::LookupSet;
use std::sync::Arc;

use regex::RegexBuilder;
use serde_json::Value;

use crate::context::AttributeKey;
use crate::error::Problem;
use crate::matcher::{Comparison, Matcher, StrKind, Test};
use crate::model::{AttributeCondition, Condition, Operator};
use crate::scalar::{Cidr, parse_number, parse_rfc3339_millis};
use crate::version::{SemverTest, parse_semver};

/// Compiled segments by name; `None` while compiling segments themselves (they cannot nest).
pub(crate) type Segments<'a> = Option<&'a HashMap<String, Arc<Matcher>>>;

/// A problem and the field path where it was found.
pub(crate) type Located = (String, Problem);

/// Lowers a condition found at `path`.
pub(crate) fn lower(
    condition: &Condition,
    path: &str,
    segments: Segments<'_>,
) -> Result<Matcher, Located> {
    match condition {
        Condition::All(children) => {
            lower_children(children, &format!("{path}.all"), segments).map(|c| fold(c, true))
        }
        Condition::Any(children) => {
            lower_children(children, &format!("{path}.any"), segments).map(|c| fold(c, false))
        }
        Condition::Not(child) => Ok(match lower(child, &format!("{path}.not"), segments)? {
            Matcher::Const(value) => Matcher::Const(!value),
            child => Matcher::Not(Box::new(child)),
        }),
        Condition::Segment(name) => match segments {
            None => Err((
                format!("{path}.segment"),
                Problem::NestedSegment(name.clone()),
            )),
            Some(table) => table
                .get(name)
                .map(|segment| Matcher::Shared(Arc::clone(segment)))
                .ok_or_else(|| {
                    (
                        format!("{path}.segment"),
                        Problem::UnknownSegment(name.clone()),
                    )
                }),
        },
        Condition::Attribute(test) => lower_test(test)
            .map(|test_plan| Matcher::Test {
                attribute: AttributeKey::new(&test.name),
                test: test_plan,
            })
            .map_err(|problem| (format!("{path}.attribute"), problem)),
    }
}

/// Builds `all` (`conjunction`) or `any` over lowered children, folding what evaluation would
/// otherwise walk every time: constants (`true` in an `all` is dropped, `false` decides it) and
/// single-child groups (importers wrap one strategy check in one `all`, one `any`).
fn fold(children: Box<[Matcher]>, conjunction: bool) -> Matcher {
    // In `all`, `true` is neutral and `false` absorbing; in `any`, the reverse.
    let neutral = conjunction;
    let mut kept = Vec::with_capacity(children.len());
    for child in children {
        match child {
            Matcher::Const(value) if value == neutral => {}
            Matcher::Const(value) => return Matcher::Const(value),
            other => kept.push(other),
        }
    }
    match kept.len() {
        0 => Matcher::Const(neutral),
        1 => kept.pop().unwrap_or(Matcher::Const(neutral)),
        _ if conjunction => Matcher::All(kept.into_boxed_slice()),
        _ => Matcher::Any(kept.into_boxed_slice()),
    }
}

fn lower_children(
    children: &[Condition],
    path: &str,
    segments: Segments<'_>,
) -> Result<Box<[Matcher]>, Located> {
    children
        .iter()
        .enumerate()
        .map(|(i, child)| lower(child, &format!("{path}[{i}]"), segments))
        .collect()
}

fn lower_test(condition: &AttributeCondition) -> Result<Test, Problem> {
    let op = condition.op;
    let texts = condition
        .values
        .iter()
        .map(operand_text)
        .collect::<Result<Vec<_>, _>>()?;
    if !op.takes_list() && texts.len() != 1 {
        return Err(Problem::OperandCount {
            op: operator_name(op),
            expected: "exactly 1",
            found: texts.len(),
        });
    }
    let ci = condition.case_insensitive;
    let fold = |text: String| if ci { text.to_lowercase() } else { text };
    let single = || texts.first().map(String::as_str).unwrap_or_default();
    let number = || parse_number(single()).ok_or_else(|| Problem::BadNumber(single().to_owned()));
    let date =
        || parse_rfc3339_millis(single()).ok_or_else(|| Problem::BadDate(single().to_owned()));
    let version = || parse_semver(single()).ok_or_else(|| Problem::BadSemver(single().to_owned()));
    let strings = |kind| Test::Str {
        kind,
        values: texts.iter().cloned().map(fold).collect(),
        case_insensitive: ci,
    };
    Ok(match op {
        Operator::In | Operator::NotIn => Test::In {
            set: texts.iter().cloned().map(fold).collect::<LookupSet<_>>(),
            case_insensitive: ci,
            negate: op == Operator::NotIn,
        },
        Operator::Contains => strings(StrKind::Contains),
        Operator::StartsWith => strings(StrKind::StartsWith),
        Operator::EndsWith => strings(StrKind::EndsWith),
        Operator::Matches => Test::Regex(
            RegexBuilder::new(single())
                .case_insensitive(ci)
                .size_limit(1 << 20)
                .build()
                .map_err(Problem::BadRegex)?,
        ),
        Operator::NumEq => Test::Number(Ordering::Equal, Comparison::Strict, number()?),
        Operator::NumLt => Test::Number(Ordering::Less, Comparison::Strict, number()?),
        Operator::NumLte => Test::Number(Ordering::Less, Comparison::OrEqual, number()?),
        Operator::NumGt => Test::Number(Ordering::Greater, Comparison::Strict, number()?),
        Operator::NumGte => Test::Number(Ordering::Greater, Comparison::OrEqual, number()?),
        Operator::SemverEq => Test::Semver(SemverTest::Eq, version()?),
        Operator::SemverLt => Test::Semver(SemverTest::Lt, version()?),
        Operator::SemverLte => Test::Semver(SemverTest::Lte, version()?),
        Operator::SemverGt => Test::Semver(SemverTest::Gt, version()?),
        Operator::SemverGte => Test::Semver(SemverTest::Gte, version()?),
        Operator::SemverCaret => Test::Semver(SemverTest::Caret, version()?),
        Operator::SemverTilde => Test::Semver(SemverTest::Tilde, version()?),
        Operator::DateBefore => Test::Date(Ordering::Less, date()?),
        Operator::DateAfter => Test::Date(Ordering::Greater, date()?),
        Operator::InCidr => Test::Cidr(
            texts
                .iter()
                .map(|text| Cidr::parse(text).ok_or_else(|| Problem::BadCidr(text.clone())))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// The text of a scalar operand (numbers as JSON prints them).
pub(crate) fn operand_text(value: &Value) -> Result<String, Problem> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(Problem::NonScalarOperand(other.to_string())),
    }
}

/// The operator's name as written in documents.
pub(crate) fn operator_name(op: Operator) -> &'static str {
    match op {
        Operator::In => "in",
        Operator::NotIn => "notIn",
        Operator::Contains => "contains",
        Operator::StartsWith => "startsWith",
        Operator::EndsWith => "endsWith",
        Operator::Matches => "matches",
        Operator::NumEq => "numEq",
        Operator::NumLt => "numLt",
        Operator::NumLte => "numLte",
        Operator::NumGt => "numGt",
        Operator::NumGte => "numGte",
        Operator::SemverEq => "semverEq",
        Operator::SemverLt => "semverLt",
        Operator::SemverLte => "semverLte",
        Operator::SemverGt => "semverGt",
        Operator::SemverGte => "semverGte",
        Operator::SemverCaret => "semverCaret",
        Operator::SemverTilde => "semverTilde",
        Operator::DateBefore => "dateBefore",
        Operator::DateAfter => "dateAfter",
        Operator::InCidr => "inCidr",
    }
}
