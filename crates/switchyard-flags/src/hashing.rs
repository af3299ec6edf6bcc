//! Bucketing: the one place that turns a stickiness value into a bucket.
//!
//! Every flag stores the [`HashVersion`] it was created with, so an engine upgrade that adds a new
//! generation never reshuffles users of existing flags. Experiments call [`in_rollout`] and
//! [`split_index`] directly so that assignment and flag evaluation always agree.

use serde::{Deserialize, Serialize};

/// Seed of the [`HashVersion::FlagdV2`] rollout gate. flagd has no rollout gate of its own; a seed
/// different from the split's (0) keeps gate and variant independent, so a 50% rollout of a 50/50
/// split is 25/25, not 50/0.
pub const FLAGD_V2_ROLLOUT_SEED: u32 = 0x9747_b28c;

/// Unleash's seed for variant selection (the rollout gate uses seed 0), kept so that imported
/// Unleash flags bucket users exactly as Unleash SDKs do.
pub const UNLEASH_VARIANT_SEED: u32 = 86_028_157;

/// A bucketing generation. Stored per flag; the default is [`HashVersion::V1`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashVersion {
    /// Unleash-compatible: murmur3 x86_32 of `salt:value`; rollout bucket `h % 100 + 1` (seed 0)
    /// kept when `bucket <= percentage`; variant bucket `h % total_weight + 1` (seed 86028157).
    #[default]
    V1,
    /// flagd `fractional` (current generation): murmur3 x86_32 (seed 0) of `salt ++ value`, mapped
    /// to `(h * total_weight) >> 32`; rollout gate: the same mapping with seed
    /// [`FLAGD_V2_ROLLOUT_SEED`] into 10 000 basis points, kept when `< percentage * 100`.
    FlagdV2,
}

impl HashVersion {
    /// Whether this is the default generation (lets serialisation omit it).
    pub fn is_default(&self) -> bool {
        *self == Self::V1
    }
}

/// Whether a stickiness value falls inside a rollout of `percentage` (0–100).
///
/// Monotonic by construction: a value's bucket does not depend on the percentage, so a value
/// inside at `x` is inside at every `y >= x`.
pub fn in_rollout<V: AsRef<[u8]> + ?Sized>(
    version: HashVersion,
    salt: &str,
    value: &V,
    percentage: f64,
) -> bool {
    if percentage <= 0.0 {
        return false;
    }
    let value = value.as_ref();
    match version {
        HashVersion::V1 => {
            let bucket = murmur3_parts(&[salt.as_bytes(), b":", value], 0) % 100 + 1;
            f64::from(bucket) <= percentage
        }
        HashVersion::FlagdV2 => (rollout_bucket(version, salt, value) as f64) < percentage * 100.0,
    }
}

/// The rollout bucket of a stickiness value: 1–100 for [`HashVersion::V1`] (Unleash's
/// "normalized hash"), 0–9999 basis points for [`HashVersion::FlagdV2`].
pub fn rollout_bucket<V: AsRef<[u8]> + ?Sized>(version: HashVersion, salt: &str, value: &V) -> u32 {
    let value = value.as_ref();
    match version {
        HashVersion::V1 => murmur3_parts(&[salt.as_bytes(), b":", value], 0) % 100 + 1,
        HashVersion::FlagdV2 => {
            let hash = murmur3_parts(&[salt.as_bytes(), value], FLAGD_V2_ROLLOUT_SEED);
            // (h * 10_000) >> 32 < 10_000, so the cast is lossless.
            ((u64::from(hash) * 10_000) >> 32) as u32
        }
    }
}

/// Picks the index of a weighted variant for a stickiness value, or `None` when every weight is
/// zero. Variants with weight zero are never chosen.
pub fn split_index<V: AsRef<[u8]> + ?Sized>(
    version: HashVersion,
    salt: &str,
    value: &V,
    weights: &[u32],
) -> Option<usize> {
    let value = value.as_ref();
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    match version {
        HashVersion::V1 => {
            let hash = murmur3_parts(&[salt.as_bytes(), b":", value], UNLEASH_VARIANT_SEED);
            let target = u64::from(hash) % total + 1;
            pick(weights, |cumulative| cumulative >= target)
        }
        HashVersion::FlagdV2 => {
            let hash = murmur3_parts(&[salt.as_bytes(), value], 0);
            let target = (u64::from(hash) * total) >> 32;
            pick(weights, |cumulative| target < cumulative)
        }
    }
}

/// Experiment assignment: the arm (name, weight) a stickiness value falls into, by the same
/// bucketing as a flag split with this `version` and `salt` (the flag key, unless the split sets a
/// salt). `None` when every weight is zero.
pub fn assign_variant<'a>(
    version: HashVersion,
    salt: &str,
    value: &str,
    arms: &[(&'a str, u32)],
) -> Option<&'a str> {
    let mut weights = [0u32; 32];
    let index = if arms.len() <= weights.len() {
        // Small experiments (the common case) bucket without allocating.
        for (slot, (_, weight)) in weights.iter_mut().zip(arms) {
            *slot = *weight;
        }
        split_index(version, salt, value, &weights[..arms.len()])
    } else {
        split_index(
            version,
            salt,
            value,
            &arms.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
        )
    };
    index.map(|i| arms[i].0)
}

fn pick(weights: &[u32], reached: impl Fn(u64) -> bool) -> Option<usize> {
    let mut cumulative = 0u64;
    for (index, weight) in weights.iter().enumerate() {
        if *weight == 0 {
            continue;
        }
        cumulative += u64::from(*weight);
        if reached(cumulative) {
            return Some(index);
        }
    }
    None
}

/// MurmurHash3 x86_32 of the concatenation of `parts`, without building the concatenated string
/// (evaluation must not allocate).
pub fn murmur3_parts(parts: &[&[u8]], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut block = [0u8; 4];
    let mut filled = 0usize;
    let mut len = 0usize;
    for part in parts {
        for byte in *part {
            block[filled] = *byte;
            filled += 1;
            if filled == 4 {
                let mut k = u32::from_le_bytes(block);
                k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
                h ^= k;
                h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
                filled = 0;
            }
        }
        len += part.len();
    }
    if filled > 0 {
        let mut k = 0u32;
        for (i, byte) in block[..filled].iter().enumerate() {
            k ^= u32::from(*byte) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    // Murmur3 folds the length in modulo 2^32 by definition.
    h ^= len as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_reference_vectors() {
        // Published MurmurHash3_x86_32 vectors.
        assert_eq!(murmur3_parts(&[b""], 0), 0);
        assert_eq!(murmur3_parts(&[b""], 1), 0x514e_28b7);
        assert_eq!(murmur3_parts(&[b"test"], 0), 0xba6b_d213);
        assert_eq!(murmur3_parts(&[b"Hello, world!"], 0), 0xc036_3e43);
        assert_eq!(murmur3_parts(&[b"Hello, ", b"world!"], 0), 0xc036_3e43);
        assert_eq!(
            murmur3_parts(&[b"The quick brown fox jumps over the lazy dog"], 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn unleash_normalized_hash_vectors() {
        // unleash-client-node: normalizedValue("123", "gr1") == 73 (hashes "gr1:123").
        assert_eq!(rollout_bucket(HashVersion::V1, "gr1", "123"), 73);
    }
}
