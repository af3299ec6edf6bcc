//! Deserialising "exactly one of these keys" objects (`runtime: {process: ...}`,
//! `- setWeight: 5`) as enums.
//!
//! serde_yaml_ng reads externally tagged enums only from YAML tags (`!process`) when the map is
//! written in flow style, which is not how anyone writes manifests. This visitor reads the single
//! key and deserialises its value in place, so errors inside keep their line, column and path.

/// Implements `Deserialize` for an enum whose variants each wrap one type, keyed by name.
macro_rules! one_of {
    ($ty:ident { $($key:literal => $variant:ident($inner:ty)),+ $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                const KEYS: &[&str] = &[$($key),+];
                struct OneOf;
                impl<'de> serde::de::Visitor<'de> for OneOf {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "a map with exactly one of: {}", KEYS.join(", "))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        use serde::de::Error;
                        let Some(key) = map.next_key::<String>()? else {
                            return Err(A::Error::custom(format!(
                                "expected exactly one of: {}, found none", KEYS.join(", ")
                            )));
                        };
                        let value = match key.as_str() {
                            $($key => $ty::$variant(map.next_value::<$inner>()?),)+
                            other => return Err(A::Error::unknown_variant(other, KEYS)),
                        };
                        if let Some(extra) = map.next_key::<String>()? {
                            return Err(A::Error::custom(format!(
                                "expected exactly one of: {}, found both `{key}` and `{extra}`",
                                KEYS.join(", ")
                            )));
                        }
                        Ok(value)
                    }
                }
                d.deserialize_map(OneOf)
            }
        }
    };
}

pub(crate) use one_of;
