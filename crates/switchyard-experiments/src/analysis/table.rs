//! The plain-text rendering of [`Results`] the CLI prints (`Display`).

use std::fmt::{self, Write as _};

use switchyard_core::manifest::experiment::{Method, Scale};

use super::results::{Comparison, GuardrailStatus, MetricResult, Results};
use crate::experiment::{MetricKind, MetricRole};

impl Results {
    /// The results as the plain-text table `switchyard experiment results` prints.
    pub fn to_table(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Results {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.computed_at.since(self.started_at).as_secs_f64() / 86_400.0;
        writeln!(
            f,
            "Experiment `{}` · {}",
            self.experiment,
            self.settings_line()
        )?;
        writeln!(
            f,
            "Started {}, computed {} ({days:.1} days)",
            self.started_at, self.computed_at
        )?;
        writeln!(f)?;
        writeln!(f, "Recommendation: {}", self.recommendation)?;
        if let Some(warning) = self.srm.as_ref().and_then(|s| s.warning.as_deref()) {
            writeln!(f)?;
            writeln!(f, "!!! {warning}")?;
        }
        writeln!(f)?;
        self.units(f)?;
        writeln!(f)?;
        self.metric_table(f)?;
        if !self.guardrails.is_empty() {
            writeln!(f)?;
            self.guardrail_table(f)?;
        }
        writeln!(f)?;
        let s = &self.sample;
        write!(
            f,
            "Sample: {} units per variant required (minimum {}",
            s.required_per_variant, s.minimum_per_variant
        )?;
        if let Some(p) = s.power_per_variant {
            write!(f, ", power plan {p}")?;
        }
        writeln!(
            f,
            "); smallest variant has {}; about {} more units needed",
            s.smallest_variant, s.units_needed
        )?;
        if let Some(note) = &s.note {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }
}

impl Results {
    fn units(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Units")?;
        let mut rows = vec![cells([
            "variant", "weight", "expected", "units", "observed",
        ])];
        for v in &self.variants {
            rows.push(vec![
                v.name.clone(),
                v.weight.to_string(),
                percent(v.expected_share),
                v.units.to_string(),
                v.observed_share.map_or_else(|| "-".into(), percent),
            ]);
        }
        write_rows(f, &rows)?;
        match &self.srm {
            Some(srm) => writeln!(
                f,
                "  sample ratio: chi2 {:.3}, p = {} ({})",
                srm.chi2,
                p_value(srm.p_value),
                if srm.mismatch { "MISMATCH" } else { "ok" }
            ),
            None => writeln!(
                f,
                "  sample ratio: not checked until every variant expects 5 units"
            ),
        }
    }

    fn metric_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let corrected = self
            .metrics
            .iter()
            .flat_map(|m| &m.comparisons)
            .any(|c| c.adjusted_ci.is_some());
        let level = format!(
            "{:.0} % interval{}",
            100.0 * (1.0 - self.alpha),
            if corrected { " (adjusted)" } else { "" }
        );
        let tested = match self.difference {
            Scale::Relative => "lift relative to control",
            Scale::Absolute => "absolute difference",
        };
        writeln!(
            f,
            "Metrics (* primary; each verdict, p-value and interval from the test of the {tested})"
        )?;
        let bayesian = self.method == Method::Bayesian;
        let mut header = cells(["metric", "variant", "control", "variant", "lift", &level]);
        header.extend(if bayesian {
            cells(["chance to win", "expected loss", "verdict"])
        } else {
            cells(["p", "p adjusted", "verdict"])
        });
        let mut rows = vec![header];
        let mut notes = Vec::new();
        for m in &self.metrics {
            if let Some(counting) = m.counting() {
                notes.push(format!("  {}: {counting}", m.name));
            }
            let control = m.variants.first().and_then(|v| v.value);
            for (c, estimate) in m.comparisons.iter().zip(m.variants.iter().skip(1)) {
                let (lift, interval) = lift_cells(m, c, self.difference);
                let mut row = vec![
                    metric_label(m),
                    c.variant.clone(),
                    number(control, m.kind),
                    number(estimate.value, m.kind),
                    lift,
                    interval,
                ];
                row.extend(if bayesian {
                    [
                        c.chance_to_win.map_or_else(|| "-".into(), percent),
                        c.expected_loss.map_or_else(|| "-".into(), percent),
                    ]
                } else {
                    [
                        c.p_value.map_or_else(|| "-".into(), p_value),
                        c.adjusted_p_value.map_or_else(|| "-".into(), p_value),
                    ]
                });
                row.push(c.verdict.as_str().to_owned());
                rows.push(row);
                for note in &c.notes {
                    notes.push(format!("  {} / {}: {note}", m.name, c.variant));
                }
            }
        }
        write_rows(f, &rows)?;
        for note in notes {
            writeln!(f, "{note}")?;
        }
        Ok(())
    }

    fn guardrail_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Guardrails (degradation: positive is worse)")?;
        let mut rows = vec![cells([
            "metric",
            "variant",
            "limit",
            "degradation",
            "bounds",
            "status",
        ])];
        for g in &self.guardrails {
            let show = |v: f64| match g.scale {
                Scale::Relative => signed_percent(v),
                Scale::Absolute => format!("{v:+.4}"),
            };
            let (degradation, bounds) = match g.status.evidence() {
                Some(e) => (
                    show(e.degradation),
                    format!("[{}, {}]", show(e.interval[0]), show(e.interval[1])),
                ),
                None => ("-".into(), "-".into()),
            };
            let status = match &g.status {
                GuardrailStatus::NotEnoughData { reason } => format!("not enough data: {reason}"),
                other => other.as_str().to_owned(),
            };
            let limit = match g.scale {
                Scale::Relative => percent(g.max_degradation),
                Scale::Absolute => g.max_degradation.to_string(),
            };
            rows.push(vec![
                g.metric.clone(),
                g.variant.clone(),
                limit,
                degradation,
                bounds,
                status,
            ]);
        }
        write_rows(f, &rows)
    }
}

fn metric_label(m: &MetricResult) -> String {
    match m.role {
        MetricRole::Primary => format!("{} *", m.name),
        MetricRole::Secondary | MetricRole::GuardrailOnly => m.name.clone(),
    }
}

/// The tested difference and its interval (widened after a correction).
fn lift_cells(m: &MetricResult, c: &Comparison, difference: Scale) -> (String, String) {
    let (Some(lift), Some(ci)) = (c.tested(difference), c.shown_ci(difference)) else {
        return ("-".into(), "-".into());
    };
    let show = |v: f64| match (difference, m.kind) {
        (Scale::Relative, _) => signed_percent(v),
        (Scale::Absolute, MetricKind::Conversion) => format!("{:+.2} pp", 100.0 * v),
        (Scale::Absolute, _) => format!("{v:+.4}"),
    };
    (
        show(lift.estimate),
        format!("[{}, {}]", bound(ci[0], &show), bound(ci[1], &show)),
    )
}

fn bound(v: f64, show: &dyn Fn(f64) -> String) -> String {
    if v.is_finite() {
        show(v)
    } else if v > 0.0 {
        "+inf".into()
    } else {
        "-inf".into()
    }
}

fn number(v: Option<f64>, kind: MetricKind) -> String {
    match (v, kind) {
        (None, _) => "-".into(),
        (Some(v), MetricKind::Conversion) => percent(v),
        (Some(v), _) => format!("{v:.4}"),
    }
}

fn percent(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

fn signed_percent(v: f64) -> String {
    format!("{:+.2} %", 100.0 * v)
}

fn p_value(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

fn cells<const N: usize>(texts: [&str; N]) -> Vec<String> {
    texts.iter().map(|s| (*s).to_owned()).collect()
}

/// Writes rows as left-aligned columns, two spaces apart, indented by two.
fn write_rows(f: &mut fmt::Formatter<'_>, rows: &[Vec<String>]) -> fmt::Result {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(" ");
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, " {cell:<width$} ");
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}
