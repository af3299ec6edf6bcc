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

/// The longest flag or segment key, in characters.
pub const MAX_KEY_CHARS: usize = 128;

/// Checks a flag or segment key: the rules of app names, widened to every script (Unleash
/// clients must serve keys such as `Feature.UTF-8.Hellø_Wørld`): 1 to 128 characters, starting
/// with a letter or digit, then letters, digits, `-`, `_`, `.` or any other non-ASCII character
/// that is neither whitespace nor a control character. No `/`, no spaces, no newlines, no NUL.
///
/// # Errors
/// What is wrong with `key`.
pub fn check_key(key: &str) -> Result<(), NameError> {
    let mut chars = key.chars();
    let Some(first) = chars.next() else {
        return Err(NameError::Empty);
    };
    let len = key.chars().count();
    if len > MAX_KEY_CHARS {
        return Err(NameError::TooLong {
            len,
            max: MAX_KEY_CHARS,
        });
    }
    if !first.is_alphanumeric() {
        return Err(NameError::InvalidCharacter { ch: first });
    }
    for ch in chars {
        let ok = ch.is_alphanumeric()
            || matches!(ch, '-' | '_' | '.')
            || (!ch.is_ascii() && !ch.is_whitespace() && !ch.is_control());
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
    fn flag_keys_take_every_script_but_no_separator_space_or_control() {
        for ok in [
            "new-checkout",
            "Feature.UTF-8.Hellø_Wørld",
            "Feature.UTF-8.😊_φriend_你好_🌍",
            "9",
        ] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_key(""), Err(NameError::Empty));
        for (bad, ch) in [
            ("../../etc/passwd", '.'),
            ("a\nb", '\n'),
            ("a\0b", '\0'),
            ("a b", ' '),
            ("a/b", '/'),
        ] {
            assert_eq!(
                check_key(bad),
                Err(NameError::InvalidCharacter { ch }),
                "{bad:?}"
            );
        }
        assert!(matches!(
            check_key(&"x".repeat(100_000)),
            Err(NameError::TooLong { len: 100_000, .. })
        ));
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
