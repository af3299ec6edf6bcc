#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

#[test]
fn hash_is_pinned() {
    // Golden values: a change here reshuffles every sticky user.
    assert_eq!(bucket_of("", "user-1"), bucket_of("", "user-1"));
    assert_eq!(bucket_of("checkout", "alice"), GOLDEN_ALICE);
}

const GOLDEN_ALICE: u32 = 2098;

#[test]
fn ninety_ten_layout() {
    let l = BucketLayout::new(&[90, 10]);
    assert_eq!(l.share(0), 9000);
    assert_eq!(l.share(1), 1000);
    assert_eq!(l.release_of(0), Some(1));
    assert_eq!(l.release_of(999), Some(1));
    assert_eq!(l.release_of(1000), Some(0));
    assert_eq!(l.release_of(9999), Some(0));
}

#[test]
fn three_releases_cover_every_bucket() {
    let l = BucketLayout::new(&[80, 15, 5]);
    assert_eq!((l.share(0), l.share(1), l.share(2)), (8000, 1500, 500));
    assert_eq!(l.release_of(9999), Some(2));
    assert_eq!(l.release_of(9500), Some(2));
    assert_eq!(l.release_of(9499), Some(0));
}

#[test]
fn zero_weights_route_nowhere() {
    let l = BucketLayout::new(&[0, 0]);
    assert_eq!(l.release_of(5), None);
    assert_eq!(BucketLayout::new(&[]).release_of(0), None);
}

#[test]
fn zero_stable_gives_everything_to_others() {
    let l = BucketLayout::new(&[0, 1, 2]);
    assert_eq!(l.share(0), 0);
    assert_eq!(l.share(1) + l.share(2), BUCKETS);
    let l = BucketLayout::new(&[0, 3]);
    assert_eq!(l.share(1), BUCKETS);
}

proptest! {
    // A key on the canary stays on the canary when the canary's weight grows (out of 100).
    #[test]
    fn canary_growth_is_monotonic(key in ".{0,24}", salt in "[a-z]{0,8}", low in 0u32..=100, extra in 0u32..=100) {
        let high = (low + extra).min(100);
        let b = bucket_of(&salt, &key);
        let before = BucketLayout::new(&[100 - low, low]);
        let after = BucketLayout::new(&[100 - high, high]);
        if before.release_of(b) == Some(1) {
            prop_assert_eq!(after.release_of(b), Some(1));
        }
    }

    // With a preview release fixed, growing the canary keeps canary and preview users in place.
    #[test]
    fn canary_growth_keeps_preview(b in 0u32..BUCKETS, low in 0u32..=50, extra in 0u32..=40, preview in 0u32..=10) {
        let before = BucketLayout::new(&[100 - low - preview, low, preview]);
        let after = BucketLayout::new(&[100 - low - extra - preview, low + extra, preview]);
        match before.release_of(b) {
            Some(1) => prop_assert_eq!(after.release_of(b), Some(1)),
            Some(2) => prop_assert_eq!(after.release_of(b), Some(2)),
            _ => {}
        }
    }

    // Every bucket belongs to exactly one release and shares follow the weights within one bucket.
    #[test]
    fn layout_partitions_buckets(weights in prop::collection::vec(0u32..1000, 1..6)) {
        let l = BucketLayout::new(&weights);
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        if total == 0 {
            prop_assert_eq!(l.release_of(0), None);
        } else {
            let covered: u32 = (0..weights.len()).map(|i| l.share(i)).sum();
            prop_assert_eq!(covered, BUCKETS);
            for (i, w) in weights.iter().enumerate() {
                let exact = f64::from(*w) * f64::from(BUCKETS) / total as f64;
                prop_assert!((f64::from(l.share(i)) - exact).abs() <= weights.len() as f64, "share {} of {:?}", i, weights);
                if *w == 0 { prop_assert_eq!(l.share(i), 0); }
            }
            for b in (0..BUCKETS).step_by(7) {
                prop_assert!(l.release_of(b).is_some());
            }
        }
    }

    // Hashed keys spread evenly: a 10 % share gets close to 10 % of many keys.
    #[test]
    fn hashed_keys_follow_weights(salt in "[a-z]{0,8}", canary in 1u32..=99) {
        let l = BucketLayout::new(&[100 - canary, canary]);
        let n = 4000;
        let hits = (0..n).filter(|i| l.release_of(bucket_of(&salt, &format!("user-{i}"))) == Some(1)).count();
        let expected = f64::from(canary) / 100.0 * f64::from(n);
        let sd = (expected * (1.0 - f64::from(canary) / 100.0)).sqrt();
        prop_assert!((hits as f64 - expected).abs() < 6.0 * sd + 2.0, "{} vs {}", hits, expected);
    }
}
