//! Colors for the views: phases, health and step marks, added to lines already fitted to the
//! width (escape codes take no column). Chosen once per process by `--color` and `NO_COLOR`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use crate::cli::Color;

static CHOSEN: OnceLock<Color> = OnceLock::new();

/// Records `--color` for the views of this process.
pub fn choose(color: Color) {
    let _ = CHOSEN.set(color);
}

/// Whether views written to standard output get colors.
pub fn stdout() -> bool {
    CHOSEN
        .get()
        .copied()
        .unwrap_or(Color::Auto)
        .enabled(std::io::stdout().is_terminal())
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// The words and marks that get a color.
const WORDS: &[(&str, &str)] = &[
    ("Succeeded", GREEN),
    ("RolledBack", RED),
    ("Aborted", RED),
    ("Failed", RED),
    ("Paused", YELLOW),
    ("AwaitingApproval", YELLOW),
    ("unhealthy", RED),
    ("healthy", GREEN),
    ("✔", GREEN),
    ("✖", RED),
    ("►", YELLOW),
];

/// `line` with each whole word of [`WORDS`] colored.
pub fn line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = line;
    'scan: while !rest.is_empty() {
        let boundary_before = out.chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        if boundary_before {
            for (word, color) in WORDS {
                if let Some(after) = rest.strip_prefix(word) {
                    if after.chars().next().is_none_or(|c| !c.is_alphanumeric()) {
                        out.push_str(color);
                        out.push_str(word);
                        out.push_str(RESET);
                        rest = after;
                        continue 'scan;
                    }
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_are_colored_and_the_text_is_unchanged() {
        let painted = line("shop v1 -> v2  step 2/5 [#x...]  RolledBack  127.0.0.1:9  unhealthy");
        assert!(painted.contains("\x1b[31mRolledBack\x1b[0m"), "{painted:?}");
        assert!(painted.contains("\x1b[31munhealthy\x1b[0m"), "{painted:?}");
        assert_eq!(
            painted.replace(RED, "").replace(RESET, ""),
            "shop v1 -> v2  step 2/5 [#x...]  RolledBack  127.0.0.1:9  unhealthy"
        );
        // Not inside other words, and lowercase verdicts are left alone.
        assert_eq!(line("Pausedness 0 failed"), "Pausedness 0 failed");
    }
}
