//! flagd → native.
//!
//! A flagd flag (`state`, `variants`, `defaultVariant`, `targeting`, `metadata`) becomes a native
//! flag whose type is inferred from its variant values. `$ref`s to `$evaluators` are inlined, then
//! the JsonLogic targeting is lowered to ordered rules by [`jsonlogic`]: an `if` chain becomes one
//! rule per branch (later branches guarded by the negation of earlier conditions, so the first
//! true condition commits exactly as JsonLogic does), a variant-name string serves that variant,
//! `null` falls through to the default, and `fractional` becomes a weighted split with
//! [`HashVersion::FlagdV2`] bucketing. Anything else is rejected with the JSON path, rather than
//! imported with different semantics.

mod jsonlogic;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ImportError;
use crate::hashing::HashVersion;
use crate::model::{FlagDefinition, FlagSet, FlagType};

/// Deepest `$ref` nesting followed; deeper (or cyclic) references are an import error.
const MAX_REF_DEPTH: usize = 16;

#[derive(Debug, Deserialize)]
struct FlagdDocument {
    #[serde(default)]
    flags: BTreeMap<String, FlagdFlag>,
    #[serde(default, rename = "$evaluators")]
    evaluators: Map<String, Value>,
    #[serde(default)]
    metadata: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlagdFlag {
    state: FlagdState,
    variants: BTreeMap<String, Value>,
    #[serde(default)]
    default_variant: Option<String>,
    #[serde(default)]
    targeting: Option<Value>,
    #[serde(default)]
    metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum FlagdState {
    Enabled,
    Disabled,
}

impl FlagSet {
    /// Imports a flagd flag definition document (`{"flags": {...}, "$evaluators": {...}}`).
    ///
    /// # Errors
    /// [`ImportError::Parse`] for JSON that is not a flagd document, [`ImportError::Unsupported`]
    /// naming the flag and JSON path of targeting that has no native equivalent.
    pub fn from_flagd_json(text: &str) -> Result<Self, ImportError> {
        let document: FlagdDocument =
            serde_json::from_str(text).map_err(|source| ImportError::Parse {
                format: "flagd",
                source,
            })?;
        let flags = document
            .flags
            .iter()
            .map(|(key, flag)| convert_flag(key, flag, &document))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FlagSet {
            flags,
            segments: BTreeMap::new(),
        })
    }
}

pub(crate) fn unsupported(flag: &str, path: &str, problem: impl Into<String>) -> ImportError {
    ImportError::Unsupported {
        format: "flagd",
        flag: flag.to_owned(),
        path: path.to_owned(),
        problem: problem.into(),
    }
}

fn convert_flag(
    key: &str,
    flag: &FlagdFlag,
    document: &FlagdDocument,
) -> Result<FlagDefinition, ImportError> {
    let flag_type = infer_type(key, &flag.variants)?;
    let mut metadata = BTreeMap::new();
    for (name, value) in document.metadata.iter().chain(&flag.metadata) {
        if !(value.is_object() || value.is_array() || value.is_null()) {
            metadata.insert(name.clone(), value.clone());
        }
    }
    let rules = match &flag.targeting {
        Some(targeting) if !is_empty_targeting(targeting) => {
            let inlined = inline_refs(key, targeting, &document.evaluators, 0, "targeting")?;
            jsonlogic::lower_targeting(key, &inlined, &flag.variants)?
        }
        _ => Vec::new(),
    };
    let has_fractional = rules
        .iter()
        .any(|r| matches!(r.serve, Some(crate::model::Serve::Split(_))));
    Ok(FlagDefinition {
        key: key.to_owned(),
        flag_type,
        description: None,
        enabled: flag.state == FlagdState::Enabled,
        environments: BTreeMap::new(),
        variants: flag.variants.clone(),
        default_variant: flag.default_variant.clone(),
        off_variant: None,
        serve: None,
        rules,
        prerequisites: Vec::new(),
        hashing: if has_fractional {
            HashVersion::FlagdV2
        } else {
            HashVersion::V1
        },
        metadata,
    })
}

fn is_empty_targeting(targeting: &Value) -> bool {
    targeting.is_null() || targeting.as_object().is_some_and(Map::is_empty)
}

fn infer_type(key: &str, variants: &BTreeMap<String, Value>) -> Result<FlagType, ImportError> {
    let all = |f: fn(&Value) -> bool| !variants.is_empty() && variants.values().all(f);
    if all(Value::is_boolean) {
        Ok(FlagType::Boolean)
    } else if all(Value::is_string) {
        Ok(FlagType::String)
    } else if all(Value::is_i64) {
        Ok(FlagType::Integer)
    } else if all(Value::is_number) {
        Ok(FlagType::Float)
    } else if all(Value::is_object) {
        Ok(FlagType::Object)
    } else {
        Err(unsupported(
            key,
            "variants",
            "variants are empty or mix value types",
        ))
    }
}

/// Replaces every `{"$ref": name}` with the named evaluator.
fn inline_refs(
    key: &str,
    value: &Value,
    evaluators: &Map<String, Value>,
    depth: usize,
    path: &str,
) -> Result<Value, ImportError> {
    if depth > MAX_REF_DEPTH {
        return Err(unsupported(
            key,
            path,
            "`$ref`s nest too deeply or form a cycle",
        ));
    }
    match value {
        Value::Object(object) => {
            if let (1, Some(reference)) = (object.len(), object.get("$ref")) {
                let name = reference.as_str().unwrap_or_default();
                let target = evaluators
                    .get(name)
                    .ok_or_else(|| unsupported(key, path, format!("unknown evaluator `{name}`")))?;
                return inline_refs(
                    key,
                    target,
                    evaluators,
                    depth + 1,
                    &format!("$evaluators.{name}"),
                );
            }
            let mut result = Map::new();
            for (name, child) in object {
                result.insert(
                    name.clone(),
                    inline_refs(key, child, evaluators, depth, &format!("{path}.{name}"))?,
                );
            }
            Ok(Value::Object(result))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, child)| inline_refs(key, child, evaluators, depth, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}
