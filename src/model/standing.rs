//! Where a copy that is already there stands, answered from what is on disk
//! and in its record, never from the record alone: `split` re-runs, `update`
//! and `verify` ask [`examine`] before they touch a copy.
//!
//! A record is used only when it reads as one the tool wrote: valid JSON,
//! every path inside the copy, and its profile the one of the
//! `<DIR>/<profile>/` it sits in; anything else is a corrupt record: refused,
//! never used. It is trusted only when its seal holds under its output's key
//! (`model::seal`): a copy whose record is not sealed by this output is
//! stale to `split` and never current, verified or updated.

use std::io::Read;
use std::path::Path;

use anyhow::Result;

use crate::model::content;
use crate::model::fingerprint::{self, Difference, Fingerprint};
use crate::model::profile::{Catalog, Step};
use crate::model::record::{Record, RECORD_FILE};
use crate::model::update_result::UpdateStatus;
use crate::outcome::Refusal;

/// Why a copy whose record keeps no change times is never current: a file
/// rewritten with its size and modification time put back would pass.
pub const NO_CHANGE_TIMES: &str = "its record was made without change times (by an earlier apim-profiles): \
     a file rewritten with its size and modification time put back would not show";

/// How many differences a report lists before it only counts.
pub const DRIFT_SHOWN: usize = 20;
/// How many changed source paths a stale refusal names.
pub const STALE_SHOWN: usize = 10;
/// How many differences a one-line reason names.
pub const SUMMARY_SHOWN: usize = 3;

/// What an existing copy is, compared with what this run would make.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyState {
    /// Nothing at the copy's place.
    Absent,
    /// Made from the same inputs, last update finished, exactly as the tool left it.
    Current,
    /// The last update stopped on conflicts and was not continued.
    Conflicts { files: Vec<String> },
    /// Made from the same inputs, but its last update did not finish
    /// (failed, reverted, timed out, interrupted): how it ended.
    Failed { how: String },
    /// Made from the same inputs but changed since the tool left it.
    Drifted { differences: Vec<Difference> },
    /// Made from other inputs: why, in words.
    Stale { reason: String },
}

impl CopyState {
    /// Why a copy that is there is not current, in one line without the
    /// state's own name; None for a current or absent copy. `split`'s
    /// report, its refusal and `status` all say it in these words.
    pub fn why(&self) -> Option<String> {
        match self {
            CopyState::Absent | CopyState::Current => None,
            CopyState::Stale { reason } => Some(reason.clone()),
            CopyState::Failed { how } => {
                Some(format!("its last update did not finish ({how}): run apim-profiles update on it again"))
            }
            CopyState::Drifted { differences } => {
                let n = differences.len();
                Some(format!(
                    "{n} change{} since apim-profiles left it: {}",
                    if n == 1 { "" } else { "s" },
                    fingerprint::summarize(differences, SUMMARY_SHOWN).join("; ")
                ))
            }
            CopyState::Conflicts { files } => Some(format!(
                "the last update stopped on conflicts and was not continued: {}",
                if files.is_empty() { "(the tool listed none)".to_string() } else { files.join(", ") }
            )),
        }
    }
}

/// What [`examine`] found of a copy (`model::copy::Copy::examined`).
pub struct Examined {
    pub standing: CopyState,
    /// The copy's record, when it has one its output's key proves.
    pub record: Option<Record>,
    /// Its entries and bytes, counted as a record read in one pass went by
    /// (such a record comes back without its listings).
    pub size: Option<(usize, u64)>,
}

/// The copy at `copy`, expected to be `profile`'s copy, against the record
/// this run would write (`wanted`); with the copy's own record when it has one.
pub fn examine(copy: &Path, profile: &str, wanted: &Record) -> Result<Examined> {
    let found = |standing, record| Examined { standing, record, size: None };
    let Ok(md) = std::fs::symlink_metadata(copy) else {
        return Ok(found(CopyState::Absent, None));
    };
    if !md.is_dir() {
        return Err(Refusal::new(
            format!("{} is there but is not a directory apim-profiles made", copy.display()),
            "move it away or choose another --out; apim-profiles never replaces what it did not make",
        )
        .into());
    }
    if let Some(c) = examine_streaming(copy, profile, wanted) {
        return Ok(c);
    }
    let have = read_checked(copy, Some(profile))?;
    // A record the output's key does not prove says nothing of the copy.
    if let Err(u) = crate::model::record::sealed_by_output(copy, &have) {
        return Ok(found(CopyState::Stale { reason: u.line() }, None));
    }
    let state = judge(copy, &have, wanted, &[])?;
    Ok(found(state, Some(have)))
}

/// [`examine`] with the record read in one pass and the copy walked against
/// its fingerprint's lines as they are read (`model::record_stream`): nothing
/// is held whole. The record comes back without its listings
/// (`source_entries`, `copy_fingerprint`, `content_sha256`); read it with
/// [`read_checked`] where they are needed. None where the answer needs more
/// than this pass gives (a record this reader does not take, a stale copy,
/// whose reason names the source's changes, a walk that stopped): the
/// caller then reads and judges as before, which refuses a corrupt record
/// and words every answer alike.
fn examine_streaming(copy: &Path, profile: &str, wanted: &Record) -> Option<Examined> {
    let f = crate::sys::open_read_nofollow(&copy.join(RECORD_FILE)).ok()?;
    let md = f.metadata().ok()?;
    if !md.is_file() || md.len() > crate::safe_fs::OWN_LIMIT {
        return None;
    }
    // Only a record the output's key proves is read here.
    let key = crate::model::seal::key_of_copy(copy, profile).ok()?;
    let mut cmp = fingerprint::Comparer::new(fingerprint::walk_sorted(copy));
    let read = crate::model::record_stream::read(f.take(crate::safe_fs::OWN_LIMIT), &key, |path, st| {
        cmp.recorded(path, st).is_ok()
    })?;
    let have = check_light(copy, read.record, Some(profile)).ok()?;
    if stale_reason(&have, wanted).is_some() {
        return None;
    }
    let state = if let Some(files) = pending_conflicts(&have) {
        CopyState::Conflicts { files }
    } else if let Some(how) = unfinished_update(&have) {
        CopyState::Failed { how }
    } else if !read.holds[1] {
        return None;
    } else if !read.change_times {
        CopyState::Stale { reason: NO_CHANGE_TIMES.into() }
    } else {
        let differences = cmp.finish().ok()?;
        if differences.is_empty() {
            CopyState::Current
        } else {
            CopyState::Drifted { differences }
        }
    };
    Some(Examined { standing: state, record: Some(have), size: Some(read.size) })
}

/// The one place that decides where a copy stands, for `split` re-runs and
/// `status` alike. `have` is the copy's record, `wanted` the record a run
/// would write now, `unseen` further reasons the inputs changed that a record
/// comparison cannot show (`status`: a source home that is gone).
///
/// Precedence, first that holds: **stale** (made from other inputs: the copy
/// has to be rebuilt, whatever else is true of it) > **conflicts** (an update
/// waits on a person) > **failed** (the last update did not finish) >
/// **stale** (a record without a copy fingerprint) > **drifted** (changed
/// since the tool left it) > **current**.
pub fn judge(copy: &Path, have: &Record, wanted: &Record, unseen: &[String]) -> Result<CopyState> {
    let mut why = unseen.to_vec();
    why.extend(stale_reason(have, wanted));
    if why.is_empty() {
        return standing(copy, have);
    }
    // A rebuild (`--force`) would discard what someone changed in the copy:
    // say so in the same breath.
    if let Some(recorded) = &have.copy_fingerprint {
        let edits = fingerprint::compare_dir(copy, recorded)?;
        if !edits.is_empty() {
            let n = edits.len();
            why.push(format!(
                "and the copy itself has {n} change{} since apim-profiles left it, which a rebuild would discard: {}",
                if n == 1 { "" } else { "s" },
                fingerprint::summarize(&edits, SUMMARY_SHOWN).join("; ")
            ));
        }
    }
    Ok(CopyState::Stale { reason: why.join("; ") })
}

/// Refuses a HOME that is itself an optimized copy: it has this tool's
/// record, or its `server_role` names a profile while the backup the profile
/// makes of `deployment.toml` is there.
pub fn check_not_a_copy(home: &Path, catalog: &Catalog, version: &str) -> Result<()> {
    let hint = "split the original, unoptimized pack: a copy optimized for one profile lacks what the others need";
    if std::fs::symlink_metadata(home.join(RECORD_FILE)).is_ok() {
        // Only a regular file of bounded size is read (a FIFO planted there
        // must not hang the refusal).
        let text = crate::safe_fs::read_own(&home.join(RECORD_FILE)).ok().flatten().unwrap_or_default();
        let rec: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
        let profile = rec.get("profile").and_then(|p| p.as_str()).unwrap_or("a profile");
        let from =
            rec.get("source").and_then(|p| p.as_str()).map(|s| format!(" (it was made from {s})")).unwrap_or_default();
        return Err(Refusal::new(
            format!("{} is itself a copy optimized by apim-profiles for {profile}", home.display()),
            format!("{hint}{from}"),
        )
        .into());
    }
    for p in catalog.for_version(version) {
        for step in &p.steps {
            let Step::ReplaceDeploymentToml { target, backup, .. } = step else { continue };
            if std::fs::symlink_metadata(home.join(backup)).is_err() {
                continue;
            }
            if let Some(role) = server_role(&home.join(target)).filter(|r| r != "default") {
                return Err(Refusal::new(
                    format!(
                        "{} is already optimized: {target} sets server_role = \"{role}\" and {backup} is there",
                        home.display()
                    ),
                    hint,
                )
                .into());
            }
        }
    }
    Ok(())
}

/// `[server] server_role` of a deployment.toml, when it can be read.
fn server_role(toml: &Path) -> Option<String> {
    let md = std::fs::symlink_metadata(toml).ok()?;
    if !md.is_file() || md.len() > 4 << 20 {
        return None;
    }
    let doc: toml_edit::DocumentMut = std::fs::read_to_string(toml).ok()?.parse().ok()?;
    doc.get("server")?.get("server_role")?.as_str().map(str::to_string)
}

/// Conflicts, failed, drifted or current: what a copy made from the right
/// inputs is now (see [`judge`] for the order).
pub fn standing(copy: &Path, have: &Record) -> Result<CopyState> {
    if let Some(files) = pending_conflicts(have) {
        return Ok(CopyState::Conflicts { files });
    }
    if let Some(how) = unfinished_update(have) {
        return Ok(CopyState::Failed { how });
    }
    let Some(recorded) = &have.copy_fingerprint else {
        return Ok(CopyState::Stale {
            reason: "its record has no fingerprint of the copy (made by an earlier apim-profiles)".into(),
        });
    };
    if !recorded.has_change_times() {
        return Ok(CopyState::Stale { reason: NO_CHANGE_TIMES.into() });
    }
    let differences = fingerprint::compare_dir(copy, recorded)?;
    if differences.is_empty() {
        Ok(CopyState::Current)
    } else {
        Ok(CopyState::Drifted { differences })
    }
}

/// How the last update of a copy ended when it did not finish (failed,
/// reverted, timed out, interrupted): such a copy is never current.
pub fn unfinished_update(rec: &Record) -> Option<String> {
    let status = rec.update.as_ref()?.status();
    (!matches!(status, UpdateStatus::Updated | UpdateStatus::Conflicts)).then(|| status.to_string())
}

/// The files of an update that stopped on conflicts and was not continued.
pub fn pending_conflicts(rec: &Record) -> Option<Vec<String>> {
    let u = rec.update.as_ref()?;
    (u.status() == UpdateStatus::Conflicts).then(|| u.conflicts())
}

/// Every input that differs, in words; None when the copy was made from these inputs.
pub fn stale_reason(have: &Record, wanted: &Record) -> Option<String> {
    let mut why = Vec::new();
    if have.tool_version != wanted.tool_version {
        why.push(format!("it was made by apim-profiles {} (this is {})", have.tool_version, wanted.tool_version));
    }
    if have.profile_sha256 != wanted.profile_sha256 {
        why.push(format!("the profile definition of {} changed since it was made", wanted.profile));
    }
    if have.skip_config_optimization != wanted.skip_config_optimization {
        let with = if have.skip_config_optimization { "with" } else { "without" };
        why.push(format!("it was made {with} --skip-config-optimization"));
    } else if have.options_sha256 != wanted.options_sha256 {
        why.push("it was made with other options (the deployment.toml settings of --carry, --carry-common, --set, --overlay)".into());
    }
    if have.source_fingerprint != wanted.source_fingerprint {
        why.push(source_change(have, wanted));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn source_change(have: &Record, wanted: &Record) -> String {
    match (&have.source_entries, &wanted.source_entries) {
        (Some(then), Some(now)) => {
            let diffs = fingerprint::compare(then, now);
            if diffs.is_empty() {
                return "the source home changed since it was made".into();
            }
            let n = diffs.len();
            let paths = if n == 1 { "1 path differs" } else { "paths differ" };
            format!(
                "the source home changed since it was made ({}{}): {}",
                if n == 1 { String::new() } else { format!("{n} ") },
                paths,
                fingerprint::summarize(&diffs, STALE_SHOWN).join("; ")
            )
        }
        _ => "the source home changed since it was made".into(),
    }
}

/// The record of `copy`, refused when missing or not as the tool wrote it.
/// `layout_profile`: the profile of the `<DIR>/<profile>/` the copy sits in.
pub fn read_checked(copy: &Path, layout_profile: Option<&str>) -> Result<Record> {
    match read_raw(copy) {
        Ok(None) => Err(Refusal::new(
            format!(
                "{} already exists and was not made by apim-profiles (no {RECORD_FILE} record in it)",
                copy.display()
            ),
            "move it away or choose another --out; apim-profiles never replaces a directory it did not make",
        )
        .into()),
        Ok(Some(text)) => check(copy, &text, layout_profile).map_err(|why| corrupt(copy, &why).into()),
        Err(why) => Err(corrupt(copy, &why).into()),
    }
}

fn corrupt(copy: &Path, why: &str) -> Refusal {
    Refusal::new(
        format!("the record of {} ({RECORD_FILE}) is corrupt: {why}", copy.display()),
        "the copy cannot be trusted: move it away (or remove it) and split again; a corrupt record is never used",
    )
}

/// The record's text: never through a link, at most 256 MiB.
fn read_raw(copy: &Path) -> std::result::Result<Option<Vec<u8>>, String> {
    let p = copy.join(RECORD_FILE);
    let f = crate::sys::open_read_nofollow(&p);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("it cannot be read ({e})")),
    };
    let md = f.metadata().map_err(|e| format!("it cannot be read ({e})"))?;
    if !md.is_file() {
        return Err("it is not a regular file".into());
    }
    // Refused by its size before a byte is read.
    if md.len() > crate::safe_fs::OWN_LIMIT {
        return Err(format!("it is {} bytes, more than a record can be", md.len()));
    }
    let mut text = Vec::new();
    f.take(crate::safe_fs::OWN_LIMIT).read_to_end(&mut text).map_err(|e| format!("it cannot be read ({e})"))?;
    Ok(Some(text))
}

fn check(copy: &Path, text: &[u8], layout_profile: Option<&str>) -> std::result::Result<Record, String> {
    let rec: Record = serde_json::from_slice(text).map_err(|e| format!("it is not a valid record ({e})"))?;
    check_light(copy, rec, layout_profile)
}

/// What is checked of a record beside its seal (`record::sealed_by_output`):
/// its tool, and a profile that is a name, the one of the place it sits in.
fn check_light(copy: &Path, rec: Record, layout_profile: Option<&str>) -> std::result::Result<Record, String> {
    if rec.tool != "apim-profiles" {
        return Err(format!("it names the tool `{}`", rec.tool));
    }
    fingerprint::check_inside(&rec.profile).map_err(|_| format!("its profile `{}` is not a name", rec.profile))?;
    if rec.profile.contains('/') {
        return Err(format!("its profile `{}` is not a name", rec.profile));
    }
    if let Some(p) = layout_profile {
        if rec.profile != p {
            let dir = copy.parent().unwrap_or(copy);
            return Err(format!("it names profile {}, but the copy sits in {}/", rec.profile, dir.display()));
        }
    }
    Ok(rec)
}

/// The profile a copy's place in the layout names (`<DIR>/<profile>/<home>`),
/// when its parent directory is named like one of `known`.
pub fn layout_profile<'a>(copy: &Path, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let parent = copy.parent()?.file_name()?.to_str()?;
    known.into_iter().find(|k| *k == parent).map(str::to_string)
}

/// The fingerprint to record for a copy the tool has just finished, with
/// the content digests its record kept (a copy changed in place: `update`,
/// `optimize`), the files changed since hashed again.
pub fn stamp(copy: &Path, rec: &mut Record) -> Result<()> {
    let known = content::Known::of_record(rec);
    stamp_with(copy, rec, known.as_ref())
}

/// The fingerprint to record for a copy the tool has just finished, and its
/// content digests when `known` gives those taken while copying (None: the
/// copy gets none, and `verify --content` says so).
///
/// Taken last, when nothing the tool does changes an entry of the copy any
/// more: the change time of every file and link is in the fingerprint, and
/// what follows (the record written at the root, the root's own metadata,
/// the rename that publishes the copy, which moves the root only, the
/// archive, which reads) leaves every entry's change time as it is.
pub fn stamp_with(copy: &Path, rec: &mut Record, known: Option<&content::Known>) -> Result<()> {
    let fp = Fingerprint::of_dir(copy)?;
    rec.content_sha256 = match known {
        Some(k) => Some(std::sync::Arc::new(content::pack(copy, &fp, k)?)),
        None => None,
    };
    rec.copy_fingerprint = Some(std::sync::Arc::new(fp));
    Ok(())
}

#[cfg(test)]
#[path = "standing_judge_tests.rs"]
mod judge_tests;
