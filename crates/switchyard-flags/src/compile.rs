//! Validation and lowering of a [`FlagSet`] into [`CompiledFlags`]. Every error names the flag (or
//! segment) and the field path.

mod condition;
mod flagd;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::compiled::{
    CompiledFlag, CompiledFlags, CompiledPrerequisite, CompiledRollout, CompiledRule,
    CompiledServe, CompiledSplit, Stickiness, Threshold,
};
use crate::context::AttributeKey;
use crate::error::{FlagError, FlagWarning, Problem};
use crate::lookup::LookupMap;
use crate::matcher::Matcher;
use crate::model::{
    DEFAULT_STICKINESS, FlagDefinition, FlagSet, RANDOM_STICKINESS, Rollout, Semantics, Serve,
};
use crate::scalar::parse_rfc3339_millis;

pub(crate) use condition::lower;

/// Longest prerequisite chain accepted; keeps evaluation's recursion shallow.
const MAX_PREREQUISITE_DEPTH: usize = 32;

impl FlagSet {
    /// What compiles but fails every evaluation that reaches it: in flagd targeting, operators
    /// flagd does not support, `$ref`s to no evaluator, and results that name no variant. flagd
    /// loads such flags, and so does Switchyard; `flags apply --strict` refuses them.
    pub fn warnings(&self) -> Vec<FlagWarning> {
        let mut warnings = Vec::new();
        for flag in &self.flags {
            let Some(targeting) = flag
                .targeting
                .as_ref()
                .filter(|_| flag.semantics == Semantics::Flagd)
            else {
                continue;
            };
            for (path, problem) in crate::jsonlogic::lint(targeting, &flag.variants) {
                warnings.push(FlagWarning {
                    flag: flag.key.clone(),
                    path,
                    problem,
                });
            }
        }
        warnings
    }

    /// Validates the set and builds its evaluation plan, using each flag's `enabled`.
    ///
    /// # Errors
    /// The first invalid flag or segment, naming it and the field path.
    pub fn compile(&self) -> Result<CompiledFlags, FlagError> {
        compile_set(self, None)
    }

    /// As [`FlagSet::compile`], with each flag's kill switch taken from `environments[environment]`
    /// when the flag has an entry for it.
    ///
    /// # Errors
    /// As [`FlagSet::compile`].
    pub fn compile_for_environment(&self, environment: &str) -> Result<CompiledFlags, FlagError> {
        compile_set(self, Some(environment))
    }
}

fn compile_set(set: &FlagSet, environment: Option<&str>) -> Result<CompiledFlags, FlagError> {
    let mut segments = HashMap::new();
    for (name, spec) in &set.segments {
        let matcher =
            lower(spec, "", None).map_err(|(path, problem)| FlagError::InvalidSegment {
                segment: name.clone(),
                path: trim_path(path),
                problem,
            })?;
        segments.insert(name.clone(), Arc::new(matcher));
    }
    let mut index = LookupMap::default();
    for (i, flag) in set.flags.iter().enumerate() {
        if index.insert(flag.key.clone(), i).is_some() {
            return Err(FlagError::DuplicateFlag(flag.key.clone()));
        }
    }
    let flags = set
        .flags
        .iter()
        .map(|flag| {
            FlagCompiler {
                flag,
                set,
                index: &index,
                segments: &segments,
            }
            .compile(environment)
            .map_err(|(path, problem)| FlagError::InvalidFlag {
                flag: flag.key.clone(),
                path: trim_path(path),
                problem,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_prerequisite_depth(&flags)?;
    Ok(CompiledFlags { flags, index })
}

fn trim_path(path: String) -> String {
    path.strip_prefix('.').map(str::to_owned).unwrap_or(path)
}

type Located = (String, Problem);

struct FlagCompiler<'a> {
    flag: &'a FlagDefinition,
    set: &'a FlagSet,
    index: &'a LookupMap<String, usize>,
    segments: &'a HashMap<String, Arc<Matcher>>,
}

impl FlagCompiler<'_> {
    fn compile(&self, environment: Option<&str>) -> Result<CompiledFlag, Located> {
        let flag = self.flag;
        let enabled = environment
            .and_then(|env| flag.environments.get(env))
            .map_or(flag.enabled, |state| state.enabled);
        if flag.semantics == Semantics::Flagd {
            return self.compile_flagd(enabled);
        }
        if flag.targeting.is_some() {
            return Err(("targeting".to_owned(), Problem::TargetingNeedsFlagd));
        }
        if !flag.fractional.is_default() {
            return Err(("fractional".to_owned(), Problem::FractionalNeedsFlagd));
        }
        let mut variants = Vec::with_capacity(flag.variants.len());
        for (name, value) in &flag.variants {
            if !flag.flag_type.accepts(value) {
                return Err((
                    format!("variants.{name}"),
                    Problem::ValueType {
                        expected: flag.flag_type.as_str(),
                        value: value.to_string(),
                    },
                ));
            }
            variants.push((name.clone(), value.clone()));
        }
        let default_variant =
            self.optional_variant(flag.default_variant.as_deref(), "defaultVariant")?;
        let off_variant = self
            .optional_variant(flag.off_variant.as_deref(), "offVariant")?
            .or(default_variant);
        let serve = flag
            .serve
            .as_ref()
            .map(|serve| self.serve(serve, "serve"))
            .transpose()?;
        let mut rules = Vec::with_capacity(flag.rules.len());
        for (i, rule) in flag.rules.iter().enumerate() {
            let path = format!("rules[{i}]");
            let when = match &rule.when {
                Some(condition) => lower(condition, &format!("{path}.when"), Some(self.segments))?,
                None => Matcher::Const(true),
            };
            let rollout = rule
                .rollout
                .as_ref()
                .map(|rollout| self.rollout(rollout, &format!("{path}.rollout")))
                .transpose()?;
            let serve = match &rule.serve {
                Some(own) => Some(self.serve(own, &format!("{path}.serve"))?),
                None => serve.clone(),
            };
            if serve.is_none() && default_variant.is_none() {
                return Err((path, Problem::NothingToServe));
            }
            rules.push(CompiledRule {
                when,
                rollout,
                serve,
            });
        }
        let prerequisites = self.prerequisites()?;
        let metadata = self.metadata()?;
        Ok(CompiledFlag {
            key: flag.key.clone(),
            flag_type: flag.flag_type,
            enabled,
            variants,
            default_variant,
            off_variant,
            serve,
            rules,
            prerequisites,
            hashing: flag.hashing,
            metadata,
            flagd: None,
        })
    }

    fn metadata(&self) -> Result<BTreeMap<String, serde_json::Value>, Located> {
        let mut metadata = BTreeMap::new();
        for (name, value) in &self.flag.metadata {
            if value.is_object() || value.is_array() || value.is_null() {
                return Err((
                    format!("metadata.{name}"),
                    Problem::NonScalarMetadata(value.to_string()),
                ));
            }
            metadata.insert(name.clone(), value.clone());
        }
        Ok(metadata)
    }

    fn variant(&self, name: &str, path: &str) -> Result<usize, Located> {
        // BTreeMap iteration order is the order of `variants` in the compiled flag.
        self.flag
            .variants
            .keys()
            .position(|key| key == name)
            .ok_or_else(|| (path.to_owned(), Problem::UnknownVariant(name.to_owned())))
    }

    fn optional_variant(&self, name: Option<&str>, path: &str) -> Result<Option<usize>, Located> {
        name.map(|name| self.variant(name, path)).transpose()
    }

    fn serve(&self, serve: &Serve, path: &str) -> Result<CompiledServe, Located> {
        match serve {
            Serve::Variant(name) => Ok(CompiledServe::Variant(
                self.variant(name, &format!("{path}.variant"))?,
            )),
            Serve::Split(split) => {
                let path = format!("{path}.split");
                let mut variants = Vec::with_capacity(split.variants.len());
                let mut weights = Vec::with_capacity(split.variants.len());
                for (i, arm) in split.variants.iter().enumerate() {
                    variants.push(
                        self.variant(&arm.variant, &format!("{path}.variants[{i}].variant"))?,
                    );
                    weights.push(arm.weight);
                }
                if weights.iter().all(|w| *w == 0) {
                    return Err((format!("{path}.variants"), Problem::EmptySplit));
                }
                let mut overrides = Vec::with_capacity(split.overrides.len());
                for (i, item) in split.overrides.iter().enumerate() {
                    let item_path = format!("{path}.overrides[{i}]");
                    let when = lower(
                        &item.when,
                        &format!("{item_path}.when"),
                        Some(self.segments),
                    )?;
                    overrides.push((
                        when,
                        self.variant(&item.variant, &format!("{item_path}.variant"))?,
                    ));
                }
                Ok(CompiledServe::Split(CompiledSplit {
                    overrides,
                    variants,
                    weights,
                    stickiness: stickiness(&split.stickiness),
                    salt: split.salt.clone().unwrap_or_else(|| self.flag.key.clone()),
                }))
            }
        }
    }

    fn rollout(&self, rollout: &Rollout, path: &str) -> Result<CompiledRollout, Located> {
        let check = |value: f64, field: &str| {
            if (0.0..=100.0).contains(&value) {
                Ok(value)
            } else {
                Err((format!("{path}.{field}"), Problem::Percentage(value)))
            }
        };
        let threshold = match (rollout.percentage, &rollout.ramp) {
            (Some(percentage), None) => Threshold::Fixed(check(percentage, "percentage")?),
            (None, Some(ramp)) => {
                let from = check(ramp.from, "ramp.from")?;
                let to = check(ramp.to, "ramp.to")?;
                if to < from {
                    return Err((format!("{path}.ramp"), Problem::RampDecreasing { from, to }));
                }
                let date = |text: &str, field: &str| {
                    parse_rfc3339_millis(text).ok_or_else(|| {
                        (
                            format!("{path}.ramp.{field}"),
                            Problem::BadDate(text.to_owned()),
                        )
                    })
                };
                let (start, end) = (date(&ramp.start, "start")?, date(&ramp.end, "end")?);
                if end <= start {
                    return Err((format!("{path}.ramp"), Problem::RampInverted));
                }
                Threshold::Ramp {
                    from,
                    to,
                    start,
                    end,
                }
            }
            _ => return Err((path.to_owned(), Problem::RolloutShape)),
        };
        Ok(CompiledRollout {
            threshold,
            stickiness: stickiness(&rollout.stickiness),
            salt: rollout
                .salt
                .clone()
                .unwrap_or_else(|| self.flag.key.clone()),
        })
    }

    fn prerequisites(&self) -> Result<Vec<CompiledPrerequisite>, Located> {
        let mut compiled = Vec::with_capacity(self.flag.prerequisites.len());
        for (i, prerequisite) in self.flag.prerequisites.iter().enumerate() {
            let path = format!("prerequisites[{i}]");
            let flag = *self.index.get(&prerequisite.flag).ok_or_else(|| {
                (
                    format!("{path}.flag"),
                    Problem::UnknownFlag(prerequisite.flag.clone()),
                )
            })?;
            let parent = &self.set.flags[flag];
            let variants = prerequisite
                .variants
                .iter()
                .enumerate()
                .map(|(j, name)| {
                    parent
                        .variants
                        .keys()
                        .position(|key| key == name)
                        .ok_or_else(|| {
                            (
                                format!("{path}.variants[{j}]"),
                                Problem::UnknownVariant(name.clone()),
                            )
                        })
                })
                .collect::<Result<_, _>>()?;
            compiled.push(CompiledPrerequisite {
                flag,
                enabled: prerequisite.enabled,
                variants,
            });
        }
        Ok(compiled)
    }
}

fn stickiness(name: &str) -> Stickiness {
    match name {
        DEFAULT_STICKINESS => Stickiness::Default,
        RANDOM_STICKINESS => Stickiness::Random,
        other => Stickiness::Attribute(AttributeKey::new(other)),
    }
}

/// Rejects prerequisite cycles and chains deeper than [`MAX_PREREQUISITE_DEPTH`].
fn check_prerequisite_depth(flags: &[CompiledFlag]) -> Result<(), FlagError> {
    #[derive(Clone, Copy)]
    enum Visit {
        New,
        InProgress,
        Done(usize),
    }
    // Memoised DFS: an `InProgress` flag reached again is a cycle.
    fn depth(flags: &[CompiledFlag], i: usize, memo: &mut [Visit]) -> Option<usize> {
        match memo[i] {
            Visit::Done(known) => return Some(known),
            Visit::InProgress => return None,
            Visit::New => memo[i] = Visit::InProgress,
        }
        let mut deepest = 0;
        for prerequisite in &flags[i].prerequisites {
            deepest = deepest.max(depth(flags, prerequisite.flag, memo)? + 1);
        }
        memo[i] = Visit::Done(deepest);
        (deepest <= MAX_PREREQUISITE_DEPTH).then_some(deepest)
    }
    let mut memo = vec![Visit::New; flags.len()];
    for (i, flag) in flags.iter().enumerate() {
        if depth(flags, i, &mut memo).is_none() {
            return Err(FlagError::InvalidFlag {
                flag: flag.key.clone(),
                path: "prerequisites".to_owned(),
                problem: Problem::PrerequisiteCycle(flag.key.clone()),
            });
        }
    }
    Ok(())
}
