//! Text wrapped to the terminal's width, for the parts of a report that are
//! prose (the notes under `status`, a dry-run's summary).

/// `text` after `lead`, wrapped at spaces to `width` columns, the lines after
/// the first indented under the text; a word longer than a line stays whole.
pub fn wrap(lead: &str, text: &str, width: usize) -> String {
    let indent = " ".repeat(lead.chars().count());
    let mut out = String::new();
    let mut line = lead.to_string();
    let mut fresh = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let used = line.chars().count();
        if !fresh && used + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.clone();
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// The width to wrap the notes to: `COLUMNS` when set, else the terminal's
/// (stdout), else 80.
pub fn terminal_width() -> usize {
    let set = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|&c| c > 0);
    let term =
        || rustix::termios::tcgetwinsize(std::io::stdout()).ok().map(|w| usize::from(w.ws_col)).filter(|&c| c > 0);
    set.or_else(term).unwrap_or(80).max(20)
}
