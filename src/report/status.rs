//! The document of `status`: one line per copy, as JSON for playbooks and
//! as a table for people.

use serde::Serialize;

use crate::model::fingerprint::Difference;
use crate::model::update_result::UpdateStatus;
use crate::outcome::Status;
use crate::report::human::{escape, human_bytes};
use crate::report::schema::SchemaVersion;
use crate::report::style::{Paint, BOLD};
use crate::report::wrap::wrap;

/// The JSON document of `status --json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StatusDoc {
    pub schema_version: SchemaVersion,
    pub command: crate::report::CommandName,
    /// Always false: `status` only reads.
    pub changed: bool,
    pub profiles: Vec<CopyStatus>,
    /// What concerns the copies together (copies of one product at different
    /// update levels), each with what to do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub duration_ms: u64,
}

/// One copy's line.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CopyStatus {
    pub profile: String,
    pub path: String,
    pub product: String,
    pub version: String,
    /// The U2 update level from the copy's `updates/config.json`.
    pub update_level: Option<String>,
    /// The last update run by the tool in this copy; null when none ran.
    pub last_update: Option<LastUpdate>,
    /// `current`, `stale`, `drifted`, `conflicts` or `failed`.
    pub status: Status,
    /// Why the copy is not current, one line each.
    pub reasons: Vec<String>,
    /// Files waiting for a person (the last update stopped on conflicts).
    pub conflicts: Vec<String>,
    /// What changed since the tool left the copy (status `drifted`), in path
    /// order: the first 20; `drift_total` counts them all.
    pub drift: Vec<Difference>,
    pub drift_total: usize,
    /// Entries and apparent bytes of the copy (from metadata), counted as
    /// `split` and `verify` count them: the tool's own files not counted.
    pub entries: u64,
    pub bytes: u64,
    /// How to start the copy, from its home (see the profile definitions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LastUpdate {
    /// How it ended (an earlier version's status that does not read is
    /// `failed`).
    pub status: UpdateStatus,
    /// When it finished (RFC 3339, UTC), when the record says.
    pub at: Option<String>,
    pub message: String,
}

/// The human table: a header and one line per copy, its STATE one word and
/// the number of its note; then the notes (why a copy is not current, which
/// files wait on a person), each wrapped to `width` columns.
pub fn render(doc: &StatusDoc, paint: Paint, width: usize) -> String {
    let header = ["PROFILE", "VERSION", "LEVEL", "LAST UPDATE", "STATE", "SIZE", "PATH"];
    let mut notes: Vec<(String, Option<String>)> = Vec::new();
    let rows: Vec<[String; 7]> = doc
        .profiles
        .iter()
        .map(|c| {
            let last = match &c.last_update {
                Some(u) => format!("{} {}", u.status, u.at.as_deref().map(short_time).unwrap_or_default()),
                None => "never".into(),
            };
            let mut state = c.status.to_string();
            if let Some((note, command)) = note_of(c) {
                notes.push((format!("{}: {note}", c.profile), command));
                state = format!("{state} [{}]", notes.len());
            }
            [
                c.profile.clone(),
                c.version.clone(),
                c.update_level.clone().unwrap_or_else(|| "-".into()),
                last.trim_end().to_string(),
                state,
                human_bytes(c.bytes),
                c.path.clone(),
            ]
            // A file name in a path can neither break the table nor drive the terminal.
            .map(|cell| escape(&cell).into_owned())
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7], painted_state: &str| {
        let pad = " ".repeat(widths[4].saturating_sub(cells[4].chars().count()));
        let first: Vec<String> = (0..4).map(|i| format!("{:<w$}", cells[i], w = widths[i])).collect();
        format!("{}  {painted_state}{pad}  {:>w5$}  {}\n", first.join("  "), cells[5], cells[6], w5 = widths[5])
    };
    let mut out = paint.paint(BOLD, line(header, "STATE").trim_end());
    out.push('\n');
    for (r, c) in rows.iter().zip(&doc.profiles) {
        let word = c.status.to_string();
        let painted = r[4].replacen(&word, &paint.status(&word), 1);
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]], &painted));
    }
    if !notes.is_empty() || !doc.warnings.is_empty() {
        out.push('\n');
    }
    for (i, (note, command)) in notes.iter().enumerate() {
        out.push_str(&wrap(&format!("[{}] ", i + 1), &escape(note), width));
        // A command is never broken across lines: it is copied as it stands.
        if let Some(command) = command {
            out.push_str(&format!("    {}\n", escape(command)));
        }
    }
    for w in &doc.warnings {
        out.push_str(&format!("warning: {}\n", escape(w)));
    }
    out
}

/// What a copy's note says: why it is not current, and for conflicts the
/// files and the command that goes on. None for a current copy.
fn note_of(c: &CopyStatus) -> Option<(String, Option<String>)> {
    match c.status {
        Status::Conflicts => {
            let files =
                if c.conflicts.is_empty() { "(the tool listed none)".to_string() } else { c.conflicts.join(", ") };
            let text = format!(
                "the last update stopped on conflicts in {files}; resolve each, save it beside as <file>.final, then run:"
            );
            Some((text, Some(format!("apim-profiles update --continue {}", c.path))))
        }
        _ if c.reasons.is_empty() => None,
        _ => Some((c.reasons.join("; "), None)),
    }
}

/// A warning when copies of one product and version are at different update
/// levels: which copies are at which level, and the command that brings them
/// to the highest.
pub fn mixed_levels(copies: &[CopyStatus]) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut out = Vec::new();
    let mut packs: BTreeMap<(&str, &str), BTreeMap<&str, Vec<&CopyStatus>>> = BTreeMap::new();
    for c in copies {
        let level = c.update_level.as_deref().unwrap_or("unknown");
        packs.entry((&c.product, &c.version)).or_default().entry(level).or_default().push(c);
    }
    for ((product, version), levels) in packs.iter().filter(|(_, l)| l.len() > 1) {
        let shown: Vec<String> = levels
            .iter()
            .map(|(l, cs)| format!("{l} ({})", cs.iter().map(|c| c.profile.as_str()).collect::<Vec<_>>().join(", ")))
            .collect();
        let top = levels.keys().filter(|l| **l != "unknown").max_by(|a, b| level_order(a, b)).copied().unwrap_or("");
        let behind: Vec<&str> =
            levels.iter().filter(|(l, _)| **l != top).flat_map(|(_, cs)| cs.iter().map(|c| c.path.as_str())).collect();
        out.push(format!(
            "{product} {version} copies are at different update levels: {}; bring them together with: apim-profiles update --update-level {top} {}",
            shown.join(", "),
            behind.join(" ")
        ));
    }
    out
}

/// Levels compared number by number (`4.2.0.10` after `4.2.0.9`).
fn level_order(a: &str, b: &str) -> std::cmp::Ordering {
    let n = |s: &str| s.split('.').map(|p| p.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    n(a).cmp(&n(b))
}

/// `2026-11-25T16:02:11Z` → `2026-11-25 16:02Z`.
fn short_time(at: &str) -> String {
    match at.get(..16) {
        Some(s) if at.len() >= 20 => format!("{}Z", s.replacen('T', " ", 1)),
        _ => at.to_string(),
    }
}
