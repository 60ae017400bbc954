//! `verify`: does a copy still match its profile? The answer is the plan
//! itself: a copy matches when optimizing it again would change nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use crate::model::content::{self, ContentCheck};
use crate::model::copy::{identify, Copy};
use crate::model::fingerprint::{self, Difference, Fingerprint};
use crate::model::plan::{self, Action, Plan};
use crate::model::profile::load_catalog;
use crate::model::record::Record;
use crate::model::tree::Tree;
use crate::outcome::Status;
use crate::report::{CommandName, ProfileReport, Report, RunOutcome};

/// `content`: also read every file and compare it with its recorded digest.
pub fn run(copies: &[PathBuf], profile_dir: Option<&Path>, content: bool) -> Result<RunOutcome> {
    let started = Instant::now();
    let catalog = load_catalog(profile_dir)?;
    let mut report = Report::new(CommandName::Verify);
    for c in copies {
        let t0 = Instant::now();
        let found = identify(c, &catalog)?;
        let copy = &found.copy;
        let tree = Tree::scan(&copy.path)?;
        let plan = plan::compute(&found.profile, &tree, &found.options)?;
        // A record the output's key does not prove is not compared with: the
        // copy is checked against its profile alone, and never verified.
        let (trusted, mut unproven) = match &found.sealed {
            Ok(_) => (copy.record.as_ref(), unproven_metadata(copy.record.as_ref())),
            Err(u) => (None, vec![u.reason()]),
        };
        let mut all = all_differences(&plan, &tree, trusted);
        let checked = match (content, trusted) {
            (true, Some(_)) => check_content(copy, &mut all, &mut unproven)?,
            _ => None,
        };
        let status = match (all.is_empty(), unproven.is_empty()) {
            (false, _) => Status::Drifted,
            (true, false) => Status::Unverifiable,
            (true, true) => Status::Verified,
        };
        let mut r = ProfileReport::from_plan(&plan, &copy.path, status);
        r.content = checked;
        if !unproven.is_empty() {
            r.reason = Some(unproven.join("; "));
        }
        r.set_drift(&all);
        // What verify reports is the copy as it is, not what a fix would leave.
        (r.entries_kept, r.bytes) = (tree.len(), tree.total_bytes());
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
fn check_content(
    copy: &Copy<()>,
    all: &mut Vec<Difference>,
    unproven: &mut Vec<String>,
) -> Result<Option<ContentCheck>> {
    let found = match &copy.record {
        Some(rec) => content::verify(&copy.path, rec)?,
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
