//! The flag a flag experiment is served by: its key is the experiment's key, its variants the
//! experiment's values, and one rule splits the targeted units with the flag engine's bucketing
//! (stickiness = the unit attribute, salt = the key). Units outside the targeting get control.

use std::collections::BTreeMap;

use serde_json::Value;
use switchyard_flags::{
    FlagDefinition, Fractional, HashVersion, Rule, Semantics, Serve, Split, WeightedVariant,
};

use super::{Experiment, SplitSpec};

/// Name of the rule that splits the experiment's units.
pub const SPLIT_RULE: &str = "experiment";
/// Field path of the targeting condition inside the flag, for relocating compile errors.
pub(super) const TARGETING_PATH: &str = "rules[0].when";

/// What the experiment's flag serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagServing<'a> {
    /// The experiment runs: targeted units are split between the variants by weight.
    Split,
    /// The experiment is over: everyone gets this variant (control after a stop, the winner
    /// after shipping).
    Variant(&'a str),
}

impl Experiment {
    /// The flag definition that serves a flag experiment; `None` for a traffic experiment.
    ///
    /// A split assigns by the unit attribute with `hashing::assign_variant` semantics; a
    /// context without that attribute gets a random variant from the flag engine, so callers
    /// record an exposure only for evaluations whose context has the unit and whose reason is
    /// `SPLIT`.
    pub fn flag_definition(&self, serving: FlagServing<'_>) -> Option<FlagDefinition> {
        let SplitSpec::Flag(split) = &self.spec.split else {
            return None;
        };
        let key = self.key().to_owned();
        let control = self.control().map(|c| c.name.to_string());
        let variants: BTreeMap<String, Value> = self
            .spec
            .variants
            .iter()
            .map(|v| {
                let value = v
                    .value
                    .clone()
                    .unwrap_or_else(|| Value::String(v.name.to_string()));
                (v.name.to_string(), value)
            })
            .collect();
        let (serve, rules) = match serving {
            FlagServing::Variant(name) => (Some(Serve::Variant(name.to_owned())), Vec::new()),
            FlagServing::Split => {
                let arms = self
                    .spec
                    .variants
                    .iter()
                    .map(|v| WeightedVariant {
                        variant: v.name.to_string(),
                        weight: v.weight,
                    })
                    .collect();
                let rule = Rule {
                    name: Some(SPLIT_RULE.to_owned()),
                    when: self.spec.targeting.clone(),
                    rollout: None,
                    serve: Some(Serve::Split(Split {
                        variants: arms,
                        stickiness: split.unit.clone(),
                        salt: Some(key.clone()),
                        overrides: Vec::new(),
                    })),
                };
                (None, vec![rule])
            }
        };
        Some(FlagDefinition {
            key,
            flag_type: super::check::flag_type(&self.spec),
            description: Some(format!("Experiment `{}`", self.key())),
            enabled: true,
            environments: BTreeMap::new(),
            variants,
            default_variant: control.clone(),
            off_variant: control,
            serve,
            rules,
            prerequisites: Vec::new(),
            hashing: HashVersion::default(),
            metadata: BTreeMap::from([("experiment".to_owned(), Value::from(self.key()))]),
            semantics: Semantics::Native,
            targeting: None,
            fractional: Fractional::V2,
        })
    }
}
