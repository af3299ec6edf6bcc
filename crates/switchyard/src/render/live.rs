//! Following a rollout live. On a terminal the view is redrawn in place on the alternate screen,
//! fitted to the window's width and height at every refresh (so resizing works and nothing
//! wraps); when it ends, the normal screen gets the final view once. Anywhere else (a pipe, a
//! CI log) each change is one line: the header when the phase, step or weight changes, the
//! reason when it changes, a metric when its status or failure count changes; refreshes that
//! change nothing print nothing.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Stdout, Write};

use crossterm::{QueueableCommand, cursor, terminal};
use switchyard_api::{MeasurementView, RolloutView};
use switchyard_core::{Clock, SystemClock, Timestamp};

use super::{fit, header, metric_line, paint, status, tree::tree, wrap};

/// Which view of the rollout to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `rollout status`: the header, releases, analysis and reason.
    Status,
    /// `get rollout`: the tree.
    Tree,
}

impl Kind {
    fn render(self, look: &Look, now: Timestamp, width: Option<usize>) -> Vec<String> {
        match self {
            Kind::Status => status(&look.rollout, now, width),
            Kind::Tree => tree(&look.rollout, &look.measurements, now, width),
        }
    }
}

/// One look at a rollout: its view and, for the tree, its measurements.
#[derive(Debug, Clone)]
pub struct Look {
    pub rollout: RolloutView,
    pub measurements: Vec<MeasurementView>,
}

impl From<&RolloutView> for Look {
    fn from(rollout: &RolloutView) -> Self {
        Self {
            rollout: rollout.clone(),
            measurements: Vec::new(),
        }
    }
}

/// One entry of what a live view has shown: a narration line or a rollout's final view.
#[derive(Debug, Clone)]
pub enum Entry {
    Text(String),
    View(Look),
}

impl Entry {
    fn lines(&self, kind: Kind, now: Timestamp, width: Option<usize>) -> Vec<String> {
        match self {
            Entry::Text(t) => t.lines().map(|l| fit(l, width)).collect(),
            Entry::View(v) => kind.render(v, now, width),
        }
    }
}

/// The screen at `width` × `height`: the transcript's last lines, then the current view; the
/// view's own lines win when there is no room for both. Always exactly `height` lines.
pub fn frame(
    kind: Kind,
    transcript: &[Entry],
    current: Option<&Look>,
    now: Timestamp,
    width: usize,
    height: usize,
) -> Vec<String> {
    let width = Some(width.max(1));
    let height = height.max(1);
    let mut block = current.map_or_else(Vec::new, |v| kind.render(v, now, width));
    if block.len() > height {
        block.truncate(height - 1);
        block.push(fit("…", width));
    }
    let above: Vec<String> = transcript
        .iter()
        .flat_map(|e| e.lines(kind, now, width))
        .collect();
    let room = height - block.len();
    let mut lines: Vec<String> = above[above.len().saturating_sub(room)..].to_vec();
    lines.append(&mut block);
    lines.resize(height, String::new());
    lines
}

/// The log lines a new look at a rollout adds: nothing unless something a person would want to
/// know changed since the previous look.
#[derive(Debug, Default)]
pub struct Changes {
    header: Option<(i64, String, usize, u8)>,
    reason: Option<String>,
    metrics: BTreeMap<(i64, String, String), (String, u32)>,
}

impl Changes {
    pub fn lines(&mut self, v: &RolloutView, now: Timestamp) -> Vec<String> {
        let mut out = Vec::new();
        let key = (v.id, v.phase.clone(), v.step, v.weight);
        if self.header.as_ref() != Some(&key) {
            let mut line = format!("{}  {}", clock(now), header(v));
            if let Some(step) = v.steps.get(v.step).filter(|_| v.active) {
                line.push_str("  ");
                line.push_str(step);
            }
            out.push(line);
            self.header = Some(key);
        }
        for m in &v.analysis {
            let key = (v.id, m.template.clone(), m.metric.clone());
            let seen = (m.status.clone(), m.failed);
            if self.metrics.get(&key) != Some(&seen) {
                out.push(format!("  {}", metric_line(m)));
                self.metrics.insert(key, seen);
            }
        }
        if v.reason.is_some() && v.reason != self.reason {
            out.extend(wrap("  reason: ", v.reason.as_deref().unwrap_or(""), None));
        }
        self.reason.clone_from(&v.reason);
        out
    }
}

/// `22:31:05`: the time of day in UTC.
fn clock(t: Timestamp) -> String {
    let s = t.as_millis() / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A live view on standard output: redrawn in place on a terminal, a line per change
/// otherwise, nothing at all when quiet.
pub struct Live {
    kind: Kind,
    target: Target,
    /// Colors (`--color`, `NO_COLOR`).
    paint: bool,
}

enum Target {
    Quiet,
    Log(Changes),
    Screen(Screen),
}

impl Live {
    /// A live view of `kind`; quiet shows nothing (for `--json`).
    pub fn new(kind: Kind, quiet: bool) -> Self {
        let target = if quiet {
            Target::Quiet
        } else if std::io::stdout().is_terminal() {
            Target::Screen(Screen::enter())
        } else {
            Target::Log(Changes::default())
        };
        Self {
            kind,
            target,
            paint: paint::stdout(),
        }
    }

    /// A line of narration above the view.
    pub fn say(&mut self, text: &str) {
        match &mut self.target {
            Target::Quiet => {}
            Target::Log(_) => outln!("{text}"),
            Target::Screen(s) => {
                s.transcript.push(Entry::Text(text.to_owned()));
                s.draw(self.kind, self.paint);
            }
        }
    }

    /// The rollout as it is now.
    pub fn show(&mut self, look: Look) {
        let now = SystemClock.now();
        match &mut self.target {
            Target::Quiet => {}
            Target::Log(changes) => {
                let mut out = std::io::stdout().lock();
                for line in changes.lines(&look.rollout, now) {
                    let _ = writeln!(out, "{}", self.colored(&line));
                }
                let _ = out.flush();
            }
            Target::Screen(s) => {
                s.current = Some(look);
                s.draw(self.kind, self.paint);
            }
        }
    }

    fn colored(&self, line: &str) -> String {
        if self.paint {
            paint::line(line)
        } else {
            line.to_owned()
        }
    }

    /// The rollout shown last has ended: it stays in the transcript, above what comes next.
    pub fn keep(&mut self) {
        if let Target::Screen(s) = &mut self.target {
            if let Some(v) = s.current.take() {
                s.transcript.push(Entry::View(v));
            }
        }
    }

    /// Leaves the alternate screen and prints the transcript there once, so the terminal's
    /// scrollback holds the outcome.
    pub fn close(mut self) {
        self.keep();
        if let Target::Screen(s) = &mut self.target {
            s.leave();
            let width = Some(usize::from(size().0));
            let now = SystemClock.now();
            let mut out = std::io::stdout().lock();
            for entry in &s.transcript {
                for line in entry.lines(self.kind, now, width) {
                    let line = if self.paint { paint::line(&line) } else { line };
                    let _ = writeln!(out, "{line}");
                }
            }
            let _ = out.flush();
        }
    }
}

/// The alternate screen, left again when dropped (an error on the way out) or on Ctrl-C.
struct Screen {
    out: Stdout,
    transcript: Vec<Entry>,
    current: Option<Look>,
    entered: bool,
}

impl Screen {
    fn enter() -> Self {
        let mut out = std::io::stdout();
        let _ = out.queue(terminal::EnterAlternateScreen);
        let _ = out.queue(cursor::Hide);
        let _ = out.flush();
        // Ctrl-C must not leave the terminal on the alternate screen without a cursor.
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    restore(&mut std::io::stdout());
                    std::process::exit(130);
                }
            });
        }
        Self {
            out,
            transcript: Vec::new(),
            current: None,
            entered: true,
        }
    }

    fn draw(&mut self, kind: Kind, colored: bool) {
        let (w, h) = size();
        let now = SystemClock.now();
        let lines = frame(
            kind,
            &self.transcript,
            self.current.as_ref(),
            now,
            usize::from(w),
            usize::from(h),
        );
        let _ = self.out.queue(cursor::MoveTo(0, 0));
        let last = lines.len().saturating_sub(1);
        for (i, line) in lines.iter().enumerate() {
            // Cleared before it is written: clearing after a line that fills the width would
            // erase its last character on some terminals.
            let _ = self
                .out
                .queue(terminal::Clear(terminal::ClearType::CurrentLine));
            if colored {
                let _ = self.out.write_all(paint::line(line).as_bytes());
            } else {
                let _ = self.out.write_all(line.as_bytes());
            }
            if i < last {
                let _ = self.out.write_all(b"\r\n");
            }
        }
        let _ = self.out.flush();
    }

    fn leave(&mut self) {
        if std::mem::take(&mut self.entered) {
            restore(&mut self.out);
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.leave();
    }
}

fn restore(out: &mut Stdout) {
    let _ = out.queue(cursor::Show);
    let _ = out.queue(terminal::LeaveAlternateScreen);
    let _ = out.flush();
}

/// The width of the terminal standard output writes to; `None` when it is not one.
pub fn width() -> Option<usize> {
    std::io::stdout()
        .is_terminal()
        .then(|| usize::from(size().0))
}

/// Columns and rows of the terminal standard output writes to (not the controlling terminal's:
/// they differ under `script` or a test's pseudo-terminal); 80 × 24 when it cannot be told.
fn size() -> (u16, u16) {
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(w) if w.ws_col > 0 && w.ws_row > 0 => (w.ws_col, w.ws_row),
        _ => terminal::size().unwrap_or((80, 24)),
    }
}
