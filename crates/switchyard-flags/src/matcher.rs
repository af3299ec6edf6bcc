//! Compiled conditions and how they match a context. Built once by [`crate::compile`]; matching
//! borrows the context and allocates only for case-insensitive comparisons and semver parsing.

use crate::lookup::LookupSet;
use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::Arc;

use regex::Regex;

use crate::context::{AttributeRef, CURRENT_TIME, EvaluationContext, Timestamp};
use crate::scalar::{Cidr, NumberText, parse_number, parse_rfc3339_millis};

/// A condition that has been validated and lowered for fast matching.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Const(bool),
    All(Box<[Matcher]>),
    Any(Box<[Matcher]>),
    Not(Box<Matcher>),
    /// A segment, shared by every rule that references it (a 100k-id segment exists once).
    Shared(Arc<Matcher>),
    Test {
        attribute: Box<str>,
        test: Test,
    },
}

/// One attribute test.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// Set membership; `case_insensitive` sets hold lowercased values.
    In {
        set: LookupSet<String>,
        case_insensitive: bool,
        negate: bool,
    },
    Str {
        kind: StrKind,
        values: Box<[String]>,
        case_insensitive: bool,
    },
    Regex(Regex),
    Number(Ordering, Comparison, f64),
    Semver(SemverTest, semver::Version),
    Date(Ordering, i64),
    Cidr(Box<[Cidr]>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrKind {
    Contains,
    StartsWith,
    EndsWith,
}

/// How a numeric ordering result is accepted: exactly, or also on equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Strict,
    OrEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SemverTest {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
    /// Same major version (flagd's `^`).
    Caret,
    /// Same major and minor version (flagd's `~`).
    Tilde,
}

impl Matcher {
    pub(crate) fn matches(&self, ctx: &EvaluationContext, now: Timestamp) -> bool {
        match self {
            Self::Const(value) => *value,
            Self::All(children) => children.iter().all(|c| c.matches(ctx, now)),
            Self::Any(children) => children.iter().any(|c| c.matches(ctx, now)),
            Self::Not(child) => !child.matches(ctx, now),
            Self::Shared(segment) => segment.matches(ctx, now),
            Self::Test { attribute, test } => test.matches(attribute, ctx, now),
        }
    }
}

impl Test {
    fn matches(&self, attribute: &str, ctx: &EvaluationContext, now: Timestamp) -> bool {
        let value = ctx.get(attribute);
        match self {
            Self::In {
                set,
                case_insensitive,
                negate,
            } => {
                let found = value
                    .is_some_and(|v| with_text(v, |text| contains(set, text, *case_insensitive)));
                found != *negate
            }
            Self::Str {
                kind,
                values,
                case_insensitive,
            } => value.is_some_and(|v| {
                with_text(v, |text| {
                    values
                        .iter()
                        .any(|operand| str_test(*kind, text, operand, *case_insensitive))
                })
            }),
            Self::Regex(regex) => value.is_some_and(|v| with_text(v, |text| regex.is_match(text))),
            Self::Number(ordering, comparison, operand) => {
                let number = match value {
                    Some(AttributeRef::Number(n)) => Some(n),
                    Some(AttributeRef::Str(s)) => parse_number(s),
                    None if attribute == CURRENT_TIME => Some(now.unix_millis() as f64 / 1000.0),
                    _ => None,
                };
                number
                    .and_then(|n| n.partial_cmp(operand))
                    .is_some_and(|found| accept(found, *ordering, *comparison))
            }
            Self::Semver(test, operand) => match value {
                Some(AttributeRef::Str(s)) => {
                    parse_semver(s).is_some_and(|v| semver_test(*test, &v, operand))
                }
                _ => false,
            },
            Self::Date(ordering, operand) => {
                let millis = match value {
                    Some(AttributeRef::Str(s)) => parse_rfc3339_millis(s),
                    None if attribute == CURRENT_TIME => Some(now.unix_millis()),
                    _ => None,
                };
                millis.is_some_and(|m| m.cmp(operand) == *ordering)
            }
            Self::Cidr(blocks) => match value {
                Some(AttributeRef::Str(s)) => s
                    .trim()
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| blocks.iter().any(|block| block.contains(ip))),
                _ => false,
            },
        }
    }
}

fn accept(found: Ordering, wanted: Ordering, comparison: Comparison) -> bool {
    found == wanted || (comparison == Comparison::OrEqual && found == Ordering::Equal)
}

/// Runs `f` on the attribute as text; numbers and booleans are formatted on the stack.
fn with_text(value: AttributeRef<'_>, f: impl FnOnce(&str) -> bool) -> bool {
    match value {
        AttributeRef::Str(s) => f(s),
        AttributeRef::Number(n) => f(NumberText::new(n).as_str()),
        AttributeRef::Bool(b) => f(if b { "true" } else { "false" }),
        AttributeRef::Other(_) => false,
    }
}

fn contains(set: &LookupSet<String>, text: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        set.contains(&text.to_lowercase())
    } else {
        set.contains(text)
    }
}

fn str_test(kind: StrKind, text: &str, operand: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        // Operands were lowercased at compile time.
        let text = text.to_lowercase();
        return str_test(kind, &text, operand, false);
    }
    match kind {
        StrKind::Contains => text.contains(operand),
        StrKind::StartsWith => text.starts_with(operand),
        StrKind::EndsWith => text.ends_with(operand),
    }
}

/// Parses a strict SemVer 2.0.0 version (no leading `v`, all three numbers), as Unleash does.
pub(crate) fn parse_semver(text: &str) -> Option<semver::Version> {
    semver::Version::parse(text).ok()
}

fn precedence(a: &semver::Version, b: &semver::Version) -> Ordering {
    // Build metadata does not take part in precedence (SemVer 2.0.0 §10).
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

fn semver_test(test: SemverTest, value: &semver::Version, operand: &semver::Version) -> bool {
    let order = precedence(value, operand);
    match test {
        SemverTest::Eq => order == Ordering::Equal,
        SemverTest::Lt => order == Ordering::Less,
        SemverTest::Lte => order != Ordering::Greater,
        SemverTest::Gt => order == Ordering::Greater,
        SemverTest::Gte => order != Ordering::Less,
        SemverTest::Caret => value.major == operand.major,
        SemverTest::Tilde => value.major == operand.major && value.minor == operand.minor,
    }
}
