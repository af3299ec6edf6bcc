//! Flags with flagd semantics: no native rules; targeting kept as JsonLogic for
//! [`crate::jsonlogic`], which flagd accepts whatever it contains (a bad expression fails only
//! the evaluations that reach it, as in flagd).

use serde_json::Value;

use super::{FlagCompiler, Located};
use crate::compiled::{CompiledFlag, CompiledFlagd};
use crate::error::Problem;
use crate::hashing::HashVersion;
use crate::jsonlogic::{Val, truncate_to_i64};

impl FlagCompiler<'_> {
    pub(super) fn compile_flagd(&self, enabled: bool) -> Result<CompiledFlag, Located> {
        let flag = self.flag;
        let native_fields = [
            ("rules", !flag.rules.is_empty()),
            ("serve", flag.serve.is_some()),
            ("prerequisites", !flag.prerequisites.is_empty()),
            ("offVariant", flag.off_variant.is_some()),
            ("hashing", flag.hashing != HashVersion::default()),
        ];
        if let Some((field, _)) = native_fields.iter().find(|(_, present)| *present) {
            return Err(((*field).to_owned(), Problem::NotFlagd(field)));
        }
        let variants: Vec<(String, Value)> = flag
            .variants
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let integers = variants
            .iter()
            .map(|(_, value)| value.as_f64().map(|x| Value::from(truncate_to_i64(x))))
            .collect();
        let default_variant =
            self.optional_variant(flag.default_variant.as_deref(), "defaultVariant")?;
        let targeting = match &flag.targeting {
            None => None,
            Some(Value::Object(map)) if map.is_empty() => None,
            Some(rule) => Some(Val::from_json(rule)),
        };
        Ok(CompiledFlag {
            key: flag.key.clone(),
            flag_type: flag.flag_type,
            enabled,
            variants,
            default_variant,
            off_variant: None,
            serve: None,
            rules: Vec::new(),
            prerequisites: Vec::new(),
            hashing: flag.hashing,
            metadata: self.metadata()?,
            flagd: Some(CompiledFlagd {
                targeting,
                integers,
                fractional: flag.fractional,
            }),
        })
    }
}
