use std::collections::BTreeMap;
use std::path::Path;

use switchyard_core::Timestamp;
use switchyard_core::manifest::load_str;
use switchyard_experiments::port::{ExperimentRecord, ExperimentStatus};

use super::*;

fn app(name: &str) -> AppName {
    AppName::new(name).unwrap()
}

fn version(v: &str) -> Version {
    Version::new(v).unwrap()
}

/// A traffic experiment of `app` whose variants `control`, `t1`, ... are served by `versions`.
fn traffic(key: &str, app: &str, versions: &[(&str, u32)]) -> ExperimentRecord {
    let variants: String = versions
        .iter()
        .enumerate()
        .map(|(i, (v, w))| {
            let name = if i == 0 {
                "control".to_owned()
            } else {
                format!("t{i}")
            };
            format!("    - {{name: {name}, weight: {w}, version: {v}}}\n")
        })
        .collect();
    let text = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: {key}}}\n\
         spec:\n  split: {{traffic: {{app: {app}, unit: {{header: x-user-id}}}}}}\n  variants:\n\
         {variants}  metrics:\n    - {{name: bought, conversion: {{event: purchase}}}}\n"
    );
    let set = load_str(&text, Path::new("e.yaml")).unwrap();
    ExperimentRecord {
        manifest: set.experiments.into_iter().next().unwrap(),
        generation: 1,
        started_at: Timestamp::from_millis(0),
        status: ExperimentStatus::Running,
    }
}

fn stopped(mut record: ExperimentRecord) -> ExperimentRecord {
    record.status = ExperimentStatus::Stopped {
        reason: "done".into(),
        actor: "user:cli".into(),
        at: Timestamp::from_millis(1),
    };
    record
}

fn flag(key: &str) -> ExperimentRecord {
    let text = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: {key}}}\n\
         spec:\n  split: {{flag: {{unit: userId}}}}\n  variants:\n\
         \x20   - {{name: a, weight: 1}}\n    - {{name: b, weight: 1}}\n\
         \x20 metrics:\n    - {{name: bought, conversion: {{event: purchase}}}}\n"
    );
    let set = load_str(&text, Path::new("f.yaml")).unwrap();
    ExperimentRecord {
        manifest: set.experiments.into_iter().next().unwrap(),
        generation: 1,
        started_at: Timestamp::from_millis(0),
        status: ExperimentStatus::Running,
    }
}

fn placed(records: &[&ExperimentRecord]) -> BTreeMap<AppName, Split> {
    records
        .iter()
        .filter_map(|r| Split::of(r))
        .map(|s| (s.app.clone(), s))
        .collect()
}

#[test]
fn a_running_traffic_experiment_is_split_with_its_variants_and_weights() {
    let shop = traffic("shop-ab", "shop", &[("v1", 90), ("v2", 10)]);
    let plan = plan(&BTreeMap::new(), [&shop, &flag("checkout")]);
    assert_eq!(plan.conflicts, []);
    let [Step::Split { split, retired }] = plan.steps.as_slice() else {
        panic!("{plan:?}");
    };
    assert!(retired.is_empty());
    assert_eq!(split.experiment, "shop-ab");
    assert_eq!(split.app, app("shop"));
    assert_eq!(split.unit, Stickiness::Header("x-user-id".into()));
    assert_eq!(
        split.arms,
        [
            Arm {
                variant: "control".into(),
                version: version("v1"),
                weight: 90
            },
            Arm {
                variant: "t1".into(),
                version: version("v2"),
                weight: 10
            },
        ]
    );
    assert_eq!(split.variant_of("v2"), Some("t1"));
    assert_eq!(split.variant_of("v3"), None);
}

#[test]
fn what_is_already_served_needs_nothing_and_flag_or_stopped_experiments_need_nothing_new() {
    let shop = traffic("shop-ab", "shop", &[("v1", 50), ("v2", 50)]);
    let old = stopped(traffic("old", "cart", &[("v1", 50), ("v2", 50)]));
    assert_eq!(
        plan(&placed(&[&shop]), [&shop, &old, &flag("f")]),
        Plan::default()
    );
    assert_eq!(plan(&BTreeMap::new(), [&old]), Plan::default());
}

#[test]
fn a_stopped_experiment_is_restored_once() {
    let shop = traffic("shop-ab", "shop", &[("v1", 50), ("v2", 50)]);
    let before = placed(&[&shop]);
    let shop = stopped(shop);
    let plan = plan(&before, [&shop]);
    assert_eq!(
        plan.steps,
        [Step::Restore {
            split: before[&app("shop")].clone()
        }]
    );
}

#[test]
fn an_experiment_no_longer_applied_is_restored() {
    let shop = traffic("shop-ab", "shop", &[("v1", 50), ("v2", 50)]);
    let plan = plan(&placed(&[&shop]), []);
    assert!(
        matches!(plan.steps.as_slice(), [Step::Restore { split }] if split.experiment == "shop-ab")
    );
}

#[test]
fn new_weights_route_again_and_a_replaced_version_is_retired() {
    let before = placed(&[&traffic("shop-ab", "shop", &[("v1", 50), ("v2", 50)])]);
    let reweighted = traffic("shop-ab", "shop", &[("v1", 80), ("v2", 20)]);
    assert!(matches!(
        plan(&before, [&reweighted]).steps.as_slice(),
        [Step::Split { retired, .. }] if retired.is_empty()
    ));
    let replaced = traffic("shop-ab", "shop", &[("v1", 50), ("v3", 50)]);
    assert!(matches!(
        plan(&before, [&replaced]).steps.as_slice(),
        [Step::Split { retired, .. }] if retired == &[version("v2")]
    ));
}

#[test]
fn an_experiment_moved_to_another_app_restores_the_first_and_splits_the_second() {
    let before = placed(&[&traffic("ab", "shop", &[("v1", 50), ("v2", 50)])]);
    let moved = traffic("ab", "cart", &[("v1", 50), ("v2", 50)]);
    let steps = plan(&before, [&moved]).steps;
    assert!(
        matches!(
            steps.as_slice(),
            [Step::Restore { split: old }, Step::Split { split: new, retired }]
                if old.app == app("shop") && new.app == app("cart") && retired.is_empty()
        ),
        "{steps:?}"
    );
}

#[test]
fn another_experiment_on_the_same_app_replaces_the_stopped_one_and_retires_its_versions() {
    let before = placed(&[&traffic("first", "shop", &[("v1", 50), ("v2", 50)])]);
    let first = stopped(traffic("first", "shop", &[("v1", 50), ("v2", 50)]));
    let second = traffic("second", "shop", &[("v1", 50), ("v3", 50)]);
    let steps = plan(&before, [&first, &second]).steps;
    assert!(
        matches!(
            steps.as_slice(),
            [Step::Split { split, retired }] if split.experiment == "second" && retired == &[version("v2")]
        ),
        "{steps:?}"
    );
}

#[test]
fn two_running_experiments_on_one_app_keep_the_one_in_the_routes() {
    let a = traffic("a", "shop", &[("v1", 50), ("v2", 50)]);
    let b = traffic("b", "shop", &[("v1", 50), ("v3", 50)]);
    // Nothing served yet: the first by key.
    let fresh = plan(&BTreeMap::new(), [&a, &b]);
    assert!(
        matches!(fresh.steps.as_slice(), [Step::Split { split, .. }] if split.experiment == "a")
    );
    assert_eq!(
        fresh.conflicts,
        [Conflict {
            app: app("shop"),
            serving: "a".into(),
            left_out: "b".into()
        }]
    );
    // `b` already splits the app: it keeps it.
    let kept = plan(&placed(&[&b]), [&a, &b]);
    assert_eq!(kept.steps, []);
    assert_eq!(
        kept.conflicts,
        [Conflict {
            app: app("shop"),
            serving: "b".into(),
            left_out: "a".into()
        }]
    );
}
