//! A minimal SVG writer for the report's plots: linear scales, "nice" axis ticks, and the few
//! shapes the plots draw. Every text goes through [`escape`].

use std::fmt::Write as _;

use super::html::escape;

/// Maps a data interval onto a pixel interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    domain: [f64; 2],
    range: [f64; 2],
}

impl Linear {
    /// A scale over `domain`; an empty domain is widened so that it maps to the middle.
    pub fn new(domain: [f64; 2], range: [f64; 2]) -> Linear {
        let [lo, hi] = domain;
        let domain = if hi > lo {
            domain
        } else {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            [lo - pad, hi + pad]
        };
        Linear { domain, range }
    }

    pub fn map(&self, v: f64) -> f64 {
        let [d0, d1] = self.domain;
        let [r0, r1] = self.range;
        let clamped = v.clamp(d0, d1);
        r0 + (clamped - d0) / (d1 - d0) * (r1 - r0)
    }

    pub fn domain(&self) -> [f64; 2] {
        self.domain
    }
}

/// The smallest interval holding every finite value and `always`, padded by `pad` of its width.
pub fn extent(values: impl IntoIterator<Item = f64>, always: f64, pad: f64) -> [f64; 2] {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((always, always), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let width = (hi - lo).max(f64::EPSILON);
    [lo - pad * width, hi + pad * width]
}

/// About `count` round tick values (1, 2 or 5 × a power of ten apart) inside `[lo, hi]`.
pub fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let ordered = hi > lo;
    if !ordered || count == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / count as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// An SVG document being written.
#[derive(Debug)]
pub struct Svg {
    out: String,
}

/// Where a text is anchored.
#[derive(Debug, Clone, Copy)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

// Writing into a String cannot fail, so the `fmt::Result`s below are ignored.
impl Svg {
    /// An SVG of `width` × `height` pixels, described by `label` for screen readers.
    pub fn new(width: f64, height: f64, label: &str) -> Svg {
        let mut out = String::new();
        let label = escape(label);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="{label}"><title>{label}</title>"#
        );
        Svg { out }
    }

    pub fn line(
        &mut self,
        from: (f64, f64),
        to: (f64, f64),
        stroke: &str,
        width: f64,
        dashed: bool,
    ) {
        let dash = if dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = write!(
            self.out,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#,
            from.0, from.1, to.0, to.1
        );
    }

    pub fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, fill: &str) {
        let _ = write!(
            self.out,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}"/>"#,
            width.max(0.0),
            height.max(0.0)
        );
    }

    pub fn circle(&mut self, at: (f64, f64), radius: f64, fill: &str) {
        let _ = write!(
            self.out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{radius}" fill="{fill}"/>"#,
            at.0, at.1
        );
    }

    pub fn text(&mut self, at: (f64, f64), anchor: Anchor, class: &str, text: &str) {
        let _ = write!(
            self.out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="{}" class="{class}">{}</text>"#,
            at.0,
            at.1,
            anchor.as_str(),
            escape(text)
        );
    }

    /// A filled polygon (a confidence band).
    pub fn polygon(&mut self, points: &[(f64, f64)], fill: &str, opacity: f64) {
        let _ = write!(
            self.out,
            r#"<polygon points="{}" fill="{fill}" fill-opacity="{opacity}"/>"#,
            points_attr(points)
        );
    }

    /// An open line through points.
    pub fn polyline(&mut self, points: &[(f64, f64)], stroke: &str) {
        self.polyline_dashed(points, stroke, false);
    }

    /// An open line through points, dashed or not.
    pub fn polyline_dashed(&mut self, points: &[(f64, f64)], stroke: &str, dashed: bool) {
        let dash = if dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            self.out,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="2"{dash}/>"#,
            points_attr(points)
        );
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

fn points_attr(points: &[(f64, f64)]) -> String {
    let mut s = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:.1},{y:.1}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(
            ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(ticks(-0.13, 0.27, 4), vec![-0.1, 0.0, 0.1, 0.2]);
        assert_eq!(ticks(3.0, 3.0, 4), vec![3.0]);
    }

    #[test]
    fn scales_clamp_and_widen_empty_domains() {
        let s = Linear::new([0.0, 10.0], [100.0, 200.0]);
        assert_eq!(s.map(5.0), 150.0);
        assert_eq!(s.map(50.0), 200.0);
        let flat = Linear::new([2.0, 2.0], [0.0, 10.0]);
        assert!((flat.map(2.0) - 5.0).abs() < 1e-9);
        assert_eq!(extent([1.0, f64::INFINITY, -1.0], 0.0, 0.0), [-1.0, 1.0]);
    }

    #[test]
    fn text_is_escaped() {
        let mut svg = Svg::new(10.0, 10.0, "a <b>");
        svg.text((0.0, 0.0), Anchor::Start, "label", "x < y & \"z\"");
        let out = svg.finish();
        assert!(out.contains("x &lt; y &amp; &quot;z&quot;"), "{out}");
        assert!(out.contains(r#"aria-label="a &lt;b&gt;""#), "{out}");
        assert!(!out.contains("<b>"));
    }
}
