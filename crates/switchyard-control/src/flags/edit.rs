//! Pure edits of a flag set and the conversion between the set and its stored documents.
//!
//! Documents are cut out of (and put back into) the set's own native JSON, so a stored
//! document is exactly what `FlagSet::to_native_json` writes for that flag.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchyard_core::ports::{FlagDocuments, FlagEdit, FlagObjectKind};
use switchyard_flags::FlagFormat;
use switchyard_flags::{
    AttributeCondition, Condition, DEFAULT_STICKINESS, FlagDefinition, FlagSet, Operator, Rollout,
    Rule,
};

use super::error::FlagServiceError;

/// The context attribute (and OFREP request attribute) that names the environment; rollouts
/// limited to an environment test it.
pub const ENVIRONMENT_ATTRIBUTE: &str = "environment";

/// Keys that are API paths under `/api/v1/flags`.
const RESERVED_KEYS: [&str; 3] = ["audit", "stream", "clients"];

/// Parses a flag set in `format`. Native text starting with `{` is JSON, anything else YAML.
///
/// # Errors
/// The parser's or importer's error, with line, column or flag and path.
pub fn parse_set(format: FlagFormat, content: &str) -> Result<FlagSet, FlagServiceError> {
    match format {
        FlagFormat::Native if content.trim_start().starts_with('{') => {
            FlagSet::from_native_json(content).map_err(FlagServiceError::Invalid)
        }
        FlagFormat::Native => FlagSet::from_native_yaml(content).map_err(FlagServiceError::Invalid),
        FlagFormat::Unleash => {
            FlagSet::from_unleash_json(content).map_err(FlagServiceError::Import)
        }
        FlagFormat::Flagd => FlagSet::from_flagd_json(content).map_err(FlagServiceError::Import),
    }
}

/// `current` with every flag and segment of `incoming` created or replaced in place; new flags
/// go last, in their order.
pub fn upsert(current: &FlagSet, incoming: FlagSet) -> FlagSet {
    let mut next = current.clone();
    for flag in incoming.flags {
        put(&mut next, flag);
    }
    next.segments.extend(incoming.segments);
    next
}

/// `current` with `flag` created or replaced.
pub fn with_flag(current: &FlagSet, flag: FlagDefinition) -> FlagSet {
    let mut next = current.clone();
    put(&mut next, flag);
    next
}

fn put(set: &mut FlagSet, flag: FlagDefinition) {
    match set.flags.iter_mut().find(|f| f.key == flag.key) {
        Some(slot) => *slot = flag,
        None => set.flags.push(flag),
    }
}

/// `current` without flag `key`.
///
/// # Errors
/// `UnknownFlag`.
pub fn without_flag(current: &FlagSet, key: &str) -> Result<FlagSet, FlagServiceError> {
    let mut next = current.clone();
    let before = next.flags.len();
    next.flags.retain(|f| f.key != key);
    if next.flags.len() == before {
        return Err(FlagServiceError::UnknownFlag(key.into()));
    }
    Ok(next)
}

/// `current` with flag `key` switched on or off in `environment`.
///
/// # Errors
/// `UnknownFlag`, `InvalidEnvironment`.
pub fn with_environment(
    current: &FlagSet,
    key: &str,
    environment: &str,
    enabled: bool,
) -> Result<FlagSet, FlagServiceError> {
    check_environment(environment)?;
    let mut next = current.clone();
    let flag = find(&mut next, key)?;
    flag.environments
        .entry(environment.to_owned())
        .or_insert(switchyard_flags::EnvironmentState { enabled })
        .enabled = enabled;
    Ok(next)
}

/// `current` with the percentage rollout of flag `key` set to `percent`.
///
/// The rollout is the rule named `rollout` (`rollout:<environment>` when limited to an
/// environment): its `rollout.percentage` is set. Without one, such a rule is appended, serving
/// the flag's `serve` (or default variant) to `percent`% of the contexts that reach it, matched
/// on the `environment` attribute when an environment is given. Contexts outside fall through to
/// the default variant. A percentage outside 0–100 is caught by compilation.
///
/// # Errors
/// `UnknownFlag`, `InvalidEnvironment`.
pub fn with_rollout(
    current: &FlagSet,
    key: &str,
    percent: f64,
    environment: Option<&str>,
) -> Result<FlagSet, FlagServiceError> {
    if let Some(environment) = environment {
        check_environment(environment)?;
    }
    let name = environment.map_or_else(|| "rollout".to_owned(), |e| format!("rollout:{e}"));
    let mut next = current.clone();
    let flag = find(&mut next, key)?;
    match flag
        .rules
        .iter_mut()
        .find(|r| r.name.as_deref() == Some(&name))
    {
        Some(rule) => match &mut rule.rollout {
            Some(rollout) => {
                rollout.percentage = Some(percent);
                rollout.ramp = None;
            }
            None => rule.rollout = Some(percentage(percent)),
        },
        None => flag.rules.push(Rule {
            name: Some(name),
            when: environment.map(|e| {
                Condition::Attribute(AttributeCondition {
                    name: ENVIRONMENT_ATTRIBUTE.into(),
                    op: Operator::In,
                    values: vec![Value::String(e.into())],
                    case_insensitive: false,
                })
            }),
            rollout: Some(percentage(percent)),
            serve: None,
        }),
    }
    Ok(next)
}

fn percentage(percent: f64) -> Rollout {
    Rollout {
        percentage: Some(percent),
        ramp: None,
        stickiness: DEFAULT_STICKINESS.into(),
        salt: None,
    }
}

fn find<'a>(set: &'a mut FlagSet, key: &str) -> Result<&'a mut FlagDefinition, FlagServiceError> {
    set.flags
        .iter_mut()
        .find(|f| f.key == key)
        .ok_or_else(|| FlagServiceError::UnknownFlag(key.into()))
}

/// # Errors
/// `InvalidEnvironment` unless 1-63 of `[A-Za-z0-9._-]`.
pub fn check_environment(name: &str) -> Result<(), FlagServiceError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(FlagServiceError::InvalidEnvironment(name.into()))
    }
}

/// Checks the keys `set` brings that `current` does not have (see
/// [`switchyard_core::check_key`]).
///
/// # Errors
/// `ReservedKey` for a flag named like an API path, `InvalidKey` for a key that breaks the rules.
pub fn check_keys(current: &FlagSet, set: &FlagSet) -> Result<(), FlagServiceError> {
    let known = |key: &String| {
        current.flags.iter().any(|f| &f.key == key) || current.segments.contains_key(key)
    };
    let keys = set
        .flags
        .iter()
        .map(|f| ("flag", &f.key))
        .chain(set.segments.keys().map(|k| ("segment", k)))
        // Keys stored before keys were checked stay usable (and deletable).
        .filter(|(_, key)| !known(key));
    for (kind, key) in keys {
        if RESERVED_KEYS.contains(&key.as_str()) {
            return Err(FlagServiceError::ReservedKey(key.clone()));
        }
        if let Err(source) = switchyard_core::check_key(key) {
            return Err(FlagServiceError::InvalidKey {
                kind,
                key: key.chars().take(64).collect(),
                source,
            });
        }
    }
    Ok(())
}

/// The documents of a set: each flag's and each segment's native JSON.
///
/// # Errors
/// `Corrupt` if the set cannot be serialised (it always can once it has compiled).
pub fn documents(set: &FlagSet) -> Result<Documents, FlagServiceError> {
    let mut value = serde_json::to_value(set).map_err(FlagServiceError::Corrupt)?;
    let mut out = Documents::default();
    if let Some(Value::Array(flags)) = value.get_mut("flags").map(Value::take) {
        for flag in flags {
            let key = flag
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            out.flags.insert(key, flag);
        }
    }
    if let Some(Value::Object(segments)) = value.get_mut("segments").map(Value::take) {
        out.segments.extend(segments);
    }
    Ok(out)
}

/// Each flag's and segment's document, by key.
#[derive(Debug, Default)]
pub struct Documents {
    pub flags: BTreeMap<String, Value>,
    pub segments: BTreeMap<String, Value>,
}

/// The set the stored documents make.
///
/// # Errors
/// `Corrupt` when they no longer read as the native model.
pub fn from_documents(stored: &FlagDocuments) -> Result<FlagSet, FlagServiceError> {
    let flags: Vec<&Value> = stored.flags.iter().map(|d| &d.document).collect();
    let segments: serde_json::Map<String, Value> = stored
        .segments
        .iter()
        .map(|d| (d.key.clone(), d.document.clone()))
        .collect();
    serde_json::from_value(json!({"flags": flags, "segments": segments}))
        .map_err(FlagServiceError::Corrupt)
}

/// The edits that turn `old` into `new`, each with what it will do (`created`, `configured`,
/// `deleted`). Documents that are equal give no edit.
///
/// # Errors
/// As [`documents`].
pub fn diff(
    old: &FlagSet,
    new: &FlagSet,
) -> Result<Vec<(FlagEdit, &'static str)>, FlagServiceError> {
    let (old, new) = (documents(old)?, documents(new)?);
    let mut edits = Vec::new();
    for (kind, before, after) in [
        (FlagObjectKind::Segment, &old.segments, &new.segments),
        (FlagObjectKind::Flag, &old.flags, &new.flags),
    ] {
        for (key, document) in after {
            let result = match before.get(key) {
                None => "created",
                Some(previous) if previous != document => "configured",
                Some(_) => continue,
            };
            edits.push((
                FlagEdit {
                    kind,
                    key: key.clone(),
                    after: Some(document.clone()),
                },
                result,
            ));
        }
        for key in before.keys().filter(|k| !after.contains_key(*k)) {
            edits.push((
                FlagEdit {
                    kind,
                    key: key.clone(),
                    after: None,
                },
                "deleted",
            ));
        }
    }
    Ok(edits)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = r#"
flags:
  - key: checkout
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    serve: {variant: on}
segments:
  staff: {attribute: {name: email, op: endsWith, values: ["@switchyard.dev"]}}
"#;

    fn set() -> FlagSet {
        parse_set(FlagFormat::Native, SET).unwrap()
    }

    #[test]
    fn documents_round_trip_through_the_store_shape() {
        let docs = documents(&set()).unwrap();
        let stored = FlagDocuments {
            revision: 1,
            flags: docs
                .flags
                .into_iter()
                .map(|(key, document)| switchyard_core::ports::FlagDocument {
                    key,
                    document,
                    updated_at: switchyard_core::Timestamp::EPOCH,
                })
                .collect(),
            segments: docs
                .segments
                .into_iter()
                .map(|(key, document)| switchyard_core::ports::FlagDocument {
                    key,
                    document,
                    updated_at: switchyard_core::Timestamp::EPOCH,
                })
                .collect(),
        };
        assert_eq!(from_documents(&stored).unwrap(), set());
    }

    #[test]
    fn toggles_and_rollouts_edit_the_document_and_diff_names_them() {
        let old = set();
        let off = with_environment(&old, "checkout", "production", false).unwrap();
        assert!(!off.flags[0].environments["production"].enabled);
        let ramped = with_rollout(&off, "checkout", 25.0, None).unwrap();
        let again = with_rollout(&ramped, "checkout", 50.0, None).unwrap();
        assert_eq!(again.flags[0].rules.len(), 1, "the rollout rule is reused");
        assert_eq!(
            again.flags[0].rules[0].rollout.as_ref().unwrap().percentage,
            Some(50.0)
        );
        let scoped = with_rollout(&again, "checkout", 5.0, Some("staging")).unwrap();
        assert_eq!(
            scoped.flags[0].rules[1].name.as_deref(),
            Some("rollout:staging")
        );
        scoped.compile().unwrap();

        let edits = diff(&old, &scoped).unwrap();
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].0.key, "checkout");
        assert_eq!(edits[0].1, "configured");
        let gone = diff(&old, &without_flag(&old, "checkout").unwrap()).unwrap();
        assert_eq!(gone[0].1, "deleted");
        assert!(matches!(
            with_rollout(&old, "nope", 1.0, None),
            Err(FlagServiceError::UnknownFlag(_))
        ));
        assert!(matches!(
            with_environment(&old, "checkout", "no spaces", true),
            Err(FlagServiceError::InvalidEnvironment(_))
        ));
    }
}
