//! Deployment metrics on `/metrics`, named after the source documents' dashboards, per app and
//! environment (the app's `environment` label; empty without one). They are counted from the
//! store at each scrape, so they never reset: a restarted daemon reports the same totals.
//!
//! - `deployment_total`: deployments started — every rollout (undo and retry included) and every
//!   app's first release.
//! - `deployment_success_total`: rollouts that succeeded, and first releases.
//! - `deployment_failed_total`: rollouts whose release proved bad or did not start (`RolledBack`,
//!   `Failed`).
//! - `deployment_rollback_total{trigger}`: rollouts that sent the traffic back to the release
//!   they replaced: `trigger="automatic"` when Switchyard decided (the judge, an analysis, the
//!   rollback policy, a rollback webhook: `RolledBack`), `"operator"` for an abort.
//! - `deployment_duration_seconds{outcome}`: from a rollout's start to its end, by outcome
//!   (`succeeded`, `rolled_back`, `aborted`, `failed`); rollouts in progress are not in it yet.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use switchyard_core::ports::DeploymentRecord;

use crate::rollout_metrics::escape;

pub const TOTAL: &str = "deployment";
pub const SUCCESS: &str = "deployment_success";
pub const FAILED: &str = "deployment_failed";
pub const ROLLBACK: &str = "deployment_rollback";
pub const DURATION: &str = "deployment_duration_seconds";

/// Upper bounds of the duration histogram's buckets, in seconds: 10 s to a day.
pub const BUCKETS: [f64; 13] = [
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14_400.0, 43_200.0,
    86_400.0,
];

#[derive(Debug, Default)]
struct Counts {
    total: u64,
    success: u64,
    failed: u64,
    automatic: u64,
    operator: u64,
    /// By outcome: the durations of ended rollouts, in seconds.
    durations: BTreeMap<&'static str, Vec<f64>>,
}

/// A counter's name, help text, and how it reads an app's counts.
type Counter = (&'static str, &'static str, fn(&Counts) -> u64);

/// The outcome label of an ended rollout's phase.
fn outcome(phase: &str) -> Option<&'static str> {
    match phase {
        "Succeeded" => Some("succeeded"),
        "RolledBack" => Some("rolled_back"),
        "Aborted" => Some("aborted"),
        "Failed" => Some("failed"),
        _ => None,
    }
}

/// The metrics of `deployments`; `environment` names an app's environment.
pub fn encode(deployments: &[DeploymentRecord], environment: &dyn Fn(&str) -> String) -> String {
    let mut by_app: BTreeMap<(String, String), Counts> = BTreeMap::new();
    for d in deployments {
        let app = d.app.as_str();
        let counts = by_app
            .entry((app.to_owned(), environment(app)))
            .or_default();
        counts.total += 1;
        let Some(phase) = &d.phase else {
            counts.success += 1;
            continue;
        };
        match phase.as_str() {
            "Succeeded" => counts.success += 1,
            "RolledBack" => {
                counts.failed += 1;
                counts.automatic += 1;
            }
            "Failed" => counts.failed += 1,
            "Aborted" => counts.operator += 1,
            _ => {}
        }
        if let (Some(outcome), Some(ended)) = (outcome(phase), d.ended_at) {
            counts
                .durations
                .entry(outcome)
                .or_default()
                .push(ended.since(d.started_at).as_secs_f64());
        }
    }
    let mut out = String::new();
    let labels = |(app, env): &(String, String)| {
        format!("app=\"{}\",environment=\"{}\"", escape(app), escape(env))
    };
    let counters: [Counter; 3] = [
        (
            TOTAL,
            "Deployments started: rollouts and first releases.",
            |c| c.total,
        ),
        (
            SUCCESS,
            "Deployments that succeeded (first releases included).",
            |c| c.success,
        ),
        (
            FAILED,
            "Deployments whose release was rolled back or did not start.",
            |c| c.failed,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (key, counts) in &by_app {
            let _ = writeln!(out, "{name}_total{{{}}} {}", labels(key), value(counts));
        }
    }
    let _ = writeln!(
        out,
        "# HELP {ROLLBACK} Rollouts that sent traffic back to the release they replaced, by who decided.\n# TYPE {ROLLBACK} counter"
    );
    for (key, counts) in &by_app {
        for (trigger, n) in [
            ("automatic", counts.automatic),
            ("operator", counts.operator),
        ] {
            let _ = writeln!(
                out,
                "{ROLLBACK}_total{{{},trigger=\"{trigger}\"}} {n}",
                labels(key)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP {DURATION} From a rollout's start to its end, by outcome.\n# TYPE {DURATION} histogram"
    );
    for (key, counts) in &by_app {
        for (outcome, durations) in &counts.durations {
            let l = format!("{},outcome=\"{outcome}\"", labels(key));
            for bound in BUCKETS {
                let n = durations.iter().filter(|d| **d <= bound).count();
                let _ = writeln!(out, "{DURATION}_bucket{{{l},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "{DURATION}_bucket{{{l},le=\"+Inf\"}} {}\n{DURATION}_sum{{{l}}} {}\n{DURATION}_count{{{l}}} {}",
                durations.len(),
                durations.iter().sum::<f64>(),
                durations.len()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use switchyard_core::{AppName, Timestamp};

    use super::*;

    fn rollout(app: &str, phase: &str, seconds: Option<u64>) -> DeploymentRecord {
        DeploymentRecord {
            app: AppName::new(app.to_owned()).unwrap(),
            rollout: Some(1),
            phase: Some(phase.into()),
            active: seconds.is_none(),
            started_at: Timestamp::from_millis(1_000_000),
            ended_at: seconds.map(|s| Timestamp::from_millis(1_000_000 + s * 1000)),
        }
    }

    fn first(app: &str) -> DeploymentRecord {
        DeploymentRecord {
            rollout: None,
            phase: None,
            active: false,
            ended_at: None,
            ..rollout(app, "", Some(0))
        }
    }

    #[test]
    fn each_outcome_is_counted_where_the_dashboards_look_for_it() {
        let deployments = [
            first("shop"),
            rollout("shop", "Succeeded", Some(90)),
            rollout("shop", "RolledBack", Some(20)),
            rollout("shop", "Aborted", Some(400)),
            rollout("shop", "Failed", Some(5)),
            rollout("shop", "Analyzing", None),
            first("cart"),
        ];
        let env = |app: &str| {
            if app == "shop" {
                "production".to_owned()
            } else {
                String::new()
            }
        };
        let text = encode(&deployments, &env);
        let shop = "app=\"shop\",environment=\"production\"";
        for line in [
            format!("deployment_total{{{shop}}} 6"),
            format!("deployment_success_total{{{shop}}} 2"),
            format!("deployment_failed_total{{{shop}}} 2"),
            format!("deployment_rollback_total{{{shop},trigger=\"automatic\"}} 1"),
            format!("deployment_rollback_total{{{shop},trigger=\"operator\"}} 1"),
            "deployment_total{app=\"cart\",environment=\"\"} 1".to_owned(),
            "deployment_failed_total{app=\"cart\",environment=\"\"} 0".to_owned(),
            format!(
                "deployment_duration_seconds_bucket{{{shop},outcome=\"succeeded\",le=\"60\"}} 0"
            ),
            format!(
                "deployment_duration_seconds_bucket{{{shop},outcome=\"succeeded\",le=\"120\"}} 1"
            ),
            format!(
                "deployment_duration_seconds_bucket{{{shop},outcome=\"aborted\",le=\"+Inf\"}} 1"
            ),
            format!("deployment_duration_seconds_sum{{{shop},outcome=\"rolled_back\"}} 20"),
            format!("deployment_duration_seconds_count{{{shop},outcome=\"failed\"}} 1"),
            "# TYPE deployment counter".to_owned(),
            "# TYPE deployment_duration_seconds histogram".to_owned(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
        assert!(
            !text.contains("outcome=\"analyzing\""),
            "rollouts in progress have no duration"
        );
    }
}
