//! The once order of `split` with a kept base (`engine::base`): the update
//! tool runs once, on the base (made from the home the first time, updated in
//! place after), and every copy is derived from the updated base: made, or
//! rolled forward from its earlier self, where only what the new level
//! changes is written and every other file keeps its inode and times.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{copy_jobs, Build, Checked, SplitArgs, Target};
use crate::engine::base::{BaseState, KeptBase, Usable};
use crate::engine::copy::{Flush, Job, Reuse, Reused};
use crate::engine::output::{self, Staging};
use crate::model::content::{self, Known};
use crate::model::fingerprint::{Fingerprint, Stamp};
use crate::model::plan::{self, Plan};
use crate::model::record::{self, Record};
use crate::model::seal::SealKey;
use crate::model::standing::{self, CopyState};
use crate::model::tree::{self, Origin, Tree};
use crate::outcome::refuse;
use crate::update::{self, UpdateResult, UpdateStatus};

/// The base this run derives copies from, as the tool left it.
pub(super) struct Base {
    /// The home (index in `Checked::homes`) the base is of: only its copies
    /// are derived from it.
    home: usize,
    pub kept: KeptBase,
    pub tree: Tree,
    pub identity: String,
    pub level: Option<String>,
    /// The base before this run's update, when it was updated in place:
    /// files unchanged between the two are the copies' unchanged files.
    before: Option<(String, Tree)>,
    /// This run's update of the base, when the tool ran.
    result: Option<UpdateResult>,
    backup: PathBuf,
    /// Staging places of killed runs removed on the way.
    pub swept: Vec<PathBuf>,
}

/// What the kept base is before the run: usable (with its tree), or why not.
pub(super) struct Found {
    /// The home (index in `Checked::homes`) the base is of.
    home: usize,
    kept: KeptBase,
    usable: Option<Tree>,
    why_not: String,
    home_fingerprint: String,
}

/// Reads the kept base (nothing is written) and refuses a level below it.
pub(super) fn look(c: &Checked, i: usize, u: &update::Settings) -> Result<Found> {
    let home = &c.homes[i];
    // The base is trusted only in a directory this account made (not a link,
    // its own, no one else may write in it).
    if std::fs::symlink_metadata(c.out.join(crate::engine::base::BASE_DIR)).is_ok() {
        output::open_profile_dir(&c.out.join(crate::engine::base::BASE_DIR))?;
    }
    let kept = KeptBase::of(&c.out, home);
    let home_fingerprint = tree::metadata_digest(&Tree::scan(&home.path)?);
    let (usable, why_not) = match kept.usable(home, &home_fingerprint)? {
        Usable::Yes(t) => (Some(t), String::new()),
        Usable::No(why) => (None, why),
    };
    if let (Some(_), Some(want), Some(have)) = (&usable, &u.level, kept.record.as_ref().and_then(|r| r.level.clone())) {
        if level_number(want) < level_number(&have) {
            return refuse(
                format!("--update-level {want} is below the level of the copies' base ({have})"),
                "an update never goes back: roll a copy back with apim-profiles update --revert COPY",
            );
        }
    }
    Ok(Found { home: i, kept, usable, why_not, home_fingerprint })
}

/// The number at the end of a level (`4.2.0.7` and `7` are 7).
fn level_number(l: &str) -> u64 {
    l.rsplit('.').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

impl Found {
    pub(super) fn home(&self) -> usize {
        self.home
    }

    /// Whether the run copies the home to make the base anew.
    pub(super) fn stages_home(&self) -> bool {
        self.usable.is_none()
    }

    /// Whether the tool must run: always to reach "latest" (only the tool
    /// knows what is new), for a level only when the base is elsewhere.
    fn tool_needed(&self, u: &update::Settings) -> bool {
        let at = self.kept.record.as_ref().and_then(|r| r.level.clone());
        match (&self.usable, &u.level, at) {
            (Some(_), Some(want), Some(have)) => !super::same_level(&have, want),
            _ => true,
        }
    }

    /// The base updated as asked: in place where it is usable, else made
    /// again from the home in a staging place and updated there.
    pub(super) fn prepare(self, args: &SplitArgs, c: &Checked, u: &update::Settings) -> Result<Base> {
        let home = &c.homes[self.home];
        // What a killed run left: the staged home in the base's directory
        // (or, from earlier versions, in the output itself).
        let mut swept = output::remove_stale_staging(&self.kept.path, &home.dir_name)?;
        swept.extend(output::remove_stale_staging(&c.out.join(&home.dir_name), &home.dir_name)?);
        let mut base = self.prepare_swept(args, c, u)?;
        base.swept = swept;
        Ok(base)
    }

    fn prepare_swept(self, args: &SplitArgs, c: &Checked, u: &update::Settings) -> Result<Base> {
        let i = self.home;
        let home = &c.homes[i];
        let (backup, label) = backup_and_label(c, i);
        let tool_needed = self.tool_needed(u);
        let Found { kept, usable, why_not, home_fingerprint, .. } = self;
        let Some(before) = usable else {
            let anew = Anew { kept, why: &why_not, home_fingerprint: &home_fingerprint, backup, label: &label };
            return make_anew(args, c, i, u, anew);
        };
        let rec = kept.record.clone().expect("a usable base has a record");
        if !tool_needed {
            let identity = rec.identity.clone();
            return Ok(Base {
                home: i,
                kept,
                tree: before,
                identity,
                level: rec.level,
                before: None,
                result: None,
                backup,
                swept: vec![],
            });
        }
        let updating = KeptBase::record_for(home, &home_fingerprint, BaseState::Updating, rec.level.clone(), &before);
        kept.write_record(&updating)?;
        let result = update::run_update(u, &kept.path, &kept.path, &backup, &label)?;
        if result.status != UpdateStatus::Updated {
            return Err(anyhow::anyhow!("{}", result.message)).context(format!(
                "the update of the copies' base {} did not finish (its logs: {}); no copy was changed. \
                 The next run makes the base again from the home; --update-each updates each copy instead",
                kept.path.display(),
                result.logs
            ));
        }
        let tree = Tree::scan(&kept.path)?;
        let level = result.level.clone().or(rec.level.clone());
        let done = KeptBase::record_for(home, &home_fingerprint, BaseState::Ready, level.clone(), &tree);
        kept.write_record(&done)?;
        let identity = done.identity;
        let before = Some((rec.identity, before));
        Ok(Base { home: i, kept, tree, identity, level, before, result: Some(result), backup, swept: vec![] })
    }
}

/// Copies the home into a staging place beside the base (the home is never
/// written), runs the update there, and makes it the kept base. An update
/// that does not finish cleanly fails the run; the staged home is kept for
/// its logs.
/// What [`make_anew`] needs beside the run.
struct Anew<'a> {
    kept: KeptBase,
    why: &'a str,
    home_fingerprint: &'a str,
    backup: PathBuf,
    label: &'a str,
}

fn make_anew(args: &SplitArgs, c: &Checked, i: usize, u: &update::Settings, anew: Anew<'_>) -> Result<Base> {
    let Anew { kept, why, home_fingerprint, backup, label } = anew;
    let home = &c.homes[i];
    let shown = c.out.join(&home.dir_name);
    make_private_dir(&kept.dir)?;
    let staging = Staging::for_copy(&kept.path);
    let mut plan = Plan::unchanged(Tree::scan(&home.path)?);
    // A link into the home (absolute, or relative and climbing out) would
    // let the tool write into the home through the base: it points into the
    // base instead, as in every copy.
    plan.tree.relativize_links_into(&home.path);
    // Not flushed: a base lost in a power cut is made again (its identity no
    // longer holds), and nobody waits for it on disk.
    let job = Job { plan: &plan, dest: staging.path().to_path_buf(), flush: Flush::Never, reuse: None };
    copy_jobs(args, &[job], "staging the home")
        .context("copying the home to update it once failed; nothing was published")?;
    let mut result = update::run_update(u, staging.path(), &shown, &backup, label)?;
    if result.status != UpdateStatus::Updated {
        let kept_at = staging.keep_aside(&shown, "update-failed")?;
        return Err(anyhow::anyhow!("{}", result.message)).context(format!(
            "the update of the staging copy of the home did not finish (kept with its logs at {}); no copy was made. \
             Run split with --update-each to update each copy, where conflicts can be resolved per copy",
            kept_at.display()
        ));
    }
    if kept.record.is_some() {
        result.notes.push(format!("the copies' base was made again from the home: {why}"));
    }
    let seen = crate::safe_fs::dev_ino_nofollow(&kept.path);
    staging.publish_unflushed(&kept.path, seen)?;
    let tree = Tree::scan(&kept.path)?;
    let rec = KeptBase::record_for(home, home_fingerprint, BaseState::Ready, result.level.clone(), &tree);
    kept.write_record(&rec)?;
    let (identity, level) = (rec.identity, rec.level);
    Ok(Base { home: i, kept, tree, identity, level, before: None, result: Some(result), backup, swept: vec![] })
}

/// The tool's `--backup` directory for a pack's base, and the label of its
/// run: one pack keeps the names of a single home.
fn backup_and_label(c: &Checked, i: usize) -> (PathBuf, String) {
    let home = &c.homes[i];
    match c.homes.len() {
        1 => (c.out.join(".apim-profiles-update-backup"), "update-once".to_string()),
        _ => (
            c.out.join(format!(".apim-profiles-update-backup-{}", home.product)),
            format!("update-once {}", home.product),
        ),
    }
}

/// The base's directory, readable by its owner only (its files are never
/// served from there).
fn make_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => output::open_profile_dir(dir).map(drop),
        Err(e) => Err(e).with_context(|| format!("creating {}", dir.display())),
    }
}

impl Base {
    /// Whether the copy a target found is behind the base: at another level,
    /// made without the update, or made from another base.
    fn is_ahead_of(&self, have: &Record) -> bool {
        let level = copy_level(have);
        level.as_deref() != self.level.as_deref() || have.base.as_ref().is_some_and(|b| *b != self.identity)
    }

    /// Plans every copy to build from the base, and marks the copies behind it
    /// to be rolled forward, with the files they can keep.
    pub(super) fn derive(&self, args: &SplitArgs, targets: &mut [Target]) -> Result<()> {
        for t in targets.iter_mut().filter(|t| t.home == self.home) {
            let behind = t.copy.record.as_ref().is_some_and(|h| self.is_ahead_of(h));
            let rolls = match t.copy.standing {
                CopyState::Current => behind,
                CopyState::Drifted { .. } | CopyState::Conflicts { .. } => args.force && behind,
                _ => false,
            };
            if !(t.builds(args.force) || rolls) {
                continue;
            }
            t.plan = plan::compute(&t.profile, &self.tree, &args.options)?;
            // An update that broke the pack (a core directory gone) fails its
            // verification here, before any copy is made from it; the base is
            // marked so that the next run makes it again.
            if let Err(e) = plan::check_met(&t.plan) {
                self.mark_broken()?;
                return Err(anyhow::anyhow!("{e}")).context(format!(
                    "the copies' base {} fails verification after the update; no copy was made from it (the next run makes it again from the home)",
                    self.kept.path.display()
                ));
            }
            t.shipped = None;
            t.record.deployment_toml_sha256 = t.plan.written_toml_sha256.clone();
            t.record.base = Some(self.identity.clone());
            t.rolls = rolls;
            if rolls {
                // Examined in one pass, the record came without its listings;
                // read again, it is proven again.
                let rec = standing::read_checked(&t.copy.path, Some(&t.profile.name))?;
                record::sealed_by_output(&t.copy.path, &rec).map_err(|u| u.refusal(&t.copy.path))?;
                t.copy.record = Some(rec);
            }
            if rolls && matches!(t.copy.standing, CopyState::Current) {
                t.reuse = self.reuse_for(t)?;
            }
        }
        Ok(())
    }

    /// Marks the base as broken by its update (see [`BaseState::Broken`]).
    fn mark_broken(&self) -> Result<()> {
        let Some(rec) = self.kept.record_now()? else { return Ok(()) };
        self.kept.write_record(&crate::engine::base::BaseRecord { state: BaseState::Broken, ..rec })
    }

    /// The files of a current copy that the new plan wants as they are: the
    /// copy was derived from the base as it was before this run's update,
    /// and neither the base's file nor what the profile makes of it changed.
    fn reuse_for(&self, t: &Target) -> Result<Option<Reuse>> {
        let (Some(have), Some((before_id, before))) = (&t.copy.record, &self.before) else { return Ok(None) };
        let (Some(fp), true) = (&have.copy_fingerprint, have.base.as_ref() == Some(before_id)) else { return Ok(None) };
        let digests: HashMap<&str, content::Sha> = match &have.content_sha256 {
            Some(text) => content::unpack(fp, text).unwrap_or_default().into_iter().map(|((p, _), s)| (p, s)).collect(),
            None => HashMap::new(),
        };
        let old: HashMap<&str, Stamp> = fp.iter().collect();
        let unchanged = |p: &Path| match (before.get(p), self.tree.get(p)) {
            (Some(a), Some(b)) => tree::same_entry_key(a) == tree::same_entry_key(b),
            _ => false,
        };
        let from = crate::safe_fs::Beneath::open(&t.copy.path, false)?;
        let mut files = HashMap::new();
        for (rel, e) in t.plan.tree.iter().filter(|(_, e)| matches!(e.kind, tree::Kind::File { .. })) {
            let key = rel.to_string_lossy();
            let Some(st) = old.get(key.as_ref()).filter(|st| st.kind == 'f' && st.size == e.size()) else { continue };
            let same = match &e.origin {
                Origin::Source(p) => unchanged(p) && st.mtime == Some((e.meta.mtime, e.meta.mtime_nsec)),
                Origin::SourceFresh(p) => unchanged(p),
                Origin::Generated(bytes) => {
                    crate::safe_fs::read_file_beneath(&t.copy.path, rel)?.as_deref() == Some(&bytes[..])
                }
            };
            if let (true, Some(id), Some(ctime)) = (same, st.id, st.ctime) {
                let sha = digests.get(key.as_ref()).copied();
                files.insert(rel.to_path_buf(), Reused { id, ctime, sha });
            }
        }
        Ok(Some(Reuse { from, files }))
    }

    /// Every copy built from the base carries the update's result (its own
    /// levels and changes for a copy rolled forward), and its own copy of the
    /// tool's backup beside it (where `update --revert` of that copy looks),
    /// made once per update level.
    pub(super) fn hand_out(&self, builds: &mut [Build<'_>]) -> Result<()> {
        let levels: Vec<PathBuf> = match std::fs::read_dir(&self.backup) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
            Err(_) => vec![],
        };
        for b in builds.iter().filter(|b| b.target.home == self.home) {
            let own = update::backup_dir(&b.target.copy.path);
            for level in &levels {
                let dest = own.join(level.file_name().unwrap_or_default());
                if std::fs::symlink_metadata(&dest).is_err() {
                    std::fs::create_dir_all(&own).with_context(|| format!("creating {}", own.display()))?;
                    let plan = Plan::unchanged(Tree::scan(level)?);
                    let job = Job { plan: &plan, dest, flush: Flush::Large, reuse: None };
                    crate::engine::copy::materialize(&[job], crate::engine::copy::Reflink::Auto, None)?;
                }
            }
        }
        for b in builds.iter_mut().filter(|b| b.target.home == self.home) {
            let res = self.result_for(b.target);
            b.update = Some((res, b.target.record.clone()));
        }
        Ok(())
    }

    /// The update result a copy built from the base records.
    fn result_for(&self, t: &Target) -> UpdateResult {
        let logs = t.copy.path.join("updates/logs").display().to_string();
        let mut res = self.result.clone().unwrap_or_else(|| UpdateResult {
            status: UpdateStatus::Updated,
            level_before: self.level.clone(),
            ..UpdateResult::new(logs.clone())
        });
        res.logs = logs;
        res.level = self.level.clone();
        if self.result.is_none() {
            res.notes.push(format!(
                "made from the copies' base, already at {} (no update run was needed)",
                self.level.as_deref().unwrap_or("its level")
            ));
        } else {
            res.notes.push("updated once, in the copies' base, before this copy was made from it".into());
        }
        if let (true, Some(have)) = (t.rolls, &t.copy.record) {
            res.level_before = copy_level(have);
            let [added, modified, removed] = changes(have, &t.plan, t.reuse.as_ref());
            (res.added, res.modified, res.removed) = (added, modified, removed);
        }
        res
    }
}

/// A copy's update level, as its record says.
pub(super) fn copy_level(rec: &Record) -> Option<String> {
    rec.update.as_ref().and_then(crate::model::update_result::RecordedUpdate::level)
}

/// What rolling a copy forward adds, changes and removes (files and links;
/// the tool's state and this tool's files left out).
fn changes(have: &Record, plan: &Plan, reuse: Option<&Reuse>) -> [Vec<String>; 3] {
    let counted = |p: &str| !p.starts_with("updates/") && p != "updates" && !p.starts_with(".apim-profiles");
    let old: HashMap<&str, Stamp> = have.copy_fingerprint.as_ref().map(|f| f.iter().collect()).unwrap_or_default();
    let kept: HashSet<&Path> = reuse.map(|r| r.files.keys().map(PathBuf::as_path).collect()).unwrap_or_default();
    let (mut added, mut modified) = (Vec::new(), Vec::new());
    let mut wanted = HashSet::new();
    for (rel, e) in plan.tree.iter().filter(|(_, e)| !e.is_dir()) {
        let key = rel.to_string_lossy().into_owned();
        wanted.insert(key.clone());
        if !counted(&key) {
            continue;
        }
        match (old.get(key.as_str()), &e.kind) {
            (None, _) => added.push(key),
            (Some(st), tree::Kind::Symlink { target }) if st.target.as_deref() == target.to_str() => {}
            (Some(_), tree::Kind::Symlink { .. }) => modified.push(key),
            (Some(_), _) if kept.contains(rel) => {}
            (Some(_), _) => modified.push(key),
        }
    }
    let removed = old
        .iter()
        .filter(|(p, st)| st.kind != 'd' && counted(p) && !wanted.contains(**p))
        .map(|(p, _)| p.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    added.sort();
    modified.sort();
    [added, modified, removed]
}

/// After a copy that reused files of its earlier self is published, the
/// earlier copy's removal moved those files' change times: the record is
/// stamped again, their digests carried by (device, inode).
pub(super) fn restamp(copy: &Path, rec: &mut Record, reused: &HashSet<(u64, u64)>, key: &SealKey) -> Result<()> {
    let mut known = Known::of_record(rec).unwrap_or_default();
    let now = Fingerprint::of_dir(copy)?;
    for (_, st) in now.iter() {
        if let (Some(id), Some(ctime)) = (st.id, st.ctime) {
            if reused.contains(&id) {
                known.retime(id, ctime);
            }
        }
    }
    standing::stamp_with(copy, rec, Some(&known))?;
    record::write(copy, rec, key)
}

/// Refuses, before anything is written, to roll forward a copy changed since
/// apim-profiles made it (drifted, or waiting on conflicts) unless `--force`
/// says to discard the change.
pub(super) fn refuse_held<'a>(
    args: &SplitArgs,
    u: &update::Settings,
    targets: impl Iterator<Item = &'a Target>,
) -> Result<()> {
    if args.force {
        return Ok(());
    }
    for t in targets {
        let level = t.copy.record.as_ref().and_then(copy_level);
        // Without a level asked for, any copy may have to move.
        let moves = match (&u.level, &level) {
            (Some(want), Some(have)) => !super::same_level(have, want),
            _ => true,
        };
        let why = match &t.copy.standing {
            CopyState::Drifted { differences } if moves => {
                let first = differences.first().map(ToString::to_string).unwrap_or_default();
                format!("changed since apim-profiles made it ({first}{})", super::more(differences.len()))
            }
            CopyState::Conflicts { files } if moves => {
                format!("is waiting on update conflicts ({})", files.join(", "))
            }
            _ => continue,
        };
        return refuse(
            format!("{} {why}: rolling it forward to the new update level would discard that", t.copy.path.display()),
            "put the change into --set/--overlay/--carry (or resolve and --continue), or pass --force to roll it forward and discard it (the report lists what was discarded)",
        );
    }
    Ok(())
}
