//! The U2 update step: run WSO2's update tool inside a copy, understand its
//! exit codes, then optimize the copy again (an update applies to every
//! profile and can bring back what this one removed) and check the result.
//! The tool is closed source; its interface (options per sub-command,
//! prompts, exit codes) is WSO2's command reference, summed up in docs/guide.md.
//!
//! The order in a copy is the one that gives WSO2's documented result
//! (update the pack, then optimize): the files the profile rewrote are put
//! back as shipped (`restore`), the tool runs, what it changed is learnt by
//! comparing the copy before and after (`changes`), and the profile is
//! applied again to the updated files (`reoptimize`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::engine::output::Staging;
use crate::model::plan::{Options, Plan};
use crate::model::profile::Profile;
use crate::model::record::Record;
use crate::outcome::refuse;

pub mod changes;
pub mod credentials;
pub mod process;
pub mod reoptimize;
pub mod restore;
pub mod result;
pub mod tool;

pub use credentials::Credentials;
pub use result::{UpdateResult, UpdateStatus};
use tool::{Ended, Run};

/// How many times the tool may update itself (exit 2) before we give up.
const MAX_SELF_UPDATES: u32 = 3;

/// The update step's settings, from the command line.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub tool: Option<PathBuf>,
    pub zip: Option<PathBuf>,
    pub level: Option<String>,
    pub credentials_file: Option<PathBuf>,
    pub timeout: Duration,
    /// How long the tool may wait for an answer nobody gives (a question
    /// this tool does not know) before it is stopped.
    pub input_timeout: Duration,
    /// Answer yes when the tool offers a trial subscription.
    pub trial_subscription: bool,
    pub jobs: usize,
    pub resume: bool,
    /// `update --revert`: roll the copy's last update back.
    pub revert: bool,
    /// Stream the tool's (masked) output to stderr.
    pub echo: bool,
    /// Show one line per copy with its elapsed time while the tool runs.
    pub progress: bool,
    /// Filled in by `preflight`.
    pub ready: Option<Ready>,
    /// A dry-run: check everything the real run checks, but ask nothing.
    pub preview: bool,
}

/// What preflight resolved: which tool to run and with which credentials.
#[derive(Debug, Clone)]
pub struct Ready {
    /// A tool to place in each copy's bin/ (`--update-tool`), or None to use
    /// the one the copy has.
    pub place_tool: Option<PathBuf>,
    /// The tool's file name inside bin/.
    pub tool_name: String,
    pub credentials: Option<Credentials>,
    /// Where the credentials come from, for the dry-run (never the values).
    pub credentials_from: String,
}

impl Ready {
    /// What the update step will run, in one line for the dry-run.
    pub fn describe(&self, s: &Settings) -> String {
        let tool = match &self.place_tool {
            Some(t) => format!("{} (placed in bin/ from {})", self.tool_name, t.display()),
            None => format!("bin/{}", self.tool_name),
        };
        match &s.zip {
            Some(z) => format!("update: would run {tool} apply-update {} (no account needed)", z.display()),
            None => format!("update: would run {tool} with credentials from {}", self.credentials_from),
        }
    }
}

/// Everything the update step needs, checked before any copy is made.
pub fn preflight(s: &mut Settings, home: &Path) -> Result<()> {
    check_combination(s)?;
    let (place_tool, tool_name) = find_or_place(s, home)?;
    if let Some(z) = &s.zip {
        if !z.is_file() {
            return refuse(
                format!("--update-zip {} is not a file", z.display()),
                "give an update archive made with the tool's create-update",
            );
        }
        s.zip = Some(std::fs::canonicalize(z).with_context(|| format!("resolving {}", z.display()))?);
    }
    if let Some(l) = &s.level {
        let parts: Vec<&str> = l.split('.').collect();
        let ok = (parts.len() == 1 || parts.len() == 4)
            && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return refuse(
                format!("--update-level {l} is not a level"),
                "use a number such as 5, or a full level such as 4.2.0.5",
            );
        }
    }
    // An offline archive and a revert need no account; everything else does.
    // Asked once per run: a preflight of the next copy reuses what the first found.
    let known = s.ready.as_ref().filter(|r| r.credentials.is_some());
    let known = known.map(|r| (r.credentials.clone(), r.credentials_from.clone()));
    let (credentials, credentials_from) = match (s.zip.is_some() || s.revert, known) {
        (true, _) => (None, "nowhere (an offline archive or a revert needs no account)".to_string()),
        (false, Some(c)) => c,
        (false, None) => credentials::credentials(s.credentials_file.as_deref(), s.preview)?,
    };
    s.ready = Some(Ready { place_tool, tool_name, credentials, credentials_from });
    Ok(())
}

/// Options that the tool's sub-commands cannot take together.
fn check_combination(s: &Settings) -> Result<()> {
    if let (Some(_), Some(l)) = (&s.zip, &s.level) {
        return refuse(
            format!("--update-level {l} with --update-zip: the tool's apply-update takes no level"),
            "an update archive carries its own levels (made with create-update --end-level); drop --update-level",
        );
    }
    if s.revert && (s.zip.is_some() || s.level.is_some() || s.resume) {
        return refuse(
            "--revert with --update-zip, --update-level or --continue",
            "a revert rolls back the copy's last update: run apim-profiles update --revert COPY alone",
        );
    }
    Ok(())
}

/// The tool to run: placed from `--update-tool`, or the one the home ships.
fn find_or_place(s: &Settings, home: &Path) -> Result<(Option<PathBuf>, String)> {
    if let Some(t) = &s.tool {
        if !std::fs::metadata(t).is_ok_and(|m| m.is_file()) {
            return refuse(
                format!("--update-tool {} is not a file", t.display()),
                "give the path of wso2update_linux (or _darwin) from WSO2",
            );
        }
        let name = t.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let name = if tool::is_tool_name(&name) { name } else { tool::tool_prefix().to_string() };
        return Ok((Some(std::fs::canonicalize(t).with_context(|| format!("resolving {}", t.display()))?), name));
    }
    if let Some(n) = tool::find_tool(home) {
        return Ok((None, n));
    }
    if home.join("bin").join(tool::SETUP_SCRIPT).is_file() {
        return refuse(
            format!(
                "{} ships bin/{} (which downloads the update tool) but not the tool itself",
                home.display(),
                tool::SETUP_SCRIPT
            ),
            format!(
                "run it once in the pack (cd {}/bin && ./{}), or pass --update-tool PATH to a downloaded tool",
                home.display(),
                tool::SETUP_SCRIPT
            ),
        );
    }
    refuse(
        format!(
            "no update tool in {}/bin (looked for {}*) and no --update-tool given",
            home.display(),
            tool::tool_prefix()
        ),
        "pass --update-tool PATH to the WSO2 update tool, or --no-update to skip updating",
    )
}

/// The tool's `--backup` directory for the copy at `final_path`:
/// `<DIR>/<profile>/.apim-profiles-update-backup`, beside the copy and
/// outside it (the tool refuses one inside the product), one per copy.
pub fn backup_dir(final_path: &Path) -> PathBuf {
    final_path.parent().unwrap_or(final_path).join(".apim-profiles-update-backup")
}

/// Refuses when the tool's `--backup` directory cannot be made: its place is
/// taken by something else, or the directory it goes in is not writable.
pub fn check_backup_dir(dir: &Path) -> Result<()> {
    let bad = |why: &str| {
        refuse(
            format!("the update's backup directory {} {why}", dir.display()),
            "remove what is in its place or make the output writable; the update tool needs it outside the copy",
        )
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => return bad("is taken by something that is not a directory"),
        Err(_) => {}
    }
    let mut parent = dir.parent();
    while let Some(p) = parent {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() && crate::sys::can_create_in(p) => return Ok(()),
            Ok(m) if m.is_dir() => return bad("cannot be made: the directory it goes in is not writable"),
            Ok(_) => return bad("cannot be made: a file is in the way"),
            Err(_) => parent = p.parent(),
        }
    }
    Ok(())
}

/// The tool's command line for one run, with only the options WSO2's
/// command reference lists for that sub-command: `apply-update` takes no
/// `--template` and no `--level`. No credentials: the tool asks for them at
/// its prompt, on a pseudo-terminal (see `process`), so they never show in
/// its argv.
fn tool_args(s: &Settings, backup_dir: &Path) -> Result<Vec<String>> {
    let mut args: Vec<String> = Vec::new();
    let plain = s.zip.is_none() && !s.revert;
    if s.revert {
        args.extend(["apply-update".into(), "--revert".into()]);
    } else if let Some(z) = &s.zip {
        args.extend(["apply-update".into(), z.display().to_string()]);
    } else if let Some(l) = &s.level {
        args.extend(["--level".into(), l.clone()]);
    }
    args.extend(["--backup".into(), backup_dir.display().to_string()]);
    std::fs::create_dir_all(backup_dir).with_context(|| format!("creating {}", backup_dir.display()))?;
    if s.resume {
        args.push("--continue".into());
    }
    if plain {
        args.extend(["--template".into(), result::TEMPLATE.into()]);
    }
    Ok(args)
}

/// The tool in the copy's bin/: placed there from `--update-tool`, or the
/// copy's own.
fn place_tool(ready: &Ready, copy: &Path, shown: &Path) -> Result<PathBuf> {
    let bin = copy.join("bin");
    let tool = bin.join(&ready.tool_name);
    if let Some(src) = &ready.place_tool {
        std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
        if !tool.exists() {
            std::fs::copy(src, &tool).with_context(|| format!("placing the update tool in {}", bin.display()))?;
        }
        // Set only when needed: a chmod moves the change time, and the kept
        // base must stay as the tool left it when the tool changes nothing.
        if std::fs::metadata(&tool).map(|m| m.permissions().mode() & 0o7777).ok() != Some(0o755) {
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("making {} executable", tool.display()))?;
        }
    }
    if !tool.is_file() {
        return refuse(
            format!("{} has no update tool {}", shown.display(), ready.tool_name),
            "pass --update-tool PATH, or --no-update",
        );
    }
    Ok(tool)
}

/// One copy's update, in WSO2's order: the profile's rewritten files put
/// back as shipped, the tool run (again after each self-update), then the
/// profile applied to the updated files and the copy checked. `shown` is the
/// path to name in messages (the final place of a staged copy). Returns the
/// result and the plan of the copy as it is left.
pub fn update_copy(
    s: &Settings,
    copy: &Path,
    shown: &Path,
    profile: &Profile,
    opts: &Options,
    rec: &mut Record,
) -> Result<(UpdateResult, Option<Plan>)> {
    let started = Instant::now();
    let ours = opts.after_update(rec.deployment_toml_sha256.clone());
    let mut result = UpdateResult::new(result::logs_of(copy));
    place_tool(s.ready.as_ref().context("internal: update preflight was not run")?, copy, shown)?;
    result.level_before = tool::current_level(s, copy);
    let mut touched = pending_conflicts(rec, s);
    let mut restored = restore::Restored::default();
    if !s.resume {
        restored = restore::before_update(copy, profile, &ours)?;
        result.notes.extend(restored.edited.iter().map(|p| {
            format!(
                "{} was edited since apim-profiles wrote it: left as it is for the update tool, which may stop on a conflict there",
                p.display()
            )
        }));
    }
    let before = changes::Snapshot::take(copy)?;
    run_until_done(&mut result, s, copy, shown, &backup_dir(shown), &profile.name)?;
    let [added, modified, removed] = changes::compare(&before, &changes::Snapshot::take(copy)?);
    (result.added, result.modified, result.removed) = (added, modified, removed);
    touched.extend(result.modified.iter().chain(&result.added).cloned());
    let plan = finish_copy(&mut result, copy, profile, opts, rec, &touched, &restored.before)?;
    result.duration_ms = started.elapsed().as_millis() as u64;
    result.finished_at = Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
    Ok((result, plan))
}

/// The files of the copy's last update that waited on a person, when this
/// run continues it.
fn pending_conflicts(rec: &Record, s: &Settings) -> Vec<String> {
    if !s.resume {
        return vec![];
    }
    crate::model::standing::pending_conflicts(rec).unwrap_or_default()
}

/// After the tool: a copy it updated (or rolled back, or left half done) gets
/// its profile again from the updated files; one waiting on conflicts is
/// left for the person who resolves them.
fn finish_copy(
    result: &mut UpdateResult,
    copy: &Path,
    profile: &Profile,
    opts: &Options,
    rec: &mut Record,
    touched: &[String],
    before: &[(PathBuf, Vec<u8>)],
) -> Result<Option<Plan>> {
    if result.status == UpdateStatus::Conflicts {
        return Ok(None);
    }
    let taken = restore::take_updated(copy, profile, opts, touched)?;
    result.notes.extend(taken.iter().map(|p| {
        format!("{}: the update's version was taken as the pack's file and the profile applied to it", p.display())
    }));
    if matches!(result.status, UpdateStatus::Updated | UpdateStatus::RolledBack) {
        return Ok(Some(reoptimize::after_update(result, copy, profile, opts, rec, before)?));
    }
    // The tool stopped half way: the profile is applied again all the same,
    // so the copy never stays with the pack's files in its profile's place.
    let mut again = UpdateResult { status: UpdateStatus::Updated, ..result.clone() };
    let plan = reoptimize::after_update(&mut again, copy, profile, opts, rec, before)?;
    result.notes.push("the profile was applied again after the update stopped".into());
    Ok(Some(plan))
}

/// Runs the tool in `tree` (its bin/ tool, cwd bin/) until it is done: again
/// after each self-update, with `backup` as its `--backup`. `shown` names the
/// tree in messages, `label` the run in the echoed output and progress line.
fn run_until_done(
    result: &mut UpdateResult,
    s: &Settings,
    tree: &Path,
    shown: &Path,
    backup: &Path,
    label: &str,
) -> Result<()> {
    let ready = s.ready.as_ref().context("internal: update preflight was not run")?;
    let tool = place_tool(ready, tree, shown)?;
    let args = tool_args(s, backup)?;
    let marker_dir = shown.parent().unwrap_or(shown);
    let bar = crate::report::progress::update_line(s.progress, label);
    let credentials = ready.credentials.as_ref();
    loop {
        result.runs += 1;
        let run = tool::run_tool(&tool, &args, credentials, marker_dir, s, label, bar.as_ref())?;
        result::keep_output(tree, &run.lines)?;
        result.logs = result::logs_of(tree);
        if !read_run(result, &run, s, shown) {
            break;
        }
    }
    result.level = tool::current_level(s, tree);
    crate::report::progress::done(bar, format!("[{label}] update: {}", result::outcome_word(result)));
    Ok(())
}

/// Runs the tool in `home` until it is done; no re-optimization
/// (`--update-once`: the home is the pack). `shown` names the home in
/// messages, `label` the run in the echoed output; `backup` is the tool's
/// `--backup` directory.
pub fn run_update(s: &Settings, home: &Path, shown: &Path, backup: &Path, label: &str) -> Result<UpdateResult> {
    let started = Instant::now();
    let mut result = UpdateResult::new(shown.join("updates/logs").display().to_string());
    place_tool(s.ready.as_ref().context("internal: update preflight was not run")?, home, shown)?;
    result.level_before = tool::current_level(s, home);
    let before = changes::Snapshot::take(home)?;
    run_until_done(&mut result, s, home, home, backup, label)?;
    let [added, modified, removed] = changes::compare(&before, &changes::Snapshot::take(home)?);
    (result.added, result.modified, result.removed) = (added, modified, removed);
    result.duration_ms = started.elapsed().as_millis() as u64;
    result.finished_at = Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
    Ok(result)
}

/// Reads one run of the tool into `result`; true when the tool asks to be
/// run again (it updated itself).
fn read_run(result: &mut UpdateResult, run: &Run, s: &Settings, shown: &Path) -> bool {
    result::take_conflicts(result, &run.lines);
    result.tool_exit_code = run.code;
    let logs = result.logs.clone();
    let last = run
        .lines
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.contains("APIM-PROFILES-RESULT"))
        .cloned()
        .unwrap_or_default();
    match (&run.ended, run.code) {
        (Ended::TimedOut, _) => {
            result.status = UpdateStatus::TimedOut;
            result.message =
                format!("the update tool ran longer than {} s and was stopped; see {logs}", s.timeout.as_secs());
        }
        (Ended::Interrupted, _) => {
            result.status = UpdateStatus::Interrupted;
            result.message = "interrupted: the update tool was stopped".into();
        }
        (Ended::Asked(question), _) => {
            result.status = UpdateStatus::Failed;
            result.message = format!("the update tool in {} stopped to ask: {question}", shown.display());
        }
        (_, Some(2)) if result.self_updates < MAX_SELF_UPDATES => {
            // The tool replaced itself; WSO2 says to run the same command again.
            result.self_updates += 1;
            return true;
        }
        (_, Some(2)) => {
            result.message = format!(
                "the update tool updated itself {MAX_SELF_UPDATES} times in a row; run it by hand in {}/bin",
                shown.display()
            );
        }
        (_, Some(0)) if !s.revert => result.status = UpdateStatus::Updated,
        (_, Some(3)) => {
            result.status = UpdateStatus::Conflicts;
            let listed = if result.conflicts.is_empty() {
                "(the tool listed none)".to_string()
            } else {
                result.conflicts.join(", ")
            };
            result.message = format!("the update stopped on conflicts in {}: {listed}", shown.display());
        }
        (_, Some(4)) if s.revert => result.status = UpdateStatus::RolledBack,
        (_, Some(4)) => {
            result.status = UpdateStatus::Reverted;
            result.message = format!("the update was reverted by the tool; see {logs}");
        }
        (_, code) => {
            let code = code.map_or("a signal".to_string(), |c| format!("exit code {c}"));
            result.message = format!("the update tool failed ({code}): {last}; see {logs}");
        }
    }
    false
}

/// Keeps a staged copy whose update failed at `<home>.update-failed` beside
/// the final place, where its logs can be read; the final place stays free.
/// A failed copy an earlier run left there (it has this tool's record) is
/// replaced, so a profile has at most one; the note says so. Something else
/// at that name is never removed: the copy goes beside it.
pub fn keep_failed(staging: Staging, final_path: &Path, profile: &str) -> Result<(PathBuf, Option<String>)> {
    let name = final_path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let kept = final_path.with_file_name(format!("{name}.update-failed"));
    // Ours: a record this output's key seals.
    let ours = std::fs::symlink_metadata(&kept).is_ok()
        && crate::model::standing::read_checked(&kept, Some(profile))
            .is_ok_and(|r| crate::model::record::sealed_by_output(&kept, &r).is_ok());
    if ours {
        staging.publish(&kept, crate::safe_fs::dev_ino_nofollow(&kept))?;
        return Ok((kept.clone(), Some(format!("replaced the failed copy an earlier run left at {}", kept.display()))));
    }
    let taken = std::fs::symlink_metadata(&kept).is_ok();
    let at = staging.keep_aside(final_path, "update-failed")?;
    let note = taken.then(|| format!("{} is not a failed copy apim-profiles made; it was left alone", kept.display()));
    Ok((at, note))
}
