//! `update`: the U2 update plus re-optimization on copies that already exist,
//! and `--continue` after a person resolved conflicts. Copies are updated in
//! place: the tool keeps its own state there, and `--continue` must find the
//! `.final` files where the person saved them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use crate::error::{exit, Finished};
use crate::out::Lock;
use crate::record;
use crate::report::{ProfileReport, Report};
use crate::split::ReportCarrier;
use crate::update::{self, Settings, Status};

/// The directory whose lock guards a copy: its `<DIR>` when the copy sits in
/// the layout, so that `update` and `split` into that `<DIR>` never overlap.
fn lock_dir(copy: &Path, profile: &str) -> PathBuf {
    let parent = copy.parent().unwrap_or(copy);
    if parent.file_name().is_some_and(|n| n == profile) {
        parent.parent().unwrap_or(parent).to_path_buf()
    } else {
        parent.to_path_buf()
    }
}

pub fn run(copies: &[PathBuf], settings: &Settings, profile_dir: Option<&Path>) -> Result<Report> {
    let started = Instant::now();
    let catalog = crate::split::load_catalog(profile_dir)?;
    // Every copy is checked before the first update runs.
    let mut work = Vec::new();
    let mut last_ready: Option<update::Ready> = None;
    for c in copies {
        let (h, profile, opts, rec) = crate::verify::identify(c, &catalog)?;
        crate::home::check_not_running(&h.path)?;
        crate::split::refuse_if_update_running(h.path.parent().unwrap_or(&h.path))?;
        let mut s = settings.clone();
        s.ready = last_ready.clone();
        update::preflight(&mut s, &h.path)?;
        last_ready = s.ready.clone();
        work.push((h, profile, opts, rec, s));
    }
    crate::copy::WRITING.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut report = Report { command: "update".into(), ..Default::default() };
    let (mut failed, mut conflicts) = (false, false);
    for (h, profile, opts, rec, s) in work {
        let _lock = Lock::acquire(&lock_dir(&h.path, &profile.name))?;
        let mut rec = match rec {
            Some(r) => r,
            None => {
                let plan = crate::plan::compute(&profile, &crate::tree::Tree::scan(&h.path)?, &opts)?;
                crate::split::record_for(&profile, &h, &opts, None, &plan)
            }
        };
        let res = update::update_and_reoptimize(&s, &h.path, &h.path, &profile, &opts, &mut rec)?;
        let plan = crate::plan::compute(&profile, &crate::tree::Tree::scan(&h.path)?, &opts)?;
        let mut r = ProfileReport::from_plan(&plan, &h.path.display().to_string());
        r.status = match res.status {
            Status::Updated => "updated",
            Status::Conflicts => "conflicts",
            _ => "failed",
        }
        .into();
        failed |= !res.keeps_copy();
        conflicts |= res.status == Status::Conflicts;
        if res.status != Status::Updated {
            r.error = Some(res.message.clone());
        }
        r.notes.extend(res.notes.iter().cloned());
        r.changed = res.runs > 0;
        r.update = Some(res.to_json());
        r.duration_ms = res.duration_ms;
        rec.update = Some(res.to_json());
        record::write(&h.path, &rec)?;
        report.profiles.push(r);
    }
    report.changed = report.profiles.iter().any(|p| p.changed);
    report.duration_ms = started.elapsed().as_millis() as u64;
    let code = if failed {
        exit::FAILED
    } else if conflicts {
        exit::CONFLICTS
    } else {
        0
    };
    if code != 0 {
        report.warnings.push(update::exit_advice(code));
        return Err(anyhow::Error::new(Finished { code }).context(ReportCarrier(report)));
    }
    Ok(report)
}
