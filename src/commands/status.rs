//! `status <OUT | COPY...>`: where each copy stands — profile, product
//! version, U2 update level, the last update's result and when, whether the
//! copy is current, stale (and why), drifted or waiting on conflicts, and its
//! size. Only metadata and small state files are read (the copy's record and
//! `updates/config.json`); no byte of a copy's content.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use crate::engine::output;
use crate::model::profile::{load_catalog, Catalog};
use crate::model::record::{self, Record, RECORD_FILE};
use crate::model::tree::{self, Tree};
use crate::outcome::{refuse, Status};
use crate::report::status::{CopyStatus, LastUpdate, StatusDoc};
use crate::report::RunOutcome;

/// Looks at every copy named or found under the given paths.
pub fn run(paths: &[PathBuf], profile_dir: Option<&Path>) -> Result<RunOutcome> {
    let started = Instant::now();
    let copies = find_copies(paths)?;
    let catalog = load_catalog(profile_dir)?;
    let mut sources = SourceCache::default();
    let mut profiles = Vec::new();
    for (path, rec) in copies {
        profiles.push(status_of(&path, &rec, &catalog, &mut sources)?);
    }
    Ok(RunOutcome::status(StatusDoc {
        schema_version: Default::default(),
        command: "status".into(),
        changed: false,
        profiles,
        duration_ms: started.elapsed().as_millis() as u64,
    }))
}

/// A copy is a directory with the tool's record at its root; an output
/// holds them at `<OUT>/<profile>/<home name>`.
fn find_copies(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Record)>> {
    let mut out = Vec::new();
    for p in paths {
        let p = output::absolute(p)?;
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

fn status_of(path: &Path, rec: &Record, catalog: &Catalog, sources: &mut SourceCache) -> Result<CopyStatus> {
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
            Status::Conflicts
        }
        Some(s) if s != "updated" => {
            reasons.push(format!("the last update {s}"));
            Status::Failed
        }
        _ => {
            reasons = stale_reasons(rec, catalog, sources);
            if reasons.is_empty() {
                Status::Current
            } else {
                Status::Stale
            }
        }
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
fn stale_reasons(rec: &Record, catalog: &Catalog, sources: &mut SourceCache) -> Vec<String> {
    let mut why = Vec::new();
    let ours = env!("CARGO_PKG_VERSION");
    if rec.tool_version != ours {
        why.push(format!("made by apim-profiles {}, this is {ours}", rec.tool_version));
    }
    match catalog.for_version(&rec.version).find(|p| p.name == rec.profile) {
        Some(p) if tree::sha256_hex(p.source_text.as_bytes()) != rec.profile_sha256 => {
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
                Tree::scan(p).ok().map(|t| tree::fingerprint(&t))
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
