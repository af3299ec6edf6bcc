//! Between Rust values and column values: integers, timestamps, JSON text and names, and the
//! mapping of failures to `StoreError` (`Backend` for the database, `Corrupt` for what was
//! stored but no longer reads back).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::ports::StoreError;

/// Maps a database failure while doing `operation` ("read an app", …).
pub(super) fn backend(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        source: Box::new(e),
    }
}

/// Unsigned counts and instants as SQL integers. Saturating: millisecond timestamps reach
/// `i64::MAX` in some 292 million years, and order is kept either way.
pub(super) fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(super) fn millis(at: Timestamp) -> i64 {
    to_sql_int(at.as_millis())
}

/// A stored unsigned value; negative means the row was written by something else.
pub(super) fn from_sql_int(value: i64, what: impl FnOnce() -> String) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt_value(what(), &format!("negative value {value}")))
}

pub(super) fn timestamp(
    value: i64,
    what: impl FnOnce() -> String,
) -> Result<Timestamp, StoreError> {
    from_sql_int(value, what).map(Timestamp::from_millis)
}

/// JSON text for a column. Serialising these types cannot fail in practice (no maps with
/// non-string keys); if it ever does, nothing is written and the caller gets a `Backend` error.
pub(super) fn encode<T: Serialize>(
    value: &T,
    operation: &'static str,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend {
        operation,
        source: Box::new(e),
    })
}

/// A JSON column read back (borrowing from `text` where `T` does).
pub(super) fn decode<'a, T: Deserialize<'a>>(
    text: &'a str,
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        what: what(),
        source,
    })
}

/// A plain text column read back as a validated type (a name, a version, an event kind), with
/// the same validation as when it arrived in JSON.
pub(super) fn decode_text<T: DeserializeOwned>(
    text: String,
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text)).map_err(|source| StoreError::Corrupt {
        what: what(),
        source,
    })
}

/// `Corrupt` for a value that is not JSON; core's `Corrupt` carries a `serde_json::Error`, which
/// can hold any message.
fn corrupt_value(what: String, message: &str) -> StoreError {
    StoreError::Corrupt {
        what,
        source: <serde_json::Error as serde::de::Error>::custom(message),
    }
}
