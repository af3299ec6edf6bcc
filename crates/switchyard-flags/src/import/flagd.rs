//! flagd → native.
//!
//! A flagd flag (`state`, `variants`, `defaultVariant`, `targeting`, `metadata`) becomes a flag
//! with [`Semantics::Flagd`]: its targeting is kept as JsonLogic and evaluated with flagd's own
//! semantics ([`crate::jsonlogic`]). A document loads whenever flagd loads it: only what flagd
//! refuses is refused here (a document that is not a JSON object, `flags` missing or of the wrong
//! kind, a field of the wrong kind, an empty evaluator, a `defaultVariant` that names no
//! variant). Targeting that cannot be evaluated fails only the evaluations that reach it, with
//! `PARSE_ERROR`, as in flagd.
//!
//! `$ref`s to `$evaluators` are replaced by the evaluator wherever they stand (flagd replaces them
//! in the document's text). A reference inside an evaluator is resolved too, up to
//! [`MAX_REF_DEPTH`] levels; flagd resolves such nested references only by chance (its
//! replacement order is random), see docs/flags.md.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::ImportError;
use crate::hashing::HashVersion;
use crate::model::{FlagDefinition, FlagSet, FlagType, Fractional, Semantics};

/// Deepest `$ref` nesting followed; deeper (or cyclic) references are left in place, and fail the
/// evaluations that reach them.
const MAX_REF_DEPTH: usize = 16;

impl FlagSet {
    /// Imports a flagd flag definition document (`{"flags": {...}, "$evaluators": {...}}`).
    ///
    /// # Errors
    /// [`ImportError::Parse`] for text that is not JSON, [`ImportError::Unsupported`] naming the
    /// flag and field for a document flagd itself refuses.
    pub fn from_flagd_json(text: &str) -> Result<Self, ImportError> {
        let document: Value = serde_json::from_str(text).map_err(|source| ImportError::Parse {
            format: "flagd",
            source,
        })?;
        let Value::Object(root) = document else {
            return Err(invalid("", "", "the document is not a JSON object"));
        };
        let evaluators = match root.get("$evaluators") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(evaluators)) => evaluators.clone(),
            Some(_) => return Err(invalid("", "$evaluators", "must be an object")),
        };
        for (name, evaluator) in &evaluators {
            if evaluator.to_string().len() < 3 {
                return Err(invalid(
                    "",
                    &format!("$evaluators.{name}"),
                    "the evaluator is empty",
                ));
            }
        }
        let root: Map<String, Value> = root
            .iter()
            .map(|(name, value)| (name.clone(), inline_refs(value, &evaluators, 0)))
            .collect();
        let set_metadata = match root.get("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(metadata)) => metadata.clone(),
            Some(_) => return Err(invalid("", "metadata", "must be an object")),
        };
        let entries: Vec<(String, &Value)> = match root.get("flags") {
            None => return Err(invalid("", "flags", "is missing")),
            Some(Value::Null) => Vec::new(),
            Some(Value::Object(flags)) => flags.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Some(Value::Array(flags)) => flags
                .iter()
                .map(|flag| match flag {
                    Value::Object(fields) => Ok((string_field(fields, "key", "")?, flag)),
                    Value::Null => Ok((String::new(), flag)),
                    _ => Err(invalid("", "flags", "an element is not an object")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("", "flags", "must be an object")),
        };
        let mut flags: BTreeMap<String, FlagDefinition> = BTreeMap::new();
        for (key, flag) in entries {
            let definition = convert_flag(&key, flag, &set_metadata)?;
            // flagd drops flags without a key.
            if !key.is_empty() {
                flags.insert(key, definition);
            }
        }
        Ok(FlagSet {
            flags: flags.into_values().collect(),
            segments: BTreeMap::new(),
        })
    }
}

fn invalid(flag: &str, path: &str, problem: impl Into<String>) -> ImportError {
    ImportError::Unsupported {
        format: "flagd",
        flag: flag.to_owned(),
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// A string (or null, or absent: empty) field, as flagd reads it.
fn string_field(
    fields: &Map<String, Value>,
    name: &str,
    flag: &str,
) -> Result<String, ImportError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(invalid(flag, name, "must be a string")),
    }
}

fn object_field<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
    flag: &str,
) -> Result<Option<&'a Map<String, Value>>, ImportError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(invalid(flag, name, "must be an object")),
    }
}

fn convert_flag(
    key: &str,
    flag: &Value,
    set_metadata: &Map<String, Value>,
) -> Result<FlagDefinition, ImportError> {
    let empty = Map::new();
    let fields = flag.as_object().unwrap_or(&empty);
    let state = string_field(fields, "state", key)?;
    let default_variant = string_field(fields, "defaultVariant", key)?;
    let variants: BTreeMap<String, Value> = object_field(fields, "variants", key)?
        .map(|map| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if !default_variant.is_empty() && !variants.contains_key(&default_variant) {
        return Err(invalid(
            key,
            "defaultVariant",
            format!("`{default_variant}` is not a variant"),
        ));
    }
    let own_metadata = object_field(fields, "metadata", key)?.unwrap_or(&empty);
    // Set metadata overlaid by the flag's; flagd returns scalars (and drops nulls).
    let mut metadata = BTreeMap::new();
    for (name, value) in set_metadata.iter().chain(own_metadata) {
        if value.is_string() || value.is_number() || value.is_boolean() {
            metadata.insert(name.clone(), value.clone());
        } else {
            metadata.remove(name);
        }
    }
    let default_variant = (!default_variant.is_empty()).then_some(default_variant);
    Ok(FlagDefinition {
        key: key.to_owned(),
        flag_type: infer_type(&variants, default_variant.as_deref()),
        description: None,
        // Only the exact state `DISABLED` switches a flagd flag off.
        enabled: state != "DISABLED",
        environments: BTreeMap::new(),
        variants,
        default_variant,
        off_variant: None,
        serve: None,
        rules: Vec::new(),
        prerequisites: Vec::new(),
        hashing: HashVersion::default(),
        metadata,
        semantics: Semantics::Flagd,
        targeting: fields.get("targeting").cloned(),
        fractional: Fractional::V2,
    })
}

/// The type the variants share; for mixed variants, the default variant's (flagd checks the type
/// of the value served, so this is only what listings show).
fn infer_type(variants: &BTreeMap<String, Value>, default_variant: Option<&str>) -> FlagType {
    let all = |f: fn(&Value) -> bool| !variants.is_empty() && variants.values().all(f);
    let of = |value: &Value| match value {
        Value::Bool(_) => FlagType::Boolean,
        Value::String(_) => FlagType::String,
        Value::Number(n) if n.is_i64() => FlagType::Integer,
        Value::Number(_) => FlagType::Float,
        _ => FlagType::Object,
    };
    if all(Value::is_i64) {
        FlagType::Integer
    } else if all(Value::is_number) {
        FlagType::Float
    } else if let Some(value) = default_variant.and_then(|name| variants.get(name)) {
        of(value)
    } else {
        variants.values().next().map_or(FlagType::Object, of)
    }
}

/// Replaces every `{"$ref": name}` naming an evaluator with that evaluator (whose own references
/// are replaced in turn, up to [`MAX_REF_DEPTH`] levels).
fn inline_refs(value: &Value, evaluators: &Map<String, Value>, depth: usize) -> Value {
    match value {
        Value::Object(object) => {
            if let (1, Some(Value::String(name))) = (object.len(), object.get("$ref")) {
                if let Some(target) = evaluators.get(name) {
                    if depth < MAX_REF_DEPTH {
                        return inline_refs(target, evaluators, depth + 1);
                    }
                }
                return value.clone();
            }
            Value::Object(
                object
                    .iter()
                    .map(|(name, child)| (name.clone(), inline_refs(child, evaluators, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|child| inline_refs(child, evaluators, depth))
                .collect(),
        ),
        other => other.clone(),
    }
}
