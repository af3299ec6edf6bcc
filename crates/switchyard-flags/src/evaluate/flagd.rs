//! Evaluation of flags with flagd semantics, as flagd's evaluator and its providers answer:
//! reasons `STATIC`, `TARGETING_MATCH`, `DEFAULT`, `DISABLED`; the caller's default (no variant)
//! for a disabled flag or one without a default variant; `PARSE_ERROR` when the targeting fails,
//! `GENERAL` when it names no variant, `TYPE_MISMATCH` when the served value is not of the
//! requested type.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::NULL;
use crate::compiled::{CompiledFlag, CompiledFlagd};
use crate::context::{EvaluationContext, TARGETING_KEY, Timestamp};
use crate::details::{ErrorCode, ErrorMessage, EvaluationDetails, Reason};
use crate::jsonlogic::{Val, apply_with, encode_json};
use crate::model::FlagType;

pub(super) fn evaluate<'a>(
    flag: &'a CompiledFlag,
    flagd: &'a CompiledFlagd,
    expected: Option<FlagType>,
    context: &EvaluationContext,
    now: Timestamp,
) -> EvaluationDetails<'a> {
    let served = |variant: Option<usize>, reason| EvaluationDetails {
        key: &flag.key,
        value: &NULL,
        variant: variant.map(|i| flag.variants[i].0.as_str()),
        reason,
        error_code: None,
        error_message: None,
        metadata: &flag.metadata,
        random: false,
    };
    let fail = |code, message: String| EvaluationDetails {
        key: &flag.key,
        value: &NULL,
        variant: None,
        reason: Reason::Error,
        error_code: Some(code),
        error_message: Some(ErrorMessage::Text(Cow::Owned(message))),
        metadata: &flag.metadata,
        random: false,
    };
    let (variant, reason) = match resolve(flag, flagd, context, now) {
        Ok(resolution) => resolution,
        Err((code, message)) => return fail(code, message),
    };
    // Without a variant the caller's default is served: the flag is disabled, or it has no
    // default variant (reason DEFAULT).
    let Some(index) = variant else {
        let reason = if reason == Reason::Disabled {
            Reason::Disabled
        } else {
            Reason::Default
        };
        return served(None, reason);
    };
    let (name, value) = &flag.variants[index];
    let typed = match expected {
        None => (!value.is_null()).then_some(value),
        Some(FlagType::Boolean) => value.is_boolean().then_some(value),
        Some(FlagType::String) => value.is_string().then_some(value),
        Some(FlagType::Float) => value.is_number().then_some(value),
        Some(FlagType::Object) => value.is_object().then_some(value),
        Some(FlagType::Integer) => flagd.integers[index].as_ref(),
    };
    match typed {
        Some(value) => EvaluationDetails {
            value,
            ..served(Some(index), reason)
        },
        None => {
            let wanted = expected.map_or("a value", FlagType::as_str);
            let message = format!(
                "flag `{}` served variant `{name}`, whose value {value} is not {wanted}",
                flag.key
            );
            fail(ErrorCode::TypeMismatch, message)
        }
    }
}

/// The variant (none: the caller's default) and reason, or why evaluation failed.
pub(super) fn resolve(
    flag: &CompiledFlag,
    flagd: &CompiledFlagd,
    context: &EvaluationContext,
    now: Timestamp,
) -> Result<(Option<usize>, Reason), (ErrorCode, String)> {
    if !flag.enabled {
        return Ok((None, Reason::Disabled));
    }
    let Some(rule) = &flagd.targeting else {
        return Ok((flag.default_variant, Reason::Static));
    };
    let data = data(context, &flag.key, now);
    let result = apply_with(rule, &data, flagd.fractional).map_err(|abort| {
        let message = format!("targeting of flag `{}` failed: {}", flag.key, abort.0);
        (ErrorCode::ParseError, message)
    })?;
    if result == Val::Null {
        return Ok((flag.default_variant, Reason::Default));
    }
    let encoded = encode_json(&result).ok_or_else(|| {
        let message = format!(
            "targeting of flag `{}` gave a number that is not finite",
            flag.key
        );
        (ErrorCode::ParseError, message)
    })?;
    // flagd names the variant by the result's JSON text without its quotes.
    let name = encoded.replace('"', "");
    match flag
        .variants
        .binary_search_by(|(n, _)| n.as_str().cmp(&name))
    {
        Ok(i) => Ok((Some(i), Reason::TargetingMatch)),
        Err(_) => {
            let message = format!(
                "targeting of flag `{}` gave `{name}`, which is not a variant",
                flag.key
            );
            Err((ErrorCode::General, message))
        }
    }
}

/// The data flagd's targeting sees: the context's attributes and targeting key, and `$flagd`
/// with the flag key and the evaluation time in whole seconds.
fn data(context: &EvaluationContext, flag_key: &str, now: Timestamp) -> Val {
    let mut map: BTreeMap<String, Val> = context
        .attributes
        .iter()
        .map(|(name, value)| (name.to_owned(), Val::from_json(value)))
        .collect();
    if let Some(key) = &context.targeting_key {
        map.insert(TARGETING_KEY.to_owned(), Val::Str(key.clone()));
    }
    let mut flagd = BTreeMap::new();
    flagd.insert("flagKey".to_owned(), Val::Str(flag_key.to_owned()));
    let seconds = now.unix_millis().div_euclid(1000);
    flagd.insert("timestamp".to_owned(), Val::Num(seconds as f64));
    map.insert("$flagd".to_owned(), Val::Obj(flagd));
    Val::Obj(map)
}
