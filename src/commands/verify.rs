//! `verify`: does a copy still match its profile? The answer is the plan
//! itself: a copy matches when optimizing it again would change nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use crate::model::content::{self, ContentCheck};
use crate::model::fingerprint::{self, Difference, Fingerprint};
use crate::model::home::{self, Home};
use crate::model::plan::{self, Action, Options, Plan};
use crate::model::profile::{load_catalog, Catalog, Profile};
use crate::model::record::{self, Record};
use crate::model::seal::{self, SealKey, Unsealed};
use crate::model::standing;
use crate::model::tree::Tree;
use crate::outcome::{refuse, Status};
use crate::report::{CommandName, ProfileReport, Report, RunOutcome};

/// A copy as found: its home, its profile, the options it was made with (from
/// its record) and the record itself; with the key that proves the record,
/// or why the record is not sealed by the copy's output.
pub struct Copy {
    pub home: Home,
    pub profile: Profile,
    pub options: Options,
    pub record: Option<Record>,
    pub sealed: std::result::Result<Option<SealKey>, Unsealed>,
}

/// The profile and options a copy was made with: from its record, or, for a
/// copy without one, from its place in the layout (`<DIR>/<profile>/<home>`).
pub fn identify(copy: &Path, catalog: &Catalog) -> Result<Copy> {
    let h = home::detect(copy, catalog)?;
    let rec = checked_record(&h, catalog)?;
    let name = match &rec {
        Some(r) => r.profile.clone(),
        None => profile_from_layout(&h, catalog)?,
    };
    let sealed = match &rec {
        Some(r) => record::sealed_by_output(&h.path, r).map(Some),
        None => no_record(&h.path, &name),
    };
    let profile = catalog.select(&h.product, &h.version, Some(&[name]))?.remove(0);
    let options = Options::of_copy(
        rec.as_ref().is_some_and(|r| r.skip_config_optimization),
        rec.as_ref().and_then(|r| r.deployment_toml_sha256.clone()),
    );
    Ok(Copy { home: h, profile, options, record: rec, sealed })
}

/// A copy without a record is checked against its profile alone, unless its
/// output seals its copies' records: then the record was removed.
fn no_record(copy: &Path, profile: &str) -> std::result::Result<Option<SealKey>, Unsealed> {
    match seal::key_of_copy(copy, profile) {
        Ok(k) => Err(Unsealed {
            why: format!(
                "it has no {} record, though its output seals every copy's record with {}: the record was removed",
                record::RECORD_FILE,
                k.path.display()
            ),
            hint: seal::RESEAL_HINT.into(),
        }),
        Err(_) => Ok(None),
    }
}

/// The copy's record when it has one, refused when it is not as the tool
/// wrote it (see `model::standing`); whether its output's key seals it is
/// asked apart ([`record::sealed_by_output`]).
pub fn checked_record(h: &Home, catalog: &Catalog) -> Result<Option<Record>> {
    if std::fs::symlink_metadata(h.path.join(record::RECORD_FILE)).is_err() {
        return Ok(None);
    }
    let names = catalog.for_version(&h.version).map(|p| p.name.as_str());
    let layout = standing::layout_profile(&h.path, names);
    Ok(Some(standing::read_checked(&h.path, layout.as_deref())?))
}

fn profile_from_layout(h: &Home, catalog: &Catalog) -> Result<String> {
    let name = h
        .path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| catalog.for_pack(&h.product, &h.version).any(|p| &p.name == n));
    match name {
        Some(n) => Ok(n),
        None => refuse(
            format!(
                "{} has no {} record and is not inside a <profile>/ directory",
                h.path.display(),
                record::RECORD_FILE
            ),
            "verify copies made by apim-profiles split, or optimize the home first",
        ),
    }
}

/// `content`: also read every file and compare it with its recorded digest.
pub fn run(copies: &[PathBuf], profile_dir: Option<&Path>, content: bool) -> Result<RunOutcome> {
    let started = Instant::now();
    let catalog = load_catalog(profile_dir)?;
    let mut report = Report::new(CommandName::Verify);
    for c in copies {
        let t0 = Instant::now();
        let copy = identify(c, &catalog)?;
        let tree = Tree::scan(&copy.home.path)?;
        let plan = plan::compute(&copy.profile, &tree, &copy.options)?;
        // A record the output's key does not prove is not compared with: the
        // copy is checked against its profile alone, and never verified.
        let (trusted, mut unproven) = match &copy.sealed {
            Ok(_) => (copy.record.as_ref(), unproven_metadata(copy.record.as_ref())),
            Err(u) => (None, vec![u.reason()]),
        };
        let mut all = all_differences(&plan, &tree, trusted);
        let checked = match (content, trusted) {
            (true, Some(_)) => check_content(&copy, &mut all, &mut unproven)?,
            _ => None,
        };
        let status = match (all.is_empty(), unproven.is_empty()) {
            (false, _) => Status::Drifted,
            (true, false) => Status::Unverifiable,
            (true, true) => Status::Verified,
        };
        let mut r = ProfileReport::from_plan(&plan, &copy.home.path, status);
        r.content = checked;
        if !unproven.is_empty() {
            r.reason = Some(unproven.join("; "));
        }
        r.set_drift(&all);
        // What verify reports is the copy as it is, not what a fix would leave.
        r.entries_kept = tree.len();
        r.duration_ms = t0.elapsed().as_millis() as u64;
        report.profiles.push(r);
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(RunOutcome::of_report(report))
}

/// Why a metadata check of this copy proves less than it says: its record
/// keeps no change times (made by an earlier version).
fn unproven_metadata(rec: Option<&Record>) -> Vec<String> {
    match rec.and_then(|r| r.copy_fingerprint.as_ref()) {
        Some(fp) if !fp.has_change_times() => vec![format!(
            "recorded without change times: {}; to record them rebuild it: apim-profiles split ... --force",
            "a file rewritten with its size and modification time put back would not show"
        )],
        _ => Vec::new(),
    }
}

/// `--content`: reads every file the record has a digest of; each file
/// whose bytes differ is a drift line (once per path). Without digests the
/// copy is not proven, and nothing is read.
fn check_content(copy: &Copy, all: &mut Vec<Difference>, unproven: &mut Vec<String>) -> Result<Option<ContentCheck>> {
    let found = match &copy.record {
        Some(rec) => content::verify(&copy.home.path, rec)?,
        None => None,
    };
    let Some(c) = found else {
        unproven.push(
            "no content digests recorded (the copy was made by an earlier apim-profiles, or optimized in place \
             without one): its content cannot be proven; to record them rebuild it: apim-profiles split ... --force"
                .into(),
        );
        return Ok(None);
    };
    let changed = |path: &str, what: &str| Difference::Changed { path: path.into(), what: vec![what.into()] };
    for p in &c.differs {
        if !all.iter().any(|d| d.path() == Some(p)) {
            all.push(changed(p, "content differs from what apim-profiles left"));
        }
    }
    for u in &c.unreadable {
        let (p, why) = u.split_once(": ").unwrap_or((u, "cannot be read"));
        if !all.iter().any(|d| d.path() == Some(p)) {
            all.push(changed(p, why));
        }
    }
    Ok(Some(c))
}

/// How a copy differs from its profile, then from what the tool left (its
/// record's fingerprint: edited and deleted files too), each path once.
fn all_differences(plan: &Plan, tree: &Tree, rec: Option<&Record>) -> Vec<Difference> {
    let mut lines = plan.drift();
    let Some(recorded) = rec.and_then(|r| r.copy_fingerprint.as_ref()) else {
        return lines;
    };
    let named: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Remove { path, .. } | Action::Rewrite { path, .. } => Some(path.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    for d in fingerprint::compare(recorded, &Fingerprint::of_copy_tree(tree)) {
        let p = d.path().unwrap_or_default();
        if !named.iter().any(|n| p == n || p.starts_with(&format!("{n}/"))) {
            lines.push(d);
        }
    }
    lines
}
