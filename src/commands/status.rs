//! `status <OUT | COPY...>`: where each copy stands — profile, product
//! version, U2 update level, the last update's result and when, whether the
//! copy is current, stale (and why), failed, drifted (and what changed) or
//! waiting on conflicts, and its size. Only metadata and small state files
//! are read (the copy's record and `updates/config.json`): the copy and its
//! source home are compared with the record's fingerprints by `lstat` alone.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use crate::engine::output;
use crate::model::copy::Copy;
use crate::model::fingerprint::Fingerprint;
use crate::model::profile::{load_catalog, Catalog};
use crate::model::record::{Record, RECORD_FILE};
use crate::model::standing::{self, CopyState, DRIFT_SHOWN};
use crate::model::tree::{self, Tree};
use crate::model::update_result::RecordedUpdate;
use crate::outcome::{refuse, Status};
use crate::report::status::{CopyStatus, LastUpdate, StatusDoc};
use crate::report::{CommandName, RunOutcome};

/// Looks at every copy named or found under the given paths.
pub fn run(paths: &[PathBuf], profile_dir: Option<&Path>) -> Result<RunOutcome> {
    let started = Instant::now();
    let copies = find_copies(paths)?;
    let catalog = load_catalog(profile_dir)?;
    let mut sources = SourceCache::default();
    let mut profiles = Vec::new();
    for found in copies {
        profiles.push(line_of(found, &catalog, &mut sources)?);
    }
    Ok(RunOutcome::status(StatusDoc {
        schema_version: Default::default(),
        command: CommandName::Status,
        changed: false,
        warnings: crate::report::status::mixed_levels(&profiles),
        profiles,
        duration_ms: started.elapsed().as_millis() as u64,
    }))
}

/// A copy is a directory with the tool's record at its root; an output
/// holds them at `<OUT>/<profile>/<home name>`.
fn find_copies(paths: &[PathBuf]) -> Result<Vec<Copy<()>>> {
    let mut out = Vec::new();
    for p in paths {
        let p = output::absolute(p)?;
        if std::fs::symlink_metadata(&p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            return refuse(
                format!("{} does not exist", p.display()),
                "give an output directory of split (<DIR>) or copies (<DIR>/<profile>/<home>)",
            );
        }
        if let Some(rec) = read_record(&p, None)? {
            out.push(Copy::found(p, Some(rec)));
            continue;
        }
        let before = out.len();
        for profile_dir in sorted_dirs(&p) {
            let layout = profile_dir.file_name().map(|n| n.to_string_lossy().into_owned());
            for copy in sorted_dirs(&profile_dir) {
                if let Some(rec) = read_record(&copy, layout.as_deref())? {
                    out.push(Copy::found(copy, Some(rec)));
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

/// The record of a copy, checked as `split` checks it (a corrupt record is
/// refused, never used); None where there is no record at all.
fn read_record(dir: &Path, layout: Option<&str>) -> Result<Option<Record>> {
    match std::fs::symlink_metadata(dir.join(RECORD_FILE)) {
        Ok(_) => standing::read_checked(dir, layout).map(Some),
        Err(_) => Ok(None),
    }
}

/// A copy's line: judged when its output's key proves its record, and
/// [`unsealed`] otherwise.
fn line_of(found: Copy<()>, catalog: &Catalog, sources: &mut SourceCache) -> Result<CopyStatus> {
    // `find_copies` keeps a copy with its record (read here otherwise, and
    // refused when there is none).
    let rec = match found.record {
        Some(r) => r,
        None => standing::read_checked(&found.path, None)?,
    };
    match crate::model::record::sealed_by_output(&found.path, &rec) {
        Ok(_) => status_of(Copy::found(found.path, Some(rec)), catalog, sources),
        Err(u) => Ok(unsealed(&found.path, &rec, catalog, &u)),
    }
}

/// The line of a copy whose record its output's key does not prove: what
/// the record says is not believed (no level, no last update, no standing),
/// and the copy is never current.
fn unsealed(path: &Path, rec: &Record, catalog: &Catalog, u: &crate::model::seal::Unsealed) -> CopyStatus {
    line(path, rec, catalog, Status::Unverifiable, vec![u.reason()])
}

/// A copy's line with what its record and place say, before its standing
/// adds to it.
fn line(path: &Path, rec: &Record, catalog: &Catalog, status: Status, reasons: Vec<String>) -> CopyStatus {
    let (entries, bytes) = size_of(path);
    CopyStatus {
        profile: rec.profile.clone(),
        path: path.display().to_string(),
        product: rec.product.clone(),
        version: rec.version.clone(),
        update_level: update_level(path),
        last_update: None,
        status,
        reasons,
        conflicts: Vec::new(),
        drift_total: 0,
        drift: Vec::new(),
        entries,
        bytes,
        start: catalog
            .select(&rec.product, &rec.version, Some(std::slice::from_ref(&rec.profile)))
            .ok()
            .and_then(|p| p.first().and_then(|p| p.start_command())),
    }
}

/// A copy's line. Where it stands is decided by [`standing::judge`], the
/// same function a `split` re-run asks, so the two never disagree about a
/// copy; only the options of the command line (kept as a hash) are not
/// seen here.
fn status_of(found: Copy<()>, catalog: &Catalog, sources: &mut SourceCache) -> Result<CopyStatus> {
    // `find_copies` keeps a copy with its record (read here otherwise, and
    // refused when there is none).
    let rec = match found.record.clone() {
        Some(r) => r,
        None => standing::read_checked(&found.path, None)?,
    };
    let (wanted, unseen) = inputs_now(&rec, catalog, sources);
    let state = standing::judge(&found.path, &rec, &wanted, &unseen)?;
    let copy = found.judged(state);
    let status = match &copy.standing {
        // `judge` never answers Absent: the copy's record is there.
        CopyState::Current | CopyState::Absent => Status::Current,
        CopyState::Stale { .. } => Status::Stale,
        CopyState::Failed { .. } => Status::Failed,
        CopyState::Drifted { .. } => Status::Drifted,
        CopyState::Conflicts { .. } => Status::Conflicts,
    };
    let mut l = line(&copy.path, &rec, catalog, status, copy.standing.why().into_iter().collect());
    l.update_level = recorded_level(&rec).or(l.update_level);
    l.last_update = rec.update.as_ref().map(last_update);
    l.conflicts = standing::pending_conflicts(&rec).unwrap_or_default();
    if let CopyState::Drifted { differences } = &copy.standing {
        l.drift_total = differences.len();
        l.drift = differences.iter().take(DRIFT_SHOWN).cloned().collect();
    }
    Ok(l)
}

fn last_update(u: &RecordedUpdate) -> LastUpdate {
    LastUpdate { status: u.status(), at: u.finished_at(), message: u.message() }
}

/// The record a `split` run would write for this copy now, as far as it can
/// be known without its command line: this tool's version, the profile
/// definition this build has, the source home as it is now; the options are
/// taken as they were. Plus what changed that no record can hold (a profile
/// this build lacks, a source home that is gone).
fn inputs_now(rec: &Record, catalog: &Catalog, sources: &mut SourceCache) -> (Record, Vec<String>) {
    let mut wanted = rec.clone();
    let mut unseen = Vec::new();
    wanted.tool_version = env!("CARGO_PKG_VERSION").into();
    match catalog.for_version(&rec.version).find(|p| p.name == rec.profile) {
        Some(p) => wanted.profile_sha256 = tree::sha256_hex(p.source_text.as_bytes()),
        None => unseen.push(format!("this build has no {} profile for {}", rec.profile, rec.version)),
    }
    if let (Some(src), Some(_)) = (&rec.source, &rec.source_fingerprint) {
        match sources.scan(src) {
            Ok((fingerprint, entries)) => {
                wanted.source_fingerprint = Some(fingerprint.clone());
                wanted.source_entries = Some(entries.clone());
            }
            Err(why) => unseen.push(why.clone()),
        }
    }
    (wanted, unseen)
}

/// Each source home, scanned (metadata only) once per run: its fingerprint
/// and entries, or why it cannot be.
#[derive(Default)]
struct SourceCache(BTreeMap<String, std::result::Result<(String, Arc<Fingerprint>), String>>);

impl SourceCache {
    fn scan(&mut self, src: &str) -> &std::result::Result<(String, Arc<Fingerprint>), String> {
        self.0.entry(src.to_string()).or_insert_with(|| {
            let p = Path::new(src);
            if !p.join("updates/product.txt").is_file() {
                return Err(format!("the source home {src} is gone"));
            }
            match Tree::scan(p) {
                Ok(t) => Ok((tree::metadata_digest(&t), Arc::new(Fingerprint::of_tree(&t)))),
                Err(e) => Err(format!("the source home {src} cannot be read ({e})")),
            }
        })
    }
}

/// `update-level` of the copy's `updates/config.json` (read at most 64 KiB;
/// opened without following a link and without waiting on a fifo, and read
/// only when it is a regular file).
/// The level the copy's last update reached, as its record keeps it.
fn recorded_level(rec: &Record) -> Option<String> {
    rec.update.as_ref()?.level()
}

pub fn update_level(copy: &Path) -> Option<String> {
    let f = crate::sys::open_read_nofollow(&copy.join("updates/config.json")).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.take(64 * 1024).read_to_string(&mut text).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("update-level").and_then(|l| l.as_str().map(str::to_string).or_else(|| Some(l.to_string())))
}

/// Entries and apparent bytes below a copy, from metadata only, counted as
/// `split` and `verify` count them ([`Fingerprint::size`]): the tool's own
/// files at the root are not the copy's. Zero when it cannot be walked.
fn size_of(copy: &Path) -> (u64, u64) {
    Fingerprint::of_dir(copy).map_or((0, 0), |f| {
        let (n, bytes) = f.size();
        (n as u64, bytes)
    })
}
