//! The evaluation plan: flags after validation, with every name resolved to an index, every
//! operand parsed and every set indexed. Nothing in here can be invalid.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::context::AttributeKey;
use crate::hashing::HashVersion;
use crate::lookup::LookupMap;
use crate::matcher::Matcher;
use crate::model::FlagType;

/// A compiled, immutable flag set, ready to evaluate. Cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct CompiledFlags {
    pub(crate) flags: Vec<CompiledFlag>,
    pub(crate) index: LookupMap<String, usize>,
}

impl CompiledFlags {
    /// The flag keys, in the order of the source document.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|flag| flag.key.as_str())
    }

    /// The number of flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there are no flags.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The type of a flag, if it exists.
    pub fn flag_type(&self, key: &str) -> Option<FlagType> {
        self.index.get(key).map(|i| self.flags[*i].flag_type)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledFlag {
    pub(crate) key: String,
    pub(crate) flag_type: FlagType,
    pub(crate) enabled: bool,
    pub(crate) variants: Vec<(String, Value)>,
    pub(crate) default_variant: Option<usize>,
    pub(crate) off_variant: Option<usize>,
    /// Served when there are no rules; `None` means the default variant.
    pub(crate) serve: Option<CompiledServe>,
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) prerequisites: Vec<CompiledPrerequisite>,
    pub(crate) hashing: HashVersion,
    pub(crate) metadata: BTreeMap<String, Value>,
    /// Set for flags with flagd semantics: they are evaluated by [`crate::jsonlogic`].
    pub(crate) flagd: Option<CompiledFlagd>,
}

/// What a flag with flagd semantics adds: its targeting, and its number variants as integers.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFlagd {
    /// `None` when the flag has no targeting (or `{}`): it serves its default variant.
    pub(crate) targeting: Option<crate::jsonlogic::Val>,
    /// Per variant, the value an integer request gets (truncated, as flagd does), for numbers.
    pub(crate) integers: Vec<Option<Value>>,
    /// How `fractional` buckets.
    pub(crate) fractional: crate::model::Fractional,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) when: Matcher,
    pub(crate) rollout: Option<CompiledRollout>,
    /// What a match serves; `None` means the default variant (the compiler has already folded
    /// in the flag-level `serve`).
    pub(crate) serve: Option<CompiledServe>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRollout {
    pub(crate) threshold: Threshold,
    pub(crate) stickiness: Stickiness,
    pub(crate) salt: String,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Threshold {
    Fixed(f64),
    Ramp {
        from: f64,
        to: f64,
        start: i64,
        end: i64,
    },
}

impl Threshold {
    /// The percentage at `now`: linear between the ramp's ends, clamped outside them.
    pub(crate) fn at(self, now_millis: i64) -> f64 {
        match self {
            Self::Fixed(percentage) => percentage,
            Self::Ramp {
                from,
                to,
                start,
                end,
            } => {
                if now_millis <= start {
                    from
                } else if now_millis >= end {
                    to
                } else {
                    let progress = (now_millis - start) as f64 / (end - start) as f64;
                    from + (to - from) * progress
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stickiness {
    /// Targeting key, else `sessionId`, else random.
    Default,
    Random,
    Attribute(AttributeKey),
}

#[derive(Debug, Clone)]
pub(crate) enum CompiledServe {
    Variant(usize),
    Split(CompiledSplit),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledSplit {
    pub(crate) overrides: Vec<(Matcher, usize)>,
    pub(crate) variants: Vec<usize>,
    pub(crate) weights: Vec<u32>,
    pub(crate) stickiness: Stickiness,
    pub(crate) salt: String,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPrerequisite {
    pub(crate) flag: usize,
    pub(crate) enabled: bool,
    pub(crate) variants: Vec<usize>,
}
