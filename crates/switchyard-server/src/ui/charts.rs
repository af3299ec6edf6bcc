//! A rollout's charts as inline SVG (drawn with the experiment report's SVG writer): each
//! release's request rate, error rate and latency over the rollout, and a judge's estimate with
//! its interval and boundary over time.

use switchyard_control::controller::history::TrafficSample;
use switchyard_experiments::report::plots::PALETTE;
use switchyard_experiments::report::svg::{Anchor, Linear, Svg, extent, ticks};

const WIDTH: f64 = 600.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const PLOT: f64 = 150.0;
const GRID: &str = "#d0d7de";

/// How a chart's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Requests per second.
    Rate,
    /// A share, 0–1, shown in percent.
    Share,
    /// Milliseconds.
    Millis,
    /// A plain number.
    Number,
}

impl Unit {
    fn label(self, v: f64) -> String {
        match self {
            Unit::Rate => format!("{}/s", short(v)),
            Unit::Share => format!("{}%", short(v * 100.0)),
            Unit::Millis => format!("{} ms", short(v)),
            Unit::Number => short(v),
        }
    }
}

/// A tick value as people write it (`0.6`, not `0.6000000000000001`).
fn short(v: f64) -> String {
    switchyard_core::human::number(&v.to_string())
}

/// One line: a name for the legend, `(unix millis, value)` points, and its colour (an index
/// into the palette: lines of one release share it).
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    pub colour: usize,
}

/// A band: `(unix millis, low, high)` points.
pub type Band = Vec<(f64, f64, f64)>;

/// A chart of `lines` over time (and a band drawn under the first line), or a note when
/// nothing was sampled yet.
pub fn over_time(label: &str, unit: Unit, lines: &[Line], band: Option<&Band>) -> String {
    let times = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(band.into_iter().flat_map(|b| b.iter().map(|p| p.0)))
    };
    if times().next().is_none() {
        return format!(
            "<p class=\"note\">{}: nothing measured yet.</p>",
            super::page::escape(label)
        );
    }
    let first = times().fold(f64::INFINITY, f64::min);
    let last = times().fold(f64::NEG_INFINITY, f64::max);
    let values = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(
            band.into_iter()
                .flat_map(|b| b.iter().flat_map(|p| [p.1, p.2])),
        );
    let [lo, hi] = match unit {
        Unit::Number => extent(values, last_value(lines), 0.06),
        _ => {
            // Rates, shares and latencies start at zero; all zero still shows a scale.
            let [_, hi] = extent(values, 0.0, 0.06);
            let least = if unit == Unit::Share { 0.01 } else { 1.0 };
            [0.0, hi.max(least)]
        }
    };
    let y = Linear::new([lo, hi], [TOP + PLOT, TOP]);
    let x = Linear::new([first, last], [LEFT, WIDTH - RIGHT]);
    let legend_rows = lines.len().div_ceil(3);
    let height = TOP + PLOT + 26.0 + 18.0 * legend_rows as f64;
    let mut svg = Svg::new(WIDTH, height, label);
    let [dlo, dhi] = y.domain();
    for t in ticks(dlo, dhi, 4) {
        let py = y.map(t);
        svg.line((LEFT, py), (WIDTH - RIGHT, py), GRID, 1.0, false);
        svg.text((LEFT - 6.0, py + 4.0), Anchor::End, "tick", &unit.label(t));
    }
    let [t0, t1] = x.domain();
    svg.text((LEFT, TOP + PLOT + 14.0), Anchor::Start, "tick", &clock(t0));
    svg.text(
        (WIDTH - RIGHT, TOP + PLOT + 14.0),
        Anchor::End,
        "tick",
        &format!("{} (+{})", clock(t1), elapsed(t1 - t0)),
    );
    if let Some(band) = band.filter(|b| !b.is_empty()) {
        let colour = PALETTE[0];
        if band.len() > 1 {
            let mut poly: Vec<(f64, f64)> = band.iter().map(|p| (x.map(p.0), y.map(p.2))).collect();
            poly.extend(band.iter().rev().map(|p| (x.map(p.0), y.map(p.1))));
            svg.polygon(&poly, colour, 0.18);
        } else {
            let p = band[0];
            svg.line(
                (x.map(p.0), y.map(p.1)),
                (x.map(p.0), y.map(p.2)),
                colour,
                2.0,
                false,
            );
        }
    }
    for (i, line) in lines.iter().enumerate() {
        let colour = PALETTE[line.colour % PALETTE.len()];
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .map(|p| (x.map(p.0), y.map(p.1)))
            .collect();
        if points.len() > 1 {
            svg.polyline_dashed(&points, colour, line.dashed);
        } else if let Some(p) = points.first() {
            svg.circle(*p, 3.0, colour);
        }
        let lx = LEFT + 180.0 * (i % 3) as f64;
        let ly = TOP + PLOT + 34.0 + 18.0 * (i / 3) as f64;
        svg.rect(lx, ly - 9.0, 12.0, 12.0, colour);
        svg.text((lx + 18.0, ly + 1.0), Anchor::Start, "label", &line.name);
    }
    svg.finish()
}

fn last_value(lines: &[Line]) -> f64 {
    lines
        .iter()
        .filter_map(|l| l.points.last().map(|p| p.1))
        .next()
        .unwrap_or(0.0)
}

/// `HH:MM:SS` (UTC) of unix milliseconds.
fn clock(ms: f64) -> String {
    let secs = (ms / 1000.0).max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

fn elapsed(ms: f64) -> String {
    let secs = (ms / 1000.0).max(0.0).round() as u64;
    if secs < 120 {
        format!("{secs} s")
    } else if secs < 7200 {
        format!("{} min", secs / 60)
    } else {
        format!("{:.1} h", secs as f64 / 3600.0)
    }
}

/// The request rate, error rate and latency charts of a rollout's samples.
pub fn traffic(samples: &[TrafficSample]) -> String {
    let mut versions: Vec<&str> = Vec::new();
    for s in samples {
        for r in &s.releases {
            if !versions.contains(&r.version.as_str()) {
                versions.push(&r.version);
            }
        }
    }
    let series =
        |pick: &dyn Fn(&switchyard_control::controller::history::ReleaseSample) -> Option<f64>,
         suffix: &str,
         dashed: bool| {
            versions
                .iter()
                .enumerate()
                .map(|(colour, v)| Line {
                    colour,
                    name: format!("{v}{suffix}"),
                    points: samples
                        .iter()
                        .filter_map(|s| {
                            let r = s.releases.iter().find(|r| r.version == *v)?;
                            Some((s.at.as_millis() as f64, pick(r)?))
                        })
                        .collect(),
                    dashed,
                })
                .collect::<Vec<_>>()
        };
    let rate = series(&|r| Some(r.rps), "", false);
    let errors = series(&|r| r.error_rate, "", false);
    let mut latency = series(&|r| r.p50_ms, " p50", false);
    latency.extend(series(&|r| r.p99_ms, " p99", true));
    format!(
        "<figure><figcaption>Requests per second</figcaption>{}</figure>\
         <figure><figcaption>Error rate</figcaption>{}</figure>\
         <figure><figcaption>Latency (p50 solid, p99 dashed)</figcaption>{}</figure>",
        over_time("Requests per second by release", Unit::Rate, &rate, None),
        over_time("Error rate by release", Unit::Share, &errors, None),
        over_time(
            "Latency p50 and p99 by release",
            Unit::Millis,
            &latency,
            None
        ),
    )
}

#[cfg(test)]
mod tests {
    use switchyard_control::controller::history::ReleaseSample;
    use switchyard_core::Timestamp;

    use super::*;

    fn sample(ms: u64, canary_errors: f64) -> TrafficSample {
        let release = |version: &str, error_rate: f64| ReleaseSample {
            version: version.into(),
            rps: 50.0,
            error_rate: Some(error_rate),
            p50_ms: Some(2.0),
            p99_ms: Some(9.0),
        };
        TrafficSample {
            at: Timestamp::from_millis(ms),
            weight: 10,
            releases: vec![release("v1", 0.0), release("v2", canary_errors)],
        }
    }

    #[test]
    fn each_release_is_a_labelled_line_and_nothing_sampled_is_said() {
        let svg = traffic(&[sample(1_000, 0.1), sample(3_000, 0.2), sample(5_000, 0.15)]);
        assert_eq!(svg.matches("<svg").count(), 3);
        assert!(
            svg.contains("aria-label=\"Error rate by release\""),
            "{svg}"
        );
        assert!(svg.contains(">v2 p99</text>"));
        assert!(svg.contains("stroke-dasharray"), "p99 is dashed");
        assert!(svg.contains(">20%</text>"), "share ticks in percent: {svg}");
        let quiet = traffic(&[sample(1_000, 0.0), sample(3_000, 0.0)]);
        assert!(
            quiet.contains(">1%</text>"),
            "no errors still has a scale: {quiet}"
        );
        let empty = traffic(&[]);
        assert!(empty.contains("nothing measured yet"));
        assert!(!empty.contains("<svg"));
    }

    #[test]
    fn numbers_on_axes_are_short() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(250.0), "250");
        assert_eq!(short(12.5), "12.5");
        assert_eq!(short(2.0), "2");
        assert_eq!(short(0.0125), "0.0125");
        assert_eq!(clock(3_723_000.0), "01:02:03");
        assert_eq!(elapsed(90_000.0), "90 s");
        assert_eq!(elapsed(600_000.0), "10 min");
    }
}
