//! Text views of rollouts for the terminal: pure functions of a rollout and a width (the
//! snapshot tests pin them), and [`live::Live`], which puts them on a screen or in a log.
//!
//! One vocabulary throughout: steps are counted from 1 (`step 2/5` is the second of five, as
//! in the rollout's reasons and events); releases are named by the role the API gives them
//! (`stable`/`canary` while rolling out, `previous`/`current` after a promotion,
//! `current`/`rolled-back` after a rollback); numbers are rounded for people and stay exact in
//! `-o json`.

pub mod live;
pub mod paint;
pub mod tree;

use std::fmt::Write as _;

use switchyard_api::{MetricView, ReleaseTraffic, RolloutView};
use switchyard_core::{Timestamp, human};

/// A rollout as a block of lines no wider than `width` (unbounded when `None`): the header with
/// the step and phase, the step under way, each release's traffic, the analysis and the reason.
pub fn status(v: &RolloutView, now: Timestamp, width: Option<usize>) -> Vec<String> {
    let mut lines = vec![header(v)];
    if let Some(cluster) = v.routes.as_ref().and_then(|r| r.cluster.as_deref()) {
        lines.push(format!("  routes: {cluster}"));
    }
    if let Some(step) = current_step(v, now) {
        lines.push(format!("  {step}"));
    }
    lines.extend(release_lines(&v.traffic));
    for m in &v.analysis {
        lines.push(format!("  {}", metric_line(m)));
        if let Some(message) = m.last_message.as_deref().filter(|m| !m.is_empty()) {
            lines.push(format!("    {message}"));
        }
    }
    let mut out: Vec<String> = lines.iter().map(|l| fit(l, width)).collect();
    if let Some(reason) = &v.reason {
        out.extend(wrap("  reason: ", reason, width));
    }
    out
}

/// [`status`] as one string, a line each, colored when standard output takes colors.
pub fn status_text(v: &RolloutView, now: Timestamp) -> String {
    text(status(v, now, None))
}

/// `lines` as one string, a line each, colored when standard output takes colors.
pub fn text(lines: Vec<String>) -> String {
    let colored = paint::stdout();
    lines.into_iter().fold(String::new(), |mut s, l| {
        if colored {
            let _ = writeln!(s, "{}", paint::line(&l));
        } else {
            let _ = writeln!(s, "{l}");
        }
        s
    })
}

/// `shop v1 -> v2  step 2/5 [#>...]  Analyzing  canary 20%`.
pub fn header(v: &RolloutView) -> String {
    let mut line = format!(
        "{} {} -> {}  {} [{}]  {}",
        v.app,
        v.stable_version,
        v.version,
        step_label(v),
        bar(v),
        v.phase
    );
    if v.active {
        let _ = write!(line, "  canary {}%", v.weight);
    }
    if let Some(r) = &v.routes {
        if r.cluster.is_none() && r.applied < r.proxies {
            let _ = write!(line, "  (applied on {}/{} proxies)", r.applied, r.proxies);
        }
    }
    line
}

/// `step N/M`, counted from 1: the step under way, the one the rollout stopped at, or the last
/// once all ran.
pub fn step_label(v: &RolloutView) -> String {
    let total = v.steps.len();
    if total == 0 {
        return "no steps".into();
    }
    format!("step {}/{total}", step_number(v))
}

/// The step under way (or where the rollout stopped), counted from 1.
pub fn step_number(v: &RolloutView) -> usize {
    (v.step + 1).min(v.steps.len())
}

/// What step `index` (from 0) is to the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Done,
    Current,
    /// The rollout ended here without succeeding.
    Stopped,
    Pending,
}

pub fn step_state(v: &RolloutView, index: usize) -> StepState {
    let succeeded = v.phase == "Succeeded";
    if index < v.step || succeeded {
        StepState::Done
    } else if index == v.step && v.active {
        StepState::Current
    } else if index == v.step && !succeeded {
        StepState::Stopped
    } else {
        StepState::Pending
    }
}

/// One character per step: `#` done, `>` under way, `x` where the rollout stopped, `.` to come.
fn bar(v: &RolloutView) -> String {
    (0..v.steps.len())
        .map(|i| match step_state(v, i) {
            StepState::Done => '#',
            StepState::Current => '>',
            StepState::Stopped => 'x',
            StepState::Pending => '.',
        })
        .collect()
}

/// `step 2: analysis judge (8s left)` while a rollout is under way.
fn current_step(v: &RolloutView, now: Timestamp) -> Option<String> {
    if !v.active {
        return None;
    }
    let step = v.steps.get(v.step)?;
    let left = v
        .paused_until
        .as_deref()
        .and_then(Timestamp::parse_rfc3339)
        .map(|until| format!(" ({} left)", human::age(until.since(now))))
        .unwrap_or_default();
    Some(format!("step {}: {step}{left}", v.step + 1))
}

/// Each release's traffic, aligned: `canary  v2  20%  2 inst  8.0 rps  errors 0.00%  p99 1.23 ms`,
/// and how many of its instances the proxies avoid, if any.
pub fn release_lines(traffic: &[ReleaseTraffic]) -> Vec<String> {
    let role = traffic.iter().map(|t| t.role.len()).max().unwrap_or(0);
    let version = traffic.iter().map(|t| t.version.len()).max().unwrap_or(0);
    traffic
        .iter()
        .map(|t| {
            let mut line = format!(
                "  {:<role$}  {:<version$}  {:>3}%  {} inst  {:>5} rps  errors {:>6}  p99 {}",
                t.role,
                t.version,
                t.weight,
                t.instances,
                format!("{:.1}", t.rps),
                percent(t.error_rate),
                t.p99_ms.map_or("-".into(), milliseconds)
            );
            let unhealthy = t
                .endpoints
                .iter()
                .filter(|e| e.health == "unhealthy")
                .count();
            if unhealthy > 0 {
                let _ = write!(line, "  {unhealthy} unhealthy");
            }
            line
        })
        .collect()
}

/// `judge/errors-vs-stable: Running (3/10 measured, 0 failed, last 0.01)`.
pub fn metric_line(m: &MetricView) -> String {
    // A judge's count is its one verdict, not a number of looks.
    let of = if m.count == 0 || m.taken > m.count {
        String::new()
    } else {
        format!("/{}", m.count)
    };
    let last = m
        .last_value
        .as_deref()
        .map(|v| format!(", last {}", human::number(v)))
        .unwrap_or_default();
    format!(
        "{}/{}: {} ({}{of} measured, {} failed{last})",
        m.template, m.metric, m.status, m.taken, m.failed
    )
}

/// A rate as a percentage with two decimals, `-` when unknown.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or("-".into(), |r| format!("{:.2}%", r * 100.0))
}

/// A latency in milliseconds with three significant digits.
pub fn milliseconds(ms: f64) -> String {
    let decimals = if ms < 10.0 {
        2
    } else if ms < 100.0 {
        1
    } else {
        0
    };
    format!("{ms:.decimals$} ms")
}

/// `line` cut to `width` characters, the last one `…` when something was cut.
pub fn fit(line: &str, width: Option<usize>) -> String {
    match width {
        Some(w) if line.chars().count() > w => {
            let mut cut: String = line.chars().take(w.saturating_sub(1)).collect();
            cut.push('…');
            cut
        }
        _ => line.to_owned(),
    }
}

/// `text` after `lead`, wrapped at spaces to `width` with the continuation lines indented under
/// the text; a word longer than a line is cut, never a number split across lines.
pub fn wrap(lead: &str, text: &str, width: Option<usize>) -> Vec<String> {
    let indent = lead.chars().count();
    let Some(width) = width.filter(|w| *w > indent + 10) else {
        return vec![fit(&format!("{lead}{text}"), width)];
    };
    let mut lines = Vec::new();
    let mut line = lead.to_owned();
    let mut len = indent;
    for word in text.split_whitespace() {
        let n = word.chars().count();
        if len > indent && len + 1 + n > width {
            lines.push(std::mem::replace(&mut line, " ".repeat(indent)));
            len = indent;
        }
        if len > indent {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += n;
    }
    lines.push(line);
    lines.into_iter().map(|l| fit(&l, Some(width))).collect()
}

#[cfg(test)]
pub(crate) mod tests;
