//! `verify`: does a copy still match its profile? The answer is the plan
//! itself: a copy matches when optimizing it again would change nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use crate::error::{refuse, Finished};
use crate::home;
use crate::plan::{self, Action, Options};
use crate::profile::{Catalog, Profile};
use crate::record::{self, Record};
use crate::report::{ProfileReport, Report};
use crate::tree::Tree;

/// The profile and options a copy was made with: from its record, or, for a
/// copy without one, from its place in the layout (`<DIR>/<profile>/<home>`).
pub fn identify(copy: &Path, catalog: &Catalog) -> Result<(home::Home, Profile, Options, Option<Record>)> {
    let h = home::detect(copy)?;
    let rec = record::read(&h.path)?;
    let name = match &rec {
        Some(r) => r.profile.clone(),
        None => h
            .path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| catalog.for_version(&h.version).any(|p| &p.name == n))
            .map_or_else(
                || {
                    refuse(
                        format!(
                            "{} has no {} record and is not inside a <profile>/ directory",
                            h.path.display(),
                            record::RECORD_FILE
                        ),
                        "verify copies made by apim-profiles split, or optimize the home first",
                    )
                },
                Ok,
            )?,
    };
    let profile = catalog.select(&h.version, Some(&[name]))?.remove(0);
    let opts = Options {
        skip_config_optimization: rec.as_ref().is_some_and(|r| r.skip_config_optimization),
        written_toml_sha256: rec.as_ref().and_then(|r| r.deployment_toml_sha256.clone()),
        ..Default::default()
    };
    Ok((h, profile, opts, rec))
}

pub fn run(copies: &[PathBuf], profile_dir: Option<&Path>) -> Result<Report> {
    let started = Instant::now();
    let catalog = crate::split::load_catalog(profile_dir)?;
    let mut report = Report { command: "verify".into(), ..Default::default() };
    let mut drifted = false;
    for c in copies {
        let t0 = Instant::now();
        let (h, profile, opts, _) = identify(c, &catalog)?;
        let tree = Tree::scan(&h.path)?;
        let plan = plan::compute(&profile, &tree, &opts)?;
        let mut r = ProfileReport::from_plan(&plan, &h.path.display().to_string());
        r.drift = drift_lines(&plan);
        r.status = if r.drift.is_empty() { "verified".into() } else { "drifted".into() };
        drifted |= !r.drift.is_empty();
        // What verify reports is the copy as it is, not what a fix would leave.
        r.entries_kept = tree.entries.len();
        r.duration_ms = t0.elapsed().as_millis() as u64;
        report.profiles.push(r);
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    if drifted {
        return Err(anyhow::Error::new(Finished { code: crate::error::exit::DRIFT })
            .context(crate::split::ReportCarrier(report)));
    }
    Ok(report)
}

/// One line per way the copy differs from its profile.
pub fn drift_lines(plan: &plan::Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Remove { path, step, dir, .. } => Some(format!(
                "{}{} is present, but the profile removes it ({step})",
                path.display(),
                if *dir { "/" } else { "" }
            )),
            Action::Rewrite { path, step, .. } => Some(format!("{} is not the profile's ({step})", path.display())),
            Action::Backup { .. } | Action::Note { .. } => None,
        })
        .collect()
}
