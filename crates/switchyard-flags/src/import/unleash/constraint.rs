//! Unleash constraints and built-in strategies as native conditions and rollouts.
//!
//! Unleash treats a constraint it cannot evaluate (unknown operator, unparsable operand, invalid
//! regex) as false; the native model rejects such input at compile time, so these become the
//! constant-false condition `{any: []}` here.

use serde_json::Value;

use super::wire::{Constraint, Strategy};
use crate::context::TARGETING_KEY;
use crate::model::{AttributeCondition, Condition, Operator, Rollout};
use crate::scalar::{Cidr, parse_number, parse_rfc3339_millis};

/// The constant-false condition.
pub(crate) fn never() -> Condition {
    Condition::Any(Vec::new())
}

/// Maps an Unleash context field name to the native attribute name.
pub(crate) fn attribute_name(context_name: &str) -> String {
    match context_name {
        "userId" => TARGETING_KEY.to_owned(),
        other => other.to_owned(),
    }
}

/// Maps an Unleash stickiness to the native one.
pub(crate) fn stickiness(name: Option<&str>) -> String {
    match name {
        None | Some("") | Some("default") => "default".to_owned(),
        Some(other) => attribute_name(other),
    }
}

fn attribute(name: &str, op: Operator, values: Vec<Value>, case_insensitive: bool) -> Condition {
    Condition::Attribute(AttributeCondition {
        name: attribute_name(name),
        op,
        values,
        case_insensitive,
    })
}

/// One Unleash constraint as a native condition.
pub(crate) fn constraint(c: &Constraint) -> Condition {
    let single = c.value.clone().or_else(|| c.values.first().cloned());
    let single_text = single
        .as_ref()
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            single
                .as_ref()
                .and_then(Value::as_f64)
                .map(|n| n.to_string())
        });
    let values = || {
        c.values
            .iter()
            .filter(|v| !v.is_null())
            .cloned()
            .collect::<Vec<_>>()
    };
    let one = |op, valid: bool| match (&single_text, valid) {
        (Some(text), true) => attribute(
            &c.context_name,
            op,
            vec![Value::String(text.clone())],
            c.case_insensitive,
        ),
        _ => never(),
    };
    let text = single_text.as_deref().unwrap_or_default();
    let number_ok = parse_number(text).is_some();
    let date_ok = parse_rfc3339_millis(text).is_some();
    let semver_ok = semver::Version::parse(text).is_ok();
    let condition = match c.operator.as_str() {
        // Unleash ignores `caseInsensitive` for IN / NOT_IN.
        "IN" => attribute(&c.context_name, Operator::In, values(), false),
        "NOT_IN" => attribute(&c.context_name, Operator::NotIn, values(), false),
        "STR_CONTAINS" => attribute(
            &c.context_name,
            Operator::Contains,
            values(),
            c.case_insensitive,
        ),
        "STR_STARTS_WITH" => attribute(
            &c.context_name,
            Operator::StartsWith,
            values(),
            c.case_insensitive,
        ),
        "STR_ENDS_WITH" => attribute(
            &c.context_name,
            Operator::EndsWith,
            values(),
            c.case_insensitive,
        ),
        "NUM_EQ" => one(Operator::NumEq, number_ok),
        "NUM_GT" => one(Operator::NumGt, number_ok),
        "NUM_GTE" => one(Operator::NumGte, number_ok),
        "NUM_LT" => one(Operator::NumLt, number_ok),
        "NUM_LTE" => one(Operator::NumLte, number_ok),
        "DATE_AFTER" => one(Operator::DateAfter, date_ok),
        "DATE_BEFORE" => one(Operator::DateBefore, date_ok),
        "SEMVER_EQ" => one(Operator::SemverEq, semver_ok),
        "SEMVER_GT" => one(Operator::SemverGt, semver_ok),
        "SEMVER_LT" => one(Operator::SemverLt, semver_ok),
        "SEMVER_GTE" => one(Operator::SemverGte, semver_ok),
        "SEMVER_LTE" => one(Operator::SemverLte, semver_ok),
        "REGEX" => one(
            Operator::Matches,
            regex::RegexBuilder::new(text)
                .size_limit(1 << 20)
                .build()
                .is_ok(),
        ),
        "IN_CIDR" => {
            // Invalid blocks are skipped, as Unleash does; none valid means no match.
            let blocks: Vec<Value> = values()
                .into_iter()
                .filter(|v| v.as_str().is_some_and(|s| Cidr::parse(s).is_some()))
                .collect();
            if blocks.is_empty() {
                never()
            } else {
                attribute(&c.context_name, Operator::InCidr, blocks, false)
            }
        }
        _ => return never(),
    };
    if c.inverted {
        Condition::Not(Box::new(condition))
    } else {
        condition
    }
}

fn parameter_text(strategy: &Strategy, name: &str) -> Option<String> {
    match strategy.parameters.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn percentage(strategy: &Strategy, name: &str) -> f64 {
    parameter_text(strategy, name)
        .and_then(|t| parse_number(&t))
        .unwrap_or(0.0)
        .clamp(0.0, 100.0)
}

fn list(strategy: &Strategy, name: &str) -> Vec<String> {
    parameter_text(strategy, name)
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The condition and rollout a built-in strategy adds; unknown strategies never match.
pub(crate) fn builtin_strategy(
    strategy: &Strategy,
    feature: &str,
) -> (Option<Condition>, Option<Rollout>) {
    let group = parameter_text(strategy, "groupId")
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| feature.to_owned());
    let rollout = |percentage: f64, stickiness: String| Rollout {
        percentage: Some(percentage),
        ramp: None,
        stickiness,
        salt: Some(group.clone()),
    };
    let strings = |items: Vec<String>| items.into_iter().map(Value::String).collect::<Vec<_>>();
    match strategy.name.as_str() {
        "default" => (None, None),
        "userWithId" => (
            Some(attribute(
                "userId",
                Operator::In,
                strings(list(strategy, "userIds")),
                false,
            )),
            None,
        ),
        "gradualRolloutUserId" => (
            None,
            Some(rollout(
                percentage(strategy, "percentage"),
                TARGETING_KEY.to_owned(),
            )),
        ),
        "gradualRolloutSessionId" => (
            None,
            Some(rollout(
                percentage(strategy, "percentage"),
                "sessionId".to_owned(),
            )),
        ),
        "gradualRolloutRandom" => (
            None,
            Some(rollout(
                percentage(strategy, "percentage"),
                "random".to_owned(),
            )),
        ),
        "flexibleRollout" => {
            let sticky = stickiness(parameter_text(strategy, "stickiness").as_deref());
            (None, Some(rollout(percentage(strategy, "rollout"), sticky)))
        }
        "remoteAddress" => {
            let (blocks, others): (Vec<String>, Vec<String>) = list(strategy, "IPs")
                .into_iter()
                .partition(|ip| Cidr::parse(ip).is_some());
            let mut any = Vec::new();
            if !blocks.is_empty() {
                any.push(attribute(
                    "remoteAddress",
                    Operator::InCidr,
                    strings(blocks),
                    false,
                ));
            }
            if !others.is_empty() {
                any.push(attribute(
                    "remoteAddress",
                    Operator::In,
                    strings(others),
                    false,
                ));
            }
            (Some(Condition::Any(any)), None)
        }
        // The server puts the machine's hostname in the context as `hostname`.
        "applicationHostname" => {
            let hosts = list(strategy, "hostNames")
                .into_iter()
                .map(|h| h.to_lowercase())
                .collect();
            (
                Some(attribute("hostname", Operator::In, strings(hosts), true)),
                None,
            )
        }
        _ => (Some(never()), None),
    }
}
