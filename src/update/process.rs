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
    /// Stopped while it waited for an answer this tool cannot give: the
    /// question (masked), or what it was waiting for.
    Asked(String),
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

/// The process group an earlier run's update still runs as, if any. Only a
/// marker this account wrote (its owner, no write bit for others) is read,
/// and it names the group with its leader's start time: a planted marker, or
/// one naming a group whose number was reused, never names someone else's
/// processes. A marker naming a group that is gone is removed.
pub fn still_running(dir: &Path) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let m = running_marker(dir);
    let f = crate::safe_fs::open_own(&m).ok().flatten()?;
    let md = f.metadata().ok()?;
    if md.uid() != rustix::process::geteuid().as_raw() || md.mode() & 0o022 != 0 {
        return None;
    }
    let text = crate::safe_fs::read_bounded(f, &m, 64).ok()?;
    let text = String::from_utf8_lossy(&text);
    let mut parts = text.split_whitespace();
    let pgid: i32 = parts.next()?.parse().ok()?;
    let started: u64 = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    // A group keeps its number while any member lives, so a leader that is
    // gone (killed with the run) still names this group; a leader alive with
    // another start time is another process.
    if pgid > 1 && !group_gone(pgid) && start_time(pgid).is_none_or(|t| t == started) {
        return Some(pgid);
    }
    let _ = std::fs::remove_file(&m);
    None
}

/// When the process `pid` started (clock ticks since boot, from /proc).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ... : field 22 is the start time; comm may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A process that works in a `bin/` below `dir` (its working directory is
/// there, as the update tool's is) and is
/// neither this process nor one of its ancestors: a child an earlier update
/// tool left in a session of its own, which outlived that run.
fn lingering_in(dir: &Path) -> Option<(i32, String)> {
    let me = std::process::id() as i32;
    let mut mine = HashSet::from([me]);
    let mut p = me;
    while let Some(parent) = parent_of(p).filter(|pp| *pp > 1) {
        mine.insert(parent);
        p = parent;
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if mine.contains(&pid) {
            continue;
        }
        let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else { continue };
        // Where the tool runs (a copy's bin/), and what it starts inherits.
        let in_bin = cwd.strip_prefix(dir).is_ok_and(|r| r.components().any(|c| c.as_os_str() == "bin"));
        if in_bin {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            return Some((pid, comm.trim().to_string()));
        }
    }
    None
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()
}

/// Refuses to start while an update of an earlier run (killed before it could
/// stop its tool) still runs beside this copy: a second one would share its
/// files and `~/.wso2-updates`.
pub fn refuse_if_running(dir: &Path) -> Result<()> {
    refuse_if_running_in(&[dir])
}

/// [`refuse_if_running`] for several directories: the groups their markers
/// name first (the message says how to stop one), then leftovers.
pub fn refuse_if_running_in(dirs: &[&Path]) -> Result<()> {
    for dir in dirs {
        if let Some(pgid) = still_running(dir) {
            return crate::outcome::refuse(
                format!(
                    "an update started by an earlier run is still running in {} (process group {pgid})",
                    dir.display()
                ),
                format!("wait for it to end, or stop it with: kill -TERM -- -{pgid}"),
            );
        }
    }
    for dir in dirs {
        if let Some((pid, comm)) = lingering_in(dir) {
            return crate::outcome::refuse(
                format!(
                    "process {pid} ({comm}) still works in {}, left by an earlier update that was killed",
                    dir.display()
                ),
                format!(
                    "check what it is (ls -l /proc/{pid}/cwd) and stop it when it is the update tool's, then run again"
                ),
            );
        }
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
    /// How long the tool may wait for input nobody gives, silent, before it
    /// is stopped with its question shown.
    pub input_timeout: Duration,
    /// Answer yes to the trial-subscription question.
    pub trial: bool,
}

/// Runs the tool and answers its credential prompts. `clean` masks each
/// output line; `on_line` sees each (masked) line as it comes.
pub fn run(
    spec: Spec<'_>,
    interrupted: &dyn Fn() -> bool,
    clean: &dyn Fn(&str) -> String,
    on_line: &dyn Fn(&str),
) -> Result<Outcome> {
    let Spec { tool, cwd, args, answers, marker_dir, timeout, input_timeout, trial } = spec;
    become_subreaper();
    let (master, slave, tty) = open_pty()?;
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
    let started = start_time(pgid).unwrap_or(0);
    let text = format!("{pgid} {started}\n");
    let _ = crate::safe_fs::write_atomic(marker_dir, ".apim-profiles-update.pid", text.as_bytes(), 0o644);

    let mut pump = Pump::new([out_r, err_r, master], answers, trial, tty);
    let limits = Limits { timeout, input_timeout };
    let r = pump.run(&mut child, pgid, limits, interrupted, clean, on_line);

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

/// How long a run may take, and wait for input.
struct Limits {
    timeout: Duration,
    input_timeout: Duration,
}

/// The reading side of one run: the tool's stdout, stderr and terminal, what
/// it printed so far, and the state of the conversation at its prompts.
struct Pump<'a> {
    files: Vec<Option<File>>,
    pending: [Vec<u8>; 3],
    /// The output since the last answer, where a prompt is looked for.
    prompt: String,
    lines: Vec<String>,
    talk: Talk<'a>,
    /// The last time the tool printed anything or was answered.
    heard: Instant,
}

/// The conversation at the tool's prompts: what was answered, what to do
/// with the trial question, and the terminal's name (to tell when the tool
/// waits on it).
struct Talk<'a> {
    answers: Option<Answers<'a>>,
    trial: bool,
    tty: PathBuf,
    user_sent: bool,
    pass_sent: bool,
    trial_sent: bool,
}

/// What the conversation asks of the run after new output.
enum Turn {
    Go,
    Stop(String),
}

impl<'a> Pump<'a> {
    fn new(fds: [OwnedFd; 3], answers: Option<Answers<'a>>, trial: bool, tty: PathBuf) -> Pump<'a> {
        let files: Vec<Option<File>> = fds.into_iter().map(|fd| Some(File::from(fd))).collect();
        for f in files.iter().flatten() {
            set_nonblocking(f);
        }
        let talk = Talk { answers, trial, tty, user_sent: false, pass_sent: false, trial_sent: false };
        Pump {
            files,
            pending: Default::default(),
            prompt: String::new(),
            lines: Vec::new(),
            talk,
            heard: Instant::now(),
        }
    }

    /// Reads the tool's output and answers its prompts until it and
    /// everything holding its pipes are gone, or the timeout, Ctrl-C or a
    /// question nobody answers.
    fn run(
        &mut self,
        child: &mut Child,
        pgid: i32,
        limits: Limits,
        interrupted: &dyn Fn() -> bool,
        clean: &dyn Fn(&str) -> String,
        on_line: &dyn Fn(&str),
    ) -> Result<Outcome> {
        let started = Instant::now();
        let mut status = None;
        let ended = loop {
            if status.is_none() {
                status = child.try_wait()?;
            }
            // Drained when the output ended, or when the tool's whole group is
            // gone (what still holds the pipes left the group: not waited for).
            let pipes_open = self.files[0].is_some() || self.files[1].is_some();
            if status.is_some() && (!pipes_open || group_gone(pgid)) {
                drain_now(&mut self.files, &mut self.pending, &mut self.lines, clean, on_line);
                break Ended::Exited;
            }
            if interrupted() {
                break Ended::Interrupted;
            }
            if started.elapsed() >= limits.timeout {
                break if status.is_none() { Ended::TimedOut } else { Ended::Exited };
            }
            self.read_ready(clean, on_line);
            if let Turn::Stop(q) = self.converse(pgid, limits.input_timeout, clean) {
                // The question was on the terminal, not a line of output: the
                // kept log shows it too.
                self.lines.push(format!("apim-profiles: stopped the update tool at its question: {q}"));
                break Ended::Asked(q);
            }
        };
        for p in self.pending.iter_mut().take(2) {
            if !p.is_empty() {
                p.push(b'\n');
                take_lines(p, &mut self.lines, clean, on_line);
            }
        }
        let code = status.and_then(|s| s.code());
        Ok(Outcome { code, ended, lines: std::mem::take(&mut self.lines) })
    }

    /// Waits up to 100 ms for output and reads what came.
    fn read_ready(&mut self, clean: &dyn Fn(&str) -> String, on_line: &dyn Fn(&str)) {
        let open: Vec<usize> = (0..3).filter(|i| self.files[*i].is_some()).collect();
        let ready: Vec<bool> = {
            let mut pfds: Vec<PollFd<'_>> =
                open.iter().map(|i| PollFd::new(self.files[*i].as_ref().expect("open"), PollFlags::IN)).collect();
            let tick = rustix::event::Timespec { tv_sec: 0, tv_nsec: 100_000_000 };
            let _ = rustix::event::poll(&mut pfds, Some(&tick));
            pfds.iter().map(|p| !p.revents().is_empty()).collect()
        };
        let mut buf = vec![0u8; 64 * 1024];
        for (_, i) in open.iter().enumerate().filter(|(k, _)| ready[*k]) {
            let f = self.files[*i].as_mut().expect("open");
            match f.read(&mut buf) {
                Ok(0) => self.files[*i] = None,
                Ok(n) => {
                    self.heard = Instant::now();
                    if *i == 2 {
                        self.prompt.push_str(&String::from_utf8_lossy(&buf[..n]));
                    } else {
                        let new = &buf[..n];
                        self.pending[*i].extend_from_slice(new);
                        // Only new bytes are looked at: output without
                        // newlines is never scanned or decoded twice.
                        if new.contains(&b'\n') || self.pending[*i].len() > MAX_LINE {
                            take_lines(&mut self.pending[*i], &mut self.lines, clean, on_line);
                        }
                        // A prompt on stdout (no newline yet) counts too.
                        let tail = new.iter().rposition(|b| *b == b'\n').map_or(new, |p| &new[p + 1..]);
                        self.prompt.push_str(&String::from_utf8_lossy(tail));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO on the terminal: every slave end is closed.
                Err(_) => self.files[*i] = None,
            }
        }
        if self.prompt.len() > 4096 {
            let cut = self.prompt.len() - 1024;
            let cut = (cut..self.prompt.len()).find(|i| self.prompt.is_char_boundary(*i)).unwrap_or(0);
            self.prompt.drain(..cut);
        }
    }

    /// Answers the prompt the tool shows, if it is one this tool knows; stops
    /// the run on one it cannot answer, or when the tool has waited on its
    /// terminal, silent, for `input_timeout`.
    fn converse(&mut self, pgid: i32, input_timeout: Duration, clean: &dyn Fn(&str) -> String) -> Turn {
        let question = self.prompt.rsplit('\n').next().unwrap_or("").trim().to_string();
        let Some(term) = self.files[2].as_mut() else { return Turn::Go };
        match self.talk.reply(&question) {
            Reply::Send(text) => {
                let _ = term.write_all(format!("{text}\n").as_bytes());
                self.prompt.clear();
                self.heard = Instant::now();
                return Turn::Go;
            }
            Reply::Refuse(why) => return Turn::Stop(format!("{} ({why})", clean(&question))),
            Reply::Wait => {}
        }
        if self.heard.elapsed() < input_timeout || !waits_on_terminal(pgid, &self.talk.tty) {
            return Turn::Go;
        }
        Turn::Stop(if question.is_empty() {
            format!("it waited {} s for input on its terminal without asking anything", input_timeout.as_secs())
        } else {
            format!("{} (a question apim-profiles does not answer)", clean(&question))
        })
    }
}

/// What to do at a prompt.
enum Reply<'a> {
    Send(&'a str),
    Refuse(&'static str),
    Wait,
}

impl<'a> Talk<'a> {
    /// The answer to the documented prompts (`Username: `, `Password for
    /// '<user>': `, the trial-subscription question); a second password
    /// prompt means the password was refused.
    fn reply(&mut self, question: &str) -> Reply<'a> {
        let q = question.to_ascii_lowercase();
        if !(q.ends_with(':') || q.ends_with('?') || q.ends_with(']') || q.ends_with('>')) {
            return Reply::Wait;
        }
        if q.contains("trial") {
            if !self.trial || self.trial_sent {
                return Reply::Refuse(
                    "the account has no active subscription; pass --update-trial-subscription to accept a trial",
                );
            }
            self.trial_sent = true;
            return Reply::Send("y");
        }
        let Some(a) = &self.answers else { return Reply::Refuse("no credentials were given to answer it") };
        if q.contains("password") {
            if self.pass_sent {
                return Reply::Refuse("asked again: the update service refused the username or password");
            }
            self.pass_sent = true;
            return Reply::Send(a.password);
        }
        if q.contains("user") || q.contains("email") || q.contains("account") {
            if self.user_sent {
                return Reply::Refuse("asked again: the update service refused the username or password");
            }
            self.user_sent = true;
            return Reply::Send(a.username);
        }
        Reply::Wait
    }
}

/// Whether a process of the group `pgid` is blocked reading the terminal
/// `tty` (from /proc: its threads' current system call and open files).
fn waits_on_terminal(pgid: i32, tty: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else { return false };
    rd.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| process_group(*pid) == Some(pgid))
        .any(|pid| reads_terminal(pid, tty))
}

fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Whether a thread of `pid` is in `read` on a descriptor open on `tty`.
fn reads_terminal(pid: i32, tty: &Path) -> bool {
    // read(2) on x86_64 and aarch64.
    let read_nr = if cfg!(target_arch = "aarch64") { "63" } else { "0" };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().any(|t| {
        let Ok(sc) = std::fs::read_to_string(t.path().join("syscall")) else { return false };
        let mut f = sc.split_whitespace();
        if f.next() != Some(read_nr) {
            return false;
        }
        let Some(fd) = f.next().and_then(|h| i64::from_str_radix(h.trim_start_matches("0x"), 16).ok()) else {
            return false;
        };
        // Opened as its own terminal (`/dev/tty`: the tool's session has ours
        // as its controlling terminal) or by name.
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).is_ok_and(|p| p == tty || p == Path::new("/dev/tty"))
    })
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

/// The longest line kept whole: a tool that prints this much without a
/// newline has its output cut into lines of this length.
const MAX_LINE: usize = 1 << 20;

fn take_lines(pending: &mut Vec<u8>, lines: &mut Vec<String>, clean: &dyn Fn(&str) -> String, on_line: &dyn Fn(&str)) {
    let mut start = 0;
    while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n').map(|p| start + p) {
        let line = String::from_utf8_lossy(&pending[start..pos]).trim_end_matches('\r').to_string();
        let line = clean(&line);
        on_line(&line);
        lines.push(line);
        start = pos + 1;
    }
    while pending.len() - start > MAX_LINE {
        let line = clean(&String::from_utf8_lossy(&pending[start..start + MAX_LINE]));
        on_line(&line);
        lines.push(line);
        start += MAX_LINE;
    }
    pending.drain(..start);
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
        // `kill -SIG -PGID`, not `kill -SIG -- -PGID`: dash (Debian's
        // /bin/sh) takes no `--` and would signal nothing.
        let script = format!(
            "read done; [ \"$done\" = done ] && exit 0; kill -TERM -{pgid} 2>/dev/null; \
             i=0; while [ $i -lt 50 ] && kill -0 -{pgid} 2>/dev/null; do sleep 0.1; i=$((i+1)); done; \
             kill -KILL -{pgid} 2>/dev/null; exit 0"
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
fn open_pty() -> Result<(OwnedFd, OwnedFd, PathBuf)> {
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
    let path = PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(name.into_bytes()));
    Ok((master, slave, path))
}

fn set_nonblocking(f: &File) {
    if let Ok(fl) = rustix::fs::fcntl_getfl(f) {
        let _ = rustix::fs::fcntl_setfl(f, fl | rustix::fs::OFlags::NONBLOCK);
    }
}
