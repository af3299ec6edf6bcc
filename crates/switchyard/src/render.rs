//! Text views of rollouts for the terminal.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use switchyard_api::RolloutView;

/// A rollout as a few lines: progress bar of the steps, weights, and per-release traffic.
pub fn rollout(v: &RolloutView) -> String {
    let mut out = String::new();
    let total = v.steps.len().max(1);
    let done = v.step.min(total);
    let bar: String = (0..total)
        .map(|i| {
            if i < done {
                '#'
            } else if i == done && v.active {
                '>'
            } else {
                '.'
            }
        })
        .collect();
    let applied = match &v.routes {
        Some(r) if r.cluster.is_some() => String::new(),
        Some(r) if r.applied < r.proxies => {
            format!("  (applied on {}/{} proxies)", r.applied, r.proxies)
        }
        _ => String::new(),
    };
    let cluster = v.routes.as_ref().and_then(|r| r.cluster.as_deref());
    let _ = writeln!(
        out,
        "{} {} -> {}  [{}] step {}/{}  {}  canary {}%{applied}",
        v.app,
        v.stable_version,
        v.version,
        bar,
        done.min(total),
        total,
        v.phase,
        v.weight
    );
    if let Some(cluster) = cluster {
        let _ = writeln!(out, "  routes: {cluster}");
    }
    if let Some(step) = v.steps.get(v.step) {
        if v.active {
            let until = v
                .paused_until
                .as_deref()
                .map(|u| format!(" until {u}"))
                .unwrap_or_default();
            let _ = writeln!(out, "  current step: {step}{until}");
        }
    }
    for t in &v.traffic {
        let err = t
            .error_rate
            .map_or("-".into(), |e| format!("{:.2}%", e * 100.0));
        let p99 = t.p99_ms.map_or("-".into(), |p| format!("{p:.1} ms"));
        let _ = writeln!(
            out,
            "  {:<6} {:<10} {:>3}%  {:>2} inst  {:>6.1} rps  errors {:>7}  p99 {:>9}",
            t.role, t.version, t.weight, t.instances, t.rps, err, p99
        );
    }
    for m in &v.analysis {
        let _ = writeln!(
            out,
            "  analysis {}/{}: {} ({}/{} measured, {} failed) last {} — {}",
            m.template,
            m.metric,
            m.status,
            m.taken,
            m.count,
            m.failed,
            m.last_value
                .as_deref()
                .map_or_else(|| "-".to_owned(), switchyard_core::human::number),
            m.last_message.as_deref().unwrap_or("")
        );
    }
    if let Some(reason) = &v.reason {
        let _ = writeln!(out, "  reason: {reason}");
    }
    out
}

/// Redraws a block of lines in place on a terminal, or prints changed blocks otherwise.
#[derive(Debug, Default)]
pub struct Live {
    last_lines: usize,
    last: String,
}

impl Live {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn show(&mut self, block: &str) {
        let mut stdout = std::io::stdout();
        if stdout.is_terminal() {
            if self.last_lines > 0 {
                let _ = write!(stdout, "\x1b[{}A\x1b[J", self.last_lines);
            }
            let _ = write!(stdout, "{block}");
        } else if block != self.last {
            let _ = write!(stdout, "{block}");
        }
        let _ = stdout.flush();
        self.last_lines = block.lines().count();
        self.last = block.to_string();
    }
}
