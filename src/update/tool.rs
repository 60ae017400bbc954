//! The update tool: which file it is, and one run of it (the process itself is
//! `process`: pseudo-terminal for the credentials, output as bytes, the group
//! stopped at every end).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::model::mask::{mask_line, MASK};
use crate::signals::interrupted;
use crate::update::process;
use crate::update::{Credentials, Settings};

/// The script newer packs ship instead of the tool: it downloads the tool.
pub const SETUP_SCRIPT: &str = "update_tool_setup.sh";

/// The names the tool goes by on this OS: `wso2update_linux`, or with a CPU
/// suffix in newer builds (`wso2update_linux_arm64`).
pub fn tool_prefix() -> &'static str {
    if cfg!(target_os = "macos") {
        "wso2update_darwin"
    } else {
        "wso2update_linux"
    }
}

pub fn is_tool_name(name: &str) -> bool {
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

pub use crate::update::process::Ended;

pub struct Run {
    pub code: Option<i32>,
    pub ended: Ended,
    pub lines: Vec<String>,
}

/// Runs the tool once (see [`crate::update::process`]): credentials typed at
/// its prompt, output read as bytes with the password and other secrets
/// masked, its whole group stopped at the end. It runs in the directory it
/// sits in (the home's `bin/`, where WSO2 runs it).
pub fn run_tool(
    tool: &Path,
    args: &[String],
    credentials: Option<&Credentials>,
    marker_dir: &Path,
    s: &Settings,
    label: &str,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<Run> {
    let secret = credentials.map(|c| c.password.clone()).filter(|p| !p.is_empty());
    let clean = move |l: &str| {
        let l = match &secret {
            Some(p) => l.replace(p.as_str(), MASK),
            None => l.to_string(),
        };
        mask_line(&l)
    };
    let echo = s.echo;
    let on_line = |l: &str| {
        if echo && !l.starts_with("APIM-PROFILES-RESULT") {
            // Above the copy's progress line when there is one.
            match bar {
                Some(b) => b.println(format!("[{label}] {l}")),
                None => eprintln!("[{label}] {l}"),
            }
        }
    };
    let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
    let cwd = tool.parent().unwrap_or(Path::new("."));
    let spec = process::Spec {
        tool,
        cwd,
        args: &args,
        answers: credentials.map(|c| process::Answers { username: &c.username, password: &c.password }),
        marker_dir,
        timeout: s.timeout,
        input_timeout: s.input_timeout,
        trial: s.trial_subscription,
    };
    let o = process::run(spec, &interrupted, &clean, &on_line)?;
    Ok(Run { code: o.code, ended: o.ended, lines: o.lines })
}

/// The update level of the home at `home`, as the tool's `current-state`
/// says (no account needed); None when it cannot say.
pub fn current_level(s: &Settings, home: &Path) -> Option<String> {
    let name = &s.ready.as_ref()?.tool_name;
    let tool = home.join("bin").join(name);
    if !tool.is_file() {
        return None;
    }
    let quick = Settings { timeout: Duration::from_secs(60), echo: false, trial_subscription: false, ..s.clone() };
    let marker = home.parent()?;
    let run = run_tool(&tool, &["current-state".to_string()], None, marker, &quick, "", None).ok()?;
    if run.code != Some(0) {
        return None;
    }
    run.lines
        .iter()
        .rev()
        .find_map(|l| l.split(|c: char| c.is_whitespace() || c == '"' || c == ',').find(|w| is_level(w)))
        .map(str::to_string)
}

/// `4.2.0.5`: four dot-separated numbers.
fn is_level(w: &str) -> bool {
    let parts: Vec<&str> = w.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names() {
        assert!(is_tool_name(tool_prefix()));
        assert!(is_tool_name(&format!("{}_arm64", tool_prefix())));
        assert!(!is_tool_name(&format!("{}x", tool_prefix())));
    }
}
