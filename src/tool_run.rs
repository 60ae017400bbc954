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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

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
    // SAFETY: signal 0 only probes whether the group exists.
    if pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0 {
        return Some(pgid);
    }
    let _ = std::fs::remove_file(&m);
    None
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
    interrupted: &AtomicBool,
    clean: &dyn Fn(&str) -> String,
    on_line: &dyn Fn(&str),
) -> Result<Outcome> {
    let Spec { tool, cwd, args, answers, marker_dir, timeout } = spec;
    become_subreaper();
    let (master, slave) = open_pty()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let mut cmd = Command::new(tool);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("WSO2_USERNAME")
        .env_remove("WSO2_PASSWORD")
        .stdin(Stdio::from(slave))
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The pseudo-terminal (stdin) becomes the controlling terminal.
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
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
    interrupted: &AtomicBool,
    clean: &dyn Fn(&str) -> String,
    on_line: &dyn Fn(&str),
) -> Result<Outcome> {
    let started = Instant::now();
    let mut files: Vec<Option<File>> = fds.into_iter().map(|fd| Some(File::from(fd))).collect();
    for f in files.iter().flatten() {
        set_nonblocking(f.as_raw_fd());
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
        if interrupted.load(Ordering::SeqCst) {
            ended = Ended::Interrupted;
            break;
        }
        if started.elapsed() >= timeout {
            if status.is_none() {
                ended = Ended::TimedOut;
            }
            break;
        }
        let mut pfds: Vec<libc::pollfd> = open
            .iter()
            .map(|i| libc::pollfd {
                fd: files[*i].as_ref().expect("open").as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: a valid array of pollfd.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 100) };
        for (k, i) in open.iter().enumerate() {
            if pfds[k].revents == 0 {
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
    // SAFETY: signal 0 only probes.
    unsafe { libc::kill(-pgid, 0) != 0 }
}

/// TERM to the group, KILL after 5 s if any of it is left, then reaps the tool.
fn kill_group(pgid: i32, child: &mut Child) {
    if !group_gone(pgid) {
        // SAFETY: signals to the process group (session) we created.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !group_gone(pgid) {
            let _ = child.try_wait();
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    let _ = child.wait();
}

/// Makes this process the reaper of orphans its descendants leave, so that a
/// child the tool detached (a new session) can be found and stopped.
fn become_subreaper() {
    if !SUBREAPER.swap(true, Ordering::SeqCst) {
        // SAFETY: a plain prctl on this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
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
            // SAFETY: signals to processes that are our own children.
            unsafe {
                libc::kill(-*pgid, libc::SIGKILL);
                libc::kill(*pid, libc::SIGKILL);
                libc::waitpid(*pid, std::ptr::null_mut(), 0);
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
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("creating a pipe");
    }
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A pseudo-terminal pair with echo off, both ends close-on-exec in this
/// process (the slave is handed to the tool as its stdin).
fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty fills two descriptors we then own.
    let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("opening a pseudo-terminal for the update tool");
    }
    let (m, s) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    for fd in [m.as_raw_fd(), s.as_raw_fd()] {
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: termios of a terminal we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(s.as_raw_fd(), &mut t) == 0 {
            t.c_lflag &= !(libc::ECHO | libc::ECHONL);
            libc::tcsetattr(s.as_raw_fd(), libc::TCSANOW, &t);
        }
    }
    Ok((m, s))
}

fn set_nonblocking(fd: i32) {
    // SAFETY: fcntl flags on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}
