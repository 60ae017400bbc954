//! The U2 update step: run WSO2's update tool inside a copy, understand its
//! exit codes, then optimize the copy again (an update applies to every
//! profile and can bring back what this one removed) and check the result.
//! The tool is closed source; its interface is in shared/reference.

use std::io::{BufRead, BufReader, IsTerminal};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::copy::INTERRUPTED;
use crate::error::refuse;
use crate::plan::Options;
use crate::profile::Profile;
use crate::record::Record;

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
    pub jobs: usize,
    pub resume: bool,
    /// Stream the tool's (masked) output to stderr.
    pub echo: bool,
    /// Filled in by `preflight`.
    pub ready: Option<Ready>,
}

/// Credentials for the WSO2 update servers. Debug never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ username: {:?}, password: \"********\" }}", self.username)
    }
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
}

/// The names the tool goes by on this OS: `wso2update_linux`, or with a CPU
/// suffix in newer builds (`wso2update_linux_arm64`).
fn tool_prefix() -> &'static str {
    if cfg!(target_os = "macos") {
        "wso2update_darwin"
    } else {
        "wso2update_linux"
    }
}

fn is_tool_name(name: &str) -> bool {
    let p = tool_prefix();
    name == p || name.strip_prefix(p).is_some_and(|rest| rest.starts_with('_') && rest.len() > 1)
}

/// The tool shipped in a home's bin/, if any.
pub fn find_tool(home: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(home.join("bin"))
        .ok()?
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_tool_name(n))
        .collect();
    names.sort();
    // Prefer the one that names this machine's CPU, then the plain name.
    let arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" };
    names
        .iter()
        .find(|n| n.ends_with(arch))
        .or_else(|| names.iter().find(|n| n.as_str() == tool_prefix()))
        .or_else(|| names.first())
        .cloned()
}

/// Everything the update step needs, checked before any copy is made.
pub fn preflight(s: &mut Settings, home: &Path) -> Result<()> {
    let (place_tool, tool_name) = match &s.tool {
        Some(t) => {
            let md = std::fs::metadata(t).ok().filter(|m| m.is_file());
            if md.is_none() {
                return refuse(
                    format!("--update-tool {} is not a file", t.display()),
                    "give the path of wso2update_linux (or _darwin) from WSO2",
                );
            }
            let name = t.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = if is_tool_name(&name) { name } else { tool_prefix().to_string() };
            (Some(std::fs::canonicalize(t)?), name)
        }
        None => match find_tool(home) {
            Some(n) => (None, n),
            None => {
                return refuse(
                    format!(
                        "no update tool in {}/bin (looked for {}*) and no --update-tool given",
                        home.display(),
                        tool_prefix()
                    ),
                    "pass --update-tool PATH to the WSO2 update tool, or --no-update to skip updating",
                )
            }
        },
    };
    if let Some(z) = &s.zip {
        if !z.is_file() {
            return refuse(
                format!("--update-zip {} is not a file", z.display()),
                "give an update archive made with the tool's create-update",
            );
        }
        s.zip = Some(std::fs::canonicalize(z)?);
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
    // An offline archive needs no account; everything else does.
    // Asked once per run: a preflight of the next copy reuses what the first found.
    let known = s.ready.as_ref().and_then(|r| r.credentials.clone());
    let credentials = match (s.zip.is_some(), known) {
        (true, _) => None,
        (false, Some(c)) => Some(c),
        (false, None) => Some(credentials(s.credentials_file.as_deref())?),
    };
    s.ready = Some(Ready { place_tool, tool_name, credentials });
    Ok(())
}

/// From `--credentials-file`, else `WSO2_USERNAME`/`WSO2_PASSWORD`, else a
/// prompt on the terminal; refused when none of these can be had.
fn credentials(file: Option<&Path>) -> Result<Credentials> {
    if let Some(f) = file {
        let md = match std::fs::metadata(f) {
            Ok(m) => m,
            Err(_) => {
                return refuse(
                    format!("--credentials-file {} cannot be read", f.display()),
                    "give a file with username= and password= lines",
                )
            }
        };
        if md.permissions().mode() & 0o077 != 0 {
            return refuse(
                format!(
                    "--credentials-file {} is readable by others (mode {:o})",
                    f.display(),
                    md.permissions().mode() & 0o777
                ),
                format!("restrict it first: chmod 600 {}", f.display()),
            );
        }
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let (mut user, mut pass) = (None, None);
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "username" | "wso2_username" => user = Some(v),
                "password" | "wso2_password" => pass = Some(v),
                _ => {}
            }
        }
        return match (user, pass) {
            (Some(username), Some(password)) if !username.is_empty() && !password.is_empty() => {
                Ok(Credentials { username, password })
            }
            _ => refuse(
                format!("--credentials-file {} has no username= and password= lines", f.display()),
                "write `username=<WSO2 account>` and `password=<password>` on two lines",
            ),
        };
    }
    if let (Ok(username), Ok(password)) = (std::env::var("WSO2_USERNAME"), std::env::var("WSO2_PASSWORD")) {
        if !username.is_empty() && !password.is_empty() {
            return Ok(Credentials { username, password });
        }
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!("WSO2 account (email): ");
        let mut username = String::new();
        std::io::stdin().read_line(&mut username)?;
        let password = rpassword::prompt_password("Password: ")?;
        let username = username.trim().to_string();
        if !username.is_empty() && !password.is_empty() {
            return Ok(Credentials { username, password });
        }
    }
    refuse(
        "no WSO2 credentials for the update: WSO2_USERNAME/WSO2_PASSWORD are not set, no --credentials-file, and no terminal to ask on",
        "set WSO2_USERNAME and WSO2_PASSWORD, or pass --credentials-file FILE (mode 600), or --no-update",
    )
}

/// How one copy's update ended.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Updated,
    Conflicts,
    Failed,
    Reverted,
    TimedOut,
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateResult {
    pub status: Status,
    /// The tool's last exit code.
    pub tool_exit_code: Option<i32>,
    pub runs: u32,
    pub self_updates: u32,
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    pub conflicts: Vec<String>,
    /// What re-optimization did after the update (entries removed again...).
    pub reoptimized: Vec<String>,
    pub logs: String,
    pub message: String,
    #[serde(skip)]
    pub notes: Vec<String>,
    pub duration_ms: u64,
    /// When the run ended (RFC 3339, UTC): `status` shows it.
    pub finished_at: Option<String>,
}

impl UpdateResult {
    /// The exit code this result asks of the whole run.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            Status::Updated => 0,
            Status::Conflicts => crate::error::exit::CONFLICTS,
            _ => crate::error::exit::FAILED,
        }
    }
    /// Whether the copy is published (updated, or waiting for a person).
    pub fn keeps_copy(&self) -> bool {
        matches!(self.status, Status::Updated | Status::Conflicts)
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

const TEMPLATE: &str =
    "APIM-PROFILES-RESULT Added: {{.Added}} | Modified: {{.Modified}} | Removed: {{.Removed}} | Conflicts: {{.Conflicts}}";

/// `[a b c]` lists from the tool's `--template` output.
fn parse_result_line(line: &str) -> Option<[Vec<String>; 4]> {
    let rest = line.trim().strip_prefix("APIM-PROFILES-RESULT ")?;
    let mut out: [Vec<String>; 4] = Default::default();
    for (i, field) in ["Added: ", "Modified: ", "Removed: ", "Conflicts: "].iter().enumerate() {
        let start = rest.find(field)? + field.len();
        let tail = &rest[start..];
        let open = tail.find('[')?;
        let close = tail[open..].find(']')? + open;
        out[i] = tail[open + 1..close].split_whitespace().map(str::to_string).collect();
    }
    Some(out)
}

/// Runs the update in `copy` (the copy's own bin/ tool, cwd bin/), re-runs it
/// after a self-update, then re-optimizes and verifies. `shown` is the path
/// to name in messages (the final place of a staged copy).
pub fn update_and_reoptimize(
    s: &Settings,
    copy: &Path,
    shown: &Path,
    profile: &Profile,
    opts: &Options,
    rec: &mut Record,
) -> Result<UpdateResult> {
    let started = Instant::now();
    let ready = s.ready.as_ref().context("internal: update preflight was not run")?;
    let bin = copy.join("bin");
    let tool = bin.join(&ready.tool_name);
    if let Some(src) = &ready.place_tool {
        std::fs::create_dir_all(&bin)?;
        if !tool.exists() {
            std::fs::copy(src, &tool).with_context(|| format!("placing the update tool in {}", bin.display()))?;
        }
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755))?;
    }
    if !tool.is_file() {
        return refuse(
            format!("{} has no update tool {}", shown.display(), ready.tool_name),
            "pass --update-tool PATH, or --no-update",
        );
    }
    let backup_dir = shown.parent().unwrap_or(shown).join(".apim-profiles-update-backup");
    let mut args: Vec<String> = Vec::new();
    if let Some(z) = &s.zip {
        args.push("apply-update".into());
        args.push(z.display().to_string());
    }
    if let Some(c) = &ready.credentials {
        args.extend(["--username".into(), c.username.clone(), "--password".into(), c.password.clone()]);
    }
    if s.zip.is_none() {
        if let Some(l) = &s.level {
            args.extend(["--level".into(), l.clone()]);
        }
        args.extend(["--backup".into(), backup_dir.display().to_string()]);
        std::fs::create_dir_all(&backup_dir).with_context(|| format!("creating {}", backup_dir.display()))?;
    }
    if s.resume {
        args.push("--continue".into());
    }
    args.extend(["--template".into(), TEMPLATE.into()]);
    let secret = ready.credentials.as_ref().map(|c| c.password.clone());

    let logs = shown.join("updates/logs").display().to_string();
    let mut result = UpdateResult {
        status: Status::Failed,
        tool_exit_code: None,
        runs: 0,
        self_updates: 0,
        added: vec![],
        modified: vec![],
        removed: vec![],
        conflicts: vec![],
        reoptimized: vec![],
        logs: logs.clone(),
        message: String::new(),
        notes: vec![],
        duration_ms: 0,
        finished_at: None,
    };
    loop {
        result.runs += 1;
        let run = run_tool(&tool, &bin, &args, secret.as_deref(), s.timeout, s.echo, &profile.name)?;
        if let Some(lists) = run.lines.iter().rev().find_map(|l| parse_result_line(l)) {
            let [a, m, r, c] = lists;
            result.added.extend(a);
            result.modified.extend(m);
            result.removed.extend(r);
            result.conflicts = c;
        }
        result.tool_exit_code = run.code;
        let last = run
            .lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.contains("APIM-PROFILES-RESULT"))
            .cloned()
            .unwrap_or_default();
        match (run.ended, run.code) {
            (Ended::TimedOut, _) => {
                result.status = Status::TimedOut;
                result.message =
                    format!("the update tool ran longer than {} s and was stopped; see {logs}", s.timeout.as_secs());
            }
            (Ended::Interrupted, _) => {
                result.status = Status::Interrupted;
                result.message = "interrupted: the update tool was stopped".into();
            }
            (_, Some(2)) if result.self_updates < MAX_SELF_UPDATES => {
                // The tool replaced itself; WSO2 says to run the same command again.
                result.self_updates += 1;
                continue;
            }
            (_, Some(2)) => {
                result.message = format!(
                    "the update tool updated itself {MAX_SELF_UPDATES} times in a row; run it by hand in {}/bin",
                    shown.display()
                );
            }
            (_, Some(0)) => result.status = Status::Updated,
            (_, Some(3)) => {
                result.status = Status::Conflicts;
                result.message = format!(
                    "the update stopped on conflicts in {}: {}",
                    shown.display(),
                    if result.conflicts.is_empty() {
                        "(the tool listed none)".to_string()
                    } else {
                        result.conflicts.join(", ")
                    }
                );
            }
            (_, Some(4)) => {
                result.status = Status::Reverted;
                result.message = format!("the update was reverted by the tool; see {logs}");
            }
            (_, code) => {
                let code = code.map_or("a signal".to_string(), |c| format!("exit code {c}"));
                result.message = format!("the update tool failed ({code}): {last}; see {logs}");
            }
        }
        break;
    }
    if result.status == Status::Updated {
        // The update applies to all profiles: optimize again, then check.
        let mut o = opts.clone();
        o.config_from_cli = false;
        o.written_toml_sha256 = rec.deployment_toml_sha256.clone();
        let plan = crate::optimize::reoptimize(copy, profile, &o)?;
        result.reoptimized = crate::verify::drift_lines(&plan);
        result.notes.extend(plan.notes());
        if !result.reoptimized.is_empty() {
            result.notes.push(format!("re-optimized after the update: {} entries fixed", result.reoptimized.len()));
        }
        let check = crate::plan::compute(profile, &crate::tree::Tree::scan(copy)?, &o)?;
        let left = crate::verify::drift_lines(&check);
        if !left.is_empty() {
            result.status = Status::Failed;
            result.message = format!(
                "after the update and re-optimization the copy still differs from its profile: {}",
                left.join("; ")
            );
        }
        if check.written_toml_sha256.is_some() {
            rec.deployment_toml_sha256 = check.written_toml_sha256.clone();
        }
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result.finished_at = Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
    Ok(result)
}

#[derive(Debug, PartialEq)]
enum Ended {
    Exited,
    TimedOut,
    Interrupted,
}

struct Run {
    code: Option<i32>,
    ended: Ended,
    lines: Vec<String>,
}

/// Runs the tool in its own process group, so that a timeout or Ctrl-C stops
/// it and everything it started. Its output is read line by line, the
/// password replaced wherever it shows.
fn run_tool(
    tool: &Path,
    cwd: &Path,
    args: &[String],
    secret: Option<&str>,
    timeout: Duration,
    echo: bool,
    label: &str,
) -> Result<Run> {
    let mut child = Command::new(tool)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", tool.display()))?;
    let pgid = child.id() as i32;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    let streams: Vec<Box<dyn std::io::Read + Send>> =
        vec![Box::new(child.stdout.take().expect("piped")), Box::new(child.stderr.take().expect("piped"))];
    for stream in streams {
        let lines = Arc::clone(&lines);
        let secret = secret.map(str::to_string);
        let label = label.to_string();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let line = match &secret {
                    Some(s) if !s.is_empty() => line.replace(s.as_str(), crate::mask::MASK),
                    _ => line,
                };
                let line = crate::mask::mask_line(&line);
                if echo && !line.starts_with("APIM-PROFILES-RESULT") {
                    eprintln!("[{label}] {line}");
                }
                lines.lock().expect("not poisoned").push(line);
            }
        }));
    }
    let started = Instant::now();
    let mut ended = Ended::Exited;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        let stop = if INTERRUPTED.load(Ordering::Relaxed) {
            Some(Ended::Interrupted)
        } else if started.elapsed() >= timeout {
            Some(Ended::TimedOut)
        } else {
            None
        };
        if let Some(why) = stop {
            ended = why;
            kill_group(pgid, &mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The group is gone (or exited); its pipes close and the readers end.
    if status.is_some() {
        // A child of the tool may still hold the pipes; do not wait for it forever.
        let deadline = Instant::now() + Duration::from_secs(2);
        while readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if readers.iter().any(|r| !r.is_finished()) {
            kill_group(pgid, &mut child);
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let lines = std::mem::take(&mut *lines.lock().expect("not poisoned"));
    Ok(Run { code: status.and_then(|s| s.code()), ended, lines })
}

fn kill_group(pgid: i32, child: &mut std::process::Child) {
    // SAFETY: signals to a process group we created.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// Moves a copy whose update failed out of staging to a name beside the final
/// place, where its logs can be read; the final place stays free.
pub fn keep_failed(staged: &Path, final_path: &Path) -> Result<PathBuf> {
    let name = final_path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let kept = (0..)
        .map(|n| {
            let suffix = if n == 0 { String::new() } else { format!(".{n}") };
            final_path.with_file_name(format!("{name}.update-failed{suffix}"))
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("a free name");
    std::fs::rename(staged, &kept).with_context(|| format!("keeping the failed copy at {}", kept.display()))?;
    Ok(kept)
}

/// The advice printed once for a run that ended with conflicts or failures.
pub fn exit_advice(code: i32) -> String {
    match code {
        crate::error::exit::CONFLICTS => "hint: resolve each conflict listed (save the resolved file beside it as <file>.final), then run: apim-profiles update --continue <copy>".into(),
        _ => "hint: a profile's update failed; read the logs named above (updates/logs/ in the copy kept for inspection)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_template_output() {
        let l = "APIM-PROFILES-RESULT Added: [a/b c] | Modified: [] | Removed: [x] | Conflicts: [repository/conf/deployment.toml]";
        let [a, m, r, c] = parse_result_line(l).unwrap();
        assert_eq!(a, ["a/b", "c"]);
        assert!(m.is_empty());
        assert_eq!(r, ["x"]);
        assert_eq!(c, ["repository/conf/deployment.toml"]);
    }

    #[test]
    fn tool_names() {
        assert!(is_tool_name(tool_prefix()));
        assert!(is_tool_name(&format!("{}_arm64", tool_prefix())));
        assert!(!is_tool_name(&format!("{}x", tool_prefix())));
    }
}
