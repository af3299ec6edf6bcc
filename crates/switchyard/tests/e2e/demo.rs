//! `switchyard demo`: the whole story (`--json`), on a terminal and in a pipe.

use std::process::{Command, Stdio};

use crate::support::BIN;

#[test]
fn demo_promotes_the_healthy_canary_and_rolls_back_the_broken_one() {
    let out = Command::new(BIN)
        .args(["demo", "--fast", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rollouts = summary["rollouts"].as_array().unwrap();
    assert_eq!(rollouts[0]["version"], "v2");
    assert_eq!(rollouts[0]["outcome"], "promoted");
    assert_eq!(rollouts[1]["version"], "v3");
    assert_eq!(rollouts[1]["outcome"], "rolled_back");
    assert!(
        rollouts[1]["reason"].as_str().unwrap().contains("error"),
        "{summary:#}"
    );
    assert!(rollouts[1]["detected_after_s"].as_f64().unwrap() > 0.0);
    assert!(summary["requests"].as_u64().unwrap() > 100);
}

/// On a terminal (a pseudo-terminal read by a terminal emulator) the demo redraws one screen in
/// place: the screen shows the rollout under way once, no line wraps, a narrower window gets
/// narrower lines; when it ends, the normal screen holds each rollout's outcome exactly once.
#[test]
fn on_a_terminal_the_demo_redraws_one_screen_in_place() {
    let (master, slave) = pty::open(80, 24);
    let mut child = Command::new(BIN)
        .args(["demo", "--fast", "--rps", "40"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let output = pty::Reader::start(&master);
    let mut parser = vt100::Parser::new(24, 80, 0);
    let mut seen = Vec::new();

    // The first rollout under way: its header once, the narration above it, nothing wrapped.
    let screen = output.until(&mut parser, &mut seen, |s| {
        s.alternate_screen() && s.contents().contains("canary 20%")
    });
    assert_eq!(
        screen.matches("shop v1 -> v2").count(),
        1,
        "one header on the screen:\n{screen}"
    );
    assert!(screen.contains("== deploying v2"), "{screen}");
    assert!(screen.contains("load generator"), "{screen}");
    assert!(
        (0..24).all(|row| !parser.screen().row_wrapped(row)),
        "a line wrapped:\n{screen}"
    );

    // A narrower window: the frames drawn after it are cut to its width instead of wrapping.
    let mark = seen.len();
    pty::resize(&master, 60, 20);
    parser.screen_mut().set_size(20, 60);
    let frame = output.until_frame(&mut parser, &mut seen, mark, |lines| {
        lines.iter().all(|l| l.chars().count() <= 60)
    });
    assert!(
        frame.iter().any(|l| l.starts_with("shop v1 -> v2")),
        "{frame:#?}"
    );
    assert!(frame.iter().any(|l| l.ends_with('…')), "{frame:#?}");
    assert_eq!(frame.len(), 20, "{frame:#?}");

    let status = child.wait().unwrap();
    output.until_closed(&mut parser, &mut seen);
    assert!(status.success(), "{}", String::from_utf8_lossy(&seen));
    assert!(
        !parser.screen().alternate_screen(),
        "left on the alternate screen"
    );
    // What the normal screen got: everything after leaving the alternate screen.
    let leave = b"\x1b[?1049l";
    let at = seen
        .windows(leave.len())
        .rposition(|w| w == leave)
        .expect("the alternate screen was left");
    let after = String::from_utf8_lossy(&seen[at..]);
    assert_eq!(after.matches("shop v1 -> v2").count(), 1, "{after}");
    assert_eq!(after.matches("shop v2 -> v3").count(), 1, "{after}");
    // In color at a terminal (`--color auto`).
    assert!(
        after.contains("\x1b[32mSucceeded") && after.contains("\x1b[31mRolledBack"),
        "{after}"
    );
    assert!(after.contains("== summary"), "{after}");
}

/// Outside a terminal the demo writes a line per change: no line twice in a row, every
/// rollout header only when its phase, step or weight changed, and both outcomes.
#[test]
fn outside_a_terminal_the_demo_writes_a_line_per_change() {
    let out = Command::new(BIN)
        .args(["demo", "--fast", "--rps", "40"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "escape codes in a pipe:\n{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for pair in lines.windows(2) {
        assert!(
            pair[0] != pair[1] || pair[0].is_empty(),
            "repeated: {:?}\n{stdout}",
            pair[0]
        );
    }
    // Header lines: `HH:MM:SS  shop v1 -> v2  step N/M [...]  Phase  canary W% ...`; the
    // same header twice in a row (the time aside) would be a refresh without a change.
    let headers: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.get(10..).filter(|rest| rest.starts_with("shop ")))
        .collect();
    for pair in headers.windows(2) {
        assert_ne!(pair[0], pair[1], "a header without a change:\n{stdout}");
    }
    let last = |release: &str| {
        lines
            .iter()
            .rev()
            .find(|l| l.get(10..).is_some_and(|r| r.starts_with(release)))
            .copied()
            .unwrap_or_default()
    };
    assert!(last("shop v1 -> v2").contains("Succeeded"), "{stdout}");
    assert!(last("shop v2 -> v3").contains("RolledBack"), "{stdout}");
    assert!(
        lines.iter().any(|l| l.starts_with("  reason: ")),
        "{stdout}"
    );
    assert!(lines.len() < 80, "{} lines:\n{stdout}", lines.len());
}

mod pty {
    use std::fs::{File, OpenOptions};
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
    use std::time::{Duration, Instant};

    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use rustix::termios::{Winsize, tcsetwinsize};

    /// A pseudo-terminal of `cols` × `rows`: its controlling side and the terminal a program
    /// writes to.
    pub fn open(cols: u16, rows: u16) -> (File, File) {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().unwrap())
            .unwrap();
        resize(&master, cols, rows);
        (File::from(master), slave)
    }

    pub fn resize(master: &impl AsFd, cols: u16, rows: u16) {
        tcsetwinsize(
            master,
            Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
    }

    /// What the program writes, read on a thread.
    pub struct Reader(Receiver<Vec<u8>>);

    /// Only a bound for a broken build: every wait ends on a condition.
    const LIMIT: Duration = Duration::from_secs(300);

    impl Reader {
        pub fn start(master: &File) -> Self {
            let mut master = master.try_clone().unwrap();
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                // EIO once the program and everything it started closed the terminal.
                while let Ok(n @ 1..) = master.read(&mut buf) {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            });
            Self(rx)
        }

        /// Feeds output to `parser` until `done` holds for its screen; returns the screen.
        pub fn until(
            &self,
            parser: &mut vt100::Parser,
            seen: &mut Vec<u8>,
            done: impl Fn(&vt100::Screen) -> bool,
        ) -> String {
            let deadline = Instant::now() + LIMIT;
            while !done(parser.screen()) {
                match self
                    .0
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                {
                    Ok(bytes) => {
                        parser.process(&bytes);
                        seen.extend_from_slice(&bytes);
                    }
                    Err(e) => panic!(
                        "{e:?} before the screen showed what was expected:\n{}",
                        parser.screen().contents()
                    ),
                }
            }
            parser.screen().contents()
        }

        /// Feeds output to `parser` until a whole frame drawn after byte `mark` of `seen` (the
        /// text between two moves to the top left corner, one entry per line) satisfies
        /// `done`; fails if the program leaves the alternate screen first.
        pub fn until_frame(
            &self,
            parser: &mut vt100::Parser,
            seen: &mut Vec<u8>,
            mark: usize,
            done: impl Fn(&[String]) -> bool,
        ) -> Vec<String> {
            const HOME: &[u8] = b"\x1b[1;1H";
            loop {
                let starts: Vec<usize> = seen[mark..]
                    .windows(HOME.len())
                    .enumerate()
                    .filter(|(_, w)| *w == HOME)
                    .map(|(i, _)| mark + i + HOME.len())
                    .collect();
                for pair in starts.windows(2) {
                    let text = strip_escapes(&seen[pair[0]..pair[1] - HOME.len()]);
                    // The terminal turns each `\n` into `\r\n`: lines end at either.
                    let lines: Vec<String> = text
                        .split('\n')
                        .map(|l| l.trim_end_matches('\r').to_owned())
                        .collect();
                    if done(&lines) {
                        return lines;
                    }
                }
                assert!(
                    parser.screen().alternate_screen(),
                    "left the screen before such a frame was drawn:\n{}",
                    String::from_utf8_lossy(&seen[mark..])
                );
                match self.0.recv_timeout(LIMIT) {
                    Ok(bytes) => {
                        parser.process(&bytes);
                        seen.extend_from_slice(&bytes);
                    }
                    Err(e) => panic!("{e:?} before such a frame was drawn"),
                }
            }
        }

        /// Feeds everything left to `parser`, until the terminal is closed.
        pub fn until_closed(&self, parser: &mut vt100::Parser, seen: &mut Vec<u8>) {
            loop {
                match self.0.recv_timeout(LIMIT) {
                    Ok(bytes) => {
                        parser.process(&bytes);
                        seen.extend_from_slice(&bytes);
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => panic!("the terminal stayed open"),
                }
            }
        }
    }

    /// `bytes` as text without its escape sequences (CSI `ESC [ ... final`, and `ESC` + one).
    fn strip_escapes(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '\x1b' {
                out.push(c);
                continue;
            }
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        }
        out
    }
}
