//! The experiment report: one self-contained HTML page (inline CSS, inline SVG, no script, no
//! external resource) with the recommendation, a loud banner on sample-ratio mismatch, the
//! exposure balance, an interval plot and table per metric, the guardrails, the cumulative lift
//! over time from snapshots, and the sample plan. Every text from the experiment or the data is
//! escaped.

mod html;
pub mod plots;
pub mod svg;

use std::fmt::Write as _;

use switchyard_core::manifest::experiment::{Correction, Method, Scale};

pub use html::escape;

use crate::analysis::{GuardrailStatus, MetricResult, Recommendation, Results};
use crate::experiment::{MetricKind, MetricRole};
use crate::snapshot::Snapshot;

const STYLE: &str = "\
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#24292f;max-width:980px;margin:2rem auto;padding:0 1rem}\
h1{font-size:1.6rem;margin:0}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}h3{font-size:1rem;margin-bottom:.25rem}\
.meta{color:#57606a;margin:.25rem 0 1rem}\
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #eaeef2}th:first-child,td:first-child{text-align:left}\
";

/// The report's own classes (banner, recommendation, verdict cells, plot text), for pages that
/// show [`render_sections`] inside a layout of their own.
pub const SECTION_STYLE: &str = "\
.banner{border:3px solid #cf222e;background:#ffebe9;color:#82071e;padding:1rem;font-weight:700;font-size:1.05rem;margin:1rem 0}\
.rec{border-radius:6px;padding:.75rem 1rem;font-size:1.1rem;font-weight:600}\
.rec.ship{background:#dafbe1;border:1px solid #1a7f37}.rec.stop{background:#ffebe9;border:1px solid #cf222e}.rec.keep{background:#ddf4ff;border:1px solid #0969da}\
td.better{color:#1a7f37;font-weight:600}td.worse,td.violated{color:#cf222e;font-weight:700}td.within{color:#1a7f37}\
.note{color:#57606a;font-size:.9rem}\
svg{display:block;max-width:100%;height:auto}svg text{font:12px system-ui,sans-serif;fill:#24292f}svg text.tick{fill:#57606a;font-size:11px}svg text.note{fill:#57606a;font-style:italic}";

/// Renders the report of `results`, with `snapshots` (any order) for the lift over time.
pub fn render_html(results: &Results, snapshots: &[Snapshot]) -> String {
    let mut page = String::new();
    let key = escape(&results.experiment);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Experiment {key}</title><style>{STYLE}{SECTION_STYLE}</style></head><body>"
    );
    header(&mut page, results);
    page.push_str(&render_sections(results, snapshots));
    let _ = writeln!(
        page,
        "<footer class=\"note\"><p>Computed by Switchyard at {}.</p></footer></body></html>",
        results.computed_at
    );
    page
}

/// The report's sections, from the sample-ratio banner to the sample plan, without a page
/// around them (the headings start at `h2`).
pub fn render_sections(results: &Results, snapshots: &[Snapshot]) -> String {
    let mut page = String::new();
    if let Some(warning) = results.srm.as_ref().and_then(|s| s.warning.as_deref()) {
        let _ = write!(
            page,
            "<div class=\"banner\" role=\"alert\">⚠ {}</div>",
            escape(warning)
        );
    }
    recommendation(&mut page, &results.recommendation);
    exposure(&mut page, results);
    metrics(&mut page, results);
    guardrails(&mut page, results);
    over_time(&mut page, results, snapshots);
    sample(&mut page, results);
    page
}

fn header(page: &mut String, r: &Results) {
    let days = r.computed_at.since(r.started_at).as_secs_f64() / 86_400.0;
    let _ = write!(
        page,
        "<header><h1>Experiment <code>{}</code></h1><p class=\"meta\">{} · started {} · \
         {days:.1} days of data</p></header>",
        escape(&r.experiment),
        escape(&r.settings_line()),
        r.started_at,
    );
}

fn recommendation(page: &mut String, rec: &Recommendation) {
    let class = match rec {
        Recommendation::Ship { .. } => "ship",
        Recommendation::Stop { .. } => "stop",
        Recommendation::KeepRunning { .. } => "keep",
    };
    let _ = write!(
        page,
        "<section><h2>Recommendation</h2><p class=\"rec {class}\">{}</p></section>",
        escape(&rec.to_string())
    );
}

fn exposure(page: &mut String, r: &Results) {
    let mismatch = r.srm.as_ref().is_some_and(|s| s.mismatch);
    page.push_str("<section><h2>Exposure balance</h2>");
    page.push_str(&plots::exposure_balance(&r.variants, mismatch));
    page.push_str("<table><tr><th>variant</th><th>weight</th><th>expected</th><th>units</th><th>observed</th></tr>");
    for v in &r.variants {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&v.name),
            v.weight,
            percent(v.expected_share),
            v.units,
            v.observed_share.map_or_else(|| "–".into(), percent)
        );
    }
    page.push_str("</table>");
    let _ = match &r.srm {
        Some(srm) => write!(
            page,
            "<p class=\"note\">Sample-ratio check: χ² = {:.3}, p = {:.3e} ({}).</p>",
            srm.chi2,
            srm.p_value,
            if srm.mismatch {
                "MISMATCH"
            } else {
                "consistent with the weights"
            }
        ),
        None => write!(
            page,
            "<p class=\"note\">Sample-ratio check: waiting until every variant expects 5 units.</p>"
        ),
    };
    page.push_str("</section>");
}

fn metrics(page: &mut String, r: &Results) {
    let level = format!("{:.0} %", 100.0 * (1.0 - r.alpha));
    let tested = match r.difference {
        Scale::Relative => "the relative lift (treatment − control over control)",
        Scale::Absolute => "the absolute difference (treatment − control)",
    };
    let _ = write!(
        page,
        "<section><h2>Metrics</h2><p class=\"note\">Each verdict, its {} and its interval come \
         from one test: the test of {tested}{}.</p>",
        match r.method {
            Method::Bayesian => "chance to win",
            Method::Fixed | Method::Sequential => "p-value",
        },
        if r.correction == Correction::None || r.method == Method::Bayesian {
            String::new()
        } else {
            format!(
                "; after the {} correction the intervals are widened to match the adjusted \
                 p-values",
                r.correction.as_str()
            )
        }
    );
    for m in &r.metrics {
        let role = match m.role {
            MetricRole::Primary => " (primary)",
            MetricRole::Secondary | MetricRole::GuardrailOnly => "",
        };
        let better = match m.better {
            switchyard_core::manifest::experiment::Better::Higher => "higher is better",
            switchyard_core::manifest::experiment::Better::Lower => "lower is better",
        };
        let counting = m
            .counting()
            .map(|c| format!(", {}", escape(&c)))
            .unwrap_or_default();
        let _ = write!(
            page,
            "<h3>{}{role}</h3><p class=\"note\">{} metric, {better}{counting}</p>",
            escape(&m.name),
            kind_name(m.kind)
        );
        page.push_str(&plots::intervals(m, r.difference, &level));
        metric_table(page, m, r, &level);
    }
    page.push_str("</section>");
}

fn metric_table(page: &mut String, m: &MetricResult, r: &Results, level: &str) {
    let method = r.method;
    let evidence = match method {
        Method::Bayesian => "<th>chance to win</th><th>expected loss</th>",
        Method::Fixed | Method::Sequential => "<th>p</th><th>p adjusted</th>",
    };
    let _ = write!(
        page,
        "<table><tr><th>variant</th><th>units</th><th>value</th><th>difference</th>\
         <th>relative lift</th><th>{level} interval of the {}</th>{evidence}<th>verdict</th></tr>",
        match r.difference {
            Scale::Relative => "lift",
            Scale::Absolute => "difference",
        }
    );
    for (i, v) in m.variants.iter().enumerate() {
        let value = v
            .value
            .map_or_else(|| "–".into(), |x| value_text(x, m.kind));
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{value}</td>",
            escape(&v.variant),
            v.units
        );
        let Some(c) = i.checked_sub(1).and_then(|j| m.comparisons.get(j)) else {
            page.push_str("<td colspan=\"6\" class=\"note\">control</td></tr>");
            continue;
        };
        let interval = c.shown_ci(r.difference).map_or_else(
            || "–".into(),
            |ci| interval_text(ci, r.difference == Scale::Relative),
        );
        let (e1, e2) = match method {
            Method::Bayesian => (
                c.chance_to_win.map_or_else(|| "–".into(), percent),
                c.expected_loss.map_or_else(|| "–".into(), percent),
            ),
            Method::Fixed | Method::Sequential => (
                c.p_value.map_or_else(|| "–".into(), p_text),
                c.adjusted_p_value.map_or_else(|| "–".into(), p_text),
            ),
        };
        let verdict = c.verdict.as_str();
        let _ = write!(
            page,
            "<td>{}</td><td>{}</td><td>{interval}</td><td>{e1}</td><td>{e2}</td><td class=\"{}\">{verdict}</td></tr>",
            c.absolute
                .map_or_else(|| "–".into(), |l| format!("{:+.4}", l.estimate)),
            c.relative
                .map_or_else(|| "–".into(), |l| signed_percent(l.estimate)),
            verdict.replace(' ', "-"),
        );
    }
    page.push_str("</table>");
    for c in &m.comparisons {
        if let Some(theta) = c.cuped_theta {
            let _ = write!(
                page,
                "<p class=\"note\">{}: CUPED-adjusted (θ = {theta:.3}).</p>",
                escape(&c.variant)
            );
        }
        for note in &c.notes {
            let _ = write!(
                page,
                "<p class=\"note\">{}: {}</p>",
                escape(&c.variant),
                escape(note)
            );
        }
    }
}

fn guardrails(page: &mut String, r: &Results) {
    if r.guardrails.is_empty() {
        return;
    }
    page.push_str(
        "<section><h2>Guardrails</h2><table><tr><th>metric</th><th>variant</th><th>control</th>\
         <th>variant</th><th>limit</th><th>degradation</th><th>bounds</th><th>status</th></tr>",
    );
    for g in &r.guardrails {
        let show = |v: f64| match g.scale {
            Scale::Relative => signed_percent(v),
            Scale::Absolute => format!("{v:+.4}"),
        };
        let (degradation, bounds) = g.status.evidence().map_or_else(
            || ("–".into(), "–".into()),
            |e| {
                (
                    show(e.degradation),
                    format!(
                        "[{}, {}]",
                        bound(e.interval[0], &show),
                        bound(e.interval[1], &show)
                    ),
                )
            },
        );
        let (class, status) = match &g.status {
            GuardrailStatus::NotEnoughData { reason } => ("", format!("not enough data: {reason}")),
            GuardrailStatus::WithinLimit(_) => ("within", "within limit".into()),
            GuardrailStatus::Inconclusive(_) => ("", "inconclusive".into()),
            GuardrailStatus::Violated(_) => ("violated", "VIOLATED".into()),
        };
        let limit = match g.scale {
            Scale::Relative => format!("{} worse", percent(g.max_degradation)),
            Scale::Absolute => format!("{} worse", g.max_degradation),
        };
        let value = |v: Option<f64>| v.map_or_else(|| "–".into(), |x| format!("{x:.4}"));
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{limit}</td><td>{degradation}</td>\
             <td>{bounds}</td><td class=\"{class}\">{}</td></tr>",
            escape(&g.metric),
            escape(&g.variant),
            value(g.control_value),
            value(g.variant_value),
            escape(&status)
        );
    }
    page.push_str(
        "</table><p class=\"note\">Degradation is signed so that positive is worse; its bounds are \
         always-valid (sequential) at the experiment's alpha each. A lower bound above the limit \
         stops the experiment.</p></section>",
    );
}

fn over_time(page: &mut String, r: &Results, snapshots: &[Snapshot]) {
    page.push_str("<section><h2>Lift over time</h2>");
    let treatments: Vec<String> = r.variants.iter().skip(1).map(|v| v.name.clone()).collect();
    let mut drawn = false;
    for m in &r.metrics {
        if let Some(svg) = plots::lift_over_time(&m.name, snapshots, &treatments) {
            let _ = write!(page, "<h3>{}</h3>{svg}", escape(&m.name));
            drawn = true;
        }
    }
    if !drawn {
        page.push_str("<p class=\"note\">No snapshots yet.</p>");
    }
    page.push_str("</section>");
}

fn sample(page: &mut String, r: &Results) {
    let s = &r.sample;
    let _ = write!(
        page,
        "<section><h2>Sample size</h2><p>Each variant needs {} units (minimum {}{}). The smallest \
         variant has {}; about {} more units are needed.</p>",
        s.required_per_variant,
        s.minimum_per_variant,
        s.power_per_variant
            .map_or_else(String::new, |p| format!(", power plan {p}")),
        s.smallest_variant,
        s.units_needed
    );
    if let Some(note) = &s.note {
        let _ = write!(page, "<p class=\"note\">{}</p>", escape(note));
    }
    page.push_str("</section>");
}

fn kind_name(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Conversion => "conversion",
        MetricKind::Continuous => "continuous",
        MetricKind::Ratio => "ratio",
    }
}

fn value_text(v: f64, kind: MetricKind) -> String {
    match kind {
        MetricKind::Conversion => percent(v),
        MetricKind::Continuous | MetricKind::Ratio => format!("{v:.4}"),
    }
}

fn interval_text(ci: [f64; 2], relative: bool) -> String {
    let show = |v: f64| {
        if relative {
            signed_percent(v)
        } else {
            format!("{v:+.4}")
        }
    };
    format!("[{}, {}]", bound(ci[0], &show), bound(ci[1], &show))
}

fn bound(v: f64, show: &dyn Fn(f64) -> String) -> String {
    if v.is_finite() {
        show(v)
    } else if v > 0.0 {
        "+∞".into()
    } else {
        "−∞".into()
    }
}

fn percent(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

fn signed_percent(v: f64) -> String {
    format!("{:+.2} %", 100.0 * v)
}

fn p_text(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

#[cfg(test)]
mod tests;
