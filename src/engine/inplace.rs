//! Carrying out a plan in place (`optimize`, and re-optimization after an
//! update). Each replacement is made so that no moment loses a file: the new
//! content is written to a temporary name, the original is hard-linked to its
//! backup name (which fails rather than overwrite an existing backup), and the
//! temporary is renamed over the original. An interrupted run leaves a tree the
//! next run's plan completes, because the plan is computed from what is there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::engine::copy::{self, Flush, Reflink};
use crate::hooks;
use crate::model::plan::{Action, Plan};
use crate::model::tree::{Entry, Origin};
use crate::safe_fs::Beneath;
use crate::signals::interrupted;
use crate::sys;

/// The journal of an in-place run, at the home's root: the actions about to
/// be made, written before the first one. A run that finds it knows the last
/// one was interrupted; its own plan, computed from what is on disk, completes
/// the work (removals are repeatable, and a replacement never loses the
/// original: see `replace_file`).
pub const JOURNAL: &str = ".apim-profiles-journal.json";

/// Whether an earlier in-place run on this tree was interrupted. A journal
/// that is a link or a special file was not written by this tool: refused.
pub fn interrupted_before(root: &Path) -> Result<bool> {
    Ok(crate::safe_fs::open_own(&root.join(JOURNAL))?.is_some())
}

fn write_journal(plan: &Plan) -> Result<()> {
    interrupted_before(&plan.root)?;
    let lines: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Remove { path, .. } => Some(format!("remove {}", path.display())),
            Action::Backup { from, to, .. } => Some(format!("backup {} -> {}", from.display(), to.display())),
            Action::Rewrite { path, .. } => Some(format!("rewrite {}", path.display())),
            Action::Note { .. } | Action::Blocked { .. } | Action::Unmet { .. } => None,
        })
        .collect();
    let doc = serde_json::json!({ "profile": plan.profile, "pid": std::process::id(), "actions": lines });
    crate::safe_fs::write_atomic(&plan.root, JOURNAL, serde_json::to_string_pretty(&doc)?.as_bytes(), 0o600)
}

/// Carries out a plan's actions on the tree it was computed on. Returns
/// whether anything changed.
pub fn apply_in_place(plan: &Plan) -> Result<bool> {
    crate::signals::start_writing();
    let root = &plan.root;
    if !plan.changes_anything() {
        let _ = std::fs::remove_file(root.join(JOURNAL));
        return Ok(false);
    }
    write_journal(plan)?;
    // The root as the person named it; nothing below it is reached by path.
    let top = Beneath::open(root, true)?;
    // The test suite's stand-in for a crash in the middle.
    let fail_after = hooks::fail_after_actions();
    let mut pending_backup: Option<(PathBuf, PathBuf)> = None;
    let mut changed = false;
    for (i, a) in plan.actions.iter().enumerate() {
        if fail_after.is_some_and(|n| i >= n) {
            bail!("fault injected after {i} actions (APIM_PROFILES_FAIL_AFTER_ACTIONS)");
        }
        if interrupted() {
            bail!("interrupted after {i} actions; run the same command again to complete");
        }
        match a {
            Action::Remove { path, .. } => {
                remove_beneath(&top, path)?;
                changed = true;
            }
            Action::Backup { from, to, .. } => {
                pending_backup = Some((from.clone(), to.clone()));
            }
            Action::Rewrite { path, after, .. } => {
                let backup = pending_backup.take().filter(|(from, _)| from == path).map(|(_, to)| to);
                replace_file(plan, &top, path, after, backup.as_deref())?;
                changed = true;
            }
            Action::Note { .. } | Action::Blocked { .. } | Action::Unmet { .. } => {}
        }
    }
    if let Some((from, to)) = pending_backup {
        bail!("internal: backup of {} to {} without a replacement", from.display(), to.display());
    }
    std::fs::remove_file(root.join(JOURNAL)).with_context(|| format!("removing {}", root.join(JOURNAL).display()))?;
    Ok(changed)
}

/// Replaces `rel` with the content of `after`, keeping the old file at
/// `backup` (never overwriting one). Every name is reached beneath the
/// root's handle with no link followed: a directory of the tree swapped for
/// a link meanwhile makes this fail, never write or link elsewhere.
fn replace_file(plan: &Plan, top: &Beneath, rel: &Path, after: &Origin, backup: Option<&Path>) -> Result<()> {
    let root = &plan.root;
    let target = root.join(rel);
    let entry = plan.tree.get(rel).context("internal: rewritten file is not in the plan")?;
    let (dir, name) = top.parent_of(rel)?;
    // An unguessable name, created with O_EXCL and no link followed.
    let tmp = OsString::from(crate::safe_fs::unguessable(&format!(".{}.apim-profiles-tmp-", name.to_string_lossy()))?);
    let shown = target.with_file_name(&tmp);
    let out = dir.create_new(&tmp, 0o600)?;
    let e = Entry { origin: after.clone(), ..entry.clone() };
    let written = copy::write_into(root, &e, out, &shown, Reflink::Auto, sys::is_root(), Flush::Each);
    if let Err(err) = written {
        let _ = dir.remove_tree(&tmp);
        return Err(err);
    }
    if let Some(b) = backup {
        let (bdir, bname) = top.parent_of(b)?;
        if let Err(err) = dir.hard_link(&name, &bdir, &bname) {
            let _ = dir.remove_tree(&tmp);
            return Err(err).with_context(|| {
                format!(
                    "keeping {} as {} (an existing backup is never overwritten)",
                    target.display(),
                    root.join(b).display()
                )
            });
        }
    }
    dir.rename(&tmp, &name).with_context(|| format!("replacing {}", target.display()))?;
    Ok(())
}

/// Removes `rel` (a tree) beneath the root's handle, following no link.
fn remove_beneath(top: &Beneath, rel: &Path) -> Result<()> {
    let (dir, name) = match top.parent_of(rel) {
        Ok(found) => found,
        // Its directory is gone already: a removal is repeatable.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    dir.remove_tree(&name)
}
