//! Native → Unleash client features, for Unleash server SDKs that evaluate locally.
//!
//! The target is what Unleash's frontend API answers for the same flags (see [`unleash_variant`]):
//! a flag is *enabled* for a context when it serves a value through a rule or statically (reason
//! `STATIC`, `TARGETING_MATCH` or `SPLIT`; a boolean flag only when that value is `true`); a flag
//! that falls through to its default variant, is off, or fails a prerequisite is disabled. A
//! non-boolean flag's variant is the served variant with its value as the payload.
//!
//! Each rule becomes one Unleash strategy per disjunct of its condition (negations pushed down
//! to inverted constraints, segments inlined), carrying the rule's rollout as a
//! `flexibleRollout` and the variant (or split) it serves as strategy variants; Unleash, like the
//! native model, lets the first enabled strategy decide. Prerequisites become dependencies.
//! A flag that Unleash cannot express exactly is left out with the reason, never approximated:
//! flagd flags (JsonLogic), ramps, buckets other than Unleash's (`hashing: flagd-v2`) with
//! partial rollouts or splits, a boolean rule serving `false` ahead of one serving `true`,
//! operators Unleash lacks (`semverCaret`, `semverTilde`, case-insensitive `in`), split overrides
//! that are not `in` lists in variant order, and dependencies Unleash would read otherwise.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use crate::context::TARGETING_KEY;
use crate::details::EvaluationDetails;
use crate::hashing::HashVersion;
use crate::import::unleash::UNLEASH_DISABLED_VARIANT;
use crate::model::{
    AttributeCondition, Condition, DEFAULT_STICKINESS, FlagDefinition, FlagSet, FlagType, Operator,
    Rollout, Semantics, Serve, Split,
};
use crate::scalar::NumberText;

/// Disjuncts one rule may expand into before it is refused as too large.
const MAX_STRATEGIES_PER_RULE: usize = 64;

/// Unleash client features for one environment, and the flags left out.
#[derive(Debug, Clone, PartialEq)]
pub struct UnleashExport {
    /// The `features` array of `/api/client/features`, in the set's order.
    pub features: Vec<Value>,
    /// Flags Unleash cannot express exactly, with the reason.
    pub left_out: Vec<LeftOut>,
}

/// A flag the Unleash export leaves out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    /// The flag key.
    pub flag: String,
    /// Why Unleash cannot express it.
    pub reason: String,
}

/// What Unleash SDKs answer for one evaluation: `None` when the flag is disabled for the context,
/// else the variant `getVariant` returns (`{name, enabled, feature_enabled: true, payload?}`).
///
/// Enabled means served through a rule or statically (reason `STATIC`, `TARGETING_MATCH` or
/// `SPLIT`, no error) and, for a boolean value, `true`. A boolean flag has no variants (Unleash's
/// `disabled`). Other flags report the served variant: flags imported from Unleash keep their
/// variant names (without the `#n` the importer adds to a reused name) and payloads (`{}` means
/// none), and their variant [`UNLEASH_DISABLED_VARIANT`] is Unleash's "no variant"; other flags'
/// values become `string`, `number` or `json` payloads.
pub fn unleash_answer(details: &EvaluationDetails<'_>) -> Option<Value> {
    if details.error_code.is_some() || !details.reason.is_served() || details.value.is_null() {
        return None;
    }
    let no_variant =
        json!({"name": UNLEASH_DISABLED_VARIANT, "enabled": false, "feature_enabled": true});
    if let Value::Bool(enabled) = details.value {
        return enabled.then_some(no_variant);
    }
    let from_unleash = is_from_unleash(details.metadata);
    let name = unleash_variant_name(
        details.variant.unwrap_or(UNLEASH_DISABLED_VARIANT),
        from_unleash,
    );
    if from_unleash && name == UNLEASH_DISABLED_VARIANT {
        return Some(no_variant);
    }
    let mut variant = json!({"name": name, "enabled": true, "feature_enabled": true});
    if let Some(payload) = payload(details.value, from_unleash) {
        variant["payload"] = payload;
    }
    Some(variant)
}

/// Whether a flag was imported from Unleash (the importer marks it in `metadata.source`).
fn is_from_unleash(metadata: &BTreeMap<String, Value>) -> bool {
    metadata.get("source").and_then(Value::as_str) == Some("unleash")
}

fn unleash_variant_name(name: &str, from_unleash: bool) -> &str {
    if from_unleash {
        name.split('#').next().unwrap_or(name)
    } else {
        name
    }
}

fn payload(value: &Value, from_unleash: bool) -> Option<Value> {
    if from_unleash {
        return value
            .as_object()
            .filter(|p| !p.is_empty())
            .map(|p| Value::Object(p.clone()));
    }
    Some(match value {
        Value::String(text) => json!({"type": "string", "value": text}),
        Value::Number(n) => json!({"type": "number", "value": n.to_string()}),
        other => json!({"type": "json", "value": other.to_string()}),
    })
}

impl FlagSet {
    /// The set as Unleash client features for `environment` (whose kill switches apply), with
    /// segments inlined into each strategy's constraints.
    pub fn to_unleash(&self, environment: &str) -> UnleashExport {
        let mut exported: Vec<(&FlagDefinition, Exported)> = Vec::new();
        let mut left_out = Vec::new();
        for flag in &self.flags {
            match export_flag(self, flag, environment) {
                Ok(feature) => exported.push((flag, feature)),
                Err(reason) => left_out.push(LeftOut {
                    flag: flag.key.clone(),
                    reason,
                }),
            }
        }
        // Dependencies read the other exports, so all are resolved before any is taken.
        let by_key: HashMap<&str, &Exported> = exported
            .iter()
            .map(|(flag, feature)| (flag.key.as_str(), feature))
            .collect();
        let resolved: Vec<_> = exported
            .iter()
            .map(|(flag, _)| dependencies(flag, &by_key))
            .collect();
        let mut features = Vec::with_capacity(exported.len());
        for ((flag, mut feature), dependencies) in exported.into_iter().zip(resolved) {
            match dependencies {
                Ok(dependencies) => {
                    feature.json["dependencies"] = Value::Array(dependencies);
                    features.push(feature.json);
                }
                Err(reason) => left_out.push(LeftOut {
                    flag: flag.key.clone(),
                    reason,
                }),
            }
        }
        UnleashExport { features, left_out }
    }
}

/// One exported feature, before its dependencies are resolved.
struct Exported {
    json: Value,
    /// Whether Unleash's `isEnabled` is exactly the native "served" (false when a boolean flag
    /// may serve `false`, which Unleash reports as disabled).
    enabled_is_served: bool,
    /// Whether the flag is boolean (no variants in Unleash).
    boolean: bool,
    /// Whether it has prerequisites of its own.
    has_prerequisites: bool,
    /// Whether it was imported from Unleash (its variant names are Unleash's).
    from_unleash: bool,
}

fn export_flag(
    set: &FlagSet,
    flag: &FlagDefinition,
    environment: &str,
) -> Result<Exported, String> {
    if flag.semantics == Semantics::Flagd {
        return Err("flagd targeting is JsonLogic, which Unleash strategies cannot express".into());
    }
    let from_unleash = is_from_unleash(&flag.metadata);
    let enabled = flag
        .environments
        .get(environment)
        .map_or(flag.enabled, |state| state.enabled);
    let mut exporter = FlagExporter {
        set,
        flag,
        from_unleash,
        served_false: false,
        feature_split: None,
    };
    let feature_variants = exporter.feature_variants()?;
    let strategies = exporter.strategies()?;
    let mut json = json!({
        "name": flag.key,
        "type": "release",
        "project": "default",
        "enabled": enabled && !strategies.is_empty(),
        "stale": false,
        "impressionData": false,
        "strategies": strategies,
        "variants": feature_variants,
    });
    if let Some(description) = &flag.description {
        json["description"] = Value::String(description.clone());
    }
    Ok(Exported {
        json,
        enabled_is_served: !exporter.served_false,
        boolean: flag.flag_type == FlagType::Boolean,
        has_prerequisites: !flag.prerequisites.is_empty(),
        from_unleash,
    })
}

struct FlagExporter<'a> {
    set: &'a FlagSet,
    flag: &'a FlagDefinition,
    from_unleash: bool,
    /// Set when some path serves a boolean `false` (served natively, disabled for Unleash).
    served_false: bool,
    /// The flag's own split when it is exported as the feature's variants (which hash with the
    /// feature name and honour overrides in every Unleash SDK); strategies serving it carry no
    /// variants of their own.
    feature_split: Option<&'a Split>,
}

/// What a serve means for Unleash.
enum Outcome<'a> {
    /// Disabled (a boolean `false`).
    Disabled,
    /// Enabled, with the feature's variants (or none).
    Feature,
    /// Enabled, with these strategy variants, hashed on this split (when there is a choice).
    Strategy(Vec<Value>, Option<&'a Split>),
}

impl<'a> FlagExporter<'a> {
    /// The feature-level variants: the flag's own split, when it can be one.
    fn feature_variants(&mut self) -> Result<Vec<Value>, String> {
        let flag = self.flag;
        let Some(Serve::Split(split)) = &flag.serve else {
            return Ok(Vec::new());
        };
        let salted_by_key = split.salt.as_ref().is_none_or(|salt| *salt == flag.key);
        if flag.flag_type == FlagType::Boolean
            || flag.hashing != HashVersion::V1
            || !salted_by_key
            || single_arm(split).is_some()
        {
            return Ok(Vec::new());
        }
        self.feature_split = Some(split);
        self.split_variants(split, true)
    }

    fn strategies(&mut self) -> Result<Vec<Value>, String> {
        let flag = self.flag;
        let fallback = flag.serve.clone().or_else(|| {
            flag.default_variant
                .as_ref()
                .map(|name| Serve::Variant(name.clone()))
        });
        if flag.rules.is_empty() {
            let Some(serve) = &fallback else {
                return Ok(Vec::new());
            };
            self.served_false = self.serves_false(serve);
            return self.rule_strategies(None, None, serve, "serve");
        }
        let mut strategies = Vec::new();
        for (i, rule) in flag.rules.iter().enumerate() {
            let path = format!("rules[{i}]");
            let Some(serve) = rule.serve.as_ref().or(fallback.as_ref()) else {
                return Err(format!("{path} serves nothing"));
            };
            if self.serves_false(serve) {
                self.served_false = true;
                // Contexts this rule catches are disabled, and so is every context that falls
                // through: fine while no later rule enables anyone.
                if let Some(later) = flag.rules[i + 1..].iter().position(|r| {
                    !r.serve
                        .as_ref()
                        .or(fallback.as_ref())
                        .is_some_and(|s| self.serves_false(s))
                }) {
                    return Err(format!(
                        "{path} serves false ahead of rules[{}], which serves true; Unleash \
                         strategies can only enable",
                        i + 1 + later
                    ));
                }
                break;
            }
            strategies.extend(self.rule_strategies(
                rule.when.as_ref(),
                rule.rollout.as_ref(),
                serve,
                &path,
            )?);
        }
        Ok(strategies)
    }

    /// Whether `serve` is a boolean `false` (a boolean split mixing values is refused later).
    fn serves_false(&self, serve: &Serve) -> bool {
        self.flag.flag_type == FlagType::Boolean
            && matches!(self.outcome(serve), Ok(Outcome::Disabled))
    }

    /// The strategies of one rule: one per disjunct of its condition, none when its rollout
    /// admits nobody.
    fn rule_strategies(
        &self,
        when: Option<&Condition>,
        rollout: Option<&Rollout>,
        serve: &Serve,
        path: &str,
    ) -> Result<Vec<Value>, String> {
        let (variants, split) = match self.outcome(serve).map_err(|e| format!("{path}: {e}"))? {
            Outcome::Disabled => return Ok(Vec::new()),
            Outcome::Feature => (Vec::new(), None),
            Outcome::Strategy(variants, split) => (variants, split),
        };
        let Some((name, parameters)) = self.parameters(rollout, split, path)? else {
            return Ok(Vec::new());
        };
        let disjuncts = match when {
            None => vec![Vec::new()],
            Some(condition) => dnf(&self.set.segments, condition, false)
                .map_err(|e| format!("{path}.when: {e}"))?,
        };
        Ok(disjuncts
            .into_iter()
            .map(|constraints| {
                json!({
                    "name": name,
                    "parameters": parameters,
                    "constraints": constraints,
                    "variants": variants,
                    "segments": [],
                })
            })
            .collect())
    }

    /// The strategy and its parameters, or `None` when the rollout admits nobody. Unleash reads
    /// one `stickiness` and one `groupId` for both the rollout and the strategy's variants.
    fn parameters(
        &self,
        rollout: Option<&Rollout>,
        split: Option<&Split>,
        path: &str,
    ) -> Result<Option<(&'static str, Value)>, String> {
        let key = &self.flag.key;
        let split_salt = split.map(|s| s.salt.clone().unwrap_or_else(|| key.clone()));
        let split_sticky = split.map(|s| stickiness(&s.stickiness));
        let always = |salt: Option<String>, sticky: Option<String>| {
            let mut parameters = Map::new();
            if let Some(salt) = salt {
                parameters.insert("groupId".into(), salt.into());
            }
            if let Some(sticky) = sticky {
                parameters.insert("stickiness".into(), sticky.into());
            }
            Ok(Some(("default", Value::Object(parameters))))
        };
        let Some(rollout) = rollout else {
            return always(split_salt, split_sticky);
        };
        let (Some(percentage), None) = (rollout.percentage, &rollout.ramp) else {
            return Err(format!(
                "{path}.rollout is a ramp; Unleash SDKs cache features and cannot follow one"
            ));
        };
        if percentage <= 0.0 {
            return Ok(None);
        }
        let full = percentage >= 100.0;
        let sticky = stickiness(&rollout.stickiness);
        if full && (sticky == "default" || sticky == "random") {
            return always(split_salt, split_sticky);
        }
        if !full && self.flag.hashing != HashVersion::V1 {
            return Err(format!(
                "{path}.rollout buckets with hashing {:?}, which Unleash SDKs do not",
                self.flag.hashing
            ));
        }
        let salt = rollout.salt.clone().unwrap_or_else(|| key.clone());
        if split_sticky.as_ref().is_some_and(|s| *s != sticky) {
            return Err(format!(
                "{path}: the rollout and the split stick to different attributes; Unleash \
                 uses one stickiness for both"
            ));
        }
        let group = match split_salt {
            Some(split) if full => split,
            Some(split) if split != salt => {
                return Err(format!(
                    "{path}: the rollout's salt `{salt}` differs from the split's `{split}`; \
                     Unleash uses one group id for both"
                ));
            }
            _ => salt,
        };
        Ok(Some((
            "flexibleRollout",
            json!({
                "rollout": NumberText::new(percentage.min(100.0)).as_str(),
                "stickiness": sticky,
                "groupId": group,
            }),
        )))
    }

    /// What serving `serve` means for Unleash.
    fn outcome(&self, serve: &'a Serve) -> Result<Outcome<'a>, String> {
        let flag = self.flag;
        let split = match serve {
            Serve::Variant(name) => return self.variant_outcome(name),
            Serve::Split(split) => split,
        };
        if let Some(only) = single_arm(split) {
            return self.variant_outcome(only);
        }
        if flag.flag_type == FlagType::Boolean {
            let all_true = split
                .variants
                .iter()
                .filter(|a| a.weight > 0)
                .all(|a| flag.variants.get(&a.variant) == Some(&Value::Bool(true)));
            if all_true {
                return Ok(Outcome::Strategy(Vec::new(), None));
            }
            return Err(
                "a boolean split serves both values; Unleash cannot enable by variant".into(),
            );
        }
        if self.feature_split == Some(split) {
            return Ok(Outcome::Feature);
        }
        if flag.hashing != HashVersion::V1 {
            return Err(format!(
                "a split buckets with hashing {:?}, which Unleash SDKs do not",
                flag.hashing
            ));
        }
        if !split.overrides.is_empty() {
            return Err(
                "a rule's own split has overrides; Unleash SDKs built on yggdrasil ignore \
                 overrides on strategy variants"
                    .into(),
            );
        }
        Ok(Outcome::Strategy(
            self.split_variants(split, false)?,
            Some(split),
        ))
    }

    fn variant_outcome(&self, name: &str) -> Result<Outcome<'a>, String> {
        let value = self
            .flag
            .variants
            .get(name)
            .ok_or_else(|| format!("unknown variant `{name}`"))?;
        if self.flag.flag_type == FlagType::Boolean {
            return Ok(if *value == Value::Bool(true) {
                Outcome::Strategy(Vec::new(), None)
            } else {
                Outcome::Disabled
            });
        }
        if self.from_unleash && name == UNLEASH_DISABLED_VARIANT {
            // Enabled with Unleash's "no variant": only without feature variants to fall to.
            if self.feature_split.is_some() {
                return Err(format!(
                    "a rule serves `{UNLEASH_DISABLED_VARIANT}` while the flag's split is its \
                     feature variants"
                ));
            }
            return Ok(Outcome::Strategy(Vec::new(), None));
        }
        Ok(Outcome::Strategy(
            vec![self.variant_json(name, 1, "default", Vec::new())],
            None,
        ))
    }

    /// The split's arms as Unleash variants; overrides only where Unleash honours them (feature
    /// variants), as `in` lists in variant order.
    fn split_variants(&self, split: &Split, with_overrides: bool) -> Result<Vec<Value>, String> {
        let sticky = stickiness(&split.stickiness);
        let mut overrides: Vec<Vec<Value>> = vec![Vec::new(); split.variants.len()];
        let mut last_arm = 0;
        for (i, item) in split.overrides.iter().enumerate() {
            let arm = split
                .variants
                .iter()
                .position(|a| a.variant == item.variant)
                .ok_or_else(|| {
                    format!(
                        "split override {i} serves `{}`, which is not an arm",
                        item.variant
                    )
                })?;
            let in_list = match &item.when {
                Condition::Attribute(AttributeCondition {
                    name,
                    op: Operator::In,
                    values,
                    case_insensitive: false,
                }) => Some((name, values)),
                _ => None,
            };
            let Some((name, values)) = in_list.filter(|_| with_overrides && arm >= last_arm) else {
                return Err(format!(
                    "split override {i} is not an `in` list in variant order, as Unleash \
                     overrides are"
                ));
            };
            last_arm = arm;
            overrides[arm].push(json!({
                "contextName": context_name(name),
                "values": values.iter().map(text).collect::<Vec<_>>(),
            }));
        }
        Ok(split
            .variants
            .iter()
            .zip(overrides)
            .map(|(arm, overrides)| self.variant_json(&arm.variant, arm.weight, &sticky, overrides))
            .collect())
    }

    fn variant_json(&self, name: &str, weight: u32, sticky: &str, overrides: Vec<Value>) -> Value {
        let mut variant = json!({
            "name": unleash_variant_name(name, self.from_unleash),
            "weight": weight,
            "weightType": "variable",
            "stickiness": sticky,
        });
        if let Some(payload) = self
            .flag
            .variants
            .get(name)
            .and_then(|v| payload(v, self.from_unleash))
        {
            variant["payload"] = payload;
        }
        if !overrides.is_empty() {
            variant["overrides"] = Value::Array(overrides);
        }
        variant
    }
}

/// The one arm a split can serve (a single non-zero weight and no overrides).
fn single_arm(split: &Split) -> Option<&str> {
    let mut live = split.variants.iter().filter(|a| a.weight > 0);
    match (live.next(), live.next(), split.overrides.is_empty()) {
        (Some(only), None, true) => Some(&only.variant),
        _ => None,
    }
}

/// `condition` as a disjunction of constraint lists (`[]` is false, `[[]]` true), segments
/// inlined.
fn dnf(
    segments: &BTreeMap<String, Condition>,
    condition: &Condition,
    negated: bool,
) -> Result<Vec<Vec<Value>>, String> {
    let result = match (condition, negated) {
        (Condition::Not(inner), _) => dnf(segments, inner, !negated)?,
        (Condition::Segment(name), _) => {
            let segment = segments
                .get(name)
                .ok_or_else(|| format!("unknown segment `{name}`"))?;
            dnf(segments, segment, negated)?
        }
        (Condition::All(items), false) | (Condition::Any(items), true) => {
            let mut product = vec![Vec::new()];
            for item in items {
                let next = dnf(segments, item, negated)?;
                let mut combined = Vec::new();
                for left in &product {
                    for right in &next {
                        combined.push([left.as_slice(), right.as_slice()].concat());
                    }
                }
                product = combined;
                too_large(product.len())?;
            }
            product
        }
        (Condition::Any(items), false) | (Condition::All(items), true) => {
            let mut union = Vec::new();
            for item in items {
                union.extend(dnf(segments, item, negated)?);
                too_large(union.len())?;
            }
            union
        }
        (Condition::Attribute(attribute), _) => atom(attribute, negated)?,
    };
    Ok(result)
}

fn too_large(len: usize) -> Result<(), String> {
    if len > MAX_STRATEGIES_PER_RULE {
        return Err(format!(
            "the condition expands into more than {MAX_STRATEGIES_PER_RULE} Unleash strategies"
        ));
    }
    Ok(())
}

/// One attribute test as constraints in disjunctive form.
fn atom(attribute: &AttributeCondition, inverted: bool) -> Result<Vec<Vec<Value>>, String> {
    let either = |a: Operator, b: Operator| -> Result<Vec<Vec<Value>>, String> {
        let with = |op| {
            Condition::Attribute(AttributeCondition {
                op,
                ..attribute.clone()
            })
        };
        dnf(
            &BTreeMap::new(),
            &Condition::Any(vec![with(a), with(b)]),
            inverted,
        )
    };
    let (operator, list) = match attribute.op {
        Operator::In | Operator::NotIn if attribute.case_insensitive => {
            return Err(format!(
                "`{}` is a case-insensitive in-list; Unleash's IN is case-sensitive",
                attribute.name
            ));
        }
        Operator::In => ("IN", true),
        Operator::NotIn => ("NOT_IN", true),
        Operator::Contains => ("STR_CONTAINS", true),
        Operator::StartsWith => ("STR_STARTS_WITH", true),
        Operator::EndsWith => ("STR_ENDS_WITH", true),
        Operator::InCidr => ("IN_CIDR", true),
        Operator::Matches => ("REGEX", false),
        Operator::NumEq => ("NUM_EQ", false),
        Operator::NumLt => ("NUM_LT", false),
        Operator::NumLte => ("NUM_LTE", false),
        Operator::NumGt => ("NUM_GT", false),
        Operator::NumGte => ("NUM_GTE", false),
        Operator::SemverEq => ("SEMVER_EQ", false),
        Operator::SemverLt => ("SEMVER_LT", false),
        Operator::SemverGt => ("SEMVER_GT", false),
        Operator::SemverLte => return either(Operator::SemverLt, Operator::SemverEq),
        Operator::SemverGte => return either(Operator::SemverGt, Operator::SemverEq),
        Operator::DateBefore => ("DATE_BEFORE", false),
        Operator::DateAfter => ("DATE_AFTER", false),
        Operator::SemverCaret | Operator::SemverTilde => {
            return Err(format!(
                "`{}` uses {:?}, which Unleash has no operator for",
                attribute.name, attribute.op
            ));
        }
    };
    let mut constraint = Map::new();
    constraint.insert("contextName".into(), context_name(&attribute.name).into());
    constraint.insert("operator".into(), operator.into());
    constraint.insert("inverted".into(), inverted.into());
    constraint.insert("caseInsensitive".into(), attribute.case_insensitive.into());
    let values: Vec<Value> = attribute.values.iter().map(text).collect();
    if list {
        constraint.insert("values".into(), Value::Array(values));
    } else {
        let value = values.into_iter().next().unwrap_or_default();
        constraint.insert("value".into(), value);
        constraint.insert("values".into(), Value::Array(Vec::new()));
    }
    Ok(vec![vec![Value::Object(constraint)]])
}

/// A native attribute name as an Unleash context field.
fn context_name(attribute: &str) -> String {
    if attribute == TARGETING_KEY {
        "userId".to_owned()
    } else {
        attribute.to_owned()
    }
}

/// A native stickiness as Unleash's.
fn stickiness(native: &str) -> String {
    if native == DEFAULT_STICKINESS {
        "default".to_owned()
    } else {
        context_name(native)
    }
}

/// An operand as the string Unleash constraints hold.
fn text(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.clone()),
        Value::Number(n) => Value::String(
            n.as_f64()
                .map_or_else(|| n.to_string(), |f| NumberText::new(f).as_str().to_owned()),
        ),
        other => Value::String(other.to_string()),
    }
}

/// The Unleash dependencies of `flag`'s prerequisites.
fn dependencies(
    flag: &FlagDefinition,
    exported: &HashMap<&str, &Exported>,
) -> Result<Vec<Value>, String> {
    let mut result = Vec::with_capacity(flag.prerequisites.len());
    for prerequisite in &flag.prerequisites {
        let parent_key = prerequisite.flag.as_str();
        let parent = exported
            .get(parent_key)
            .ok_or_else(|| format!("its prerequisite `{parent_key}` is not exported to Unleash"))?;
        if parent.has_prerequisites {
            return Err(format!(
                "its prerequisite `{parent_key}` has prerequisites itself, which Unleash \
                 treats as never satisfied"
            ));
        }
        if !parent.enabled_is_served {
            return Err(format!(
                "its prerequisite `{parent_key}` may serve false, which Unleash reads as disabled"
            ));
        }
        let mut dependency = json!({"feature": parent_key, "enabled": prerequisite.enabled});
        if prerequisite.enabled && !prerequisite.variants.is_empty() {
            if parent.boolean {
                return Err(format!(
                    "it requires variants of the boolean flag `{parent_key}`, which has none in \
                     Unleash"
                ));
            }
            let mut names: Vec<&str> = prerequisite
                .variants
                .iter()
                .map(|n| unleash_variant_name(n, parent.from_unleash))
                .collect();
            names.dedup();
            dependency["variants"] = json!(names);
        }
        result.push(dependency);
    }
    Ok(result)
}
