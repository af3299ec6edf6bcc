//! The views are pure functions of a rollout, a time and a terminal size: pinned by snapshots
//! (`cargo insta review` after a deliberate change).

use switchyard_api::{InstanceView, MeasurementView, MetricView, ReleaseTraffic, RolloutView};
use switchyard_core::Timestamp;

use super::live::{Changes, Entry, Kind, Look, frame};
use super::tree::tree;
use super::{status, wrap};

/// 2026-12-06T12:00:00Z.
fn noon() -> Timestamp {
    Timestamp::parse_rfc3339("2026-12-06T12:00:00Z").expect("a time")
}

fn at(seconds: u64) -> Timestamp {
    noon().plus(std::time::Duration::from_secs(seconds))
}

fn release(
    version: &str,
    role: &str,
    weight: u8,
    rps: f64,
    errors: f64,
    port: u16,
) -> ReleaseTraffic {
    ReleaseTraffic {
        version: version.into(),
        role: role.into(),
        weight,
        instances: 2,
        endpoints: (0..2)
            .map(|i| InstanceView {
                address: format!("127.0.0.1:{}", port + i),
                health: if port == 41003 && i == 1 {
                    "unhealthy".into()
                } else {
                    "healthy".into()
                },
            })
            .collect(),
        window_s: 10.0,
        requests: (rps * 10.0) as u64,
        rps,
        error_rate: Some(errors),
        p50_ms: Some(0.8),
        p99_ms: Some(1.234),
    }
}

fn judge(status: &str, taken: u32, failed: u32, value: &str, message: &str) -> MetricView {
    MetricView {
        template: "judge".into(),
        metric: "errors-vs-stable".into(),
        status: status.into(),
        taken,
        count: 0,
        failed,
        inconclusive: 0,
        errors: 0,
        last_value: Some(value.into()),
        last_message: Some(message.into()),
    }
}

/// The demo's rollout of v3 (20% errors) at `step` in `phase`.
fn rollout(phase: &str, step: usize, weight: u8) -> RolloutView {
    let active = !matches!(phase, "Succeeded" | "RolledBack" | "Aborted" | "Failed");
    let (stable_role, canary_role) = match phase {
        "Succeeded" => ("previous", "current"),
        "RolledBack" | "Aborted" | "Failed" => ("current", "rolled-back"),
        _ => ("stable", "canary"),
    };
    RolloutView {
        id: 3,
        app: "shop".into(),
        version: "v3".into(),
        stable_version: "v2".into(),
        phase: phase.into(),
        active,
        paused_until: (phase == "Paused").then(|| at(8).to_rfc3339()),
        step,
        steps: vec![
            "setWeight 20".into(),
            "analysis judge".into(),
            "setWeight 50".into(),
            "pause 10s".into(),
            "setWeight 100".into(),
        ],
        weight,
        reason: None,
        started_at: noon().to_rfc3339(),
        traffic_since: Some(at(1).to_rfc3339()),
        finished_at: None,
        decided_after_s: None,
        analysis: Vec::new(),
        policy: None,
        traffic: vec![
            release(
                "v2",
                stable_role,
                100 - weight,
                40.0 * f64::from(100 - weight) / 100.0,
                0.0,
                41001,
            ),
            release(
                "v3",
                canary_role,
                weight,
                40.0 * f64::from(weight) / 100.0,
                0.2,
                41003,
            ),
        ],
        routes: None,
    }
}

fn analyzing() -> RolloutView {
    let mut v = rollout("Analyzing", 1, 20);
    v.analysis = vec![judge(
        "running",
        3,
        0,
        "0.15862068965517243",
        "not yet decided: canary 0.1586 vs stable 0 (24 and 96 requests)",
    )];
    v
}

fn rolled_back() -> RolloutView {
    let mut v = rollout("RolledBack", 1, 0);
    v.analysis = vec![judge(
        "failed",
        5,
        1,
        "0.2074074074074074",
        "canary error rate above stable's: 0.2074 vs 0 (135 and 540 requests, p = 0.000012)",
    )];
    v.reason = Some(
        "analysis of step 2 failed: metric `errors-vs-stable` of `judge`: canary error rate \
         above stable's: 0.2074 vs 0 (135 and 540 requests, p = 0.000012) (value 0.2074)"
            .into(),
    );
    v.finished_at = Some(at(9).to_rfc3339());
    v.decided_after_s = Some(8.0);
    v
}

fn text(lines: &[String]) -> String {
    lines.join("\n")
}

#[test]
fn the_status_of_a_canary_under_analysis_at_80_columns() {
    insta::assert_snapshot!(text(&status(&analyzing(), at(4), Some(80))));
}

#[test]
fn a_paused_step_shows_the_time_left() {
    insta::assert_snapshot!(text(&status(&rollout("Paused", 3, 50), at(3), Some(80))));
}

#[test]
fn a_rolled_back_rollout_names_its_releases_by_what_they_are_now() {
    insta::assert_snapshot!(text(&status(&rolled_back(), at(10), Some(80))));
}

#[test]
fn a_promoted_rollout_calls_its_releases_previous_and_current() {
    let mut v = rollout("Succeeded", 5, 100);
    v.finished_at = Some(at(30).to_rfc3339());
    insta::assert_snapshot!(text(&status(&v, at(31), Some(80))));
}

#[test]
fn the_header_and_the_reason_count_the_steps_alike() {
    let v = rolled_back();
    let lines = status(&v, at(10), None);
    assert!(lines[0].contains("step 2/5 [#x...]"), "{}", lines[0]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("analysis of step 2 failed")),
        "{lines:?}"
    );
}

#[test]
fn nothing_is_wider_than_the_terminal_and_numbers_are_not_split() {
    for width in [40, 60, 80, 130] {
        for v in [analyzing(), rolled_back(), rollout("Paused", 3, 50)] {
            for line in
                status(&v, at(5), Some(width))
                    .iter()
                    .chain(&tree(&v, &[], at(5), Some(width)))
            {
                assert!(line.chars().count() <= width, "{width}: {line:?}");
            }
        }
    }
    let wrapped = wrap(
        "  reason: ",
        "p = 0.000012 (value 0.2074074074074074)",
        Some(30),
    );
    assert!(
        wrapped.iter().any(|l| l.ends_with("(value"))
            && wrapped.iter().any(|l| l.contains("0.2074074074074074")),
        "{wrapped:?}"
    );
}

#[test]
fn the_tree_of_a_canary_under_analysis() {
    insta::assert_snapshot!(text(&tree(&analyzing(), &[], at(4), Some(100))));
}

#[test]
fn the_tree_of_a_rolled_back_rollout() {
    // The analysis of step 2 ended: its metric shows from the measurements.
    let mut v = rolled_back();
    v.analysis.clear();
    let measurement = |phase: &str, value: &str, message: &str| MeasurementView {
        at: at(5).to_rfc3339(),
        template: "judge".into(),
        metric: "errors-vs-stable".into(),
        phase: phase.into(),
        value: Some(value.into()),
        baseline: None,
        samples: None,
        message: message.into(),
        dry_run: false,
        evidence: None,
    };
    let measurements = [
        measurement("inconclusive", "0.15862068965517243", "not yet decided"),
        measurement(
            "failed",
            "0.2074074074074074",
            "canary error rate above stable's",
        ),
    ];
    insta::assert_snapshot!(text(&tree(&v, &measurements, at(10), Some(80))));
}

#[test]
fn a_frame_fills_the_screen_with_the_narration_above_the_rollout() {
    let transcript = [
        Entry::Text(
            "app `shop` listens on http://127.0.0.1:41000; starting v1 (2 instances)".into(),
        ),
        Entry::Text("load generator: 40 requests/s".into()),
        Entry::Text("\n== deploying v3: a broken release (20% errors)".into()),
    ];
    let screen = frame(
        Kind::Status,
        &transcript,
        Some(&Look::from(&analyzing())),
        at(4),
        80,
        24,
    );
    assert_eq!(screen.len(), 24);
    insta::assert_snapshot!(text(&screen));
}

#[test]
fn a_small_screen_keeps_the_rollout_and_drops_the_oldest_narration() {
    let transcript = [
        Entry::Text("first".into()),
        Entry::Text("second".into()),
        Entry::View(Look::from(&rollout("Succeeded", 5, 100))),
    ];
    let screen = frame(
        Kind::Status,
        &transcript,
        Some(&Look::from(&analyzing())),
        at(4),
        50,
        10,
    );
    assert_eq!(screen.len(), 10);
    insta::assert_snapshot!(text(&screen));
    // Smaller than the view itself: its first lines, and a mark that more is cut.
    let tiny = frame(
        Kind::Status,
        &transcript,
        Some(&Look::from(&analyzing())),
        at(4),
        30,
        3,
    );
    assert_eq!(tiny.len(), 3);
    assert!(tiny[0].starts_with("shop v2 -> v3"), "{tiny:?}");
    assert_eq!(tiny[2], "…");
}

/// A whole rollout as a log: a line per change, none for refreshes that change nothing.
#[test]
fn a_full_rollout_outside_a_terminal_is_a_line_per_change() {
    let mut looks = Vec::new();
    let mut v = rollout("Progressing", 0, 20);
    looks.push((1, v.clone()));
    v.traffic[1].rps = 9.0; // traffic alone changes nothing worth a line
    looks.push((2, v.clone()));
    let mut v = analyzing();
    looks.push((3, v.clone()));
    v.analysis[0].taken = 4; // another look, same verdict
    v.analysis[0].last_value = Some("0.2".into());
    looks.push((4, v.clone()));
    looks.push((5, rolled_back()));
    looks.push((6, rolled_back()));
    let mut changes = Changes::default();
    let log: Vec<String> = looks
        .iter()
        .flat_map(|(s, v)| changes.lines(v, at(*s)))
        .collect();
    insta::assert_snapshot!(text(&log));
}
