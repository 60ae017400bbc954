//! The update tool as a process: which file it is, and running it in its own
//! process group with a timeout, its output read line by line and masked.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::engine::interrupted;
use crate::report::mask::{mask_line, MASK};
use crate::sys;

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

#[derive(Debug, PartialEq)]
pub enum Ended {
    Exited,
    TimedOut,
    Interrupted,
}

pub struct Run {
    pub code: Option<i32>,
    pub ended: Ended,
    pub lines: Vec<String>,
}

/// Runs the tool in its own process group, so that a timeout or Ctrl-C stops
/// it and everything it started. Its output is read line by line, the
/// password replaced wherever it shows.
pub fn run_tool(
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
    let pgid = child.id();
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
                    Some(s) if !s.is_empty() => line.replace(s.as_str(), MASK),
                    _ => line,
                };
                let line = mask_line(&line);
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
        let stop = if interrupted() {
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

fn kill_group(pgid: u32, child: &mut std::process::Child) {
    sys::terminate_group(pgid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    sys::kill_group(pgid);
    let _ = child.wait();
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
