//! SemVer conditions: strict SemVer 2.0.0 parsing (as Unleash does) and precedence tests of an
//! attribute against a compiled operand.
//!
//! Operands are parsed once by the compiler. Attributes arrive as text on every evaluation, and
//! nearly all of them are plain releases (`2.4.1`); those are read in place without building a
//! [`semver::Version`]. Anything else (pre-releases, build metadata, invalid text) goes through
//! the `semver` crate, so it stays the single authority on what is valid.

use std::cmp::Ordering;

use semver::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SemverTest {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
    /// Same major version (flagd's `^`).
    Caret,
    /// Same major and minor version (flagd's `~`).
    Tilde,
}

/// Parses a strict SemVer 2.0.0 version (no leading `v`, all three numbers), as Unleash does.
pub(crate) fn parse_semver(text: &str) -> Option<Version> {
    Version::parse(text).ok()
}

/// Whether the attribute `text` passes `test` against `operand`; text that is not a valid
/// version passes nothing.
pub(crate) fn matches_version(test: SemverTest, text: &str, operand: &Version) -> bool {
    if let Some((major, minor, patch)) = plain_release(text) {
        // A release ranks above every pre-release of the same numbers (SemVer 2.0.0 §11).
        let order = (major, minor, patch)
            .cmp(&(operand.major, operand.minor, operand.patch))
            .then(if operand.pre.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            });
        return accept(test, order, (major, minor), operand);
    }
    parse_semver(text).is_some_and(|value| {
        accept(
            test,
            precedence(&value, operand),
            (value.major, value.minor),
            operand,
        )
    })
}

fn accept(
    test: SemverTest,
    order: Ordering,
    (major, minor): (u64, u64),
    operand: &Version,
) -> bool {
    match test {
        SemverTest::Eq => order == Ordering::Equal,
        SemverTest::Lt => order == Ordering::Less,
        SemverTest::Lte => order != Ordering::Greater,
        SemverTest::Gt => order == Ordering::Greater,
        SemverTest::Gte => order != Ordering::Less,
        SemverTest::Caret => major == operand.major,
        SemverTest::Tilde => major == operand.major && minor == operand.minor,
    }
}

fn precedence(a: &Version, b: &Version) -> Ordering {
    // Build metadata does not take part in precedence (SemVer 2.0.0 §10).
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

/// `MAJOR.MINOR.PATCH` and nothing else: digits only, no leading zeros, each fitting a `u64`
/// (the `semver` crate's rules for these numbers). `None` sends the text to the full parser.
fn plain_release(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.split('.');
    let major = numeric(parts.next()?)?;
    let minor = numeric(parts.next()?)?;
    let patch = numeric(parts.next()?)?;
    match parts.next() {
        None => Some((major, minor, patch)),
        Some(_) => None,
    }
}

fn numeric(part: &str) -> Option<u64> {
    let bytes = part.as_bytes();
    if bytes.is_empty() || (bytes.len() > 1 && bytes[0] == b'0') {
        return None;
    }
    bytes.iter().try_fold(0u64, |value, byte| {
        if byte.is_ascii_digit() {
            value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const TESTS: [SemverTest; 7] = [
        SemverTest::Eq,
        SemverTest::Lt,
        SemverTest::Lte,
        SemverTest::Gt,
        SemverTest::Gte,
        SemverTest::Caret,
        SemverTest::Tilde,
    ];

    /// The reference: always build a `semver::Version`.
    fn reference(test: SemverTest, text: &str, operand: &Version) -> bool {
        parse_semver(text).is_some_and(|value| {
            accept(
                test,
                precedence(&value, operand),
                (value.major, value.minor),
                operand,
            )
        })
    }

    fn check(text: &str, operand: &str) {
        let operand = parse_semver(operand).expect("operand");
        for test in TESTS {
            assert_eq!(
                matches_version(test, text, &operand),
                reference(test, text, &operand),
                "{test:?} {text:?} against {operand}"
            );
        }
    }

    #[test]
    fn plain_releases_agree_with_the_semver_crate() {
        let texts = [
            "1.2.3",
            "0.0.0",
            "01.2.3",
            "1.02.3",
            "1.2",
            "1.2.3.4",
            "1..3",
            "",
            "1.2.3 ",
            " 1.2.3",
            "v1.2.3",
            "1.2.3-rc.1",
            "1.2.3+build",
            "18446744073709551615.0.0",
            "18446744073709551616.0.0",
            "1.2.-3",
            "1.2.+3",
        ];
        for text in texts {
            for operand in ["1.2.3", "1.2.3-rc.1", "0.0.0", "1.2.4", "2.0.0-alpha"] {
                check(text, operand);
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_semver_crate(
            text in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-[0-9a-z.]{0,6})?(\\+[0-9a-z]{1,3})?",
            operand in "[0-9]\\.[0-9]\\.[0-9](-(alpha|beta|rc)(\\.[0-9])?)?",
        ) {
            check(&text, &operand);
        }

        #[test]
        fn agrees_on_arbitrary_text(text in "[0-9.a-z+-]{0,12}") {
            check(&text, "1.0.0");
            check(&text, "1.0.0-rc.1");
        }
    }
}
