//! Reading and writing the native format (YAML or JSON). Export is the inverse of import: any
//! flag set, including one imported from Unleash or flagd, writes out as readable native
//! YAML/JSON that loads back to an equal [`FlagSet`].

use crate::error::FlagError;
use crate::model::FlagSet;

impl FlagSet {
    /// Parses a native flag set from YAML.
    ///
    /// # Errors
    /// [`FlagError::ParseYaml`] with line, column and the offending field.
    pub fn from_native_yaml(text: &str) -> Result<Self, FlagError> {
        serde_yaml_ng::from_str(text).map_err(FlagError::ParseYaml)
    }

    /// Parses a native flag set from JSON.
    ///
    /// # Errors
    /// [`FlagError::ParseJson`] with line, column and the offending field.
    pub fn from_native_json(text: &str) -> Result<Self, FlagError> {
        serde_json::from_str(text).map_err(FlagError::ParseJson)
    }

    /// Writes the set as native YAML (defaults omitted).
    ///
    /// # Errors
    /// [`FlagError::Serialise`] if a value cannot be represented.
    pub fn to_native_yaml(&self) -> Result<String, FlagError> {
        serde_yaml_ng::to_string(self).map_err(|source| FlagError::Serialise {
            format: "yaml",
            source: Box::new(source),
        })
    }

    /// Writes the set as pretty-printed native JSON (defaults omitted).
    ///
    /// # Errors
    /// [`FlagError::Serialise`] if a value cannot be represented.
    pub fn to_native_json(&self) -> Result<String, FlagError> {
        serde_json::to_string_pretty(self).map_err(|source| FlagError::Serialise {
            format: "json",
            source: Box::new(source),
        })
    }
}
