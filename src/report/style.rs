//! Colour for people, never for programs: the dry-run diff (`+` green, `-`
//! red, headers bold), statuses and errors. `--color auto` colours only a
//! terminal and honours `NO_COLOR`; `always` and `never` are what they say.
//! JSON is never coloured (its printer does not use this module).

use std::io::IsTerminal;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

static CHOICE: OnceLock<ColorChoice> = OnceLock::new();

/// Sets the run's choice once, from `--color`.
pub fn init(choice: ColorChoice) {
    let _ = CHOICE.set(choice);
}

fn decide(choice: ColorChoice, terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
    }
}

/// Paints text when colour is on for its stream.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    on: bool,
}

const RESET: &str = "\x1b[0m";
pub const BOLD: &str = "\x1b[1m";
pub const RED: &str = "\x1b[31m";
pub const GREEN: &str = "\x1b[32m";
pub const YELLOW: &str = "\x1b[33m";
pub const CYAN: &str = "\x1b[36m";
pub const BOLD_RED: &str = "\x1b[1;31m";
pub const BOLD_YELLOW: &str = "\x1b[1;33m";
pub const BOLD_CYAN: &str = "\x1b[1;36m";

impl Paint {
    #[cfg(test)]
    pub fn new(on: bool) -> Self {
        Paint { on }
    }
    pub fn stdout() -> Self {
        Self::for_stream(std::io::stdout().is_terminal())
    }
    pub fn stderr() -> Self {
        Self::for_stream(std::io::stderr().is_terminal())
    }
    fn for_stream(terminal: bool) -> Self {
        let choice = CHOICE.get().copied().unwrap_or_default();
        Paint { on: decide(choice, terminal, std::env::var_os("NO_COLOR")) }
    }
    pub fn paint(&self, code: &str, s: &str) -> String {
        if self.on && !s.is_empty() {
            format!("{code}{s}{RESET}")
        } else {
            s.to_string()
        }
    }
    /// A status word in the colour of what it asks of the operator.
    pub fn status(&self, word: &str) -> String {
        let code = match word {
            "current" | "created" | "replaced" | "updated" | "verified" | "optimized" => GREEN,
            "stale" | "would-create" | "would-replace" | "would-optimize" | "never" => YELLOW,
            w if w.starts_with("stale") => YELLOW,
            _ => RED,
        };
        self.paint(code, word)
    }
    /// The human report with its diff coloured: file headers and `==` lines
    /// bold, hunks cyan, additions green, removals red.
    pub fn report(&self, text: &str) -> String {
        if !self.on {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + text.len() / 8);
        for line in text.split_inclusive('\n') {
            let (body, nl) = match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            };
            let code = if body.starts_with("+++") || body.starts_with("---") || body.starts_with("==") {
                Some(BOLD)
            } else if body.starts_with("@@") {
                Some(CYAN)
            } else if body.starts_with('+') {
                Some(GREEN)
            } else if body.starts_with('-') {
                Some(RED)
            } else {
                None
            };
            match code {
                Some(c) => out.push_str(&self.paint(c, body)),
                None => out.push_str(body),
            }
            out.push_str(nl);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        assert!(decide(ColorChoice::Auto, true, None));
        assert!(!decide(ColorChoice::Auto, false, None));
        assert!(!decide(ColorChoice::Auto, true, Some("1".into())));
        assert!(decide(ColorChoice::Auto, true, Some("".into())), "an empty NO_COLOR is unset");
        assert!(decide(ColorChoice::Always, false, Some("1".into())));
        assert!(!decide(ColorChoice::Never, true, None));
    }

    #[test]
    fn diff_lines_take_their_colours() {
        let p = Paint::new(true);
        let s = p.report("== gw (would-create): /x\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-old\n+new\n same\n");
        assert!(s.contains("\x1b[1m== gw"));
        assert!(s.contains("\x1b[31m-old\x1b[0m\n"));
        assert!(s.contains("\x1b[32m+new\x1b[0m\n"));
        assert!(s.contains("\n same\n"));
        assert_eq!(Paint::new(false).report("+x\n"), "+x\n");
    }
}
