//! Rollout state and the latest analysis measurements as Prometheus metrics, beside the
//! proxy's: what the controller decided is as observable as the traffic it decided on.

use std::fmt::Write as _;

use switchyard_control::RolloutSnapshot;

/// Canary weight of each app's rollout in progress, percent.
pub const ROLLOUT_WEIGHT: &str = "switchyard_rollout_canary_weight_percent";
/// 1 for the phase each app's latest rollout is in.
pub const ROLLOUT_PHASE: &str = "switchyard_rollout_phase";
/// The latest value of each analysis metric of each rollout in progress.
pub const ANALYSIS_VALUE: &str = "switchyard_analysis_last_value";
/// Measurements taken by each analysis metric, by outcome.
pub const ANALYSIS_MEASUREMENTS: &str = "switchyard_analysis_measurements";

const LABEL_APP: &str = "app";
const LABEL_VERSION: &str = "version";
const LABEL_PHASE: &str = "phase";
const LABEL_TEMPLATE: &str = "template";
const LABEL_METRIC: &str = "metric";
const LABEL_OUTCOME: &str = "outcome";

/// Label values are escaped as the text format requires.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics of the latest rollout of each app.
pub fn encode(rollouts: &[RolloutSnapshot]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP {ROLLOUT_WEIGHT} Canary weight of the app's latest rollout, percent.\n# TYPE {ROLLOUT_WEIGHT} gauge"
    );
    for s in rollouts {
        let (app, version) = (
            escape(s.app.as_str()),
            escape(s.rollout.canary.version.as_str()),
        );
        let _ = writeln!(
            out,
            "{ROLLOUT_WEIGHT}{{{LABEL_APP}=\"{app}\",{LABEL_VERSION}=\"{version}\"}} {}",
            s.rollout.weight
        );
    }
    let _ = writeln!(
        out,
        "# HELP {ROLLOUT_PHASE} 1 for the phase the app's latest rollout is in.\n# TYPE {ROLLOUT_PHASE} gauge"
    );
    for s in rollouts {
        let (app, version) = (
            escape(s.app.as_str()),
            escape(s.rollout.canary.version.as_str()),
        );
        let _ = writeln!(
            out,
            "{ROLLOUT_PHASE}{{{LABEL_APP}=\"{app}\",{LABEL_VERSION}=\"{version}\",{LABEL_PHASE}=\"{}\"}} 1",
            s.rollout.phase.name()
        );
    }
    let _ = writeln!(
        out,
        "# HELP {ANALYSIS_VALUE} Latest measured value of each analysis metric.\n# TYPE {ANALYSIS_VALUE} gauge"
    );
    let _ = writeln!(
        out,
        "# HELP {ANALYSIS_MEASUREMENTS} Measurements of each analysis metric by outcome.\n# TYPE {ANALYSIS_MEASUREMENTS} gauge"
    );
    for s in rollouts {
        let app = escape(s.app.as_str());
        for m in s
            .rollout
            .analysis
            .iter()
            .chain(s.rollout.background.iter())
            .flat_map(|run| run.metrics.iter())
        {
            let labels = format!(
                "{LABEL_APP}=\"{app}\",{LABEL_TEMPLATE}=\"{}\",{LABEL_METRIC}=\"{}\"",
                escape(&m.template),
                escape(m.spec.name.as_str())
            );
            if let Some(v) = m
                .last
                .as_ref()
                .and_then(|l| l.value.as_deref())
                .and_then(|v| v.parse::<f64>().ok())
            {
                let _ = writeln!(out, "{ANALYSIS_VALUE}{{{labels}}} {v}");
            }
            for (outcome, n) in [
                ("successful", m.successful),
                ("failed", m.failed),
                ("inconclusive", m.inconclusive),
                ("error", m.errors),
            ] {
                let _ = writeln!(
                    out,
                    "{ANALYSIS_MEASUREMENTS}{{{labels},{LABEL_OUTCOME}=\"{outcome}\"}} {n}"
                );
            }
        }
    }
    out
}
