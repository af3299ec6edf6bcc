//! Sticky bucketing: a key hashes to a bucket in [0, 10000), and a layout of bucket ranges per
//! release maps the bucket to a release.
//!
//! The layout is what makes stickiness monotonic. The first non-stable release (the canary)
//! grows up from bucket 0, the second (preview) grows down from 10000, further ones stack after
//! them, and stable takes what is left in the middle. Raising the canary's share only takes
//! buckets from stable, so a key on the canary stays on it as its weight grows.
//!
//! The hash is FNV-1a (64 bit) over `salt`, a 0xff separator byte (not valid UTF-8, so no
//! salt/key pair collides with another split of the same bytes), and the key. It is pinned:
//! changing it would move users between releases mid-rollout.

use std::ops::Range;

/// Number of buckets; a share of 1 bucket is 0.01 % of traffic.
pub const BUCKETS: u32 = 10_000;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The bucket of `key`, in [0, [`BUCKETS`]).
pub fn bucket_of(salt: &str, key: &str) -> u32 {
    let mut hash = FNV_OFFSET;
    let bytes = salt
        .as_bytes()
        .iter()
        .chain(std::iter::once(&0xff))
        .chain(key.as_bytes());
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    // The remainder is below 10000, so the narrowing cannot truncate.
    (hash % u64::from(BUCKETS)) as u32
}

/// Bucket ranges per release, in the order of the table's backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketLayout {
    ranges: Vec<Range<u32>>,
}

impl BucketLayout {
    /// Lays out relative `weights` (stable first). All-zero weights give an empty layout.
    pub fn new(weights: &[u32]) -> Self {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut ranges = vec![0..0; weights.len()];
        if total == 0 {
            return BucketLayout { ranges };
        }
        let (mut bottom, mut top) = (0u32, BUCKETS);
        for (i, w) in weights.iter().enumerate().skip(1) {
            // share ≤ BUCKETS because w ≤ total, so it fits in u32.
            let share = (u64::from(*w) * u64::from(BUCKETS) / total) as u32;
            if i % 2 == 1 {
                ranges[i] = bottom..bottom + share;
                bottom += share;
            } else {
                ranges[i] = top - share..top;
                top -= share;
            }
        }
        if let Some(stable) = ranges.first_mut() {
            *stable = bottom..top;
        }
        // Rounding leaves the remainder to stable; if stable's weight is zero, the leftover
        // buckets go to the non-empty release beside the gap instead.
        if weights.first() == Some(&0) && bottom < top {
            ranges[0] = bottom..bottom;
            let beside = (1..weights.len()).rev().find(|i| {
                weights[*i] > 0
                    && if i % 2 == 1 {
                        ranges[*i].end == bottom
                    } else {
                        ranges[*i].start == top
                    }
            });
            match beside {
                Some(i) if i % 2 == 1 => ranges[i].end = top,
                Some(i) => ranges[i].start = bottom,
                None => {}
            }
        }
        BucketLayout { ranges }
    }

    /// The release (index into the table's backends) that owns `bucket`.
    pub fn release_of(&self, bucket: u32) -> Option<usize> {
        self.ranges.iter().position(|r| r.contains(&bucket))
    }

    /// Number of buckets owned by release `index`.
    pub fn share(&self, index: usize) -> u32 {
        self.ranges.get(index).map_or(0, |r| r.end - r.start)
    }
}

#[cfg(test)]
mod tests;
