//! `optimize`: the product's optimization in place on one home, safe to run
//! again (the engine's `inplace` says how no moment loses a file). An
//! interrupted run leaves a tree the next run's plan completes, because the
//! plan is computed from what is there.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::engine::inplace::{apply_in_place, interrupted_before};
use crate::engine::output::{lock_dir, Lock};
use crate::model::copy::Copy;
use crate::model::home::{self, Home};
use crate::model::plan::{self, Options, Plan};
use crate::model::profile::{load_catalog, Profile};
use crate::model::record::{self, record_for, Record};
use crate::model::seal::{self, SealKey};
use crate::model::tree::Tree;
use crate::outcome::{refuse, Refusal, Status};
use crate::report::{diff, CommandName, ProfileReport, Report, RunOutcome};

#[derive(Debug, Clone, Default)]
pub struct OptimizeArgs {
    pub home: PathBuf,
    pub profile: String,
    pub dry_run: bool,
    pub options: Options,
    pub profile_dir: Option<PathBuf>,
}

pub fn run(args: &OptimizeArgs) -> Result<RunOutcome> {
    let started = Instant::now();
    let (home, profile, found) = check(args)?;
    let previous = found.record;
    let _lock = if args.dry_run { None } else { Some(Lock::acquire(&lock_dir(&home.path, &profile.name))?) };
    let opts = Options {
        written_toml_sha256: previous.as_ref().and_then(|p| p.deployment_toml_sha256.clone()),
        ..args.options.clone()
    };
    let resumed = interrupted_before(&home.path)?;
    let plan = plan::compute(&profile, &Tree::scan(&home.path)?, &opts)?;
    plan::check_met(&plan)?;
    let mut report = Report {
        dry_run: args.dry_run,
        home: Some(home.path.display().to_string()),
        product: Some(home.product.clone()),
        version: Some(home.version.clone()),
        ..Report::new(CommandName::Optimize)
    };
    let mut r = if args.dry_run {
        dry_run(&plan, &home)?
    } else {
        let (r, changed) = apply(&plan, &home, &profile, &opts, previous.as_ref())?;
        report.changed = changed || previous.is_none();
        r
    };
    // What optimizing cannot fix is drift, as verify says of the same copy.
    let blocked = plan.blocked();
    if !blocked.is_empty() {
        r.status = Status::Drifted;
        r.set_drift(&blocked);
    }
    if resumed {
        r.notes.push("an earlier run was interrupted here; this run completes it".into());
    }
    r.duration_ms = started.elapsed().as_millis() as u64;
    report.profiles.push(r);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(RunOutcome::of_report(report))
}

/// The home, the profile, and the home as a copy: the record of an earlier
/// run, which must be for the same profile.
fn check(args: &OptimizeArgs) -> Result<(Home, Profile, Copy<()>)> {
    let catalog = load_catalog(args.profile_dir.as_deref())?;
    let home = home::detect(&args.home, &catalog)?;
    home::check_not_running(&home.path)?;
    let facts = catalog.facts(&home.product, &home.version);
    if let Some(why) = &facts.refuse_alone {
        return refuse(format!("{}: {why}", home.path.display()), facts.hint.clone().unwrap_or_default());
    }
    let profile = catalog.select(&home.product, &home.version, Some(std::slice::from_ref(&args.profile)))?.remove(0);
    args.options.config.check_in_run(&[profile.name.as_str()], "--profile")?;
    let previous = crate::model::copy::checked_record(&home, &catalog)?;
    if let Some(prev) = &previous {
        // What an earlier run recorded is carried into the new record: only
        // when the output's key proves it.
        if let Err(u) = record::sealed_by_output(&home.path, prev) {
            return Err(Refusal::new(
                format!("{}: {}", home.path.display(), u.line()),
                format!(
                    "{}; or, to record the home as it is now, remove its record {} and optimize again",
                    u.hint,
                    home.path.join(record::RECORD_FILE).display()
                ),
            )
            .into());
        }
        if prev.profile != profile.name {
            return refuse(
                format!("{} was optimized for {}, not {}", home.path.display(), prev.profile, profile.name),
                "a home serves one profile: start from a fresh copy of the pack for another profile",
            );
        }
    }
    let found = Copy::found(home.path.clone(), previous);
    Ok((home, profile, found))
}

fn dry_run(plan: &Plan, home: &Home) -> Result<ProfileReport> {
    let status = if plan.changes_anything() { Status::WouldOptimize } else { Status::Current };
    let mut r = ProfileReport::from_plan(plan, &home.path, status);
    r.diff = Some(diff::diff(plan)?);
    r.settings = diff::settings_summary(plan)?;
    Ok(r)
}

/// Carries the plan out and records it; returns the report and whether
/// anything changed.
fn apply(
    plan: &Plan,
    home: &Home,
    profile: &Profile,
    opts: &Options,
    previous: Option<&Record>,
) -> Result<(ProfileReport, bool)> {
    let changed = apply_in_place(plan)?;
    let mut rec = record_for(profile, home, opts, None, plan);
    if let Some(prev) = previous {
        // A split copy stays the copy of its source: what optimize did is the
        // tool's own work, recorded in the new fingerprint.
        rec.update = prev.update.clone();
        rec.source = prev.source.clone();
        rec.source_fingerprint = prev.source_fingerprint.clone();
        rec.source_entries = prev.source_entries.clone();
        // The digests taken when the copy was made stay those of the files
        // optimize left alone; stamping hashes the ones it wrote.
        rec.copy_fingerprint = prev.copy_fingerprint.clone();
        rec.content_sha256 = prev.content_sha256.clone();
    }
    crate::model::standing::stamp(&home.path, &mut rec)?;
    if previous.map(Record::unsealed) != Some(rec.clone()) {
        let key = SealKey::load_or_create(&seal::output_of(&home.path, &profile.name))?;
        record::write(&home.path, &rec, &key)?;
    }
    let status = if changed { Status::Optimized } else { Status::Current };
    let mut r = ProfileReport::from_plan(plan, &home.path, status);
    r.set_size(rec.copy_fingerprint.as_deref().map(|f| f.size()));
    r.changed = changed;
    Ok((r, changed))
}
