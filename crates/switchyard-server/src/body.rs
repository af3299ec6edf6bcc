//! Request bodies: JSON parsed here so that every malformed body is a 400 `bad_request` in the
//! stable body, naming what the parser found, and an absent body means "no options".

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A required JSON body.
///
/// # Errors
/// 400 `bad_request` with the parser's message and the field path (`expect.step: invalid
/// type ...`).
pub fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        ApiError::bad_request(format!("invalid request body: {at}{}", e.inner()))
    })
}

/// An optional JSON body: absent or empty is `T::default()`.
///
/// # Errors
/// 400 `bad_request` with the parser's message.
pub fn parse_optional<T: DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(bytes)
    }
}

/// A body taken by axum's `Json` extractor: 415 and 413 keep their status, anything else is a
/// 400 `bad_request` with axum's message.
///
/// # Errors
/// As above.
pub fn json<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload.map(|Json(v)| v).map_err(|e| {
        let status = match e.status() {
            s @ (StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::PAYLOAD_TOO_LARGE) => s,
            _ => StatusCode::BAD_REQUEST,
        };
        let (code, _) = crate::stable_errors::code_of(status);
        ApiError::new(
            status,
            code,
            format!("invalid request body: {}", e.body_text()),
        )
    })
}
