//! `update`: the U2 update plus re-optimization on copies that already exist,
//! and `--continue` after a person resolved conflicts. Copies are updated in
//! place: the tool keeps its own state there, and `--continue` must find the
//! `.final` files where the person saved them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use crate::commands::verify::{identify, Copy};
use crate::engine::output::{lock_dir, Lock};
use crate::model::home;
use crate::model::plan;
use crate::model::profile::load_catalog;
use crate::model::record::{self, record_for};
use crate::model::standing::{self, CopyState};
use crate::model::tree::Tree;
use crate::outcome::Status;
use crate::report::{ProfileReport, Report, RunOutcome};
use crate::update::{self, Settings, UpdateStatus};

pub fn run(copies: &[PathBuf], settings: &Settings, profile_dir: Option<&Path>) -> Result<RunOutcome> {
    let started = Instant::now();
    let work = check(copies, settings, profile_dir)?;
    crate::engine::start_writing();
    let mut report = Report { command: "update".into(), ..Default::default() };
    for (copy, s) in work {
        let r = match held_back(&copy, settings.resume)? {
            Some(r) => r,
            None => update_one(copy, &s)?,
        };
        report.profiles.push(r);
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(RunOutcome::of_report(report))
}

/// Every copy is checked before the first update runs; credentials are
/// asked once.
fn check(copies: &[PathBuf], settings: &Settings, profile_dir: Option<&Path>) -> Result<Vec<(Copy, Settings)>> {
    let catalog = load_catalog(profile_dir)?;
    let mut work = Vec::new();
    let mut last_ready: Option<update::Ready> = None;
    for c in copies {
        let copy = identify(c, &catalog)?;
        home::check_not_running(&copy.home.path)?;
        crate::update::process::refuse_if_running(copy.home.path.parent().unwrap_or(&copy.home.path))?;
        let mut s = settings.clone();
        s.ready = last_ready.clone();
        update::preflight(&mut s, &copy.home.path)?;
        update::check_backup_dir(&update::backup_dir(&copy.home.path))?;
        last_ready = s.ready.clone();
        work.push((copy, s));
    }
    Ok(work)
}

fn update_one(copy: Copy, s: &Settings) -> Result<ProfileReport> {
    let Copy { home: h, profile, options: opts, record: rec } = copy;
    let _lock = Lock::acquire(&lock_dir(&h.path, &profile.name))?;
    let mut rec = match rec {
        Some(r) => r,
        None => {
            let plan = plan::compute(&profile, &Tree::scan(&h.path)?, &opts)?;
            record_for(&profile, &h, &opts, None, &plan)
        }
    };
    let (res, plan) = update::update_copy(s, &h.path, &h.path, &profile, &opts, &mut rec)?;
    let plan = match plan {
        Some(p) => p,
        None => plan::compute(&profile, &Tree::scan(&h.path)?, &opts)?,
    };
    let mut r = ProfileReport::from_plan(&plan, &h.path, res.copy_status());
    if res.status != UpdateStatus::Updated {
        r.error = Some(res.message.clone());
    }
    r.notes.extend(res.notes.iter().cloned());
    r.changed = res.runs > 0;
    r.update = Some(res.clone());
    r.duration_ms = res.duration_ms;
    rec.update = Some(res.to_json());
    standing::stamp(&h.path, &mut rec)?;
    record::write(&h.path, &rec)?;
    Ok(r)
}

/// The report of a copy the update must not touch: one waiting on conflicts
/// (without `--continue`), or one changed since the tool left it. The same
/// rules as a re-run of `split`.
fn held_back(copy: &Copy, resume: bool) -> Result<Option<ProfileReport>> {
    let Some(rec) = &copy.record else {
        return Ok(None);
    };
    let path = copy.home.path.display().to_string();
    let held = match standing::standing(&copy.home.path, rec)? {
        CopyState::Conflicts { files } if !resume => {
            let plan = plan::compute(&copy.profile, &Tree::scan(&copy.home.path)?, &copy.options)?;
            let mut r = ProfileReport::from_plan(&plan, &copy.home.path, Status::Conflicts);
            r.update = rec.update.clone().and_then(|u| serde_json::from_value(u).ok());
            r.error = Some(format!(
                "the last update of {path} stopped on conflicts and was not continued: {}",
                files.join(", ")
            ));
            r
        }
        CopyState::Drifted { differences } => {
            let plan = plan::compute(&copy.profile, &Tree::scan(&copy.home.path)?, &copy.options)?;
            let mut r = ProfileReport::from_plan(&plan, &copy.home.path, Status::Drifted);
            r.drift = standing::drift_lines(&differences);
            r.drift_total = Some(differences.len());
            r.notes.push(format!("{path} changed since apim-profiles left it; the update did not run"));
            r
        }
        _ => return Ok(None),
    };
    Ok(Some(held))
}
