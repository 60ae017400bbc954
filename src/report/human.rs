//! The text form of a run, for people: one block per profile, then errors as
//! what failed, the cause chain and a hint.

use std::borrow::Cow;
use std::io::Write;

use crate::outcome::{refusal_of, Status};
use crate::report::style::{self, Paint};
use crate::report::{ProfileInfo, ProfileReport, Report};

/// `1.2 MB`, for people: the one size format of every command and the
/// progress bar. Decimal units (1 KB = 1000 bytes, as `df -H` and disk sizes
/// count), one decimal; docs/reference.md, "Sizes and counts", says why.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A name or message as people read it: control characters written as Rust
/// escapes (`\n`, `\u{1b}`), so that a file name can neither break a report
/// line nor drive the terminal. JSON keeps names as they are.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A dry-run in full: the diffs, the settings relative to the home's own,
/// the removed entries by step, the backups.
fn dry_run_full(r: &ProfileReport) -> String {
    let mut s = String::new();
    if let Some(d) = &r.diff {
        s.push_str(d);
    }
    if !r.settings.is_empty() {
        s.push_str("deployment.toml settings, relative to the home's own:\n");
        for l in &r.settings {
            s.push_str(&format!("  {l}\n"));
        }
    }
    if !r.removed.is_empty() {
        s.push_str(&format!(
            "removed ({} entries, {}):\n",
            r.entries_removed,
            human_bytes(r.removed.iter().map(|x| x.bytes).sum())
        ));
        let mut last_step = "";
        for x in &r.removed {
            if x.step != last_step {
                s.push_str(&format!("  [{}]\n", x.step));
                last_step = &x.step;
            }
            let slash = if x.dir { "/" } else { "" };
            let more = if x.entries > 1 { format!("  ({} entries)", x.entries) } else { String::new() };
            s.push_str(&format!("    - {}{slash}{more}\n", escape(&x.path)));
        }
    }
    for b in &r.backups {
        s.push_str(&format!("backup: {} -> {}\n", escape(&b.from), escape(&b.to)));
    }
    s
}

/// The text form of a profile's result, for people; `short`: a dry-run's summary form instead of the
/// diffs (the keys `--carry-common` would carry, for its suggestion).
pub fn print_profile(r: &ProfileReport, dry_run: bool, short: Option<&[String]>) -> String {
    let mut s = String::new();
    s.push_str(&format!("== {} ({}): {}\n", r.profile, r.status, escape(&r.path)));
    if let (true, Some(common)) = (dry_run, short) {
        s.push_str(&dry_run_summary(r, common, crate::report::wrap::terminal_width()));
    } else if dry_run {
        s.push_str(&dry_run_full(r));
    }
    for l in &r.links_rewritten {
        s.push_str(&format!("link made relative (it pointed into the home): {}\n", escape(l)));
    }
    for n in &r.notes {
        s.push_str(&format!("note: {}\n", escape(n)));
    }
    if let Some(why) = &r.reason {
        s.push_str(&format!("reason: {}\n", escape(why)));
    }
    for d in &r.drift {
        s.push_str(&format!("drift: {}\n", escape(&d.to_string())));
    }
    if let Some(more) = Some(r.drift_total.saturating_sub(r.drift.len())).filter(|m| *m > 0) {
        s.push_str(&format!("drift: and {more} more differences\n"));
    }
    for (label, v) in [("start", &r.start), ("archive", &r.archive), ("error", &r.error)] {
        if let Some(v) = v {
            s.push_str(&format!("{label}: {}\n", escape(v)));
        }
    }
    if r.status.is_verdict() {
        s.push_str(&verdict(r));
        return s;
    }
    let copied = if dry_run {
        format!("{} to copy", human_bytes(r.bytes_to_copy))
    } else if r.files_copied > 0 {
        format!("{} files copied ({}; {} cloned)", r.files_copied, human_bytes(r.bytes_copied), r.files_cloned)
    } else {
        "nothing copied".to_string()
    };
    // After the run, the copy's size as `status` and `verify` give it.
    let size = if dry_run { String::new() } else { format!(" ({})", human_bytes(r.bytes)) };
    s.push_str(&format!(
        "summary: {} entries kept{size}, {} removed, {} rewritten, {} backups, {copied}\n",
        r.entries_kept,
        r.entries_removed,
        r.rewritten.len(),
        r.backups.len()
    ));
    s
}

/// `verify`'s last lines: what reading the content found, and the verdict.
fn verdict(r: &ProfileReport) -> String {
    let mut s = String::new();
    if let Some(c) = &r.content {
        s.push_str(&format!(
            "content: {} files read ({}), {} differ, {} unreadable\n",
            c.files_checked,
            human_bytes(c.bytes_read),
            c.differs.len(),
            c.unreadable.len()
        ));
    }
    let verdict = if r.status == Status::Unverifiable {
        "no difference found, but not proven (see reason)".to_string()
    } else if r.drift.is_empty() {
        "matches its profile".to_string()
    } else {
        format!("{} differences from its profile", r.drift_total)
    };
    s.push_str(&format!("summary: {} entries ({}), {verdict}\n", r.entries_kept, human_bytes(r.bytes)));
    s
}

/// A dry-run in short (`--summary`): the files rewritten and removed, the
/// home's settings the profile replaces or drops (names only), and, when some
/// of them are what `--carry-common` keeps, the suggestion to pass it.
pub fn dry_run_summary(r: &ProfileReport, common: &[String], width: usize) -> String {
    use crate::report::wrap::wrap;
    let mut s = String::new();
    if !r.rewritten.is_empty() {
        s.push_str(&format!("rewritten ({}):\n", r.rewritten.len()));
        for f in &r.rewritten {
            s.push_str(&format!("  {}\n", escape(f)));
        }
    }
    if !r.removed.is_empty() {
        let bytes = human_bytes(r.removed.iter().map(|x| x.bytes).sum());
        s.push_str(&format!("removed ({} entries, {bytes}):\n", r.entries_removed));
        for x in &r.removed {
            let (slash, more) = if x.dir { ("/", format!("  ({} entries)", x.entries)) } else { ("", String::new()) };
            s.push_str(&format!("  {}{slash}{more}\n", escape(&x.path)));
        }
    }
    // `~ key: old -> new` and `- key`: the home's value is not what the copy gets.
    let key_of =
        |l: &str, mark: &str| l.strip_prefix(mark).map(|k| k.split([':', ' ']).next().unwrap_or(k).to_string());
    let replaced: Vec<String> = r.settings.iter().filter_map(|l| key_of(l, "~ ")).collect();
    let dropped: Vec<String> = r.settings.iter().filter_map(|l| key_of(l, "- ")).collect();
    // A profile with a template of its own moves the home's file aside; one
    // without (a pack as shipped, --skip-config-optimization) changes only
    // what the run's settings say, which --carry-common would not keep.
    let templated = r.backups.iter().any(|b| b.from.ends_with("deployment.toml"));
    let by = if templated { "replaced by the profile's" } else { "replaced by this run's settings" };
    for (what, keys) in [(by, &replaced), ("dropped", &dropped)] {
        if !keys.is_empty() {
            s.push_str(&format!("settings of the home {what} ({}):\n", keys.len()));
            s.push_str(&wrap("  ", &escape(&keys.join(", ")), width));
        }
    }
    let under =
        |k: &str, root: &str| k == root || k.starts_with(&format!("{root}.")) || k.starts_with(&format!("{root}["));
    let lost: Vec<&str> = common
        .iter()
        .filter(|_| templated)
        .filter(|root| replaced.iter().chain(&dropped).any(|k| under(k, root)))
        .map(String::as_str)
        .collect();
    if !lost.is_empty() {
        let text = format!(
            "the home's {} would not reach the copy: add --carry-common to keep {} (or --carry KEY,... for others)",
            lost.join(", "),
            if lost.len() == 1 { "it" } else { "them" }
        );
        s.push_str(&wrap("hint: ", &text, width));
    }
    s
}

/// The report on stdout; with `quiet`, only the copies that need attention
/// (failed, conflicts, drifted, stale); with `short`, a dry-run's summary form
/// (the keys `--carry-common` carries).
pub fn print_report(r: &Report, quiet: bool, short: Option<&[String]>) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let paint = Paint::stdout();
    let attention =
        |s: crate::outcome::Status| s == crate::outcome::Status::Stale || s.exit() != crate::outcome::Exit::Ok;
    for p in r.profiles.iter().filter(|p| !quiet || attention(p.status)) {
        write!(stdout, "{}", paint.report(&print_profile(p, r.dry_run, short)))?;
    }
    if r.dry_run && !quiet {
        writeln!(stdout, "dry run: nothing was written")?;
    }
    stdout.flush()
}

/// Text made elsewhere (the status table, paths written) on stdout.
pub fn print_text(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{text}")?;
    stdout.flush()
}

pub fn print_profiles(list: &[ProfileInfo]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for p in list {
        let d = if p.default { " (default)" } else { "" };
        let pack = format!("{} {}", crate::model::facts::label(&p.product), p.version);
        writeln!(stdout, "{:<28} {pack:<24} {}{d}", p.name, p.summary)?;
    }
    stdout.flush()
}

/// An error as the lines it is printed in.
pub struct ErrorLines {
    /// One line of what is wrong.
    pub what: String,
    /// Where it was found (`while ...`) or what caused it.
    pub causes: Vec<String>,
    pub hint: Option<String>,
}

impl ErrorLines {
    /// A refusal is the one line of what is wrong, and the contexts around it
    /// say where it was found; any other error is its chain.
    pub fn of(err: &anyhow::Error) -> ErrorLines {
        match refusal_of(err) {
            Some(r) => ErrorLines {
                what: r.what.clone(),
                causes: err
                    .chain()
                    .filter(|c| c.downcast_ref::<crate::outcome::Refusal>().is_none())
                    .map(|c| format!("while {c}"))
                    .collect(),
                hint: Some(r.hint.clone()),
            },
            None => ErrorLines {
                what: err.to_string(),
                causes: err.chain().skip(1).map(|c| c.to_string()).collect(),
                hint: None,
            },
        }
    }
}

/// An error on stderr. Nothing is left to tell about a stderr that cannot be
/// written, so its errors are ignored (never a panic).
pub fn print_error(e: &ErrorLines) {
    let mut err = std::io::stderr().lock();
    let paint = Paint::stderr();
    let _ = writeln!(err, "{} {}", paint.paint(style::BOLD_RED, "error:"), escape(&e.what));
    for c in &e.causes {
        if c.starts_with("while ") {
            let _ = writeln!(err, "  {}", escape(c));
        } else {
            let _ = writeln!(err, "  caused by: {}", escape(c));
        }
    }
    if let Some(h) = &e.hint {
        let _ = writeln!(err, "{} {}", paint.paint(style::BOLD_CYAN, "hint:"), escape(h));
    }
}
