//! `optimize`: the product's optimization in place on one home, safe to run
//! again. Each replacement is made so that no moment loses a file: the new
//! content is written to a temporary name, the original is hard-linked to its
//! backup name (which fails rather than overwrite an existing backup), and the
//! temporary is renamed over the original. An interrupted run leaves a tree the
//! next run's plan completes, because the plan is computed from what is there.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::error::refuse;
use crate::home;
use crate::plan::{self, Action, Options, Plan};
use crate::profile::Profile;
use crate::record;
use crate::report::{ProfileReport, Report};
use crate::tree::{Origin, Tree};

#[derive(Debug, Clone, Default)]
pub struct OptimizeArgs {
    pub home: PathBuf,
    pub profile: String,
    pub dry_run: bool,
    pub options: Options,
    pub profile_dir: Option<PathBuf>,
}

pub fn run(args: &OptimizeArgs) -> Result<Report> {
    let started = Instant::now();
    let home = home::detect(&args.home)?;
    home::check_not_running(&home.path)?;
    let catalog = crate::split::load_catalog(args.profile_dir.as_deref())?;
    let profile = catalog.select(&home.version, Some(std::slice::from_ref(&args.profile)))?.remove(0);
    let previous = record::read(&home.path)?;
    if let Some(prev) = &previous {
        if prev.profile != profile.name {
            return refuse(
                format!("{} was optimized for {}, not {}", home.path.display(), prev.profile, profile.name),
                "a home serves one profile: start from a fresh copy of the pack for another profile",
            );
        }
    }
    let mut opts = args.options.clone();
    opts.written_toml_sha256 = previous.as_ref().and_then(|p| p.deployment_toml_sha256.clone());
    opts.config_from_cli = true;

    let resumed = interrupted_before(&home.path)?;
    let tree = Tree::scan(&home.path)?;
    let plan = plan::compute(&profile, &tree, &opts)?;
    let mut r = ProfileReport::from_plan(&plan, &home.path.display().to_string());
    if resumed {
        r.notes.push("an earlier run was interrupted here; this run completes it".into());
    }
    let mut report = Report {
        command: "optimize".into(),
        dry_run: args.dry_run,
        home: Some(home.path.display().to_string()),
        product: Some(home.product.clone()),
        version: Some(home.version.clone()),
        ..Default::default()
    };
    if args.dry_run {
        r.status = if plan.changes_anything() { "would-optimize" } else { "current" }.into();
        r.diff = Some(crate::dryrun::diff(&plan)?);
        r.settings = crate::dryrun::settings_summary(&plan)?;
    } else {
        let changed = apply_in_place(&plan)?;
        let rec = crate::split::record_for(&profile, &home, &opts, None, &plan);
        let rec = crate::record::Record { update: previous.as_ref().and_then(|p| p.update.clone()), ..rec };
        if previous.as_ref() != Some(&rec) {
            record::write(&home.path, &rec)?;
        }
        r.changed = changed;
        r.status = if changed { "optimized" } else { "current" }.into();
        report.changed = changed || previous.is_none();
    }
    r.entries_kept = plan.tree.entries.len();
    r.duration_ms = started.elapsed().as_millis() as u64;
    report.profiles.push(r);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

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
            Action::Note { .. } => None,
        })
        .collect();
    let doc = serde_json::json!({ "profile": plan.profile, "pid": std::process::id(), "actions": lines });
    crate::safe_fs::write_atomic(&plan.root, JOURNAL, serde_json::to_string_pretty(&doc)?.as_bytes(), 0o600)
}

/// Carries out a plan's actions on the tree it was computed on. Returns
/// whether anything changed.
pub fn apply_in_place(plan: &Plan) -> Result<bool> {
    crate::copy::WRITING.store(true, std::sync::atomic::Ordering::SeqCst);
    let root = &plan.root;
    if !plan.changes_anything() {
        let _ = std::fs::remove_file(root.join(JOURNAL));
        return Ok(false);
    }
    write_journal(plan)?;
    // APIM_PROFILES_FAIL_AFTER_ACTIONS=N stops the run after N actions: the
    // test suite's stand-in for a crash in the middle.
    let fail_after: Option<usize> = std::env::var("APIM_PROFILES_FAIL_AFTER_ACTIONS").ok().and_then(|v| v.parse().ok());
    let mut pending_backup: Option<(PathBuf, PathBuf)> = None;
    let mut changed = false;
    for (i, a) in plan.actions.iter().enumerate() {
        if fail_after.is_some_and(|n| i >= n) {
            bail!("fault injected after {i} actions (APIM_PROFILES_FAIL_AFTER_ACTIONS)");
        }
        if crate::copy::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("interrupted after {i} actions; run the same command again to complete");
        }
        match a {
            Action::Remove { path, .. } => {
                crate::out::remove_tree(&root.join(path))?;
                changed = true;
            }
            Action::Backup { from, to, .. } => {
                pending_backup = Some((from.clone(), to.clone()));
            }
            Action::Rewrite { path, after, .. } => {
                let backup = pending_backup.take().filter(|(from, _)| from == path).map(|(_, to)| to);
                replace_file(plan, path, after, backup.as_deref())?;
                changed = true;
            }
            Action::Note { .. } => {}
        }
    }
    if let Some((from, to)) = pending_backup {
        bail!("internal: backup of {} to {} without a replacement", from.display(), to.display());
    }
    std::fs::remove_file(root.join(JOURNAL)).with_context(|| format!("removing {}", root.join(JOURNAL).display()))?;
    Ok(changed)
}

/// Replaces `rel` with the content of `after`, keeping the old file at
/// `backup` (never overwriting one).
fn replace_file(plan: &Plan, rel: &Path, after: &Origin, backup: Option<&Path>) -> Result<()> {
    let root = &plan.root;
    let target = root.join(rel);
    let entry = plan.tree.get(rel).context("internal: rewritten file is not in the plan")?;
    // An unguessable name, created with O_EXCL (create_new): nothing planted
    // there can be written through.
    let tmp = target.with_file_name(crate::safe_fs::unguessable(&format!(
        ".{}.apim-profiles-tmp-",
        target.file_name().unwrap_or_default().to_string_lossy()
    )));
    let e = crate::tree::Entry { origin: after.clone(), ..entry.clone() };
    let root_user = unsafe { libc::geteuid() } == 0;
    crate::copy::write_file(root, &e, &tmp, crate::copy::Reflink::Auto, root_user)?;
    if let Some(b) = backup {
        let b = root.join(b);
        if let Err(err) = std::fs::hard_link(&target, &b) {
            let _ = std::fs::remove_file(&tmp);
            return Err(err).with_context(|| {
                format!("keeping {} as {} (an existing backup is never overwritten)", target.display(), b.display())
            });
        }
    }
    std::fs::rename(&tmp, &target).with_context(|| format!("replacing {}", target.display()))?;
    Ok(())
}

/// Re-optimization of an existing copy (after an update): the plan computed on
/// the copy, with the options its record holds.
pub fn reoptimize(copy: &Path, profile: &Profile, opts: &Options) -> Result<Plan> {
    let tree = Tree::scan(copy)?;
    let plan = plan::compute(profile, &tree, opts)?;
    apply_in_place(&plan)?;
    Ok(plan)
}
