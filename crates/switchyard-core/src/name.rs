//! Validated names: apps, templates and release versions.
//!
//! Names appear in URLs, file names, metric labels and log paths, so they are restricted to a
//! DNS-label-like alphabet. A name that deserialises is valid.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not an acceptable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("is {len} characters long, at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error(
        "contains `{ch}`; use letters, digits, `-`, `_` and `.` (and start with a letter or digit)"
    )]
    InvalidCharacter { ch: char },
}

fn check(text: &str, max: usize) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.len() > max {
        return Err(NameError::TooLong {
            len: text.len(),
            max,
        });
    }
    for (i, ch) in text.chars().enumerate() {
        let ok = ch.is_ascii_alphanumeric() || (i > 0 && matches!(ch, '-' | '_' | '.'));
        if !ok {
            return Err(NameError::InvalidCharacter { ch });
        }
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `text` as a name.
            ///
            /// # Errors
            /// Returns what is wrong with the text.
            pub fn new(text: impl Into<String>) -> Result<Self, NameError> {
                let text = text.into();
                check(&text, $max)?;
                Ok(Self(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(text: String) -> Result<Self, NameError> {
                Self::new(text)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// The name of an app (one service behind one listener).
    AppName,
    63
);
name_type!(
    /// The name of a manifest object other than an app (analysis templates and the like).
    ObjectName,
    63
);
name_type!(
    /// A release version label such as `v2` or `1.4.0-rc.1`.
    Version,
    128
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["checkout", "a", "v1.2.3", "app_2-x", "9lives"] {
            assert!(AppName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(AppName::new(""), Err(NameError::Empty));
        assert_eq!(
            AppName::new("-x"),
            Err(NameError::InvalidCharacter { ch: '-' })
        );
        assert_eq!(
            AppName::new("a b"),
            Err(NameError::InvalidCharacter { ch: ' ' })
        );
        assert_eq!(
            AppName::new("a/b"),
            Err(NameError::InvalidCharacter { ch: '/' })
        );
        assert!(matches!(
            AppName::new("x".repeat(64)),
            Err(NameError::TooLong { .. })
        ));
    }
}
