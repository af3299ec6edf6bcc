//! Unleash → native.
//!
//! Each Unleash feature becomes one native flag:
//! - a feature with no variants anywhere is a `boolean` flag with variants `on: true` /
//!   `off: false`, serving `on` when enabled;
//! - a feature with variants (feature-level or strategy-level) is an `object` flag whose values
//!   are the Unleash payloads (`{"type": "string", "value": "..."}`, `{}` without payload), plus the
//!   variant [`UNLEASH_DISABLED_VARIANT`] that Unleash serves when no variant applies;
//! - each strategy is a rule (constraints, segments and the strategy's own check in `when`, its
//!   percentage in `rollout`, its variants in `serve`); feature variants are the flag's `serve`
//!   split, with overrides; dependencies are prerequisites.
//!
//! Hashing is [`HashVersion::V1`], which is Unleash's, so users keep their buckets.

mod constraint;
mod wire;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use self::constraint::{builtin_strategy, constraint, never, stickiness};
use self::wire::{ClientFeatures, Dependency, Feature, Segment, Variant, fold_events};
use crate::context::EvaluationContext;
use crate::error::ImportError;
use crate::hashing::HashVersion;
use crate::model::{
    AttributeCondition, Condition, FlagDefinition, FlagSet, FlagType, Operator, Override,
    Prerequisite, Rule, Serve, Split, WeightedVariant,
};
use crate::model::{Fractional, Semantics};

/// The variant name Unleash reports when a feature serves no variant.
pub const UNLEASH_DISABLED_VARIANT: &str = "disabled";
const ON: &str = "on";
const OFF: &str = "off";

impl FlagSet {
    /// Imports Unleash client features (`/api/client/features`, with `segments`) or a delta
    /// event stream (`{"events": [...]}`, applied in order).
    ///
    /// # Errors
    /// [`ImportError::Parse`] when the document is not Unleash JSON.
    pub fn from_unleash_json(text: &str) -> Result<Self, ImportError> {
        let document: ClientFeatures =
            serde_json::from_str(text).map_err(|source| ImportError::Parse {
                format: "unleash",
                source,
            })?;
        let (features, segments) = match document.events {
            Some(events) => fold_events(events),
            None => (document.features, document.segments),
        };
        Ok(convert(&features, &segments))
    }
}

impl EvaluationContext {
    /// Builds a context from an Unleash context object: `userId` becomes the targeting key,
    /// `properties` are flattened into attributes, the other standard fields keep their names.
    pub fn from_unleash(context: &Value) -> Self {
        let mut result = Self::default();
        let Some(object) = context.as_object() else {
            return result;
        };
        for (name, value) in object {
            match (name.as_str(), value) {
                ("userId", Value::String(id)) => result.targeting_key = Some(id.clone()),
                ("properties", Value::Object(properties)) => {
                    for (key, property) in properties {
                        result.attributes.insert(key.clone(), property.clone());
                    }
                }
                (_, Value::Null) => {}
                (other, _) => {
                    result.attributes.insert(other.to_owned(), value.clone());
                }
            }
        }
        result
    }
}

fn convert(features: &[Feature], segments: &[Segment]) -> FlagSet {
    let segment_ids: HashMap<i64, String> = segments
        .iter()
        .map(|s| (s.id, segment_name(s.id)))
        .collect();
    let native_segments = segments
        .iter()
        .map(|s| {
            (
                segment_name(s.id),
                Condition::All(s.constraints.iter().map(constraint).collect()),
            )
        })
        .collect();
    let by_name: HashMap<&str, &Feature> = features.iter().map(|f| (f.name.as_str(), f)).collect();
    let flags = features
        .iter()
        .map(|f| convert_feature(f, &segment_ids, &by_name))
        .collect();
    FlagSet {
        flags,
        segments: native_segments,
    }
}

fn segment_name(id: i64) -> String {
    format!("unleash-segment-{id}")
}

fn has_variants(feature: &Feature) -> bool {
    !feature.variants.is_empty() || feature.strategies.iter().any(|s| !s.variants.is_empty())
}

/// Registers Unleash variants as native ones; a name reused with another payload is suffixed.
struct VariantTable {
    values: BTreeMap<String, Value>,
}

impl VariantTable {
    fn add(&mut self, variant: &Variant) -> String {
        let payload = variant
            .payload
            .clone()
            .filter(|p| !p.is_null())
            .unwrap_or_else(|| json!({}));
        let mut name = variant.name.clone();
        let mut n = 2;
        while let Some(existing) = self.values.get(&name) {
            if *existing == payload {
                return name;
            }
            name = format!("{}#{n}", variant.name);
            n += 1;
        }
        self.values.insert(name.clone(), payload);
        name
    }

    fn split(&mut self, variants: &[Variant], sticky: Option<&str>, salt: &str) -> Option<Serve> {
        if variants.is_empty() {
            return None;
        }
        let mut arms = Vec::with_capacity(variants.len());
        let mut overrides = Vec::new();
        for variant in variants {
            let name = self.add(variant);
            // Unleash weights are integers (usually summing to 1000); fractions are truncated.
            arms.push(WeightedVariant {
                variant: name.clone(),
                weight: variant.weight.max(0.0) as u32,
            });
            for o in &variant.overrides {
                overrides.push(Override {
                    variant: name.clone(),
                    when: Condition::Attribute(AttributeCondition {
                        name: constraint::attribute_name(&o.context_name),
                        op: Operator::In,
                        values: o.values.clone(),
                        case_insensitive: false,
                    }),
                });
            }
        }
        if arms.iter().all(|a| a.weight == 0) {
            // Every weight zero: Unleash serves no variant.
            return Some(Serve::Variant(UNLEASH_DISABLED_VARIANT.to_owned()));
        }
        Some(Serve::Split(Split {
            variants: arms,
            stickiness: stickiness(sticky),
            salt: Some(salt.to_owned()),
            overrides,
        }))
    }
}

fn convert_feature(
    feature: &Feature,
    segment_ids: &HashMap<i64, String>,
    by_name: &HashMap<&str, &Feature>,
) -> FlagDefinition {
    let with_variants = has_variants(feature);
    let mut table = VariantTable {
        values: BTreeMap::new(),
    };
    let (flag_type, default_variant, serve) = if with_variants {
        table
            .values
            .insert(UNLEASH_DISABLED_VARIANT.to_owned(), json!({}));
        let sticky = feature
            .variants
            .first()
            .and_then(|v| v.stickiness.as_deref());
        let serve = table
            .split(&feature.variants, sticky, &feature.name)
            .unwrap_or_else(|| Serve::Variant(UNLEASH_DISABLED_VARIANT.to_owned()));
        (FlagType::Object, UNLEASH_DISABLED_VARIANT, serve)
    } else {
        table.values.insert(ON.to_owned(), Value::Bool(true));
        table.values.insert(OFF.to_owned(), Value::Bool(false));
        (FlagType::Boolean, OFF, Serve::Variant(ON.to_owned()))
    };
    let mut rules = Vec::with_capacity(feature.strategies.len());
    for strategy in &feature.strategies {
        let (check, rollout) = builtin_strategy(strategy, &feature.name);
        let mut all: Vec<Condition> = strategy.constraints.iter().map(constraint).collect();
        for id in &strategy.segments {
            all.push(
                segment_ids
                    .get(id)
                    .map_or_else(never, |name| Condition::Segment(name.clone())),
            );
        }
        all.extend(check);
        let group = rollout
            .as_ref()
            .and_then(|r| r.salt.clone())
            .unwrap_or_else(|| feature.name.clone());
        let sticky = rollout.as_ref().map(|r| r.stickiness.clone());
        let strategy_sticky = strategy
            .parameters
            .get("stickiness")
            .and_then(Value::as_str)
            .or_else(|| {
                strategy
                    .variants
                    .first()
                    .and_then(|v| v.stickiness.as_deref())
            });
        let own_serve = table.split(
            &strategy.variants,
            strategy_sticky.or(sticky.as_deref()),
            &group,
        );
        rules.push(Rule {
            name: Some(strategy.name.clone()),
            when: (!all.is_empty()).then(|| {
                if all.len() == 1 {
                    all.remove(0)
                } else {
                    Condition::All(all)
                }
            }),
            rollout,
            serve: own_serve,
        });
    }
    let mut prerequisites = Vec::new();
    for dependency in &feature.dependencies {
        match prerequisite(dependency, by_name) {
            Some(p) => prerequisites.push(p),
            None => {
                // Unleash: a missing parent, a parent that has dependencies itself, or a variant
                // the parent can never serve leaves the child off for everyone.
                prerequisites.clear();
                rules = vec![Rule {
                    name: Some(format!(
                        "unsatisfiable dependency on `{}`",
                        dependency.feature
                    )),
                    when: Some(never()),
                    rollout: None,
                    serve: None,
                }];
                break;
            }
        }
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("source".to_owned(), Value::String("unleash".to_owned()));
    FlagDefinition {
        key: feature.name.clone(),
        flag_type,
        description: feature.description.clone(),
        enabled: feature.enabled,
        environments: BTreeMap::new(),
        variants: table.values,
        default_variant: Some(default_variant.to_owned()),
        off_variant: None,
        serve: Some(serve),
        rules,
        prerequisites,
        hashing: HashVersion::V1,
        metadata,
        semantics: Semantics::Native,
        targeting: None,
        fractional: Fractional::V2,
    }
}

fn prerequisite(
    dependency: &Dependency,
    by_name: &HashMap<&str, &Feature>,
) -> Option<Prerequisite> {
    let parent = by_name.get(dependency.feature.as_str())?;
    if !parent.dependencies.is_empty() {
        return None;
    }
    let enabled = dependency.enabled.unwrap_or(true);
    let wanted = dependency.variants.clone().unwrap_or_default();
    if !enabled || wanted.is_empty() {
        return Some(Prerequisite {
            flag: parent.name.clone(),
            enabled,
            variants: Vec::new(),
        });
    }
    if !has_variants(parent) {
        // A boolean import always reports Unleash's "disabled" variant.
        return wanted
            .iter()
            .any(|v| v == UNLEASH_DISABLED_VARIANT)
            .then(|| Prerequisite {
                flag: parent.name.clone(),
                enabled: true,
                variants: Vec::new(),
            });
    }
    let known = |name: &String| {
        name == UNLEASH_DISABLED_VARIANT
            || parent
                .variants
                .iter()
                .chain(parent.strategies.iter().flat_map(|s| &s.variants))
                .any(|v| &v.name == name)
    };
    let variants: Vec<String> = wanted.into_iter().filter(known).collect();
    (!variants.is_empty()).then(|| Prerequisite {
        flag: parent.name.clone(),
        enabled: true,
        variants,
    })
}
