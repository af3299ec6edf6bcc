//! The hasher of the plan's lookup tables (flag index, `in` sets). FNV-1a: keys are short
//! strings and the tables are built from trusted flag definitions (context values are only
//! looked up, never inserted), so SipHash's flooding resistance buys nothing and costs a large
//! share of an evaluation.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// 64-bit FNV-1a.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A map keyed by strings, hashed with [`Fnv1a`].
pub(crate) type LookupMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv1a>>;
/// A set of strings, hashed with [`Fnv1a`].
pub(crate) type LookupSet<K> = HashSet<K, BuildHasherDefault<Fnv1a>>;
