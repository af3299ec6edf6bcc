//! Finding the line and column of a field path (`spec.variants[2].name`) in a YAML document, so
//! that problems found after deserialising are located like those found while deserialising:
//! at the value itself (a scalar, or the start of a mapping or sequence).
//!
//! The document is walked again with a seed that follows the path and fails on purpose when it
//! reaches the end; serde_yaml_ng marks that failure with the position of the event being read.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The message of the deliberate failure; any other error means the path was not found.
const FOUND: &str = "\u{0}switchyard: located";

/// 1-based line and column of `path` in `doc`, if the path exists there.
pub(in crate::manifest) fn locate(
    doc: serde_yaml_ng::Deserializer<'_>,
    path: &str,
) -> Option<(usize, usize)> {
    let segments = parse(path)?;
    match Find(&segments).deserialize(doc) {
        Ok(_) => None,
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| (l.line(), l.column())),
        Err(_) => None,
    }
}

#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn parse(path: &str) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_owned()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            segments.push(Segment::Index(inner[..end].parse().ok()?));
            rest = &inner[end + 1..];
        }
    }
    Some(segments)
}

struct Find<'a>(&'a [Segment]);

/// What the walk below a node found when it did not stop on the path's end: nothing.
enum Walk {
    /// The path is not in the document.
    Missing,
}

impl<'de> DeserializeSeed<'de> for Find<'_> {
    type Value = Walk;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Walk, D::Error> {
        d.deserialize_any(self)
    }
}

impl Find<'_> {
    fn scalar<E: de::Error>(&self) -> Result<Walk, E> {
        if self.0.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(Walk::Missing)
        }
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

macro_rules! scalar {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<Walk, E> {
            self.scalar()
        })*
    };
}

impl<'de> Visitor<'de> for Find<'_> {
    type Value = Walk;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<Walk, E> {
        self.scalar()
    }

    fn visit_none<E: de::Error>(self) -> Result<Walk, E> {
        self.scalar()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Walk, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Walk, A::Error> {
        self.enter()?;
        while let Some(key) = map.next_key::<String>()? {
            match &self.0[0] {
                Segment::Key(k) if *k == key => {
                    return map.next_value_seed(Find(&self.0[1..]));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Walk::Missing)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Walk, A::Error> {
        self.enter()?;
        let mut index = 0;
        loop {
            if self.0[0] == Segment::Index(index) {
                let walk = seq.next_element_seed(Find(&self.0[1..]))?;
                return Ok(walk.unwrap_or(Walk::Missing));
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(Walk::Missing);
            }
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
spec:
  variants:
    - {name: a, weight: 1}
    - name: b
      weight: 2
  unit: x
";

    fn at(path: &str) -> Option<(usize, usize)> {
        let doc = serde_yaml_ng::Deserializer::from_str(DOC);
        locate(doc, path)
    }

    #[test]
    fn paths_parse_into_keys_and_indices() {
        assert_eq!(
            parse("spec.variants[2].name"),
            Some(vec![
                Segment::Key("spec".into()),
                Segment::Key("variants".into()),
                Segment::Index(2),
                Segment::Key("name".into()),
            ])
        );
        assert_eq!(parse("a[x]"), None);
    }

    #[test]
    fn values_are_located_where_they_are_written() {
        assert_eq!(at("spec.variants[1].weight").map(|l| l.0), Some(5));
        assert_eq!(at("spec.variants[0].name").map(|l| l.0), Some(3));
        assert_eq!(at("spec.variants[1]").map(|l| l.0), Some(4));
        assert!(at("spec.unit").is_some());
    }

    #[test]
    fn missing_paths_are_not_located() {
        assert_eq!(at("spec.variants[5].name"), None);
        assert_eq!(at("spec.nothing"), None);
    }
}
