//! `split`: one optimized copy of a home per profile. Everything that can be
//! refused is checked before the first write; copies are built in staging and
//! published with a rename, so a failure leaves no half-made copy behind.
//! `run` reads as the steps: check, plan, stage, copy, update, publish, report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::engine::archive;
use crate::engine::copy::{self, Copied, CopyStats, Flush, Job, Reflink};
use crate::engine::output::{self, CreatedDirs, Lock, Staging};
use crate::engine::{fidelity, writeback};
use crate::model::content::Known;
use crate::model::copy::Copy;
use crate::model::fingerprint::Fingerprint;
use crate::model::home::{self, Home};
use crate::model::plan::{self, Options, Plan};
use crate::model::profile::{load_catalog, Catalog, Profile};
use crate::model::record::{self, record_for, Record};
use crate::model::seal::SealKey;
use crate::model::standing::{self, CopyState};
use crate::model::tree::{self, Tree};
use crate::model::update_result::RecordedUpdate;
use crate::outcome::{refuse, Status};
use crate::report::human::human_bytes;
use crate::report::{diff, progress, CommandName, ProfileReport, Report, RunOutcome};
use crate::signals::interrupted;
use crate::update::{self, UpdateResult, UpdateStatus};
use crate::{hooks, sys};

mod base;

/// Everything `split` takes from its command line.
#[derive(Debug, Clone, Default)]
pub struct SplitArgs {
    /// One home, or the component packs (4.5.0+) of one deployment.
    pub homes: Vec<PathBuf>,
    pub out: PathBuf,
    pub profiles: Option<Vec<String>>,
    pub dry_run: bool,
    pub force: bool,
    pub jobs: Option<usize>,
    pub reflink: Reflink,
    /// `--update-once`: update a staging copy of the home once, then copy
    /// from it (the default with one home).
    pub update_once: bool,
    /// `--update-each`: make each copy, then update it (the default with
    /// several homes: each component pack runs its own tool).
    pub update_each: bool,
    pub options: Options,
    pub profile_dir: Option<PathBuf>,
    /// None with `--no-update`.
    pub update: Option<update::Settings>,
    /// Show a progress bar (a terminal, not `--json`).
    pub progress: bool,
    /// Also write `<DIR>/<profile>/<home>.<ext>` of each finished copy.
    pub archive: Option<archive::Format>,
}

/// A profile's plan on its home, before the copy at its place is examined.
struct Planned {
    /// Index of the home (in `Checked::homes`) the copy is made from.
    home: usize,
    profile: Profile,
    plan: Plan,
    /// For a version updated before it is optimized (`update-first`): the
    /// pack as shipped, which the copy starts as.
    shipped: Option<Plan>,
    /// Where the copy goes: `<DIR>/<profile>/<home name>`.
    path: PathBuf,
    /// The record this run writes for the copy.
    record: Record,
    /// Absolute links into the home, relative in the copy.
    relinked: Vec<PathBuf>,
}

struct Target {
    /// Index of the home (in `Checked::homes`) the copy is made from.
    home: usize,
    profile: Profile,
    plan: Plan,
    /// For a version updated before it is optimized (`update-first`): the
    /// pack as shipped, which the copy starts as.
    shipped: Option<Plan>,
    /// The copy at its place: its record there, and where it stands against
    /// `record` (see `model::standing`).
    copy: Copy,
    /// The record this run writes for the copy.
    record: Record,
    /// (device, inode) of the copy found at the final place before the run:
    /// publishing exchanges with that directory only.
    seen: Option<(u64, u64)>,
    /// Absolute links into the home, relative in the copy.
    relinked: Vec<PathBuf>,
    /// The copy there is behind the kept base (another update level): it is
    /// derived again from the base (`base::Base::derive`).
    rolls: bool,
    /// Its files that the copy rolled forward keeps as they are.
    reuse: Option<copy::Reuse>,
}

impl Target {
    /// Whether this run (re)builds the copy: an absent one always; a stale,
    /// drifted or conflicted one only with `--force`.
    fn builds(&self, force: bool) -> bool {
        if self.rolls {
            return true;
        }
        match self.copy.standing {
            CopyState::Absent => true,
            CopyState::Current => false,
            CopyState::Stale { .. }
            | CopyState::Failed { .. }
            | CopyState::Drifted { .. }
            | CopyState::Conflicts { .. } => force,
        }
    }

    fn report(&self, status: Status) -> ProfileReport {
        let mut r = ProfileReport::from_plan(&self.plan, &self.copy.path, status);
        r.links_rewritten = self.relinked.iter().map(|p| p.display().to_string()).collect();
        r.start = self.profile.start_command();
        r
    }
}

/// The most threads `--jobs` and `--update-jobs` may ask for: more only
/// costs memory and start-up time, and a huge number fails half-way with
/// EAGAIN after directories were made.
pub const MAX_JOBS: usize = 256;

/// Refuses thread counts above [`MAX_JOBS`] before anything is done.
pub fn check_jobs(flag: &str, n: Option<usize>) -> Result<()> {
    // The defaults as `--help` words them (`--jobs`: copy threads per core).
    let default = if flag == "--jobs" { "four per core" } else { "1" };
    match n {
        Some(0) => refuse(
            format!("{flag} 0 would run nothing"),
            format!("use 1 to {MAX_JOBS}, or leave {flag} out (the default, {default}, is usually best)"),
        ),
        Some(n) if n > MAX_JOBS => refuse(
            format!("{flag} {n} is more than {MAX_JOBS}"),
            format!("use at most {MAX_JOBS}, or leave {flag} out (the default, {default}, is usually best)"),
        ),
        _ => Ok(()),
    }
}

/// What the checks found: the homes, the output, the profiles (each with the
/// index of its home), the update step per home.
struct Checked {
    homes: Vec<Home>,
    out: PathBuf,
    profiles: Vec<(usize, Profile)>,
    /// Per home, preflighted (except in a dry-run); None with `--no-update`.
    update: Vec<Option<update::Settings>>,
}

/// One copy being built: its target, staging and what the update made of it.
struct Build<'a> {
    target: &'a Target,
    staging: Staging,
    stats: CopyStats,
    /// The digest of each file as copied (see `model::content`).
    digests: Known,
    update: Option<(UpdateResult, Record)>,
}

pub fn run(args: &SplitArgs) -> Result<RunOutcome> {
    let started = Instant::now();
    let checked = check(args)?;
    let mut targets = plan_targets(args, &checked)?;
    let mut report = new_report(args, &checked);
    let to_build: Vec<&Target> = targets.iter().filter(|t| t.builds(args.force)).collect();
    let once = update_once(args, &checked)?;
    let found = look_at_bases(args, &checked, &once, &targets)?;
    let staged: Vec<usize> = found.iter().filter(|f| f.stages_home()).map(base::Found::home).collect();
    preflight_builds(args, &checked, &to_build, &staged)?;
    if args.dry_run {
        report.profiles = dry_run(args, &targets, checked.update.iter().flatten().next())?;
        return Ok(finish(report, started));
    }
    // Dropped last: whatever ends the run, the directories it made on the way
    // to the output go again if nothing was put in them.
    let mut created = CreatedDirs::default();
    let _lock = lock_output(&checked.out, !once.is_empty() || !to_build.is_empty(), &mut created)?;
    // Each pack's tool runs once, on that pack's kept base.
    let mut bases = Vec::new();
    for f in found {
        let u = checked.update[f.home()].as_ref().expect("update_once picks updated homes");
        let b = f.prepare(args, &checked, u)?;
        report.warnings.extend(b.swept.iter().map(|p| format!("removed {} left by an interrupted run", p.display())));
        b.derive(args, &mut targets)?;
        bases.push(b);
    }
    let to_build: Vec<&Target> = targets.iter().filter(|t| t.builds(args.force)).collect();
    let mut builds = stage(&checked, to_build, &mut report, &mut created)?;
    copy_all(args, &mut builds)
        .context("copying failed; no copy was published and the staging directories were removed")?;
    match bases.is_empty() {
        false => {
            for b in &bases {
                b.hand_out(&mut builds)?;
            }
        }
        true if checked.update.iter().any(Option::is_some) => {
            update_all(&checked.update, &args.options, &mut builds)
                .context("the update step failed; no copy was published")?
        }
        true => {}
    }
    if interrupted() {
        anyhow::bail!("interrupted: no copy was published and the staging directories were removed");
    }
    for t in targets.iter().filter(|t| !t.builds(args.force)) {
        report.profiles.push(report_standing(args, t)?);
    }
    // The key the records are sealed with: made with the first copy the
    // output gets (a run that fails before leaves no key behind), never taken
    // from a file this account did not make for itself.
    let key = if builds.is_empty() { None } else { Some(SealKey::load_or_create(&checked.out)?) };
    for b in builds {
        let home = &checked.homes[b.target.home].path;
        let key = key.as_ref().expect("a key is made when a copy is built");
        report.profiles.push(publish(args, home, b, key)?);
    }
    report.profiles.sort_by_key(|p| targets.iter().position(|t| t.profile.name == p.profile));
    Ok(finish(report, started))
}

/// The kept base of each home updated once, as it is before anything is
/// written, and the copies that must not be rolled forward without `--force`.
fn look_at_bases(args: &SplitArgs, c: &Checked, once: &[usize], targets: &[Target]) -> Result<Vec<base::Found>> {
    let mut found = Vec::new();
    for &i in once {
        let u = c.update[i].as_ref().expect("update_once picks updated homes");
        found.push(base::look(c, i, u)?);
        base::refuse_held(args, u, targets.iter().filter(|t| t.home == i))?;
    }
    Ok(found)
}

/// The report's head: the homes, the product and the output.
fn new_report(args: &SplitArgs, checked: &Checked) -> Report {
    let home = &checked.homes[0];
    Report {
        dry_run: args.dry_run,
        home: Some(home.path.display().to_string()),
        homes: if checked.homes.len() > 1 {
            checked.homes.iter().map(|h| h.path.display().to_string()).collect()
        } else {
            vec![]
        },
        product: Some(checked.homes.iter().map(|h| h.product.as_str()).collect::<Vec<_>>().join(",")),
        version: Some(home.version.clone()),
        out: Some(checked.out.display().to_string()),
        ..Report::new(CommandName::Split)
    }
}

/// The homes updated in the once order (update the pack, then optimize each
/// copy: WSO2's update FAQ, one download for every profile of a pack), each
/// on its kept base: with one home unless `--update-each` asks for the
/// per-copy order; with several homes (component packs) only with
/// `--update-once`, and then each pack's tool runs once, for its own copies.
fn update_once(args: &SplitArgs, c: &Checked) -> Result<Vec<usize>> {
    if args.update_each || (!args.update_once && c.homes.len() > 1) {
        return Ok(vec![]);
    }
    Ok((0..c.homes.len()).filter(|&i| c.update[i].is_some()).collect())
}

/// What the real run checks before writing: the update's backup places,
/// the disk space, and no update of an earlier run still running.
fn preflight_builds(args: &SplitArgs, c: &Checked, to_build: &[&Target], once: &[usize]) -> Result<()> {
    if c.update.iter().any(Option::is_some) {
        for t in to_build {
            update::check_backup_dir(&update::backup_dir(&t.copy.path))?;
        }
    }
    let mut staged_home_bytes = 0;
    for &i in once {
        staged_home_bytes += Tree::scan(&c.homes[i].path)?.total_bytes();
    }
    check_space(&c.homes, &c.out, to_build, args.reflink, args.dry_run, staged_home_bytes)?;
    for t in to_build {
        crate::update::process::refuse_if_running(t.copy.path.parent().expect("copy has a parent"))?;
    }
    Ok(())
}

fn finish(mut report: Report, started: Instant) -> RunOutcome {
    report.duration_ms = started.elapsed().as_millis() as u64;
    RunOutcome::of_report(report)
}

/// For a version updated before it is optimized (`update-first`): the
/// plan of the pack as shipped, which the copy starts as.
fn shipped_plan(
    profile: &Profile,
    source: &Tree,
    updating: bool,
    args: &SplitArgs,
    home: &Home,
) -> Result<Option<Plan>> {
    if !(profile.facts.update_first && updating) {
        return Ok(None);
    }
    // The pack as shipped: settings that go in with the profile's template
    // come after the update, never into the file its backup keeps; settings
    // for the home's own file (--skip-config-optimization) are applied now.
    let mut opts = args.options.clone();
    if !opts.skip_config_optimization && profile.deployment_toml().is_some() {
        opts.config = Default::default();
    }
    let mut p = plan::compute(&profile.as_shipped(), source, &opts)?;
    p.tree.relativize_links_into(&home.path);
    Ok(Some(p))
}

/// Everything that can be refused before looking at the output's copies.
fn check(args: &SplitArgs) -> Result<Checked> {
    let catalog = load_catalog(args.profile_dir.as_deref())?;
    let homes = detect_homes(&args.homes, &catalog)?;
    let profiles = select(&catalog, &homes, args.profiles.as_deref())?;
    let names: Vec<&str> = profiles.iter().map(|(_, p)| p.name.as_str()).collect();
    args.options.config.check_in_run(&names, "--profiles")?;
    for h in &homes {
        standing::check_not_a_copy(&h.path, &catalog, &h.version)?;
    }
    let out = output::absolute(&args.out)?;
    crate::model::seal::SealKey::check(&out)?;
    for h in &homes {
        output::check_separate(&h.path, &out, &sys_dir_id(&h.path))?;
    }
    // First: an update of a killed run may still be dying in the output
    // (the once order: in the kept base) or beside a copy (checked again
    // for the copies to build).
    let base_dir = out.join(crate::engine::base::BASE_DIR);
    let profile_dirs: Vec<PathBuf> = profiles.iter().map(|(_, p)| out.join(&p.name)).collect();
    let mut dirs: Vec<&Path> = vec![&base_dir, &out];
    dirs.extend(profile_dirs.iter().map(PathBuf::as_path));
    crate::update::process::refuse_if_running_in(&dirs)?;
    let update = preflight_updates(args, &homes)?;
    Ok(Checked { homes, out, profiles, update })
}

/// The homes of one run: one home, or component packs (4.5.0+) of one
/// version, each pack once. Each is detected and checked not to be running.
fn detect_homes(paths: &[PathBuf], catalog: &Catalog) -> Result<Vec<Home>> {
    let mut homes: Vec<Home> = Vec::new();
    for p in paths {
        let h = home::detect(p, catalog)?;
        home::check_not_running(&h.path)?;
        if let Some(o) = homes.iter().find(|o| o.path == h.path || o.product == h.product) {
            return refuse(
                format!("{} and {} are both {} homes", o.path.display(), h.path.display(), h.product),
                "give each pack once: split makes every profile of a pack from one home",
            );
        }
        homes.push(h);
    }
    let alone = |h: &Home| catalog.version_facts(&h.product, &h.version).and_then(|f| f.refuse_alone.clone());
    if let [h] = homes.as_slice() {
        if let Some(why) = alone(h) {
            let hint = catalog.facts(&h.product, &h.version).hint.unwrap_or_default();
            return refuse(format!("{}: {why}", h.path.display()), hint);
        }
        return Ok(homes);
    }
    // An all-in-one pack joins other packs only where WSO2 documents it: the
    // 4.5.0+ pack (one node of the Simple Scalable Setup) beside a gateway.
    if let Some(h) = homes.iter().find(|h| h.product == "wso2am") {
        if alone(h).is_none() {
            return refuse(
                format!(
                    "{} is an all-in-one API-M {} home; several homes are for the component packs of one 4.5.0+ deployment (with a 4.5.0+ all-in-one pack beside gateways)",
                    h.path.display(),
                    h.version
                ),
                "split an all-in-one home of 4.4.0 or earlier on its own",
            );
        }
        if !homes.iter().any(|o| o.product == "wso2am-universal-gw") {
            return refuse(
                format!(
                    "{} is an all-in-one API-M {} home, but no Universal Gateway pack is given with it",
                    h.path.display(),
                    h.version
                ),
                "WSO2's patterns with an all-in-one node add Universal Gateway nodes: apim-profiles split AIO_HOME GW_HOME [ACP_HOME for a Key Manager] --out DIR",
            );
        }
    }
    if let Some(h) = homes.iter().find(|h| h.version != homes[0].version) {
        let first = &homes[0];
        return refuse(
            format!(
                "{} is {} {}, but {} is {} {}",
                h.path.display(),
                h.product,
                h.version,
                first.path.display(),
                first.product,
                first.version
            ),
            "split the packs of one version together",
        );
    }
    Ok(homes)
}

/// The profiles to make, each with the index of its home: the named ones
/// (each name belongs to one of the homes' packs), or every home's defaults.
fn select(catalog: &Catalog, homes: &[Home], names: Option<&[String]>) -> Result<Vec<(usize, Profile)>> {
    let Some(names) = names else {
        let run: Vec<&str> = homes.iter().map(|h| h.product.as_str()).collect();
        let mut out = Vec::new();
        for (i, h) in homes.iter().enumerate() {
            catalog.select(&h.product, &h.version, Some(&[]))?; // a pack this build has no profiles for
            let defaults = catalog.for_pack(&h.product, &h.version).filter(|p| p.default_in(&run));
            out.extend(defaults.cloned().map(|p| (i, p)));
        }
        return Ok(out);
    };
    if let [h] = homes {
        return Ok(catalog.select(&h.product, &h.version, Some(names))?.into_iter().map(|p| (0, p)).collect());
    }
    let mut out: Vec<(usize, Profile)> = Vec::new();
    for n in names {
        let owner = homes.iter().position(|h| catalog.for_pack(&h.product, &h.version).any(|p| p.name == n.trim()));
        let i = owner.unwrap_or(0);
        let p = catalog.select(&homes[i].product, &homes[i].version, Some(std::slice::from_ref(n)))?.remove(0);
        if out.iter().any(|(_, o)| o.name == p.name) {
            return refuse(format!("profile `{}` is named twice", p.name), "name each profile once");
        }
        out.push((i, p));
    }
    Ok(out)
}

/// Update settings per home (the same flags; each pack runs its own update
/// tool); credentials are asked once.
fn preflight_updates(args: &SplitArgs, homes: &[Home]) -> Result<Vec<Option<update::Settings>>> {
    let Some(base) = &args.update else {
        return Ok(homes.iter().map(|_| None).collect());
    };
    if homes.len() > 1 && base.zip.is_some() {
        return refuse(
            "--update-zip with several homes",
            "an update archive is made for one product: update each pack's copies with apim-profiles update --update-zip",
        );
    }
    let mut out = Vec::new();
    let mut ready = None;
    for h in homes {
        let mut u = base.clone();
        u.ready = ready.clone();
        u.preview = args.dry_run;
        update::preflight(&mut u, &h.path)?;
        ready = u.ready.clone();
        out.push(Some(u));
    }
    Ok(out)
}

/// What each copy already there is, one copy after the other: each is a
/// read of its record in step with a walk of its tree, whose metadata is read
/// on all threads a batch at a time (side by side, the copies' walks would
/// hold a directory's names each): the targets.
fn examine_all(planned: Vec<Planned>) -> Result<Vec<Target>> {
    // The directory at the final place is identified before it is examined:
    // one swapped in meanwhile is not the one publishing may replace.
    let found: Vec<_> = planned
        .iter()
        .map(|p| {
            let seen = crate::safe_fs::dev_ino_nofollow(&p.path);
            (seen, standing::examine(&p.path, &p.profile.name, &p.record))
        })
        .collect();
    let targets = planned.into_iter().zip(found).map(|(p, (seen, f))| {
        Ok(Target {
            home: p.home,
            profile: p.profile,
            plan: p.plan,
            shipped: p.shipped,
            copy: Copy::examined(p.path, f?),
            record: p.record,
            seen,
            relinked: p.relinked,
            rolls: false,
            reuse: None,
        })
    });
    targets.collect()
}

/// The source's listing goes into every record written, and names what
/// changed when a copy there is stale: a run that writes no record and finds
/// no stale copy (a re-run over current copies, most dry-runs) makes none (on
/// a 200,000-file home it is 20 MB). A stale copy is examined again with it.
fn list_sources(args: &SplitArgs, c: &Checked, sources: &[Tree], targets: &mut [Target]) -> Result<()> {
    for (i, source) in sources.iter().enumerate() {
        let stale = |t: &Target| matches!(t.copy.standing, CopyState::Stale { .. });
        let writes = |t: &Target| !args.dry_run && t.builds(args.force);
        let needed = c.update[i].is_some() || targets.iter().filter(|t| t.home == i).any(|t| writes(t) || stale(t));
        if !needed {
            continue;
        }
        let listing = std::sync::Arc::new(Fingerprint::of_tree(source));
        for t in targets.iter_mut().filter(|t| t.home == i) {
            t.record.source_entries = Some(listing.clone());
            if stale(t) {
                let path = std::mem::take(&mut t.copy.path);
                let found = standing::examine(&path, &t.profile.name, &t.record)?;
                t.copy = Copy::examined(path, found);
            }
        }
    }
    Ok(())
}

/// The plan of each profile on its home, and what its copy is now. A stale
/// copy is refused without `--force`.
fn plan_targets(args: &SplitArgs, c: &Checked) -> Result<Vec<Target>> {
    let planning = progress::phase(args.progress, "plan: reading the home and planning each profile");
    let mut planned = Vec::new();
    let mut entries = 0;
    let mut sources = Vec::new();
    for (i, home) in c.homes.iter().enumerate() {
        let source = Tree::scan(&home.path)?;
        // The output may not be an alias of any directory of the home either.
        output::check_separate(&home.path, &c.out, &source.dir_ids())?;
        let fingerprint = tree::metadata_digest(&source);
        entries += source.len();
        for profile in c.profiles.iter().filter(|(h, _)| *h == i).map(|(_, p)| p) {
            let mut plan = plan::compute(profile, &source, &args.options)?;
            plan::check_met(&plan)?;
            let relinked = plan.tree.relativize_links_into(&home.path);
            let shipped = shipped_plan(profile, &source, c.update[i].is_some(), args, home)?;
            let final_path = output::copy_path(&c.out, &profile.name, &home.dir_name);
            let record = record_for(profile, home, &args.options, Some(fingerprint.clone()), &plan);
            let (profile, home, path) = (profile.clone(), i, final_path);
            planned.push(Planned { home, profile, plan, shipped, path, record, relinked });
        }
        sources.push(source);
    }
    let mut targets = examine_all(planned)?;
    list_sources(args, c, &sources, &mut targets)?;
    drop(sources);
    let to_copy = human_bytes(targets.iter().map(|t| t.plan.tree.total_bytes()).sum());
    let n = (targets.len(), entries);
    progress::done(planning, format!("plan: {} profile(s), {} entries in the home, {to_copy} to copy", n.0, n.1));
    if !once_order(args, c) {
        refuse_an_ignored_update(args, &targets)?;
    }
    // Every stale copy is named, so that one --force is decided knowing them all.
    let stale: Vec<(String, String)> = targets
        .iter()
        .filter(|_| !args.force && !args.dry_run)
        .filter_map(|t| match (&t.copy.standing, t.copy.standing.why()) {
            (CopyState::Stale { .. } | CopyState::Failed { .. }, Some(why)) => {
                Some((t.copy.path.display().to_string(), why))
            }
            _ => None,
        })
        .collect();
    match stale.as_slice() {
        [] => Ok(targets),
        [(path, why)] => refuse(
            format!("{path} exists and is stale: {why}"),
            "pass --force to rebuild it (the old copy stays until the new one is complete), or --dry-run to preview the replacement",
        ),
        all => refuse(
            format!(
                "{} copies exist and are stale: {}",
                all.len(),
                all.iter().map(|(path, why)| format!("{path} ({why})")).collect::<Vec<_>>().join("; ")
            ),
            "pass --force to rebuild them (each old copy stays until its new one is complete), or --dry-run to preview the replacements",
        ),
    }
}

/// Whether the update runs once, on the kept base, and the copies are
/// derived from it (see [`update_once`]).
fn once_order(args: &SplitArgs, c: &Checked) -> bool {
    !args.update_each && (args.update_once || c.homes.len() == 1) && c.update.first().is_some_and(Option::is_some)
}

/// In the per-copy order, an update asked of copies that are current and stay as they are is never
/// silently skipped: a copy made without the update, or at another level
/// than `--update-level`, is refused with the command that updates it.
fn refuse_an_ignored_update(args: &SplitArgs, targets: &[Target]) -> Result<()> {
    let Some(u) = &args.update else { return Ok(()) };
    let mut behind = Vec::new();
    for t in targets.iter().filter(|t| matches!(t.copy.standing, CopyState::Current)) {
        let Some(rec) = &t.copy.record else { continue };
        let level = rec.update.as_ref().and_then(RecordedUpdate::level);
        let why = match (&rec.update, &u.level) {
            (None, _) => "was made without the update".to_string(),
            (Some(_), Some(want)) if !level.as_deref().is_some_and(|l| same_level(l, want)) => {
                format!("is at update level {}, not {want}", level.as_deref().unwrap_or("unknown"))
            }
            _ => continue,
        };
        behind.push((t.copy.path.display().to_string(), why));
    }
    let Some((first, why)) = behind.first() else { return Ok(()) };
    let paths: Vec<&str> = behind.iter().map(|(p, _)| p.as_str()).collect();
    let level = u.level.as_ref().map(|l| format!(" --update-level {l}")).unwrap_or_default();
    refuse(
        format!("{first} {why}{}: split does not update copies that are current", more(behind.len())),
        format!("update them in place with: apim-profiles update{level} {}", paths.join(" ")),
    )
}

fn more(n: usize) -> String {
    if n > 1 {
        format!(" (and {} more)", n - 1)
    } else {
        String::new()
    }
}

/// `7` or `4.2.0.7` names the level `4.2.0.7`.
fn same_level(have: &str, want: &str) -> bool {
    have == want || (!want.contains('.') && have.rsplit('.').next() == Some(want))
}

fn dry_run(args: &SplitArgs, targets: &[Target], u: Option<&update::Settings>) -> Result<Vec<ProfileReport>> {
    let mut out = Vec::new();
    for t in targets {
        let (status, reason) = match &t.copy.standing {
            CopyState::Absent => (Status::WouldCreate, None),
            CopyState::Current => (Status::Current, None),
            CopyState::Conflicts { .. } if !args.force => (Status::Conflicts, why_not_current(&t.copy.standing)),
            state => (Status::WouldReplace, why_not_current(state)),
        };
        let mut r = t.report(status);
        r.reason = reason;
        if let (Some(u), false) = (u, matches!(status, Status::Current | Status::Conflicts)) {
            r.notes.extend(u.ready.as_ref().map(|ready| ready.describe(u)));
        }
        r.diff = Some(diff::diff(&t.plan)?);
        r.settings = diff::settings_summary(&t.plan)?;
        out.push(r);
    }
    Ok(out)
}

/// Why a copy that is there is not current, in one line (the words are
/// `model::standing`'s, shared with `status`).
fn why_not_current(state: &CopyState) -> Option<String> {
    let why = state.why()?;
    Some(match state {
        CopyState::Stale { .. } | CopyState::Failed { .. } => format!("stale: {why}"),
        CopyState::Drifted { .. } => format!("drifted: {why}"),
        _ => why,
    })
}

/// The output's lock, taken when something will be written.
fn lock_output(out: &Path, writing: bool, created: &mut CreatedDirs) -> Result<Option<Lock>> {
    if !writing {
        return Ok(None);
    }
    crate::signals::start_writing();
    created.create_all(out)?;
    Ok(Some(Lock::acquire(out)?))
}

/// A staging place beside each copy to build, after removing what killed runs
/// left there.
fn stage<'a>(
    c: &Checked,
    to_build: Vec<&'a Target>,
    report: &mut Report,
    created: &mut CreatedDirs,
) -> Result<Vec<Build<'a>>> {
    let mut builds = Vec::new();
    for target in to_build {
        let parent = target.copy.path.parent().expect("copy has a parent");
        created.create_all(parent)?;
        // Nothing is removed or written in the profile directory before it
        // is known to be ours; the copy is then written beneath its handle.
        let dir = output::open_profile_dir(parent)?;
        for stale in output::remove_stale_staging(&target.copy.path, &c.homes[target.home].dir_name)? {
            report.warnings.push(format!("removed {} left by an interrupted run", stale.display()));
        }
        let staging = Staging::for_copy_in(&target.copy.path, dir);
        builds.push(Build { target, staging, stats: CopyStats::default(), digests: Known::default(), update: None });
    }
    Ok(builds)
}

/// Copies every plan's tree into its staging, in one parallel pass.
fn copy_all(args: &SplitArgs, builds: &mut [Build<'_>]) -> Result<()> {
    // A version updated before it is optimized starts as the pack as shipped.
    let jobs: Vec<Job<'_>> = builds
        .iter()
        .map(|b| Job {
            plan: b.target.shipped.as_ref().unwrap_or(&b.target.plan),
            dest: b.staging.write_path(),
            flush: Flush::Large,
            reuse: b.target.reuse.as_ref(),
        })
        .collect();
    for (b, c) in builds.iter_mut().zip(copy_jobs(args, &jobs, "copying")?) {
        b.stats = c.stats;
        b.digests = c.digests;
    }
    Ok(())
}

/// Writes the jobs' trees with a progress bar on a terminal.
fn copy_jobs(args: &SplitArgs, jobs: &[Job<'_>], what: &str) -> Result<Vec<Copied>> {
    let total: u64 = jobs.iter().map(|j| j.plan.tree.total_bytes()).sum();
    let bar = progress::copy_bar(args.progress, what, total);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(writeback::copy_threads(args.jobs)).build()?;
    let r = pool.install(|| copy::materialize(jobs, args.reflink, bar.as_ref().map(|b| b as &dyn copy::Progress)));
    if let Some(b) = bar {
        b.finish();
    }
    r
}

/// The update in every staged copy, with its home's settings. Update runs
/// share ~/.wso2-updates: by default one at a time.
fn update_all(settings: &[Option<update::Settings>], opts: &Options, builds: &mut [Build<'_>]) -> Result<()> {
    use rayon::prelude::*;
    let jobs = settings.iter().flatten().map(|u| u.jobs).max().unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.max(1)).build()?;
    pool.install(|| {
        builds.par_iter_mut().try_for_each(|b| -> Result<()> {
            let t = b.target;
            let Some(u) = &settings[t.home] else { return Ok(()) };
            let mut rec = t.record.clone();
            let (res, _) = update::update_copy(u, b.staging.path(), &t.copy.path, &t.profile, opts, &mut rec)?;
            b.update = Some((res, rec));
            Ok(())
        })
    })
}

/// A copy this run leaves as it is: current, drifted (without `--force`:
/// nothing touched, the differences listed) or waiting on conflicts.
fn report_standing(args: &SplitArgs, t: &Target) -> Result<ProfileReport> {
    if matches!(t.copy.standing, CopyState::Drifted { .. } | CopyState::Conflicts { .. }) {
        let recorded = t.copy.record.as_ref().and_then(|h| h.update.as_ref());
        return Ok(t.report(Status::Current).held_back(CommandName::Split, &t.copy.standing, recorded));
    }
    let mut r = t.report(Status::Current);
    r.set_size(t.copy.size);
    if let Some(f) = args.archive {
        let path = archive::archive_path(&t.copy.path, f);
        // Anything but a regular file there (a planted link) is replaced.
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
            archive::write(&t.copy.path, f)?;
            r.changed = true;
        }
        r.archive = Some(path.display().to_string());
    }
    Ok(r)
}

/// Publishes a built copy (or keeps one whose update failed for inspection)
/// and says what became of it. The copy's root takes the owner, mode, times
/// and attributes of `home`, as with `cp -a` of the home.
fn publish(args: &SplitArgs, home: &Path, b: Build<'_>, key: &SealKey) -> Result<ProfileReport> {
    let t = b.target;
    let built = match t.copy.standing {
        CopyState::Absent => Status::Created,
        _ if t.rolls => Status::Updated,
        _ => Status::Replaced,
    };
    let mut r = t.report(built);
    if let (true, CopyState::Drifted { differences }) = (t.rolls, &t.copy.standing) {
        r.set_drift(differences);
        r.notes.push("rolled forward with --force: the changes listed under drift were discarded".into());
    }
    r.add_copy(&b.stats);
    r.changed = true;
    let mut rec = t.record.clone();
    if let Some((mut res, updated)) = b.update {
        rec = updated;
        r.duration_ms = res.duration_ms;
        if !res.keeps_copy() {
            return keep_failed(r, res, rec, (b.staging, key), t);
        }
        update::result::relocate(&mut res, b.staging.path(), &t.copy.path);
        r.update = Some(res.clone());
        r.notes.extend(res.notes.iter().cloned());
        if res.status == UpdateStatus::Conflicts {
            r.status = Status::Conflicts;
            r.error = Some(res.message.clone());
        }
        rec.update = Some(RecordedUpdate::of(&res));
    }
    standing::stamp_with(b.staging.path(), &mut rec, Some(&b.digests))?;
    r.set_size(rec.copy_fingerprint.as_deref().map(|f| f.size()));
    record::write(b.staging.path(), &rec, key)?;
    fidelity::finish_root(home, b.staging.path())?;
    let reused = reused_ids(t, &rec);
    if let Err(e) = b.staging.publish(&t.copy.path, t.seen) {
        // Someone put or swapped a directory at the final place meanwhile: it
        // is left alone, and this profile fails.
        let Some(taken) = e.downcast_ref::<output::PlaceTaken>() else { return Err(e) };
        r.status = Status::Failed;
        r.error = Some(taken.to_string());
        return Ok(r);
    }
    if !reused.is_empty() {
        base::restamp(&t.copy.path, &mut rec, &reused, key)?;
    }
    // A copy waiting for a person to resolve update conflicts is not finished:
    // it gets no archive.
    if let (Some(f), false) = (args.archive, r.status == Status::Conflicts) {
        let (path, _) = archive::write(&t.copy.path, f)?;
        r.archive = Some(path.display().to_string());
    }
    Ok(r)
}

/// The (device, inode) of the files a copy rolled forward took from its
/// earlier self: as its record stamps them in staging.
fn reused_ids(t: &Target, rec: &Record) -> std::collections::HashSet<(u64, u64)> {
    let Some(reuse) = &t.reuse else { return Default::default() };
    let ids: std::collections::HashSet<(u64, u64)> = reuse.files.values().map(|f| f.id).collect();
    let Some(fp) = &rec.copy_fingerprint else { return Default::default() };
    fp.iter().filter_map(|(_, st)| st.id).filter(|id| ids.contains(id)).collect()
}

/// Keeps a copy whose update failed beside the final place (one per
/// profile), with its record and logs; every path the report names exists.
fn keep_failed(
    mut r: ProfileReport,
    mut res: UpdateResult,
    mut rec: Record,
    (staging, key): (Staging, &SealKey),
    t: &Target,
) -> Result<ProfileReport> {
    rec.update = Some(RecordedUpdate::of(&res));
    record::write(staging.path(), &rec, key)?;
    let staged = staging.path().to_path_buf();
    let (kept, note) = update::keep_failed(staging, &t.copy.path, &t.profile.name)?;
    update::result::relocate(&mut res, &staged, &kept);
    r.status = Status::Failed;
    r.path = kept.display().to_string();
    r.path_hex = crate::report::hex_if_not_utf8(&kept);
    r.error = Some(res.message.clone());
    r.notes.extend(res.notes.iter().cloned());
    r.notes.extend(note);
    r.notes.push(format!(
        "the copy whose update failed is kept for inspection at {} (logs: {})",
        kept.display(),
        res.logs
    ));
    r.update = Some(res);
    Ok(r)
}

/// The (device, inode) of the home itself, for the first overlap check
/// (before the scan knows every directory of the home).
fn sys_dir_id(home: &Path) -> std::collections::HashSet<(u64, u64)> {
    crate::safe_fs::dev_ino(home).into_iter().collect()
}

/// Refuses before writing when the copies will not fit. Clones cost no space,
/// so where a probe clone works only metadata is counted.
fn check_space(
    homes: &[Home],
    out: &Path,
    targets: &[&Target],
    reflink: Reflink,
    dry_run: bool,
    extra: u64,
) -> Result<()> {
    if targets.is_empty() {
        return Ok(());
    }
    let home = &homes[targets[0].home];
    let need: u64 = targets.iter().map(|t| t.plan.tree.total_bytes() + 4096 * t.plan.tree.len() as u64).sum();
    let mut probe_dir = out.to_path_buf();
    while !probe_dir.exists() {
        if !probe_dir.pop() {
            return Ok(());
        }
    }
    // A dry-run writes nothing, not even a probe clone: it refuses only what
    // no clone could make fit (the metadata alone).
    let cloning = !dry_run
        && targets
            .first()
            .and_then(|t| t.plan.tree.iter().find(|(_, e)| e.size() > 0).map(|(p, _)| home.path.join(p)))
            .is_some_and(|f| copy::probe_reflink(&f, &probe_dir));
    if reflink == Reflink::Always && !cloning && !dry_run {
        return refuse(
            format!("--reflink always: files of {} cannot be cloned into {}", home.path.display(), probe_dir.display()),
            "cloning needs one file system with reflink support (XFS with reflink=1, Btrfs) for home and output; use --reflink auto to copy where it cannot",
        );
    }
    let need =
        if cloning || dry_run { targets.iter().map(|t| 4096 * t.plan.tree.len() as u64).sum() } else { need + extra };
    let free = hooks::pretend_free_bytes().or_else(|| sys::free_bytes(&probe_dir));
    if let Some(free) = free {
        if free < need {
            return refuse(
                format!(
                    "not enough disk space in {}: the copies need {}, {} is free",
                    probe_dir.display(),
                    human_bytes(need),
                    human_bytes(free)
                ),
                "free some space, choose an --out on another file system, or split fewer --profiles at a time",
            );
        }
    }
    Ok(())
}
