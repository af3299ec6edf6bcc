//! The attributes of an evaluation context: a map from name to JSON value, stored as a vector
//! sorted by name.
//!
//! Why not a `HashMap`: contexts hold a handful of attributes and are read many times per
//! request (every condition of every flag looks one up). A binary search over a few names costs
//! one or two short comparisons, where SipHash cost ~100 instructions per lookup; a faster
//! unkeyed hasher would let a client who controls attribute names (OFREP contexts come from
//! the network) build colliding keys. Sorted storage has neither cost nor attack, and gives a
//! deterministic serialisation order.

use std::collections::HashMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Up to this many attributes, a lookup scans instead of bisecting.
const LINEAR_SCAN: usize = 8;

/// Context attributes by name. Inserting a name that exists replaces its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    /// Sorted by name, names unique.
    entries: Vec<(String, Value)>,
}

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of attribute `name`.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&Value> {
        if self.entries.len() <= LINEAR_SCAN {
            // Equality rejects most names on their length alone; ordering compares bytes.
            return self
                .entries
                .iter()
                .find(|(candidate, _)| candidate == name)
                .map(|(_, value)| value);
        }
        self.position(name).ok().map(|i| &self.entries[i].1)
    }

    /// Sets attribute `name`, returning its previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let name = name.into();
        let value = value.into();
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    /// Removes attribute `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.position(name).ok().map(|i| self.entries.remove(i).1)
    }

    /// The attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(candidate, _)| candidate.as_str().cmp(name))
    }
}

impl<N: Into<String>, V: Into<Value>> FromIterator<(N, V)> for Attributes {
    /// Later duplicates replace earlier ones, as repeated `insert`s would.
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut attributes = Self::new();
        attributes.extend(iter);
        attributes
    }
}

impl<N: Into<String>, V: Into<Value>> Extend<(N, V)> for Attributes {
    fn extend<I: IntoIterator<Item = (N, V)>>(&mut self, iter: I) {
        let mut added: Vec<(String, Value)> = iter
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect();
        if added.is_empty() {
            return;
        }
        // Sorting once keeps building a large context O(n log n). The sort is stable, so among
        // equal names the last one added is the last of its run and wins, with the existing
        // entries (placed first) losing to any new one.
        let mut entries = std::mem::take(&mut self.entries);
        entries.append(&mut added);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduplicated: Vec<(String, Value)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match deduplicated.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => deduplicated.push(entry),
            }
        }
        self.entries = deduplicated;
    }
}

impl From<HashMap<String, Value>> for Attributes {
    fn from(map: HashMap<String, Value>) -> Self {
        map.into_iter().collect()
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (name, value) in &self.entries {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AttributesVisitor;

        impl<'de> Visitor<'de> for AttributesVisitor {
            type Value = Attributes;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a map of attribute names to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Attributes, A::Error> {
                let mut entries: Vec<(String, Value)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0).min(1024));
                while let Some(entry) = access.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(entries.into_iter().collect())
            }
        }

        deserializer.deserialize_map(AttributesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut attributes = Attributes::new();
        assert_eq!(attributes.insert("b", 1), None);
        assert_eq!(attributes.insert("a", 2), None);
        assert_eq!(attributes.insert("b", 3), Some(json!(1)));
        assert_eq!(attributes.get("b"), Some(&json!(3)));
        assert_eq!(attributes.get("c"), None);
        assert_eq!(
            attributes.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(attributes.remove("a"), Some(json!(2)));
        assert_eq!(attributes.len(), 1);
    }

    #[test]
    fn later_duplicates_win() {
        let mut attributes: Attributes = [("x", 1), ("y", 2), ("x", 3)].into_iter().collect();
        assert_eq!(attributes.get("x"), Some(&json!(3)));
        attributes.extend([("y", 4), ("y", 5)]);
        assert_eq!(attributes.get("y"), Some(&json!(5)));
        assert_eq!(attributes.len(), 2);
    }
}
