//! `strategy: {rolling: ...}` and the canary's `setCanaryScale` step: changing how many instances
//! of a release run, rather than how much traffic it takes.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::AnalysisStep;
use crate::manifest::numbers::Percent;
use crate::manifest::one_of::one_of;

/// Replace the stable release's instances by the new release's in batches, as a Kubernetes
/// Deployment's `RollingUpdate` does: at most `maxSurge` instances above the desired count, at
/// most `maxUnavailable` below it, each new instance healthy before an old one stops. Traffic is
/// split by instance count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RollingStrategy {
    /// How many instances may run above the desired count (rounded up from a percentage).
    #[serde(default = "default_quarter")]
    pub max_surge: InstancesOrPercent,
    /// How many instances may be missing from the desired count (rounded down from a
    /// percentage). With `0`, capacity never drops during the update.
    #[serde(default = "default_quarter")]
    pub max_unavailable: InstancesOrPercent,
    /// Analysis run after every batch that added new instances; a failure rolls back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStep>,
}

fn default_quarter() -> InstancesOrPercent {
    InstancesOrPercent::Percent(Percent::new(25).unwrap_or(Percent::ZERO))
}

impl RollingStrategy {
    /// `maxSurge` and `maxUnavailable` as instance counts for a release of `desired` instances.
    /// When both round to zero (`maxUnavailable: 25%` of one instance), one instance may be
    /// unavailable, as Kubernetes resolves it.
    pub fn limits(&self, desired: u32) -> (u32, u32) {
        let surge = self.max_surge.resolve(desired, Rounding::Up);
        let unavailable = self.max_unavailable.resolve(desired, Rounding::Down);
        if surge == 0 && unavailable == 0 && !self.is_stuck() {
            return (0, 1);
        }
        (surge, unavailable)
    }

    /// Both limits are written as zero: no instance could ever be replaced.
    pub fn is_stuck(&self) -> bool {
        self.max_surge.is_zero() && self.max_unavailable.is_zero()
    }

    /// The instance counts `(new, old)` after each batch, from `(0, current)` to
    /// `(desired, 0)`, where `current` is how many instances the old release runs. Within a
    /// batch new instances start (and become healthy) before old ones stop, so at most
    /// `desired + surge` run and at least `desired - unavailable` are healthy (once the old
    /// release is within those bounds). Empty when both limits are written as zero (the manifest
    /// check refuses that).
    pub fn batches(&self, desired: u32, current: u32) -> Vec<(u32, u32)> {
        let (surge, unavailable) = self.limits(desired);
        let mut batches = Vec::new();
        if surge == 0 && unavailable == 0 {
            return batches;
        }
        let (mut new, mut old) = (0u32, current);
        while new < desired || old > 0 {
            new = new.max(desired.min((desired + surge).saturating_sub(old)));
            let removable = (new + old).saturating_sub(desired - unavailable.min(desired));
            old -= removable.min(old);
            batches.push((new, old));
        }
        batches
    }
}

/// A count of instances (`2`) or a percentage of the desired count (`"25%"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstancesOrPercent {
    Count(u32),
    Percent(Percent),
}

/// How a percentage becomes a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Up,
    Down,
}

impl InstancesOrPercent {
    pub fn is_zero(self) -> bool {
        match self {
            InstancesOrPercent::Count(n) => n == 0,
            InstancesOrPercent::Percent(p) => p.get() == 0,
        }
    }

    pub fn resolve(self, desired: u32, rounding: Rounding) -> u32 {
        match self {
            InstancesOrPercent::Count(n) => n,
            InstancesOrPercent::Percent(p) => {
                let scaled = desired * u32::from(p.get());
                match rounding {
                    Rounding::Up => scaled.div_ceil(100),
                    Rounding::Down => scaled / 100,
                }
            }
        }
    }
}

impl fmt::Display for InstancesOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstancesOrPercent::Count(n) => write!(f, "{n}"),
            InstancesOrPercent::Percent(p) => write!(f, "{p}"),
        }
    }
}

impl Serialize for InstancesOrPercent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InstancesOrPercent::Count(n) => s.serialize_u32(*n),
            InstancesOrPercent::Percent(p) => s.serialize_str(&p.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for InstancesOrPercent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = InstancesOrPercent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of instances (`1`) or a percentage (`\"25%\"`)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|n| *n <= 64)
                    .map(InstancesOrPercent::Count)
                    .ok_or_else(|| E::custom(format!("expected from 0 to 64 instances, got {v}")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "expected from 0 to 64 instances, got {v}"
                    ))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let number = v.strip_suffix('%').ok_or_else(|| {
                    E::custom(format!("expected a percentage such as \"25%\", got {v:?}"))
                })?;
                let n: i64 = number.trim().parse().map_err(|_| {
                    E::custom(format!("expected a percentage such as \"25%\", got {v:?}"))
                })?;
                Percent::new(n)
                    .map(InstancesOrPercent::Percent)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `setCanaryScale`: how many instances the canary runs from this step on, whatever its
/// weight. Without it the canary runs as many instances as the app's runtime asks; promotion
/// scales it back to that before it takes all traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CanaryScale {
    /// Exactly this many instances (at least 1).
    Replicas(u32),
    /// This percentage of the app's instance count, rounded up (at least 1).
    Weight(Percent),
}

impl CanaryScale {
    /// The canary's instance count for an app of `desired` instances.
    pub fn instances(self, desired: u32) -> u32 {
        match self {
            CanaryScale::Replicas(n) => n.max(1),
            CanaryScale::Weight(p) => (desired * u32::from(p.get())).div_ceil(100).max(1),
        }
    }
}

impl fmt::Display for CanaryScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanaryScale::Replicas(n) => write!(f, "{n} instance(s)"),
            CanaryScale::Weight(p) => write!(f, "{p} of the instances"),
        }
    }
}

/// An instance count of `setCanaryScale` in `1..=64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
struct Replicas(u32);

impl TryFrom<i64> for Replicas {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        u32::try_from(n)
            .ok()
            .filter(|n| (1..=64).contains(n))
            .map(Replicas)
            .ok_or_else(|| format!("expected from 1 to 64 instances, got {n}"))
    }
}

/// The wire form of [`CanaryScale`], so that `replicas` is range-checked where it is written.
enum CanaryScaleWire {
    Replicas(Replicas),
    Weight(Percent),
}

one_of!(CanaryScaleWire { "replicas" => Replicas(Replicas), "weight" => Weight(Percent) });

impl<'de> Deserialize<'de> for CanaryScale {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match CanaryScaleWire::deserialize(d)? {
            CanaryScaleWire::Replicas(r) => CanaryScale::Replicas(r.0),
            CanaryScaleWire::Weight(p) => CanaryScale::Weight(p),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rolling(surge: InstancesOrPercent, unavailable: InstancesOrPercent) -> RollingStrategy {
        RollingStrategy {
            max_surge: surge,
            max_unavailable: unavailable,
            analysis: None,
        }
    }

    fn pct(p: i64) -> InstancesOrPercent {
        InstancesOrPercent::Percent(Percent::new(p).unwrap())
    }

    #[test]
    fn surge_only_never_drops_below_the_desired_count() {
        let r = rolling(InstancesOrPercent::Count(1), InstancesOrPercent::Count(0));
        assert_eq!(r.batches(3, 3), vec![(1, 2), (2, 1), (3, 0)]);
    }

    #[test]
    fn unavailable_only_never_runs_more_than_desired() {
        let r = rolling(InstancesOrPercent::Count(0), InstancesOrPercent::Count(1));
        assert_eq!(r.batches(3, 3), vec![(0, 2), (1, 1), (2, 0), (3, 0)]);
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        let r = rolling(pct(25), pct(25));
        assert_eq!(r.limits(3), (1, 0));
        assert_eq!(r.limits(8), (2, 2));
        assert_eq!(r.batches(8, 8), vec![(2, 4), (6, 0), (8, 0)]);
    }

    #[test]
    fn both_written_as_zero_has_no_batches() {
        let r = rolling(InstancesOrPercent::Count(0), pct(0));
        assert!(r.is_stuck());
        assert!(r.batches(3, 3).is_empty());
    }

    #[test]
    fn percentages_that_round_to_zero_allow_one_unavailable() {
        let r = rolling(InstancesOrPercent::Count(0), pct(25));
        assert!(!r.is_stuck());
        assert_eq!(r.limits(1), (0, 1));
        assert_eq!(r.batches(1, 1), vec![(0, 0), (1, 0)]);
    }

    #[test]
    fn every_batch_respects_both_limits_and_progresses() {
        for desired in 1..=12 {
            for surge in 0..=4 {
                for unavailable in 0..=4 {
                    if surge + unavailable == 0 {
                        continue;
                    }
                    let r = rolling(
                        InstancesOrPercent::Count(surge),
                        InstancesOrPercent::Count(unavailable),
                    );
                    let batches = r.batches(desired, desired);
                    let (mut new, mut old) = (0, desired);
                    for &(n, o) in &batches {
                        assert!(n >= new && o <= old, "{batches:?}");
                        assert!(
                            n + old <= desired + surge,
                            "peak {desired}/{surge}: {batches:?}"
                        );
                        assert!(
                            n + o >= desired.saturating_sub(unavailable),
                            "floor {desired}/{unavailable}: {batches:?}"
                        );
                        assert!((n, o) != (new, old), "no progress: {batches:?}");
                        (new, old) = (n, o);
                    }
                    assert_eq!((new, old), (desired, 0));
                }
            }
        }
    }

    #[test]
    fn an_old_release_of_another_size_converges_too() {
        let r = rolling(InstancesOrPercent::Count(1), InstancesOrPercent::Count(0));
        assert_eq!(r.batches(2, 4), vec![(0, 2), (1, 1), (2, 0)]);
        assert_eq!(r.batches(3, 1), vec![(3, 0)]);
    }

    #[test]
    fn canary_scale_rounds_up_and_keeps_one_instance() {
        assert_eq!(
            CanaryScale::Weight(Percent::new(10).unwrap()).instances(4),
            1
        );
        assert_eq!(
            CanaryScale::Weight(Percent::new(50).unwrap()).instances(3),
            2
        );
        assert_eq!(CanaryScale::Weight(Percent::ZERO).instances(3), 1);
        assert_eq!(CanaryScale::Replicas(2).instances(5), 2);
    }
}
