//! Running the update tool as a root process should run a program it does
//! not control:
//!
//! - **credentials at its own prompt**: the tool gets a pseudo-terminal as its
//!   controlling terminal and stdin, and the username and password are typed
//!   at its prompts (echo off); they are never in its argv or environment;
//! - **output as bytes**: stdout and stderr are read as bytes (shown lossily),
//!   never stopping at a byte that is not UTF-8, both drained until the tool
//!   and everything holding its pipes are gone, bounded by the timeout;
//! - **nothing outlives the run**: the tool runs in its own session and group,
//!   killed (TERM, then KILL) on timeout, on Ctrl-C and at the end; it gets
//!   `PR_SET_PDEATHSIG`, and a watchdog process kills its group if
//!   apim-profiles itself dies (SIGKILL included); children that left the
//!   group are reparented to apim-profiles (a child subreaper) and killed;
//! - a file beside the copy names the running group, so that a re-run finds
//!   an update of a killed run still dying and refuses to start a second.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, Signal};

use crate::sys;

/// What to answer at the tool's prompts.
pub struct Answers<'a> {
    pub username: &'a str,
    pub password: &'a str,
}

/// How a run of the tool ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Exited,
    TimedOut,
    Interrupted,
}

pub struct Outcome {
    pub code: Option<i32>,
    pub ended: Ended,
    /// Every line of stdout and stderr, lossily decoded, masked by `clean`.
    pub lines: Vec<String>,
}

/// Process ids of tools and watchdogs running now: children of ours that are
/// not orphans to clean up.
static OURS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);
static SUBREAPER: AtomicBool = AtomicBool::new(false);

fn ours(f: impl FnOnce(&mut HashSet<i32>)) {
    let mut g = OURS.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(HashSet::new));
}

/// The file beside a copy that names the process group of an update running
/// in it.
pub fn running_marker(dir: &Path) -> PathBuf {
    dir.join(".apim-profiles-update.pid")
}

/// The process group an earlier run's update still runs as, if any. A marker
/// naming a group that is gone is removed.
pub fn still_running(dir: &Path) -> Option<i32> {
    let m = running_marker(dir);
    let text = crate::safe_fs::read_own(&m).ok().flatten()?;
    let pgid: i32 = String::from_utf8_lossy(&text).trim().parse().ok()?;
    if pgid > 1 && !group_gone(pgid) {
        return Some(pgid);
    }
    let _ = std::fs::remove_file(&m);
    None
}

/// Refuses to start while an update of an earlier run (killed before it could
/// stop its tool) still runs beside this copy: a second one would share its
/// files and `~/.wso2-updates`.
pub fn refuse_if_running(dir: &Path) -> Result<()> {
    if let Some(pgid) = still_running(dir) {
        return crate::outcome::refuse(
            format!("an update started by an earlier run is still running in {} (process group {pgid})", dir.display()),
            format!("wait for it to end, or stop it with: kill -TERM -- -{pgid}"),
        );
    }
    Ok(())
}

/// The hidden first argument that makes this binary the launcher of the
/// update tool (see [`launch`]).
pub const LAUNCH_ARG: &str = "__apim-profiles-launch-update-tool";

/// The launcher: run as `apim-profiles LAUNCH_ARG TOOL ARGS...` with the
/// pseudo-terminal as stdin, it starts a new session (so the tool and all it
/// starts form one group to stop), makes the terminal its controlling one
/// (the tool prompts there), asks for SIGKILL when apim-profiles dies, and
/// execs the tool in its place. Returns only when that fails.
pub fn launch(args: &[OsString]) -> std::io::Error {
    let Some((tool, rest)) = args.split_first() else {
        return std::io::Error::other("no tool to launch");
    };
    let prepared = rustix::process::setsid()
        .and_then(|_| rustix::process::ioctl_tiocsctty(std::io::stdin().as_fd()))
        .and_then(|()| rustix::process::set_parent_process_death_signal(Some(Signal::KILL)));
    if let Err(e) = prepared {
        return e.into();
    }
    Command::new(tool).args(rest).exec()
}

/// One run of the tool: what to start, where, and how long it may take.
pub struct Spec<'a> {
    pub tool: &'a Path,
    /// The working directory (the copy's bin/).
    pub cwd: &'a Path,
    pub args: &'a [OsString],
    pub answers: Option<Answers<'a>>,
    /// Where the marker naming the running group is kept (beside the copy).
    pub marker_dir: &'a Path,
    pub timeout: Duration,
}

/// Runs the tool and answers its credential prompts. `clean` masks each
/// output line; `on_line` sees each (masked) line as it comes.
pub fn run(
    spec: Spec<'_>,
    interrupted: &dyn Fn() -> bool,
    clean: &dyn Fn(&str) -> String,
    on_line: &dyn Fn(&str),
) -> Result<Outcome> {
    let Spec { tool, cwd, args, answers, marker_dir, timeout } = spec;
    become_subreaper();
    let (master, slave) = open_pty()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // The tool is started through this binary's launcher (see `launch`),
    // which makes the session and the controlling terminal, then execs it.
    let me = std::env::current_exe().context("finding this program to launch the update tool")?;
    let mut cmd = Command::new(me);
    cmd.arg(LAUNCH_ARG)
        .arg(tool)
        .args(args)
        .current_dir(cwd)
        .env_remove("WSO2_USERNAME")
        .env_remove("WSO2_PASSWORD")
        .stdin(Stdio::from(slave))
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    let mut child = cmd.spawn().with_context(|| format!("starting {}", tool.display()))?;
    drop(cmd); // closes our copies of the slave and the pipes' write ends
    let pgid = child.id() as i32;
    ours(|s| {
        s.insert(pgid);
    });
    let watchdog = Watchdog::start(pgid);
    let marker = running_marker(marker_dir);
    let _ =
        crate::safe_fs::write_atomic(marker_dir, ".apim-profiles-update.pid", format!("{pgid}\n").as_bytes(), 0o644);

    let r = pump(&mut child, pgid, [out_r, err_r, master], answers, timeout, interrupted, clean, on_line);

    kill_group(pgid, &mut child);
    kill_orphans();
    if let Some(w) = watchdog {
        w.finish();
    }
    ours(|s| {
        s.remove(&pgid);
    });
    let _ = std::fs::remove_file(&marker);
    r
}

/// Reads the tool's output and answers its prompts until it and everything
/// holding its pipes are gone, or the timeout or Ctrl-C.
#[allow(clippy::too_many_arguments)]
fn pump(
    child: &mut Child,
    pgid: i32,
    fds: [OwnedFd; 3],
    answers: Option<Answers<'_>>,
    timeout: Duration,
    interrupted: &dyn Fn() -> bool,
    clean: &dyn Fn(&str) -> String,
    on_line: &dyn Fn(&str),
) -> Result<Outcome> {
    let started = Instant::now();
    let mut files: Vec<Option<File>> = fds.into_iter().map(|fd| Some(File::from(fd))).collect();
    for f in files.iter().flatten() {
        set_nonblocking(f);
    }
    let mut pending: [Vec<u8>; 3] = Default::default();
    let mut prompt = String::new();
    let (mut user_sent, mut pass_sent) = (false, false);
    let mut lines = Vec::new();
    let mut status = None;
    let mut ended = Ended::Exited;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if status.is_none() {
            status = child.try_wait()?;
        }
        let open: Vec<usize> = (0..3).filter(|i| files[*i].is_some()).collect();
        // The terminal stays open as long as the tool's session does; the
        // pipes tell when the output has ended.
        // Drained when the output ended, or when the tool's whole group is
        // gone (what still holds the pipes left the group: not waited for).
        let pipes_open = files[0].is_some() || files[1].is_some();
        if status.is_some() && (!pipes_open || group_gone(pgid)) {
            drain_now(&mut files, &mut pending, &mut lines, clean, on_line);
            break;
        }
        if interrupted() {
            ended = Ended::Interrupted;
            break;
        }
        if started.elapsed() >= timeout {
            if status.is_none() {
                ended = Ended::TimedOut;
            }
            break;
        }
        let ready: Vec<bool> = {
            let mut pfds: Vec<PollFd<'_>> =
                open.iter().map(|i| PollFd::new(files[*i].as_ref().expect("open"), PollFlags::IN)).collect();
            let tick = rustix::event::Timespec { tv_sec: 0, tv_nsec: 100_000_000 };
            let _ = rustix::event::poll(&mut pfds, Some(&tick));
            pfds.iter().map(|p| !p.revents().is_empty()).collect()
        };
        for (k, i) in open.iter().enumerate() {
            if !ready[k] {
                continue;
            }
            let f = files[*i].as_mut().expect("open");
            match f.read(&mut buf) {
                Ok(0) => files[*i] = None,
                Ok(n) => {
                    if *i == 2 {
                        prompt.push_str(&String::from_utf8_lossy(&buf[..n]));
                    } else {
                        pending[*i].extend_from_slice(&buf[..n]);
                        take_lines(&mut pending[*i], &mut lines, clean, on_line);
                        // A prompt on stdout (no newline yet) counts too.
                        prompt.push_str(&String::from_utf8_lossy(&pending[*i]));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO on the terminal: every slave end is closed.
                Err(_) => files[*i] = None,
            }
        }
        if let (Some(a), Some(term)) = (&answers, files[2].as_mut()) {
            answer(&mut prompt, a, term, &mut user_sent, &mut pass_sent);
        }
        if prompt.len() > 4096 {
            prompt.drain(..prompt.len() - 1024);
        }
    }
    for p in pending.iter_mut().take(2) {
        if !p.is_empty() {
            p.push(b'\n');
            take_lines(p, &mut lines, clean, on_line);
        }
    }
    let code = status.and_then(|s| s.code());
    Ok(Outcome { code, ended, lines })
}

/// A last read of whatever is already buffered in the pipes.
fn drain_now(
    files: &mut [Option<File>],
    pending: &mut [Vec<u8>; 3],
    lines: &mut Vec<String>,
    clean: &dyn Fn(&str) -> String,
    on_line: &dyn Fn(&str),
) {
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..2 {
        while let Some(f) = files[i].as_mut() {
            match f.read(&mut buf) {
                Ok(n) if n > 0 => {
                    pending[i].extend_from_slice(&buf[..n]);
                    take_lines(&mut pending[i], lines, clean, on_line);
                }
                _ => break,
            }
        }
    }
}

/// Answers a username or password prompt seen at the end of `prompt`.
fn answer(prompt: &mut String, a: &Answers<'_>, term: &mut File, user_sent: &mut bool, pass_sent: &mut bool) {
    let tail = prompt.trim_end().to_ascii_lowercase();
    if !tail.ends_with(':') && !tail.ends_with('?') && !tail.ends_with('>') {
        return;
    }
    let last = tail.rsplit('\n').next().unwrap_or(&tail);
    let reply = if last.contains("password") && !*pass_sent {
        *pass_sent = true;
        a.password
    } else if (last.contains("user") || last.contains("email") || last.contains("account")) && !*user_sent {
        *user_sent = true;
        a.username
    } else {
        return;
    };
    let _ = term.write_all(format!("{reply}\n").as_bytes());
    prompt.clear();
}

fn take_lines(pending: &mut Vec<u8>, lines: &mut Vec<String>, clean: &dyn Fn(&str) -> String, on_line: &dyn Fn(&str)) {
    while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
        let raw: Vec<u8> = pending.drain(..=pos).collect();
        let line = String::from_utf8_lossy(&raw[..raw.len() - 1]).trim_end_matches('\r').to_string();
        let line = clean(&line);
        on_line(&line);
        lines.push(line);
    }
}

fn group_gone(pgid: i32) -> bool {
    match Pid::from_raw(pgid) {
        Some(p) => rustix::process::test_kill_process_group(p).is_err(),
        None => true,
    }
}

/// TERM to the group, KILL after 5 s if any of it is left, then reaps the tool.
fn kill_group(pgid: i32, child: &mut Child) {
    if !group_gone(pgid) {
        sys::terminate_group(pgid as u32);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !group_gone(pgid) {
            let _ = child.try_wait();
            std::thread::sleep(Duration::from_millis(50));
        }
        sys::kill_group(pgid as u32);
    }
    let _ = child.wait();
}

/// Makes this process the reaper of orphans its descendants leave, so that a
/// child the tool detached (a new session) can be found and stopped.
fn become_subreaper() {
    if !SUBREAPER.swap(true, Ordering::SeqCst) {
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    }
}

/// Kills the groups of children of ours that are neither a running tool nor
/// a watchdog: orphans a finished tool left behind.
fn kill_orphans() {
    let me = std::process::id() as i32;
    let keep: HashSet<i32> = OURS.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
    for _ in 0..3 {
        let orphans: Vec<(i32, i32)> =
            children_of(me).into_iter().filter(|(pid, pgid)| !keep.contains(pid) && !keep.contains(pgid)).collect();
        if orphans.is_empty() {
            return;
        }
        for (pid, pgid) in &orphans {
            sys::kill_group(*pgid as u32);
            if let Some(p) = Pid::from_raw(*pid) {
                let _ = rustix::process::kill_process(p, Signal::KILL);
                let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
            }
        }
    }
}

/// (pid, process group) of every child of `parent`, from /proc.
fn children_of(parent: i32) -> Vec<(i32, i32)> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return v };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(ppid), Some(pgrp)) =
            (f.get(1).and_then(|x| x.parse::<i32>().ok()), f.get(2).and_then(|x| x.parse().ok()))
        {
            if ppid == parent && pid != parent {
                v.push((pid, pgrp));
            }
        }
    }
    v
}

/// A process that kills the tool's group when apim-profiles dies, however it
/// dies: it waits on a pipe only apim-profiles holds, and reads EOF then.
struct Watchdog {
    child: Child,
    tell: File,
}

impl Watchdog {
    fn start(pgid: i32) -> Option<Watchdog> {
        let (r, w) = pipe().ok()?;
        let script = format!(
            "read done; [ \"$done\" = done ] && exit 0; kill -TERM -- -{pgid} 2>/dev/null; \
             i=0; while [ $i -lt 50 ] && kill -0 -- -{pgid} 2>/dev/null; do sleep 0.1; i=$((i+1)); done; \
             kill -KILL -- -{pgid} 2>/dev/null; exit 0"
        );
        let child = Command::new("/bin/sh")
            .args(["-c", &script])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::from(r))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()?;
        ours(|s| {
            s.insert(child.id() as i32);
        });
        Some(Watchdog { child, tell: File::from(w) })
    }

    fn finish(mut self) {
        let _ = self.tell.write_all(b"done\n");
        drop(self.tell);
        let _ = self.child.wait();
        let id = self.child.id() as i32;
        ours(|s| {
            s.remove(&id);
        });
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("creating a pipe")
}

/// A pseudo-terminal pair with echo off, both ends close-on-exec in this
/// process (the slave is handed to the tool as its stdin).
fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::OpenptFlags;
    let what = "opening a pseudo-terminal for the update tool";
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).context(what)?;
    rustix::pty::grantpt(&master).context(what)?;
    rustix::pty::unlockpt(&master).context(what)?;
    let name = rustix::pty::ptsname(&master, Vec::new()).context(what)?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .context(what)?;
    if let Ok(mut t) = rustix::termios::tcgetattr(&slave) {
        t.local_modes.remove(rustix::termios::LocalModes::ECHO | rustix::termios::LocalModes::ECHONL);
        let _ = rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t);
    }
    Ok((master, slave))
}

fn set_nonblocking(f: &File) {
    if let Ok(fl) = rustix::fs::fcntl_getfl(f) {
        let _ = rustix::fs::fcntl_setfl(f, fl | rustix::fs::OFlags::NONBLOCK);
    }
}
