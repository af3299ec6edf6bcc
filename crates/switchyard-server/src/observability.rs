//! What to watch a daemon with: Prometheus alerting rules and a Grafana dashboard over the
//! metrics `/metrics` exposes (the deployment metrics, the latest rollouts' state, the
//! proxies' requests), written to files by `switchyard observability export --dir DIR`.
//! `scripts/test` checks the rules with `promtool check rules`, runs their unit tests
//! (`tests/observability/alert-rules.test.yaml`) with `promtool test rules`, and checks every
//! query of the dashboard with `promtool` too.

/// `alert-rules.yaml`.
pub const ALERT_RULES: &str = include_str!("observability/alert-rules.yaml");
/// `grafana-dashboard.json`.
pub const GRAFANA_DASHBOARD: &str = include_str!("observability/grafana-dashboard.json");

/// The files `observability export` writes: name and contents.
pub const FILES: [(&str, &str); 2] = [
    ("alert-rules.yaml", ALERT_RULES),
    ("grafana-dashboard.json", GRAFANA_DASHBOARD),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::deployment_metrics as d;
    use crate::rollout_metrics as r;

    /// Every metric the files read, and whether a daemon's `/metrics` has it (the latency
    /// histogram comes from the proxies' own `--metrics-listen`).
    fn metrics_read(text: &str) -> BTreeSet<&str> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|t| t.starts_with("deployment_") || t.starts_with("switchyard_"))
            .filter(|t| !t.starts_with("switchyard-"))
            .collect()
    }

    #[test]
    fn the_files_read_only_metrics_that_exist() {
        let exposed: BTreeSet<String> = [
            format!("{}_total", d::TOTAL),
            format!("{}_total", d::SUCCESS),
            format!("{}_total", d::FAILED),
            format!("{}_total", d::ROLLBACK),
            format!("{}_bucket", d::DURATION),
            r::ROLLOUT_PHASE.to_owned(),
            r::ROLLOUT_WEIGHT.to_owned(),
            crate::notifications::NOTIFICATIONS.to_owned(),
            "switchyard_proxy_requests_total".to_owned(),
            "switchyard_proxy_request_duration_seconds_bucket".to_owned(),
        ]
        .into();
        for (name, text) in FILES {
            let read = metrics_read(text);
            assert!(!read.is_empty(), "{name}");
            for metric in read {
                assert!(
                    exposed.contains(metric),
                    "{name} reads `{metric}`, which nothing exposes"
                );
            }
        }
    }

    #[test]
    fn the_dashboard_is_json_with_one_query_per_target() {
        let dashboard: serde_json::Value = serde_json::from_str(GRAFANA_DASHBOARD).unwrap();
        let panels = dashboard["panels"].as_array().unwrap();
        let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        assert_eq!(ids.len(), panels.len(), "panel ids are unique");
        for panel in panels {
            for target in panel["targets"].as_array().unwrap() {
                assert!(!target["expr"].as_str().unwrap().trim().is_empty());
            }
        }
        assert_eq!(dashboard["uid"], "switchyard-deployments");
    }
}
