//! Durations in manifests and on the wire.
//!
//! Manifests write durations as humantime strings (`30s`, `1m30s`, `250ms`); the wire format of
//! measured windows uses fractional seconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses a humantime duration such as `30s` or `1m 30s`.
///
/// # Errors
/// Returns a message saying what was expected when `text` is not a duration.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("expected a duration such as `30s` or `1m`, got `{text}` ({e})"))
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
