//! `update`: the U2 update plus re-optimization on copies that already exist,
//! and `--continue` after a person resolved conflicts. Copies are updated in
//! place: the tool keeps its own state there, and `--continue` must find the
//! `.final` files where the person saved them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use crate::engine::output::{lock_dir, Lock};
use crate::model::config::{self, ConfigEdits, Overlay};
use crate::model::copy::{identify, Identified};
use crate::model::home;
use crate::model::plan;
use crate::model::profile::load_catalog;
use crate::model::record::{self, record_for};
use crate::model::seal::{self, SealKey};
use crate::model::standing::{self, CopyState};
use crate::model::tree::{self, Tree};
use crate::model::update_result::RecordedUpdate;
use crate::outcome::Status;
use crate::report::{CommandName, ProfileReport, Report, RunOutcome};
use crate::safe_fs::read_file_beneath;
use crate::update::{self, Settings, UpdateStatus};

pub fn run(copies: &[PathBuf], settings: &Settings, profile_dir: Option<&Path>, force: bool) -> Result<RunOutcome> {
    let started = Instant::now();
    let work = check(copies, settings, profile_dir)?;
    crate::signals::start_writing();
    let mut report = Report::new(CommandName::Update);
    for (copy, s) in work {
        let r = match held_back(&copy, settings.resume, force)? {
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
fn check(copies: &[PathBuf], settings: &Settings, profile_dir: Option<&Path>) -> Result<Vec<(Identified, Settings)>> {
    let catalog = load_catalog(profile_dir)?;
    let mut work = Vec::new();
    let mut last_ready: Option<update::Ready> = None;
    for c in copies {
        let copy = identify(c, &catalog)?;
        // A record the output's key does not prove is never acted on.
        if let Err(u) = &copy.sealed {
            return Err(u.refusal(&copy.home.path).into());
        }
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

fn update_one(copy: Identified, s: &Settings) -> Result<ProfileReport> {
    let (opts, lost) = with_settings(&copy)?;
    let Identified { home: h, profile, copy: found, sealed, .. } = copy;
    let rec = found.record;
    let _lock = Lock::acquire(&lock_dir(&h.path, &profile.name))?;
    let key = match sealed {
        Ok(Some(k)) => k,
        _ => SealKey::load_or_create(&seal::output_of(&h.path, &profile.name))?,
    };
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
    if !matches!(res.status, UpdateStatus::Updated | UpdateStatus::RolledBack) {
        r.error = Some(res.message.clone());
    }
    r.notes.extend(res.notes.iter().cloned());
    r.notes.extend(lost);
    r.start = profile.start_command();
    r.changed = res.runs > 0;
    r.update = Some(res.clone());
    r.duration_ms = res.duration_ms;
    rec.update = Some(RecordedUpdate::of(&res));
    standing::stamp(&h.path, &mut rec)?;
    r.set_size(rec.copy_fingerprint.as_deref().map(|f| f.size()));
    record::write(&h.path, &rec, &key)?;
    Ok(r)
}

/// The copy's options with its operator's settings: they are not kept (they
/// may hold secrets), so they are read back from the deployment.toml
/// apim-profiles wrote, as what differs from the profile's template, and
/// applied again to the updated template (carried keys carried again).
/// Also returns a note when the settings cannot be read back.
fn with_settings(copy: &Identified) -> Result<(plan::Options, Option<String>)> {
    let mut o = copy.options.clone();
    let Some(rec) = &copy.copy.record else { return Ok((o, None)) };
    let plain = record::options_hash(&plan::Options::of_copy(rec.skip_config_optimization, None));
    if rec.options_sha256 == plain {
        return Ok((o, None));
    }
    // Without a template of its own (a pack as shipped, or
    // --skip-config-optimization) the settings were applied to the home's own
    // file, kept as the backup: what differs from it are the settings.
    let (template, target) = match copy.profile.deployment_toml() {
        Some(tt) if !rec.skip_config_optimization => tt,
        _ => (PathBuf::from(plan::OWN_TOML_BACKUP), PathBuf::from(plan::OWN_TOML)),
    };
    let root = &copy.home.path;
    let (Some(ours), Some(tpl)) = (read_file_beneath(root, &target)?, read_file_beneath(root, &template)?) else {
        return Ok((o, None));
    };
    if rec.deployment_toml_sha256.as_deref() != Some(tree::sha256_hex(&ours).as_str()) {
        // Edited by hand: left to the tool, which conflicts on it where the update changes it.
        let note = format!(
            "the operator's settings could not be read back from {} (edited since apim-profiles wrote it): where the update changes it, the profile's template is applied without them; give them again with split --set, --overlay or --carry",
            target.display()
        );
        return Ok((o, Some(note)));
    }
    let mut carried = rec.carry.clone();
    if rec.carry_common {
        carried.extend(copy.profile.facts.deployment_toml.carry_common.iter().cloned());
    }
    let (ours, tpl) = (String::from_utf8_lossy(&ours), String::from_utf8_lossy(&tpl));
    let text = config::settings_overlay(&ours, &tpl, &carried)?;
    let kept = Overlay { profile: None, path: target.clone(), text };
    o.config =
        ConfigEdits { carry: rec.carry.clone(), carry_common: rec.carry_common, sets: vec![], overlays: vec![kept] };
    Ok((o, None))
}

/// The report of a copy the update must not touch: one waiting on conflicts
/// (without `--continue`), or one changed since the tool left it. The same
/// rules as a re-run of `split`, and the same report.
fn held_back(copy: &Identified, resume: bool, force: bool) -> Result<Option<ProfileReport>> {
    let Some(rec) = &copy.copy.record else {
        return Ok(None);
    };
    let standing = standing::standing(&copy.copy.path, rec)?;
    match &standing {
        CopyState::Conflicts { .. } if !resume => {}
        CopyState::Drifted { .. } if !force => {}
        _ => return Ok(None),
    }
    let plan = plan::compute(&copy.profile, &Tree::scan(&copy.copy.path)?, &copy.options)?;
    let r = ProfileReport::from_plan(&plan, &copy.copy.path, Status::Current);
    Ok(Some(r.held_back(CommandName::Update, &standing, rec.update.as_ref())))
}
