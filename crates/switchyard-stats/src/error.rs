//! The one error type of the crate: every variant names what failed and,
//! where there is one, the offending field as a JSON pointer (`/control/n`).

/// Why a statistical computation could not be carried out.
///
/// `field` values are JSON pointers into the input of [`crate::run_method`]
/// (for example `/control/variance`); the typed API uses the same names.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// A sample or list that must hold values is empty.
    #[error("{field}: must not be empty")]
    Empty {
        /// JSON pointer of the empty value.
        field: String,
    },
    /// Too few observations for the method (for example n − 1 = 0).
    #[error("{field}: needs at least {min} observations, got {actual}")]
    TooFewObservations {
        /// JSON pointer of the arm.
        field: String,
        /// The minimum the method needs.
        min: u64,
        /// What was given.
        actual: f64,
    },
    /// A value is NaN or infinite.
    #[error("{field}: must be a finite number, got {value}")]
    NotFinite {
        /// JSON pointer of the value.
        field: String,
        /// The value.
        value: f64,
    },
    /// A value lies outside the range the method accepts.
    #[error("{field}: must be in {range}, got {value}")]
    OutOfRange {
        /// JSON pointer of the value.
        field: String,
        /// The value.
        value: f64,
        /// Human-readable range, e.g. `(0, 1)`.
        range: &'static str,
    },
    /// Two lists that must have equal length do not.
    #[error("{field}: expected {expected} values to match {other}, got {actual}")]
    LengthMismatch {
        /// JSON pointer of the list with the wrong length.
        field: String,
        /// The pointer of the list it must match.
        other: String,
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// A relative difference or ratio is undefined because a mean is zero.
    #[error("{field}: mean is zero, so a relative difference is undefined")]
    ZeroMean {
        /// JSON pointer of the arm whose mean is zero.
        field: String,
    },
    /// The standard error of the estimate is zero (no variation in either arm).
    #[error("standard error of the difference is zero: both arms have no variance")]
    ZeroStandardError,
    /// A rank-based interval is undefined because every observation is tied.
    #[error("{field}: all observations are tied, the rank statistic has no variance")]
    AllTied {
        /// JSON pointer of the samples.
        field: String,
    },
    /// The method name passed to [`crate::run_method`] is unknown.
    #[error("unknown method `{method}`, expected one of: {expected}")]
    UnknownMethod {
        /// What was asked for.
        method: String,
        /// The accepted names.
        expected: &'static str,
    },
    /// The JSON input does not have the expected shape (unknown or missing
    /// field, wrong type, unknown enum value).
    #[error("{field}: {message}")]
    InvalidJson {
        /// JSON pointer where deserialisation failed (`` for the root).
        field: String,
        /// What serde reported.
        message: String,
    },
    /// Exactly one of a set of mutually exclusive fields must be given.
    #[error("exactly one of {fields} must be given")]
    ExactlyOneOf {
        /// The alternatives, e.g. `power, n_per_arm`.
        fields: &'static str,
    },
    /// A numeric solver found no solution in its search range.
    #[error("no solution for {what} in the search range")]
    NoSolution {
        /// What was being solved for.
        what: &'static str,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StatsError> = std::result::Result<T, E>;

/// Joins a JSON pointer prefix and a child key.
pub(crate) fn pointer(prefix: &str, key: &str) -> String {
    format!("{prefix}/{key}")
}

/// Requires `value` to be finite.
pub(crate) fn finite(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(StatsError::NotFinite {
            field: field.to_owned(),
            value,
        })
    }
}

/// Requires `value` to lie strictly between 0 and 1 (a level or probability).
pub(crate) fn open_unit(field: &str, value: f64) -> Result<f64> {
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(StatsError::OutOfRange {
            field: field.to_owned(),
            value,
            range: "(0, 1)",
        })
    }
}

/// Requires `value` to be finite and strictly positive.
pub(crate) fn positive(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(StatsError::OutOfRange {
            field: field.to_owned(),
            value,
            range: "(0, inf)",
        })
    }
}

/// Requires `value` to be finite and not negative.
pub(crate) fn non_negative(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(StatsError::OutOfRange {
            field: field.to_owned(),
            value,
            range: "[0, inf)",
        })
    }
}

/// Requires every value of a sample to be finite and the sample non-empty.
pub(crate) fn sample<'a>(field: &str, values: &'a [f64]) -> Result<&'a [f64]> {
    if values.is_empty() {
        return Err(StatsError::Empty {
            field: field.to_owned(),
        });
    }
    for (i, v) in values.iter().enumerate() {
        finite(&pointer(field, &i.to_string()), *v)?;
    }
    Ok(values)
}

/// `x > 0`, false for NaN (so `!is_positive(x)` also rejects NaN).
pub(crate) fn is_positive(x: f64) -> bool {
    x > 0.0
}

/// `x ≥ min`, false for NaN.
pub(crate) fn at_least(x: f64, min: f64) -> bool {
    x >= min
}
