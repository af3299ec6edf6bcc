//! Compiled conditions and how they match a context. Built once by [`crate::compile`]; matching
//! borrows the context and does not allocate, except to lowercase non-ASCII (or very long) text
//! for a case-insensitive test and to parse a pre-release version with long identifiers.

use std::cmp::Ordering;
use std::sync::Arc;

use regex::Regex;

use crate::context::{AttributeKey, AttributeRef, EvaluationContext, Timestamp};
use crate::lookup::LookupSet;
use crate::scalar::{Cidr, NumberText, parse_ip, parse_number, parse_rfc3339_millis};
use crate::version::{SemverTest, matches_version};

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
        attribute: AttributeKey,
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
    fn matches(&self, attribute: &AttributeKey, ctx: &EvaluationContext, now: Timestamp) -> bool {
        let value = ctx.lookup(attribute);
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
                    None if attribute.is_current_time() => Some(now.unix_millis() as f64 / 1000.0),
                    _ => None,
                };
                number
                    .and_then(|n| n.partial_cmp(operand))
                    .is_some_and(|found| accept(found, *ordering, *comparison))
            }
            Self::Semver(test, operand) => match value {
                Some(AttributeRef::Str(s)) => matches_version(*test, s, operand),
                _ => false,
            },
            Self::Date(ordering, operand) => {
                let millis = match value {
                    Some(AttributeRef::Str(s)) => parse_rfc3339_millis(s),
                    None if attribute.is_current_time() => Some(now.unix_millis()),
                    _ => None,
                };
                millis.is_some_and(|m| m.cmp(operand) == *ordering)
            }
            Self::Cidr(blocks) => match value {
                Some(AttributeRef::Str(s)) => {
                    parse_ip(s).is_some_and(|ip| blocks.iter().any(|block| block.contains(ip)))
                }
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
        with_lowercase(text, |lower| set.contains(lower))
    } else {
        set.contains(text)
    }
}

fn str_test(kind: StrKind, text: &str, operand: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        // Operands were lowercased at compile time.
        return with_lowercase(text, |lower| str_test(kind, lower, operand, false));
    }
    match kind {
        StrKind::Contains => text.contains(operand),
        StrKind::StartsWith => text.starts_with(operand),
        StrKind::EndsWith => text.ends_with(operand),
    }
}

/// Longest text lowercased on the stack; longer (or non-ASCII) text is lowercased on the heap.
const STACK_LOWERCASE: usize = 128;

/// Runs `f` on `text` lowercased as [`str::to_lowercase`] would. ASCII text (hostnames, emails,
/// plans: nearly everything a case-insensitive rule sees) is folded in a stack buffer, since
/// Unicode lowercasing of ASCII is ASCII lowercasing.
fn with_lowercase<R>(text: &str, f: impl FnOnce(&str) -> R) -> R {
    if text.is_ascii() && text.len() <= STACK_LOWERCASE {
        let mut buf = [0u8; STACK_LOWERCASE];
        let lower = &mut buf[..text.len()];
        lower.copy_from_slice(text.as_bytes());
        lower.make_ascii_lowercase();
        // ASCII in, ASCII out: the conversion cannot fail.
        if let Ok(lower) = std::str::from_utf8(lower) {
            return f(lower);
        }
    }
    f(&text.to_lowercase())
}
