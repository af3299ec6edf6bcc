//! An attribute name as the plan refers to it, classified once at compile time so that
//! evaluation does not re-examine the name (is it `targetingKey`? does it have a dotted path?)
//! on every lookup.

use super::{CURRENT_TIME, TARGETING_KEY};

/// A compiled attribute name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttributeKey {
    name: Box<str>,
    kind: KeyKind,
    current_time: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// `targetingKey`: the context's targeting key, else an attribute of that name.
    TargetingKey,
    /// A name without a dot: one attribute lookup.
    Plain,
    /// `a.b.c`: the attribute of that full name, else a path into object attributes.
    Dotted,
}

impl KeyKind {
    pub(crate) fn of(name: &str) -> Self {
        if name == TARGETING_KEY {
            Self::TargetingKey
        } else if name.contains('.') {
            Self::Dotted
        } else {
            Self::Plain
        }
    }
}

impl AttributeKey {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            kind: KeyKind::of(name),
            current_time: name == CURRENT_TIME,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Whether this is `currentTime`, which reads `now` when the context lacks it.
    pub(crate) fn is_current_time(&self) -> bool {
        self.current_time
    }
}
