//! The JSON form of a run, for playbooks: one document on stdout whatever the
//! outcome (the schema is in the README).

use std::io::Write;

use crate::outcome::Exit;
use crate::report::human::ErrorLines;
use crate::report::{ProfileInfo, Report};

pub fn print_report(r: &Report) -> std::io::Result<()> {
    print(&serde_json::to_string_pretty(r).unwrap_or_default())
}

pub fn print_profiles(list: &[ProfileInfo]) -> std::io::Result<()> {
    print(&serde_json::json!({ "changed": false, "profiles": list }).to_string())
}

/// One document on stdout, flushed: a report that did not arrive is an error.
fn print(doc: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{doc}")?;
    stdout.flush()
}

pub fn print_error(e: &ErrorLines, exit: Exit) -> std::io::Result<()> {
    let doc = serde_json::json!({
        "changed": false,
        "error": e.what,
        "causes": e.causes,
        "hint": e.hint,
        "exit_code": exit.code(),
    });
    print(&serde_json::to_string_pretty(&doc).unwrap_or_default())
}
