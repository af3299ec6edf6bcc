//! The report's three kinds of plot, each an inline SVG string:
//!
//! - [`intervals`]: one metric's lift per treatment with its interval, and the zero line;
//! - [`lift_over_time`]: one metric's cumulative lift per treatment over the snapshots, with the
//!   interval as a band;
//! - [`exposure_balance`]: units per variant as bars, with the expected share marked.

use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::Scale;

use super::svg::{Anchor, Linear, Svg, extent, ticks};
use crate::analysis::{Lift, MetricResult, VariantUnits, Verdict};
use crate::snapshot::Snapshot;

const WIDTH: f64 = 640.0;
const LEFT: f64 = 130.0;
const RIGHT: f64 = 24.0;
const AXIS: &str = "#8c959f";
const GRID: &str = "#d0d7de";
/// Series colours, one per treatment (colour-blind-safe Okabe–Ito hues).
pub const PALETTE: [&str; 6] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
];

pub fn verdict_colour(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Better => "#1a7f37",
        Verdict::Worse => "#cf222e",
        Verdict::Inconclusive => "#57606a",
        Verdict::NotEnoughData => "#afb8c1",
    }
}

/// The tested difference of a comparison with the interval shown for it (widened after a
/// correction).
fn shown(c: &crate::analysis::Comparison, difference: Scale) -> Option<Lift> {
    let lift = c.tested(difference)?;
    Some(Lift::new(lift.estimate, c.shown_ci(difference)?))
}

fn tick_label(v: f64, relative: bool) -> String {
    if v.abs() < 1e-12 {
        "0".to_owned()
    } else if relative {
        format!("{:+.0} %", 100.0 * v)
    } else {
        format!("{v:+.3}")
    }
}

fn x_axis(svg: &mut Svg, x: &Linear, top: f64, bottom: f64, relative: bool) {
    let [lo, hi] = x.domain();
    for t in ticks(lo, hi, 6) {
        let px = x.map(t);
        svg.line((px, top), (px, bottom), GRID, 1.0, false);
        svg.text(
            (px, bottom + 16.0),
            Anchor::Middle,
            "tick",
            &tick_label(t, relative),
        );
    }
}

/// One metric's lift and interval per treatment, with the zero line.
pub fn intervals(metric: &MetricResult, difference: Scale, level: &str) -> String {
    const ROW: f64 = 34.0;
    const TOP: f64 = 12.0;
    let relative = difference == Scale::Relative;
    let rows = metric.comparisons.len().max(1) as f64;
    let height = TOP + rows * ROW + 34.0;
    let bottom = TOP + rows * ROW;
    let lifts: Vec<Option<Lift>> = metric
        .comparisons
        .iter()
        .map(|c| shown(c, difference))
        .collect();
    let domain = extent(
        lifts
            .iter()
            .flatten()
            .flat_map(|l| [l.estimate, l.ci[0], l.ci[1]]),
        0.0,
        0.1,
    );
    let x = Linear::new(domain, [LEFT, WIDTH - RIGHT]);
    let what = if relative {
        "relative lift"
    } else {
        "difference"
    };
    let mut svg = Svg::new(
        WIDTH,
        height,
        &format!("{} {what} per variant with {level} intervals", metric.name),
    );
    x_axis(&mut svg, &x, TOP, bottom, relative);
    let zero = x.map(0.0);
    svg.line((zero, TOP - 4.0), (zero, bottom), AXIS, 1.5, true);
    for (i, (c, lift)) in metric.comparisons.iter().zip(&lifts).enumerate() {
        let y = TOP + (i as f64 + 0.5) * ROW;
        svg.text((LEFT - 10.0, y + 4.0), Anchor::End, "label", &c.variant);
        let Some(lift) = lift else {
            svg.text(
                (zero + 6.0, y + 4.0),
                Anchor::Start,
                "note",
                "not enough data",
            );
            continue;
        };
        let colour = verdict_colour(c.verdict);
        let (lo, hi) = (x.map(lift.ci[0]), x.map(lift.ci[1]));
        svg.line((lo, y), (hi, y), colour, 3.0, false);
        for end in [lo, hi] {
            svg.line((end, y - 6.0), (end, y + 6.0), colour, 2.0, false);
        }
        svg.circle((x.map(lift.estimate), y), 5.0, colour);
    }
    svg.text(
        ((LEFT + WIDTH - RIGHT) / 2.0, height - 2.0),
        Anchor::Middle,
        "axis",
        &format!("{what} vs control"),
    );
    svg.finish()
}

/// One treatment's lifts over time: `(time, estimate, interval)`.
type Points = Vec<(Timestamp, f64, [Option<f64>; 2])>;

/// Each treatment's points of `metric` (index into `treatments`), oldest first, and whether they
/// are relative lifts.
fn series(
    metric: &str,
    snapshots: &[Snapshot],
    treatments: &[String],
) -> (bool, Vec<(usize, Points)>) {
    let mut snapshots: Vec<&Snapshot> = snapshots.iter().collect();
    snapshots.sort_by_key(|s| s.at);
    let relative = relative_of(metric, &snapshots);
    let points = |variant: &str| -> Points {
        snapshots
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .filter(|p| {
                        p.metric == metric && p.variant == variant && p.relative == relative
                    })
                    .map(|p| (s.at, p.estimate, p.ci))
            })
            .collect()
    };
    let series = treatments
        .iter()
        .enumerate()
        .map(|(i, t)| (i, points(t)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    (relative, series)
}

/// A metric's cumulative lift per treatment over time, with its interval as a band; `None` when
/// no snapshot has a point of the metric.
pub fn lift_over_time(
    metric: &str,
    snapshots: &[Snapshot],
    treatments: &[String],
) -> Option<String> {
    const TOP: f64 = 12.0;
    const PLOT: f64 = 200.0;
    let (relative, series) = series(metric, snapshots, treatments);
    if series.is_empty() {
        return None;
    }
    let times = || {
        series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(t, ..)| t.as_millis() as f64))
    };
    let first = times().fold(f64::INFINITY, f64::min);
    let last = times().fold(f64::NEG_INFINITY, f64::max);
    let values = series
        .iter()
        .flat_map(|(_, p)| p.iter().flat_map(|(_, e, ci)| [Some(*e), ci[0], ci[1]]))
        .flatten();
    let y = Linear::new(extent(values, 0.0, 0.08), [TOP + PLOT, TOP]);
    let x = Linear::new([first, last], [LEFT, WIDTH - RIGHT]);
    let height = TOP + PLOT + 40.0 + 18.0 * series.len() as f64;
    let what = if relative {
        "relative lift"
    } else {
        "difference"
    };
    let mut svg = Svg::new(
        WIDTH,
        height,
        &format!("{metric}: cumulative {what} over time"),
    );
    let [lo, hi] = y.domain();
    for t in ticks(lo, hi, 5) {
        let py = y.map(t);
        svg.line((LEFT, py), (WIDTH - RIGHT, py), GRID, 1.0, false);
        svg.text(
            (LEFT - 8.0, py + 4.0),
            Anchor::End,
            "tick",
            &tick_label(t, relative),
        );
    }
    svg.line(
        (LEFT, y.map(0.0)),
        (WIDTH - RIGHT, y.map(0.0)),
        AXIS,
        1.5,
        true,
    );
    let [t0, t1] = x.domain();
    for (t, anchor) in [(t0, Anchor::Start), (t1, Anchor::End)] {
        svg.text(
            (x.map(t), TOP + PLOT + 16.0),
            anchor,
            "tick",
            &date_label(t),
        );
    }
    for (legend, (i, points)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        draw_series(&mut svg, points, colour, (&x, &y));
        let ly = TOP + PLOT + 36.0 + 18.0 * legend as f64;
        svg.rect(LEFT, ly - 9.0, 12.0, 12.0, colour);
        svg.text(
            (LEFT + 18.0, ly + 1.0),
            Anchor::Start,
            "label",
            &treatments[*i],
        );
    }
    Some(svg.finish())
}

/// One treatment's band (interval), line (estimate) and points.
fn draw_series(svg: &mut Svg, points: &Points, colour: &str, (x, y): (&Linear, &Linear)) {
    let px = |t: &Timestamp| x.map(t.as_millis() as f64);
    let banded: Vec<_> = points
        .iter()
        .filter_map(|(t, _, ci)| Some((px(t), ci[0]?, ci[1]?)))
        .collect();
    if banded.len() > 1 {
        let mut band: Vec<(f64, f64)> = banded.iter().map(|(x, _, hi)| (*x, y.map(*hi))).collect();
        band.extend(banded.iter().rev().map(|(x, lo, _)| (*x, y.map(*lo))));
        svg.polygon(&band, colour, 0.18);
    } else if let Some((bx, lo, hi)) = banded.first() {
        svg.line((*bx, y.map(*lo)), (*bx, y.map(*hi)), colour, 2.0, false);
    }
    let line: Vec<(f64, f64)> = points.iter().map(|(t, e, _)| (px(t), y.map(*e))).collect();
    if line.len() > 1 {
        svg.polyline(&line, colour);
    }
    for p in &line {
        svg.circle(*p, 3.0, colour);
    }
}

/// Whether a metric's snapshot points are relative lifts (the latest snapshot decides).
fn relative_of(metric: &str, snapshots: &[&Snapshot]) -> bool {
    snapshots
        .iter()
        .rev()
        .flat_map(|s| s.points.iter())
        .find(|p| p.metric == metric)
        .is_none_or(|p| p.relative)
}

/// `2024-05-01 12:00` (UTC) for a time in milliseconds.
fn date_label(ms: f64) -> String {
    let text = Timestamp::from_millis(ms.max(0.0) as u64).to_rfc3339();
    text.get(..16).map_or(text.clone(), |s| s.replace('T', " "))
}

/// Units per variant as bars of their share, the expected share marked on each.
pub fn exposure_balance(variants: &[VariantUnits], mismatch: bool) -> String {
    const ROW: f64 = 30.0;
    const TOP: f64 = 10.0;
    let height = TOP + variants.len() as f64 * ROW + 30.0;
    let bottom = TOP + variants.len() as f64 * ROW;
    let max = variants
        .iter()
        .flat_map(|v| [v.expected_share, v.observed_share.unwrap_or(0.0)])
        .fold(0.0, f64::max)
        .max(0.01);
    let x = Linear::new([0.0, (max * 1.15).min(1.0)], [LEFT, WIDTH - RIGHT - 90.0]);
    let mut svg = Svg::new(
        WIDTH,
        height,
        "units per variant against the expected shares",
    );
    let [_, hi] = x.domain();
    for t in ticks(0.0, hi, 5) {
        let px = x.map(t);
        svg.line((px, TOP), (px, bottom), GRID, 1.0, false);
        svg.text(
            (px, bottom + 16.0),
            Anchor::Middle,
            "tick",
            &format!("{:.0} %", 100.0 * t),
        );
    }
    let fill = if mismatch { "#cf222e" } else { "#0072b2" };
    for (i, v) in variants.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        svg.text(
            (LEFT - 10.0, y + ROW / 2.0 + 4.0),
            Anchor::End,
            "label",
            &v.name,
        );
        let observed = v.observed_share.unwrap_or(0.0);
        svg.rect(LEFT, y + 7.0, x.map(observed) - LEFT, ROW - 14.0, fill);
        let expected = x.map(v.expected_share);
        svg.line(
            (expected, y + 3.0),
            (expected, y + ROW - 3.0),
            "#24292f",
            2.0,
            true,
        );
        svg.text(
            (WIDTH - RIGHT - 84.0, y + ROW / 2.0 + 4.0),
            Anchor::Start,
            "label",
            &format!("{} units", v.units),
        );
    }
    svg.finish()
}
