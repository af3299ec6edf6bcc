//! The hasher of the plan's lookup tables (flag index, `in` sets).
//!
//! The tables are built from trusted flag definitions; context values are only looked up, never
//! inserted, so a caller cannot provoke collisions and SipHash's flooding resistance buys nothing.
//! What matters is the cost of hashing the probe key on every evaluation: flag keys such as
//! `Feature.constraints.no_values_NOT_IN` are 30–40 bytes, which byte-at-a-time FNV-1a hashed in
//! ~4 instructions per byte. [`WordHasher`] folds 8 bytes per multiply and finishes with
//! murmur3's 64-bit avalanche, so the high bits hashbrown uses for its control bytes are mixed.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-and-rotate hash over 64-bit words, with a final avalanche.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WordHasher(u64);

/// An odd constant with well-spread bits (the golden ratio's fractional part).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        // murmur3 fmix64: every input bit affects every output bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Assembled by shifts: a variable-length `copy_from_slice` here is a `memcpy` call,
            // which cost more than the rest of the hash.
            let word = rest
                .iter()
                .enumerate()
                .fold(0u64, |word, (i, byte)| word | u64::from(*byte) << (8 * i));
            // The length goes into the tail word so that "a" and "a\0" differ.
            self.add(word ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        // `str`'s `Hash` ends with a 0xff marker byte; one round, not a slice walk.
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }
}

/// A map keyed by strings, hashed with [`WordHasher`].
pub(crate) type LookupMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;
/// A set of strings, hashed with [`WordHasher`].
pub(crate) type LookupSet<K> = HashSet<K, BuildHasherDefault<WordHasher>>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    fn hash(text: &str) -> u64 {
        BuildHasherDefault::<WordHasher>::default().hash_one(text)
    }

    #[test]
    fn distinguishes_lengths_and_tails() {
        let texts = [
            "",
            "a",
            "a\0",
            "ab",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "ba",
        ];
        for (i, a) in texts.iter().enumerate() {
            for b in &texts[i + 1..] {
                assert_ne!(hash(a), hash(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn spreads_the_high_bits() {
        // hashbrown picks control bytes from the top 7 bits: similar keys must not share them.
        let tops: HashSet<u64> = (0..1000)
            .map(|i| hash(&format!("flag-{i}")) >> 57)
            .collect();
        assert_eq!(tops.len(), 128);
    }
}
