//! `status <OUT | COPY...>`: one line per copy — profile, product version, U2
//! update level, the last update's result and when, whether the copy is
//! current, stale (and why), drifted or waiting on conflicts, and its size.
//! Only metadata and small state files are read (the copy's record and
//! `updates/config.json`); no byte of a copy's content.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::error::refuse;
use crate::record::{self, Record, RECORD_FILE};

/// The JSON document of `status --json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StatusDoc {
    pub schema_version: crate::schema::SchemaVersion,
    pub command: String,
    /// Always false: `status` only reads.
    pub changed: bool,
    pub profiles: Vec<CopyStatus>,
    pub duration_ms: u64,
}

/// Where a copy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Made from the inputs it records, by this tool version, unchanged since.
    Current,
    /// Its inputs changed since (source home, profile definition, tool version).
    Stale,
    /// Something in the copy differs from what the tool left.
    Drifted,
    /// The last update stopped on conflicts a person must resolve.
    Conflicts,
    /// The last update failed (a copy kept for inspection).
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Current => "current",
            State::Stale => "stale",
            State::Drifted => "drifted",
            State::Conflicts => "conflicts",
            State::Failed => "failed",
        }
    }
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
    pub status: State,
    /// Why the copy is not current, one line each.
    pub reasons: Vec<String>,
    /// Files waiting for a person (status `conflicts`).
    pub conflicts: Vec<String>,
    /// Entries and apparent bytes of the copy (from metadata).
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LastUpdate {
    /// `updated`, `conflicts`, `failed`, `reverted`, `timed-out`, `interrupted`.
    pub status: String,
    /// When it finished (RFC 3339, UTC), when the record says.
    pub at: Option<String>,
    pub message: String,
}

/// Whether a copy still is what the tool left: the drift lines, or None when
/// it cannot tell. Given by the caller so that the comparison lives with the
/// copy's fingerprint.
pub type DriftCheck<'a> = &'a dyn Fn(&Path, &Record) -> Option<Vec<String>>;

/// Looks at every copy named or found under the given paths.
pub fn run(paths: &[PathBuf], profile_dir: Option<&Path>, drift: DriftCheck) -> Result<StatusDoc> {
    let started = Instant::now();
    let copies = find_copies(paths)?;
    let catalog = crate::split::load_catalog(profile_dir)?;
    let mut sources = SourceCache::default();
    let mut profiles = Vec::new();
    for (path, rec) in copies {
        profiles.push(status_of(&path, &rec, &catalog, &mut sources, drift)?);
    }
    Ok(StatusDoc {
        schema_version: Default::default(),
        command: "status".into(),
        changed: false,
        profiles,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// A copy is a directory with the tool's record at its root; an output
/// holds them at `<OUT>/<profile>/<home name>`.
fn find_copies(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Record)>> {
    let mut out = Vec::new();
    for p in paths {
        let p = crate::out::absolute(p)?;
        if let Some(rec) = read_record(&p)? {
            out.push((p, rec));
            continue;
        }
        let before = out.len();
        for profile_dir in sorted_dirs(&p) {
            for copy in sorted_dirs(&profile_dir) {
                if let Some(rec) = read_record(&copy)? {
                    out.push((copy, rec));
                }
            }
        }
        if out.len() == before {
            return refuse(
                format!("no copy made by apim-profiles in {}", p.display()),
                "give an output directory of split (<DIR>) or copies (<DIR>/<profile>/<home>)",
            );
        }
    }
    Ok(out)
}

/// Sub-directories (not links, not the tool's dot-entries), by name.
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn read_record(dir: &Path) -> Result<Option<Record>> {
    match std::fs::symlink_metadata(dir.join(RECORD_FILE)) {
        Ok(m) if m.is_file() => record::read(dir),
        _ => Ok(None),
    }
}

fn status_of(
    path: &Path,
    rec: &Record,
    catalog: &crate::profile::Catalog,
    sources: &mut SourceCache,
    drift: DriftCheck,
) -> Result<CopyStatus> {
    let last_update = rec.update.as_ref().map(last_update);
    let conflicts: Vec<String> = rec
        .update
        .as_ref()
        .and_then(|u| u.get("conflicts"))
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut reasons = Vec::new();
    let status = match last_update.as_ref().map(|u| u.status.as_str()) {
        Some("conflicts") => {
            reasons.push(format!("the update waits on {} conflict(s)", conflicts.len()));
            State::Conflicts
        }
        Some(s) if s != "updated" => {
            reasons.push(format!("the last update {s}"));
            State::Failed
        }
        _ => match drift(path, rec) {
            Some(d) if !d.is_empty() => {
                reasons = d;
                State::Drifted
            }
            _ => {
                reasons = stale_reasons(rec, catalog, sources);
                if reasons.is_empty() {
                    State::Current
                } else {
                    State::Stale
                }
            }
        },
    };
    let (entries, bytes) = size_of(path);
    Ok(CopyStatus {
        profile: rec.profile.clone(),
        path: path.display().to_string(),
        product: rec.product.clone(),
        version: rec.version.clone(),
        update_level: update_level(path),
        last_update,
        status,
        reasons,
        conflicts,
        entries,
        bytes,
    })
}

fn last_update(u: &serde_json::Value) -> LastUpdate {
    let s = |k: &str| u.get(k).and_then(|v| v.as_str()).map(str::to_string);
    LastUpdate {
        status: s("status").unwrap_or_else(|| "unknown".into()),
        at: s("finished_at"),
        message: s("message").unwrap_or_default(),
    }
}

/// What changed among the inputs the record names (not the options: they are
/// kept only as a hash of what the command line gave).
fn stale_reasons(rec: &Record, catalog: &crate::profile::Catalog, sources: &mut SourceCache) -> Vec<String> {
    let mut why = Vec::new();
    let ours = env!("CARGO_PKG_VERSION");
    if rec.tool_version != ours {
        why.push(format!("made by apim-profiles {}, this is {ours}", rec.tool_version));
    }
    match catalog.for_version(&rec.version).find(|p| p.name == rec.profile) {
        Some(p) if crate::tree::sha256_hex(p.source_text.as_bytes()) != rec.profile_sha256 => {
            why.push(format!("the {} profile definition changed", rec.profile))
        }
        Some(_) => {}
        None => why.push(format!("this build has no {} profile for {}", rec.profile, rec.version)),
    }
    if let (Some(src), Some(fp)) = (&rec.source, &rec.source_fingerprint) {
        match sources.fingerprint(src) {
            None => why.push(format!("the source home {src} is gone")),
            Some(now) if &now != fp => why.push(format!("source home changed: {src}")),
            Some(_) => {}
        }
    }
    why
}

/// Fingerprints of source homes, each taken once per run.
#[derive(Default)]
struct SourceCache(BTreeMap<String, Option<String>>);

impl SourceCache {
    fn fingerprint(&mut self, src: &str) -> Option<String> {
        self.0
            .entry(src.to_string())
            .or_insert_with(|| {
                let p = Path::new(src);
                if !p.join("updates/product.txt").is_file() {
                    return None;
                }
                crate::tree::Tree::scan(p).ok().map(|t| crate::tree::fingerprint(&t))
            })
            .clone()
    }
}

/// `update-level` of the copy's `updates/config.json` (read at most 64 KiB).
fn update_level(copy: &Path) -> Option<String> {
    let f = std::fs::File::open(copy.join("updates/config.json")).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.take(64 * 1024).read_to_string(&mut text).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("update-level").and_then(|l| l.as_str().map(str::to_string).or_else(|| Some(l.to_string())))
}

/// Entries and apparent bytes below a copy, from metadata only.
fn size_of(copy: &Path) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    for e in walkdir::WalkDir::new(copy).min_depth(1).follow_links(false).into_iter().filter_map(|e| e.ok()) {
        n += 1;
        if let Ok(m) = e.metadata() {
            if m.is_file() {
                bytes += m.size();
            }
        }
    }
    (n, bytes)
}

/// The human table: a header and one line per copy.
pub fn render(doc: &StatusDoc, paint: crate::style::Paint) -> String {
    let header = ["PROFILE", "VERSION", "LEVEL", "LAST UPDATE", "STATE", "SIZE", "PATH"];
    let rows: Vec<[String; 7]> = doc
        .profiles
        .iter()
        .map(|c| {
            let last = match &c.last_update {
                Some(u) => format!("{} {}", u.status, u.at.as_deref().map(short_time).unwrap_or_default()),
                None => "never".into(),
            };
            let state = match c.status {
                State::Stale | State::Drifted | State::Failed if !c.reasons.is_empty() => {
                    format!("{} ({})", c.status.as_str(), c.reasons.join("; "))
                }
                State::Conflicts => format!("conflicts ({})", c.conflicts.len()),
                s => s.as_str().to_string(),
            };
            [
                c.profile.clone(),
                c.version.clone(),
                c.update_level.clone().unwrap_or_else(|| "-".into()),
                last.trim_end().to_string(),
                state,
                crate::report::human_bytes(c.bytes),
                c.path.clone(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7], painted_state: &str| {
        let pad = " ".repeat(width[4].saturating_sub(cells[4].chars().count()));
        let first: Vec<String> = (0..4).map(|i| format!("{:<w$}", cells[i], w = width[i])).collect();
        format!("{}  {painted_state}{pad}  {:>w5$}  {}\n", first.join("  "), cells[5], cells[6], w5 = width[5])
    };
    let mut out = paint.paint(crate::style::BOLD, line(header, "STATE").trim_end());
    out.push('\n');
    for (r, c) in rows.iter().zip(&doc.profiles) {
        let word = c.status.as_str();
        let painted = r[4].replacen(word, &paint.status(word), 1);
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]], &painted));
    }
    out
}

/// `2026-11-25T16:02:11Z` → `2026-11-25 16:02Z`.
fn short_time(at: &str) -> String {
    match at.get(..16) {
        Some(s) if at.len() >= 20 => format!("{}Z", s.replacen('T', " ", 1)),
        _ => at.to_string(),
    }
}
