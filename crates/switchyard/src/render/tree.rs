//! `switchyard get rollout APP`: a rollout as a tree, after `kubectl argo rollouts get
//! rollout`: a summary, then the app with its releases and their instances, the steps with the
//! current one marked, and the analysis with each metric's last verdict.

use switchyard_api::{MeasurementView, RolloutView};
use switchyard_core::{Timestamp, human};

use super::{StepState, fit, metric_line, percent, step_label, step_state, wrap};

/// The tree of `v` in lines no wider than `width` (unbounded when `None`); `measurements` (of
/// the rollout, oldest first) give the metrics of analysis runs that already ended their last
/// verdict.
pub fn tree(
    v: &RolloutView,
    measurements: &[MeasurementView],
    now: Timestamp,
    width: Option<usize>,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut field = |name: &str, value: String| {
        lines.push(fit(&format!("{name:<10}{value}"), width));
    };
    field("Name:", v.app.clone());
    field(
        "Rollout:",
        format!("#{}  {} -> {}", v.id, v.stable_version, v.version),
    );
    field("Phase:", v.phase.clone());
    field(
        "Step:",
        step_label(v).trim_start_matches("step ").to_owned(),
    );
    field(
        "Weights:",
        v.traffic
            .iter()
            .map(|t| format!("{} {} {}%", t.role, t.version, t.weight))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let started = Timestamp::parse_rfc3339(&v.started_at).map_or_else(
        || v.started_at.clone(),
        |t| human::age(now.since(t)) + " ago",
    );
    field("Started:", started);
    if let Some(cluster) = v.routes.as_ref().and_then(|r| r.cluster.as_deref()) {
        field("Routes:", cluster.to_owned());
    }
    if let Some(reason) = &v.reason {
        lines.extend(wrap(&format!("{:<10}", "Reason:"), reason, width));
    }
    lines.push(String::new());

    let mut root = Node::new(v.app.clone());
    for t in &v.traffic {
        let mut release = Node::new(format!(
            "release {}  {}  {}%  {} rps  errors {}",
            t.version,
            t.role,
            t.weight,
            format_args!("{:.1}", t.rps),
            percent(t.error_rate)
        ));
        if t.endpoints.is_empty() {
            release.push(Node::new(format!("{} instance(s)", t.instances)));
        }
        for e in &t.endpoints {
            release.push(Node::new(format!("{}  {}", e.address, e.health)));
        }
        root.push(release);
    }
    if !v.steps.is_empty() {
        let mut steps = Node::new("steps".into());
        for (i, step) in v.steps.iter().enumerate() {
            let mark = match step_state(v, i) {
                StepState::Done => "✔",
                StepState::Current => "►",
                StepState::Stopped => "✖",
                StepState::Pending => " ",
            };
            steps.push(Node::new(format!("{mark} {}  {step}", i + 1)));
        }
        root.push(steps);
    }
    let mut analysis = Node::new("analysis".into());
    for m in &v.analysis {
        let mut metric = Node::new(metric_line(m));
        if let Some(message) = m.last_message.as_deref().filter(|m| !m.is_empty()) {
            metric.push(Node::new(message.to_owned()));
        }
        analysis.push(metric);
    }
    // Metrics of runs that ended: their measurements' count and last verdict.
    let mut ended: Vec<(&str, &str)> = Vec::new();
    for m in measurements {
        let key = (m.template.as_str(), m.metric.as_str());
        let running = v
            .analysis
            .iter()
            .any(|a| a.template == key.0 && a.metric == key.1);
        if !running && !ended.contains(&key) {
            ended.push(key);
        }
    }
    for (template, metric) in ended {
        let of: Vec<&MeasurementView> = measurements
            .iter()
            .filter(|m| m.template == template && m.metric == metric)
            .collect();
        let Some(last) = of.last() else { continue };
        let failed = of.iter().filter(|m| m.phase == "failed").count();
        let value = last
            .value
            .as_deref()
            .map(|v| format!(", last {}", human::number(v)))
            .unwrap_or_default();
        let mut node = Node::new(format!(
            "{template}/{metric}: {} ({} measured, {failed} failed{value})",
            last.phase,
            of.len()
        ));
        if !last.message.is_empty() {
            node.push(Node::new(last.message.clone()));
        }
        analysis.push(node);
    }
    if !analysis.children.is_empty() {
        root.push(analysis);
    }
    root.draw(&mut lines, "", "", width);
    lines
}

/// A labelled node with children, drawn with box-drawing branches.
struct Node {
    label: String,
    children: Vec<Node>,
}

impl Node {
    fn new(label: String) -> Self {
        Self {
            label,
            children: Vec::new(),
        }
    }

    fn push(&mut self, child: Node) {
        self.children.push(child);
    }

    /// Draws the node after `lead` and its children under `indent`.
    fn draw(&self, out: &mut Vec<String>, lead: &str, indent: &str, width: Option<usize>) {
        out.push(fit(&format!("{lead}{}", self.label), width));
        let last = self.children.len().saturating_sub(1);
        for (i, child) in self.children.iter().enumerate() {
            let (branch, under) = if i == last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            child.draw(
                out,
                &format!("{indent}{branch}"),
                &format!("{indent}{under}"),
                width,
            );
        }
    }
}
