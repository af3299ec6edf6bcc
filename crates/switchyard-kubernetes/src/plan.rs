//! How a route plan becomes calls, in an order that never sends a request to a Service that
//! selects the wrong release or no pod: a Service is re-pointed only while it carries no
//! weight (or while the release it leaves and the one it gets are the same), and weight moves
//! onto a re-pointed Service only once it has Ready endpoints.

use switchyard_core::Version;

use crate::objects::Role;

/// Where the stable and canary Services point now, and the weights they carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub stable: Option<Version>,
    pub canary: Option<Version>,
    /// Percent to the stable Service (the canary's is the rest); `None` when the route has no
    /// weights yet.
    pub stable_weight: Option<u32>,
}

/// One call of a routing change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Point a Service at a release's pods.
    Select(Role, Version),
    /// Wait until the Service has a Ready endpoint.
    WaitEndpoints(Role),
    /// Set the route's weights: percent to the stable Service, the rest to the canary.
    Weights(u32),
}

/// What the routes should be: the stable and canary releases and the stable's percentage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub stable: Version,
    pub canary: Option<Version>,
    pub stable_weight: u32,
}

/// Decides which release each Service serves: a release that takes all the traffic is the
/// stable one (after a promotion, or an abort); in a split, the release the stable Service
/// serves already stays stable; `extra` are releases that need the canary Service without
/// weight (a header route's, a mirror's).
///
/// # Errors
/// No release, or more than two, to route to.
pub fn desired(
    observed: &Observed,
    targets: &[(Version, u32)],
    extra: &[&Version],
) -> Result<Desired, String> {
    let [first, rest @ ..] = targets else {
        return Err("no release to route to".into());
    };
    if rest.len() > 1 {
        return Err(format!(
            "Kubernetes routes split between two releases (the stable and canary Services), \
             not {}",
            targets.len()
        ));
    }
    let weighted: Vec<&Version> = targets
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|(v, _)| v)
        .collect();
    let stable = match (&weighted[..], &observed.stable) {
        ([only], _) => (*only).clone(),
        (_, Some(s)) if targets.iter().any(|(v, _)| v == s) => s.clone(),
        _ => first.0.clone(),
    };
    let canary = targets
        .iter()
        .map(|(v, _)| v)
        .chain(extra.iter().copied())
        .find(|v| **v != stable)
        .cloned();
    let weight_of = |v: &Version| {
        targets
            .iter()
            .filter(|(t, _)| t == v)
            .map(|(_, w)| u64::from(*w))
            .sum::<u64>()
    };
    let total: u64 = targets.iter().map(|(_, w)| u64::from(*w)).sum();
    let stable_weight = (weight_of(&stable) * 100 + total / 2)
        .checked_div(total)
        .map_or(100, |w| u32::try_from(w).unwrap_or(100));
    Ok(Desired {
        stable,
        canary,
        stable_weight,
    })
}

/// Each release's replicas when the weights are replica counts: its share of `replicas`,
/// rounded up (as Argo Rollouts' basic canary: 4 replicas at 10 % are 1 canary and 4 stable).
pub fn sizes(weights: &[u32], replicas: u32) -> Vec<u32> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    weights
        .iter()
        .map(|w| {
            (u64::from(*w) * u64::from(replicas))
                .div_ceil(total.max(1))
                .try_into()
                .unwrap_or(replicas)
        })
        .collect()
}

/// The calls that take the routes from `observed` to `desired`, in a safe order.
pub fn steps(observed: &Observed, desired: &Desired) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut weight = observed.stable_weight;
    let mut canary = observed.canary.clone();
    if observed.stable.as_ref() != Some(&desired.stable) {
        if canary.as_ref() == Some(&desired.stable) && weight.is_some_and(|w| w > 0) {
            // The stable Service moves to the release the canary Service serves (a promotion):
            // all traffic to the canary Service first, then both serve it.
            steps.push(Step::Weights(0));
            weight = Some(0);
        }
        steps.push(Step::Select(Role::Stable, desired.stable.clone()));
        steps.push(Step::WaitEndpoints(Role::Stable));
    }
    if let Some(c) = &desired.canary {
        if canary.as_ref() != Some(c) {
            if weight != Some(100) {
                steps.push(Step::Weights(100));
                weight = Some(100);
            }
            steps.push(Step::Select(Role::Canary, c.clone()));
            canary = Some(c.clone());
        }
    }
    if desired.stable_weight < 100 && canary.is_some() {
        let moved = steps
            .iter()
            .any(|s| matches!(s, Step::Select(Role::Canary, _)));
        if moved {
            steps.push(Step::WaitEndpoints(Role::Canary));
        }
    }
    let target = if canary.is_some() {
        desired.stable_weight
    } else {
        100
    };
    if weight != Some(target) {
        steps.push(Step::Weights(target));
    }
    dedup_weights(steps)
}

/// Drops a weight change that the next one overrides before anything else happens.
fn dedup_weights(steps: Vec<Step>) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::with_capacity(steps.len());
    for s in steps {
        if let (Some(Step::Weights(_)), Step::Weights(_)) = (out.last(), &s) {
            out.pop();
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::new(s).expect("version")
    }

    fn observed(stable: Option<&str>, canary: Option<&str>, w: Option<u32>) -> Observed {
        Observed {
            stable: stable.map(v),
            canary: canary.map(v),
            stable_weight: w,
        }
    }

    fn run(o: &Observed, targets: &[(&str, u32)], extra: &[&str]) -> Vec<Step> {
        let targets: Vec<(Version, u32)> = targets.iter().map(|(n, w)| (v(n), *w)).collect();
        let extra: Vec<Version> = extra.iter().map(|n| v(n)).collect();
        let extra: Vec<&Version> = extra.iter().collect();
        steps(o, &desired(o, &targets, &extra).expect("desired"))
    }

    #[test]
    fn a_first_release_points_the_stable_service_then_weights_it() {
        let steps = run(&Observed::default(), &[("v1", 100)], &[]);
        assert_eq!(
            steps,
            vec![
                Step::Select(Role::Stable, v("v1")),
                Step::WaitEndpoints(Role::Stable),
                Step::Weights(100),
            ]
        );
    }

    #[test]
    fn a_canary_is_pointed_at_before_it_gets_weight() {
        let o = observed(Some("v1"), None, Some(100));
        let steps = run(&o, &[("v1", 80), ("v2", 20)], &[]);
        assert_eq!(
            steps,
            vec![
                Step::Select(Role::Canary, v("v2")),
                Step::WaitEndpoints(Role::Canary),
                Step::Weights(80),
            ]
        );
    }

    #[test]
    fn a_canary_service_that_served_an_old_release_is_emptied_first() {
        let o = observed(Some("v2"), Some("v1"), Some(90));
        let steps = run(&o, &[("v2", 90), ("v3", 10)], &[]);
        assert_eq!(
            steps,
            vec![
                Step::Weights(100),
                Step::Select(Role::Canary, v("v3")),
                Step::WaitEndpoints(Role::Canary),
                Step::Weights(90),
            ]
        );
    }

    #[test]
    fn a_promotion_moves_the_stable_service_while_the_canary_service_carries_everything() {
        let o = observed(Some("v1"), Some("v2"), Some(50));
        let steps = run(&o, &[("v2", 100)], &[]);
        assert_eq!(
            steps,
            vec![
                Step::Weights(0),
                Step::Select(Role::Stable, v("v2")),
                Step::WaitEndpoints(Role::Stable),
                Step::Weights(100),
            ]
        );
    }

    #[test]
    fn a_finished_promotion_leaves_the_stable_service_on_the_new_release() {
        // The controller's routes after a promotion: the old stable at 0, the new one at 100.
        let o = observed(Some("v1"), Some("v2"), Some(50));
        let steps = run(&o, &[("v1", 0), ("v2", 100)], &[]);
        assert_eq!(
            steps,
            vec![
                Step::Weights(0),
                Step::Select(Role::Stable, v("v2")),
                Step::WaitEndpoints(Role::Stable),
                Step::Weights(100),
                Step::Select(Role::Canary, v("v1")),
            ]
        );
        // An abort after that moves it back the same way.
        let o = observed(Some("v2"), Some("v1"), Some(100));
        let steps = run(&o, &[("v1", 100), ("v2", 0)], &[]);
        assert_eq!(
            steps[..3],
            [
                Step::Weights(0),
                Step::Select(Role::Stable, v("v1")),
                Step::WaitEndpoints(Role::Stable),
            ]
        );
    }

    #[test]
    fn weights_alone_change_when_the_services_are_right() {
        let o = observed(Some("v1"), Some("v2"), Some(80));
        assert_eq!(
            run(&o, &[("v1", 50), ("v2", 50)], &[]),
            vec![Step::Weights(50)]
        );
        assert_eq!(
            run(&o, &[("v1", 100), ("v2", 0)], &[]),
            vec![Step::Weights(100)]
        );
        assert_eq!(run(&o, &[("v1", 80), ("v2", 20)], &[]), vec![]);
    }

    #[test]
    fn a_header_route_takes_the_canary_service_without_weight() {
        let o = observed(Some("v1"), None, Some(100));
        let steps = run(&o, &[("v1", 100)], &["v2"]);
        assert_eq!(steps, vec![Step::Select(Role::Canary, v("v2"))]);
    }

    #[test]
    fn replica_counts_are_shares_rounded_up() {
        assert_eq!(sizes(&[90, 10], 4), vec![4, 1]);
        assert_eq!(sizes(&[75, 25], 4), vec![3, 1]);
        assert_eq!(sizes(&[100, 0], 4), vec![4, 0]);
        assert_eq!(sizes(&[0, 100], 4), vec![0, 4]);
        assert_eq!(sizes(&[100], 3), vec![3]);
    }

    #[test]
    fn more_than_two_releases_are_refused() {
        let o = Observed::default();
        let targets = [(v("a"), 1), (v("b"), 1), (v("c"), 1)];
        assert!(desired(&o, &targets, &[]).is_err());
        assert!(desired(&o, &[], &[]).is_err());
    }
}
