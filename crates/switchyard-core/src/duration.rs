//! Durations in manifests and on the wire.
//!
//! Manifests write durations as humantime strings (`30s`, `1m30s`, `250ms`); the wire format of
//! measured windows uses fractional seconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// The longest duration a manifest or a command may give: a pause, a bake, a timeout or a
/// window past it is a mistake, and deadlines this far out stay far from overflowing a
/// timestamp.
pub const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a humantime duration such as `30s` or `1m 30s`, of at most [`MAX`].
///
/// # Errors
/// Returns a message saying what was expected when `text` is not a duration or is too long.
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("expected a duration such as `30s` or `1m`, got `{text}` ({e})"))?;
    if d > MAX {
        return Err(format!(
            "`{text}` is longer than the longest duration Switchyard accepts (366 days)"
        ));
    }
    Ok(d)
}

/// Formats a duration the way manifests write it.
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `#[serde(with = "...")]` for humantime strings.
pub mod serde_humantime {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "...")]` for optional humantime strings.
pub mod serde_humantime_opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| super::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `#[serde(with = "...")]` for fractional seconds.
pub mod serde_secs_f64 {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "...")]` for optional fractional seconds.
pub mod serde_opt_secs_f64 {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_by_a_year_and_a_day() {
        assert_eq!(parse("366d"), Ok(MAX));
        let e = parse("500000y").unwrap_err();
        assert!(e.contains("longer than the longest duration"), "{e}");
        assert!(parse("367d").is_err());
        assert!(parse("soon").unwrap_err().contains("expected a duration"));
    }
}
