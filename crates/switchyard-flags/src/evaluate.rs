//! Evaluation: a pure function of (compiled flags, key, expected type, context, now).

mod flagd;

use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::compiled::{
    CompiledFlag, CompiledFlags, CompiledRollout, CompiledServe, CompiledSplit, Stickiness,
};
use crate::context::{AttributeRef, EvaluationContext, SESSION_ID, Timestamp};
use crate::details::{ErrorCode, ErrorMessage, EvaluationDetails, Reason};
use crate::hashing::{in_rollout, split_index};
use crate::model::FlagType;
use crate::scalar::NumberText;

static NULL: Value = Value::Null;
static NO_METADATA: BTreeMap<String, Value> = BTreeMap::new();

/// A variant index (or none) and the reason it was chosen.
#[derive(Debug, Clone, Copy)]
struct Resolution {
    variant: Option<usize>,
    reason: Reason,
}

impl CompiledFlags {
    /// Evaluates flag `key` for `context` at time `now`.
    ///
    /// `expected` is the type the caller wants (OpenFeature's typed resolvers); `None` accepts any
    /// type. A `float` request accepts an `integer` flag. Never fails: problems come back as
    /// reason `ERROR` with an error code and a `null` value.
    pub fn evaluate<'a>(
        &'a self,
        key: &'a str,
        expected: Option<FlagType>,
        context: &EvaluationContext,
        now: Timestamp,
    ) -> EvaluationDetails<'a> {
        let Some(flag) = self.index.get(key).map(|i| &self.flags[*i]) else {
            return error(
                key,
                ErrorCode::FlagNotFound,
                ErrorMessage::FlagNotFound { key },
                &NO_METADATA,
            );
        };
        if let Some(semantics) = &flag.flagd {
            return flagd::evaluate(flag, semantics, expected, context, now);
        }
        if let Some(expected) = expected {
            let compatible = expected == flag.flag_type
                || (expected == FlagType::Float && flag.flag_type == FlagType::Integer);
            if !compatible {
                let message = ErrorMessage::TypeMismatch {
                    key: &flag.key,
                    actual: flag.flag_type,
                    expected,
                };
                return error(&flag.key, ErrorCode::TypeMismatch, message, &flag.metadata);
            }
        }
        let drawn = Cell::new(false);
        let resolution = self.resolve(flag, context, now, &drawn);
        let variant = resolution.variant.map(|i| &flag.variants[i]);
        EvaluationDetails {
            key: &flag.key,
            value: variant.map_or(&NULL, |(_, value)| value),
            variant: variant.map(|(name, _)| name.as_str()),
            reason: resolution.reason,
            error_code: None,
            error_message: None,
            metadata: &flag.metadata,
            random: drawn.get(),
        }
    }

    /// Evaluates every flag (OFREP bulk evaluation), in document order, without type checks.
    pub fn evaluate_all<'a>(
        &'a self,
        context: &'a EvaluationContext,
        now: Timestamp,
    ) -> impl Iterator<Item = EvaluationDetails<'a>> + 'a {
        self.flags
            .iter()
            .map(move |flag| self.evaluate(&flag.key, None, context, now))
    }

    fn resolve(
        &self,
        flag: &CompiledFlag,
        context: &EvaluationContext,
        now: Timestamp,
        drawn: &Cell<bool>,
    ) -> Resolution {
        if let Some(semantics) = &flag.flagd {
            return match flagd::resolve(flag, semantics, context, now) {
                Ok((variant, reason)) => Resolution { variant, reason },
                Err(_) => Resolution {
                    variant: None,
                    reason: Reason::Error,
                },
            };
        }
        if !flag.enabled {
            return Resolution {
                variant: flag.off_variant,
                reason: Reason::Disabled,
            };
        }
        for prerequisite in &flag.prerequisites {
            // Compilation rejected cycles and deep chains, so this recursion is bounded.
            let parent = self.resolve(&self.flags[prerequisite.flag], context, now, drawn);
            let served = parent.reason.is_served();
            let variant_ok = prerequisite.variants.is_empty()
                || parent
                    .variant
                    .is_some_and(|v| prerequisite.variants.contains(&v));
            if served != prerequisite.enabled || (prerequisite.enabled && !variant_ok) {
                return Resolution {
                    variant: flag.off_variant,
                    reason: Reason::Default,
                };
            }
        }
        if flag.rules.is_empty() {
            return match &flag.serve {
                Some(serve) => serve_with(flag, serve, Reason::Static, context, now, drawn),
                None if flag.default_variant.is_some() => Resolution {
                    variant: flag.default_variant,
                    reason: Reason::Static,
                },
                None => Resolution {
                    variant: None,
                    reason: Reason::Default,
                },
            };
        }
        for rule in &flag.rules {
            if !rule.when.matches(context, now) {
                continue;
            }
            let reason = match &rule.rollout {
                None => Reason::TargetingMatch,
                Some(rollout) => match rollout_decision(flag, rollout, context, now, drawn) {
                    Some(reason) => reason,
                    None => continue,
                },
            };
            return match &rule.serve {
                Some(serve) => serve_with(flag, serve, reason, context, now, drawn),
                None => Resolution {
                    variant: flag.default_variant,
                    reason,
                },
            };
        }
        Resolution {
            variant: flag.default_variant,
            reason: Reason::Default,
        }
    }
}

/// `Some(reason)` when the context is inside the rollout: `SPLIT` if the gate is partial.
fn rollout_decision(
    flag: &CompiledFlag,
    rollout: &CompiledRollout,
    context: &EvaluationContext,
    now: Timestamp,
    drawn: &Cell<bool>,
) -> Option<Reason> {
    let percentage = rollout.threshold.at(now.unix_millis());
    let inside = with_stickiness(&rollout.stickiness, context, now, drawn, |value| {
        in_rollout(flag.hashing, &rollout.salt, value, percentage)
    })?;
    let reason = if percentage >= 100.0 {
        Reason::TargetingMatch
    } else {
        Reason::Split
    };
    inside.then_some(reason)
}

fn serve_with(
    flag: &CompiledFlag,
    serve: &CompiledServe,
    reason: Reason,
    context: &EvaluationContext,
    now: Timestamp,
    drawn: &Cell<bool>,
) -> Resolution {
    match serve {
        CompiledServe::Variant(variant) => Resolution {
            variant: Some(*variant),
            reason,
        },
        CompiledServe::Split(split) => split_with(flag, split, context, now, drawn),
    }
}

fn split_with(
    flag: &CompiledFlag,
    split: &CompiledSplit,
    context: &EvaluationContext,
    now: Timestamp,
    drawn: &Cell<bool>,
) -> Resolution {
    for (when, variant) in &split.overrides {
        if when.matches(context, now) {
            return Resolution {
                variant: Some(*variant),
                reason: Reason::TargetingMatch,
            };
        }
    }
    let pick = |value: &[u8]| split_index(flag.hashing, &split.salt, value, &split.weights);
    // A context without the stickiness attribute gets a random variant (Unleash's behaviour).
    let index = with_stickiness(&split.stickiness, context, now, drawn, pick)
        .unwrap_or_else(|| with_random(now, drawn, pick));
    Resolution {
        variant: index.map(|i| split.variants[i]),
        reason: Reason::Split,
    }
}

/// Runs `f` on the stickiness value (as bytes: it is only hashed), or returns `None` when the
/// attribute is missing.
fn with_stickiness<R>(
    stickiness: &Stickiness,
    context: &EvaluationContext,
    now: Timestamp,
    drawn: &Cell<bool>,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    match stickiness {
        Stickiness::Default => {
            if let Some(key) = &context.targeting_key {
                return Some(f(key.as_bytes()));
            }
            match context.plain(SESSION_ID) {
                Some(value) => with_attribute_text(value, f),
                None => Some(with_random(now, drawn, f)),
            }
        }
        Stickiness::Random => Some(with_random(now, drawn, f)),
        Stickiness::Attribute(key) => with_attribute_text(context.lookup(key)?, f),
    }
}

fn with_attribute_text<R>(value: AttributeRef<'_>, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    match value {
        AttributeRef::Str(text) => Some(f(text.as_bytes())),
        AttributeRef::Number(n) => Some(f(NumberText::new(n).as_bytes())),
        AttributeRef::Bool(b) => Some(f(if b { b"true" } else { b"false" })),
        AttributeRef::Other(_) => None,
    }
}

/// "Random" stickiness. The engine is pure, so the draw is derived from `now` (milliseconds):
/// uniform across evaluations spread over time, repeatable for a fixed `now`.
fn with_random<R>(now: Timestamp, drawn: &Cell<bool>, f: impl FnOnce(&[u8]) -> R) -> R {
    drawn.set(true);
    f(NumberText::new(now.unix_millis() as f64).as_bytes())
}

fn error<'a>(
    key: &'a str,
    code: ErrorCode,
    message: ErrorMessage<'a>,
    metadata: &'a BTreeMap<String, Value>,
) -> EvaluationDetails<'a> {
    EvaluationDetails {
        key,
        value: &NULL,
        variant: None,
        reason: Reason::Error,
        error_code: Some(code),
        error_message: Some(message),
        metadata,
        random: false,
    }
}
