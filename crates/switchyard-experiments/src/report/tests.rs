#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use switchyard_core::Timestamp;
use switchyard_core::manifest::load_str;

use super::*;
use crate::analysis::analyze;
use crate::data::{ExperimentData, VariantData};
use crate::experiment::CompiledExperiment;
use crate::moments::Moments;

const DAY: u64 = 86_400_000;
const START: Timestamp = Timestamp(1_714_521_600_000);

const EXPERIMENT: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: checkout-redesign}
spec:
  split: {flag: {}}
  variants: [{name: control, weight: 1}, {name: redesign, weight: 1}, {name: bold, weight: 1}]
  metrics:
    - {name: purchased, conversion: {event: purchase}}
    - {name: revenue, continuous: {event: purchase}}
  guardrails:
    - {metric: revenue, maxDegradation: 0.05}
  minimumSampleSize: 100
"#;

fn experiment() -> CompiledExperiment {
    let set = load_str(EXPERIMENT, Path::new("e.yaml")).unwrap();
    CompiledExperiment::new(&set.experiments[0]).unwrap()
}

/// Conversions and revenue of `units` units with `buyers` buyers spending about 40 each.
fn variant(units: u64, buyers: u64) -> VariantData {
    let buyers_f = buyers as f64;
    let purchased = Moments {
        n: units,
        sum_x: buyers_f,
        sum_x2: buyers_f,
        ..Moments::default()
    };
    let revenue = Moments {
        n: units,
        sum_x: 40.0 * buyers_f,
        sum_x2: (1600.0 + 100.0) * buyers_f,
        ..Moments::default()
    };
    VariantData {
        units,
        metrics: BTreeMap::from([("purchased".into(), purchased), ("revenue".into(), revenue)]),
    }
}

fn data(scale: u64, srm: bool) -> ExperimentData {
    let treatment_units = if srm { 15 * scale } else { 10 * scale };
    ExperimentData {
        started_at: START,
        caps: Default::default(),
        variants: BTreeMap::from([
            ("control".into(), variant(10 * scale, scale)),
            (
                "redesign".into(),
                variant(treatment_units, treatment_units * 13 / 100),
            ),
            ("bold".into(), variant(10 * scale, scale * 9 / 10)),
        ]),
    }
}

fn results_and_snapshots(srm: bool) -> (crate::analysis::Results, Vec<Snapshot>) {
    let e = experiment();
    let snapshots: Vec<Snapshot> = (1..=5)
        .map(|day| {
            let r = analyze(&e, &data(100 * day, srm), Timestamp(START.0 + day * DAY)).unwrap();
            Snapshot::of(&r)
        })
        .collect();
    let r = analyze(&e, &data(600, srm), Timestamp(START.0 + 6 * DAY)).unwrap();
    (r, snapshots)
}

#[test]
fn the_page_has_every_plot_and_no_script() {
    let (results, snapshots) = results_and_snapshots(false);
    let page = render_html(&results, &snapshots);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    // Exposure balance, one interval plot per metric, one lift-over-time plot per metric.
    assert_eq!(page.matches("<svg ").count(), 1 + 2 + 2, "{page}");
    assert_eq!(
        page.matches("<svg ").count(),
        page.matches("</svg>").count()
    );
    assert!(page.contains("units per variant against the expected shares"));
    assert!(page.contains("purchased relative lift per variant with 95 % intervals"));
    assert!(page.contains("purchased: cumulative relative lift over time"));
    // Bands of the cumulative lift, one per treatment and metric.
    assert_eq!(page.matches("<polygon").count(), 4);
    // Zero lines are dashed.
    assert!(page.contains("stroke-dasharray"));
    assert!(page.contains("Guardrails"));
    assert!(page.contains("<p class=\"rec "));
    assert!(
        !page.contains("class=\"banner\""),
        "no SRM banner without a mismatch"
    );
    let lower = page.to_lowercase();
    assert!(!lower.contains("<script"));
    for external in ["<link", "src=", "href=", "@import", "url("] {
        assert!(!lower.contains(external), "{external}");
    }
    // The only URL is the SVG namespace, which is not fetched.
    assert_eq!(
        lower.matches("http").count(),
        lower
            .matches("xmlns=\"http://www.w3.org/2000/svg\"")
            .count()
    );
}

#[test]
fn a_sample_ratio_mismatch_gets_a_banner() {
    let (results, snapshots) = results_and_snapshots(true);
    assert!(results.srm.as_ref().unwrap().mismatch);
    let page = render_html(&results, &snapshots);
    assert!(page.contains("<div class=\"banner\" role=\"alert\">⚠ SAMPLE RATIO MISMATCH"));
    assert!(page.contains("rec stop"));
    assert!(
        page.contains("fill=\"#cf222e\""),
        "the exposure bars turn red"
    );
}

#[test]
fn user_text_is_escaped_everywhere() {
    let (mut results, mut snapshots) = results_and_snapshots(false);
    let evil = "<script>alert('x')</script>";
    results.experiment = evil.into();
    results.metrics[0].name = evil.into();
    results.metrics[0].comparisons[0].variant = format!("{evil}&");
    results.metrics[0].comparisons[0].notes.push(evil.into());
    results.guardrails[0].variant = evil.into();
    for s in &mut snapshots {
        for p in &mut s.points {
            p.metric = evil.into();
        }
    }
    let page = render_html(&results, &snapshots);
    assert!(!page.to_lowercase().contains("<script"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(page.contains("&lt;/script&gt;&amp;"));
}

#[test]
fn without_snapshots_or_data_the_page_still_renders() {
    let e = experiment();
    let empty = ExperimentData {
        started_at: START,
        caps: Default::default(),
        variants: BTreeMap::new(),
    };
    let r = analyze(&e, &empty, START).unwrap();
    let page = render_html(&r, &[]);
    assert!(page.contains("No snapshots yet."));
    assert!(page.contains("not enough data"));
    assert_eq!(page.matches("<svg ").count(), 3);
    assert!(page.contains("waiting until every variant expects 5 units"));
}

#[test]
fn snapshots_keep_the_lifts_of_an_analysis() {
    let (results, _) = results_and_snapshots(false);
    let s = Snapshot::of(&results);
    assert_eq!(s.at, results.computed_at);
    assert_eq!(s.units[0], ("control".to_owned(), 6000));
    assert_eq!(s.points.len(), 4);
    let p = &s.points[0];
    assert_eq!(
        (p.metric.as_str(), p.variant.as_str()),
        ("purchased", "redesign")
    );
    assert!(p.relative);
    assert_eq!(
        Some(p.estimate),
        results.metrics[0].comparisons[0]
            .relative
            .map(|l| l.estimate)
    );
    let json = serde_json::to_string(&s).unwrap();
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!((back.at, &back.units), (s.at, &s.units));
    for (a, b) in back.points.iter().zip(&s.points) {
        // serde_json parses floats to within one unit in the last place.
        assert!((a.estimate - b.estimate).abs() < 1e-12 && a.variant == b.variant);
    }
}
