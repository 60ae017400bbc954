//! `split`: one optimized copy of a home per profile. Everything that can be
//! refused is checked before the first write; copies are built in staging and
//! published with a rename, so a failure leaves no half-made copy behind.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::copy::{self, Job, Reflink};
use crate::error::{refuse, Finished};
use crate::home::{self, Home};
use crate::out::{self, Lock};
use crate::plan::{self, Options, Plan};
use crate::profile::{Catalog, Profile};
use crate::record::{self, Record};
use crate::report::{ProfileReport, Report};
use crate::tree::{self, Tree};
use crate::update;

/// Everything `split` takes from its command line.
#[derive(Debug, Clone, Default)]
pub struct SplitArgs {
    pub home: PathBuf,
    pub out: PathBuf,
    pub profiles: Option<Vec<String>>,
    pub dry_run: bool,
    pub force: bool,
    pub jobs: Option<usize>,
    pub reflink: Reflink,
    pub options: Options,
    pub profile_dir: Option<PathBuf>,
    /// None with `--no-update`.
    pub update: Option<update::Settings>,
    /// Show a progress bar (a terminal, not `--json`).
    pub progress: bool,
    /// Also write `<DIR>/<profile>/<home>.<ext>` of each finished copy.
    pub archive: Option<crate::archive::Format>,
}

/// What each selected profile's copy is before this run.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Absent,
    Current,
    /// Made by this tool from other inputs; replaced only with `--force`.
    Stale(String),
}

struct Target {
    profile: Profile,
    plan: Plan,
    final_path: PathBuf,
    record: Record,
    state: State,
}

pub fn load_catalog(profile_dir: Option<&Path>) -> Result<Catalog> {
    match profile_dir {
        Some(d) => Catalog::from_dir(d),
        None => Catalog::embedded(),
    }
}

/// The record a copy made from these inputs carries.
pub fn record_for(profile: &Profile, home: &Home, opts: &Options, fingerprint: Option<String>, plan: &Plan) -> Record {
    Record {
        tool: "apim-profiles".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        profile: profile.name.clone(),
        product: home.product.clone(),
        version: home.version.clone(),
        profile_sha256: tree::sha256_hex(profile.source_text.as_bytes()),
        skip_config_optimization: opts.skip_config_optimization,
        options_sha256: options_hash(opts),
        source: fingerprint.as_ref().map(|_| home.path.display().to_string()),
        source_fingerprint: fingerprint,
        deployment_toml_sha256: plan.written_toml_sha256.clone(),
        update: None,
    }
}

/// A hash of every option that shapes a copy. Settings may hold secrets, so
/// only their hash is kept.
pub fn options_hash(opts: &Options) -> String {
    let text = format!("skip={};config={}", opts.skip_config_optimization, opts.config.canonical());
    tree::sha256_hex(text.as_bytes())
}

pub fn run(args: &SplitArgs) -> Result<Report> {
    let started = Instant::now();
    let home = home::detect(&args.home)?;
    home::check_not_running(&home.path)?;
    let catalog = load_catalog(args.profile_dir.as_deref())?;
    let profiles = catalog.select(&home.version, args.profiles.as_deref())?;
    let out = out::absolute(&args.out)?;
    out::check_separate(&home.path, &out)?;
    let mut update_settings = args.update.clone();
    if let Some(u) = update_settings.as_mut() {
        if !args.dry_run {
            update::preflight(u, &home.path)?;
        }
    }

    let planning = crate::progress::phase(args.progress, "plan: reading the home and planning each profile");
    let source = Tree::scan(&home.path)?;
    let fingerprint = tree::fingerprint(&source);
    let mut targets = Vec::new();
    for profile in profiles {
        let plan = plan::compute(&profile, &source, &args.options)?;
        let final_path = out::copy_path(&out, &profile.name, &home.dir_name);
        let record = record_for(&profile, &home, &args.options, Some(fingerprint.clone()), &plan);
        let state = state_of(&final_path, &record)?;
        targets.push(Target { profile, plan, final_path, record, state });
    }
    let to_copy: u64 = targets.iter().map(|t| t.plan.tree.total_bytes()).sum();
    crate::progress::done(
        planning,
        format!(
            "plan: {} profile(s), {} entries in the home, {} to copy",
            targets.len(),
            source.entries.len(),
            crate::report::human_bytes(to_copy)
        ),
    );
    // Refusals that depend on what is already in the output.
    for t in &targets {
        if let State::Stale(why) = &t.state {
            if !args.force {
                return refuse(
                    format!("{} exists and is stale: {why}", t.final_path.display()),
                    "pass --force to rebuild it (the old copy stays until the new one is complete)",
                );
            }
        }
    }

    let mut report = Report {
        command: "split".into(),
        dry_run: args.dry_run,
        home: Some(home.path.display().to_string()),
        product: Some(home.product.clone()),
        version: Some(home.version.clone()),
        out: Some(out.display().to_string()),
        ..Default::default()
    };

    if args.dry_run {
        for t in &targets {
            let mut r = ProfileReport::from_plan(&t.plan, &t.final_path.display().to_string());
            r.status = match &t.state {
                State::Absent => "would-create".into(),
                State::Current => "current".into(),
                State::Stale(_) => "would-replace".into(),
            };
            r.diff = Some(crate::dryrun::diff(&t.plan)?);
            r.settings = crate::dryrun::settings_summary(&t.plan)?;
            report.profiles.push(r);
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let to_build: Vec<&Target> = targets.iter().filter(|t| t.state != State::Current).collect();
    check_space(&home, &out, &to_build, args.reflink)?;

    if !to_build.is_empty() {
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    }
    let _lock = if to_build.is_empty() { None } else { Some(Lock::acquire(&out)?) };

    let mut jobs = Vec::new();
    for t in &to_build {
        let parent = t.final_path.parent().expect("copy has a parent");
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        for stale in out::remove_stale_staging(&t.final_path, &home.dir_name)? {
            report.warnings.push(format!("removed {} left by an interrupted run", stale.display()));
        }
        jobs.push(Job { plan: &t.plan, dest: out::staging_path(&t.final_path) });
    }

    let built = build(args, &jobs);
    let stats = match built {
        Ok(s) => s,
        Err(e) => {
            for j in &jobs {
                let _ = out::remove_tree(&j.dest);
            }
            return Err(e.context("copying failed; no copy was published and the staging directories were removed"));
        }
    };

    // Update runs share ~/.wso2-updates: by default one at a time.
    let mut updates: Vec<Option<(update::UpdateResult, Record)>> = to_build.iter().map(|_| None).collect();
    if let Some(u) = &update_settings {
        use rayon::prelude::*;
        let pool = rayon::ThreadPoolBuilder::new().num_threads(u.jobs.max(1)).build()?;
        let results: Vec<Result<(update::UpdateResult, Record)>> = pool.install(|| {
            to_build
                .par_iter()
                .zip(jobs.par_iter())
                .map(|(t, j)| {
                    let mut rec = t.record.clone();
                    update::update_and_reoptimize(u, &j.dest, &t.final_path, &t.profile, &args.options, &mut rec)
                        .map(|r| (r, rec))
                })
                .collect()
        });
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(x) => updates[i] = Some(x),
                Err(e) => {
                    for j in &jobs {
                        let _ = out::remove_tree(&j.dest);
                    }
                    return Err(e.context("the update step failed; no copy was published"));
                }
            }
        }
    }

    if copy::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        for j in &jobs {
            let _ = out::remove_tree(&j.dest);
        }
        anyhow::bail!("interrupted: no copy was published and the staging directories were removed");
    }
    let mut failed = false;
    let mut conflicts = false;
    for t in &targets {
        let mut r = ProfileReport::from_plan(&t.plan, &t.final_path.display().to_string());
        if t.state == State::Current {
            r.status = "current".into();
            if args.update.is_some() && record::read(&t.final_path)?.is_some_and(|rec| rec.update.is_none()) {
                r.notes.push(format!(
                    "this copy was made without the update and is current otherwise; to update it run: apim-profiles update {}",
                    t.final_path.display()
                ));
            }
            if let Some(f) = args.archive {
                let path = crate::archive::archive_path(&t.final_path, f);
                if !path.exists() {
                    crate::archive::write(&t.final_path, f)?;
                    r.changed = true;
                }
                r.archive = Some(path.display().to_string());
            }
            report.profiles.push(r);
            continue;
        }
        let idx = to_build.iter().position(|b| std::ptr::eq(*b, t)).expect("built");
        let staged = &jobs[idx].dest;
        r.add_copy(&stats[idx]);
        let mut rec = t.record.clone();
        if let Some((res, updated_rec)) = updates[idx].take() {
            rec = updated_rec;
            r.update = Some(res.to_json());
            r.notes.extend(res.notes.iter().cloned());
            r.duration_ms = res.duration_ms;
            if !res.keeps_copy() {
                failed = true;
                r.status = "failed".into();
                r.error = Some(res.message.clone());
                let kept = update::keep_failed(staged, &t.final_path)?;
                r.notes.push(format!(
                    "the copy whose update failed is kept for inspection at {} (logs in its updates/logs/)",
                    kept.display()
                ));
                r.changed = true;
                report.profiles.push(r);
                continue;
            }
            if res.status == update::Status::Conflicts {
                conflicts = true;
                r.error = Some(res.message.clone());
            }
            rec.update = Some(res.to_json());
        }
        record::write(staged, &rec)?;
        out::publish(staged, &t.final_path)?;
        r.changed = true;
        if let (Some(f), false) = (args.archive, conflicts_here(&r)) {
            let (path, _) = crate::archive::write(&t.final_path, f)?;
            r.archive = Some(path.display().to_string());
        }
        r.status = match (&t.state, r.update.as_ref().and_then(|u| u.get("status")).and_then(|s| s.as_str())) {
            (_, Some("conflicts")) => "conflicts".into(),
            (State::Stale(_), _) => "replaced".into(),
            _ => "created".into(),
        };
        report.profiles.push(r);
    }
    let worst = if failed {
        crate::error::exit::FAILED
    } else if conflicts {
        crate::error::exit::CONFLICTS
    } else {
        0
    };
    report.changed = report.profiles.iter().any(|p| p.changed);
    report.duration_ms = started.elapsed().as_millis() as u64;
    if worst != 0 {
        report.warnings.push(update::exit_advice(worst));
        return Err(anyhow::Error::new(Finished { code: worst }).context(ReportCarrier(report)));
    }
    Ok(report)
}

/// A copy waiting for a person to resolve update conflicts is not finished:
/// it gets no archive.
fn conflicts_here(r: &ProfileReport) -> bool {
    r.update.as_ref().and_then(|u| u.get("status")).and_then(|s| s.as_str()) == Some("conflicts")
}

/// A report travelling with a non-zero exit so that `main` still prints it.
#[derive(Debug)]
pub struct ReportCarrier(pub Report);

impl std::fmt::Display for ReportCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the run finished with profiles that need attention")
    }
}

fn build(args: &SplitArgs, jobs: &[Job<'_>]) -> Result<Vec<copy::CopyStats>> {
    let total: u64 = jobs.iter().map(|j| j.plan.tree.total_bytes()).sum();
    let bar = crate::progress::copy_bar(args.progress, total);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;
    let r = pool.install(|| copy::materialize(jobs, args.reflink, bar.as_ref()));
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    r
}

fn state_of(final_path: &Path, wanted: &Record) -> Result<State> {
    if std::fs::symlink_metadata(final_path).is_err() {
        return Ok(State::Absent);
    }
    match record::read(final_path) {
        Ok(Some(have)) if have.same_inputs(wanted) => Ok(State::Current),
        Ok(Some(have)) => {
            let why = if have.profile != wanted.profile {
                format!("it is a copy for profile {}", have.profile)
            } else if have.source_fingerprint != wanted.source_fingerprint {
                "the source home changed since it was made".to_string()
            } else if have.options_sha256 != wanted.options_sha256 {
                "it was made with other options".to_string()
            } else if have.profile_sha256 != wanted.profile_sha256 {
                "the profile definition changed".to_string()
            } else {
                format!("it was made by apim-profiles {}", have.tool_version)
            };
            Ok(State::Stale(why))
        }
        _ => refuse(
            format!(
                "{} already exists and was not made by apim-profiles (no {} record in it)",
                final_path.display(),
                record::RECORD_FILE
            ),
            "move it away or choose another --out; apim-profiles never replaces a directory it did not make",
        ),
    }
}

/// Refuses before writing when the copies will not fit. Clones cost no space,
/// so where a probe clone works only metadata is counted.
fn check_space(home: &Home, out: &Path, targets: &[&Target], reflink: Reflink) -> Result<()> {
    if targets.is_empty() {
        return Ok(());
    }
    let need: u64 = targets.iter().map(|t| t.plan.tree.total_bytes() + 4096 * t.plan.tree.entries.len() as u64).sum();
    let mut probe_dir = out.to_path_buf();
    while !probe_dir.exists() {
        if !probe_dir.pop() {
            return Ok(());
        }
    }
    let cloning = targets
        .first()
        .and_then(|t| t.plan.tree.entries.iter().find(|(_, e)| e.size() > 0).map(|(p, _)| home.path.join(p)))
        .is_some_and(|f| copy::probe_reflink(&f, &probe_dir));
    if reflink == Reflink::Always && !cloning {
        return refuse(
            format!("--reflink always: files of {} cannot be cloned into {}", home.path.display(), probe_dir.display()),
            "cloning needs one file system with reflink support (XFS with reflink=1, Btrfs) for home and output; use --reflink auto to copy where it cannot",
        );
    }
    let need = if cloning { targets.iter().map(|t| 4096 * t.plan.tree.entries.len() as u64).sum() } else { need };
    // APIM_PROFILES_PRETEND_FREE_BYTES lets the test suite exercise the
    // refusal without filling a disk.
    let free = std::env::var("APIM_PROFILES_PRETEND_FREE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .or_else(|| copy::free_bytes(&probe_dir));
    if let Some(free) = free {
        if free < need {
            return refuse(
                format!(
                    "not enough disk space in {}: the copies need {}, {} is free",
                    probe_dir.display(),
                    crate::report::human_bytes(need),
                    crate::report::human_bytes(free)
                ),
                "free some space, choose an --out on another file system, or split fewer --profiles at a time",
            );
        }
    }
    Ok(())
}
