//! The system calls std does not offer, through `rustix` (safe wrappers, no
//! `unsafe` here): cloning file extents, the atomic exchange of two paths,
//! the effective user, free space, process probes and process-group signals.
//! Every other module asks here rather than calling the kernel itself.

use std::fs::File;
use std::path::Path;

use rustix::fs::{RenameFlags, CWD};
use rustix::process::{Pid, Signal};

/// Clones `src`'s extents into `dst` (FICLONE): no bytes are copied, the
/// blocks are shared until either side writes. Fails where the file system
/// cannot (different file systems, ext4, tmpfs).
pub fn clone_file(dst: &File, src: &File) -> std::io::Result<()> {
    rustix::fs::ioctl_ficlone(dst, src).map_err(Into::into)
}

/// Swaps two existing paths in one step (renameat2 RENAME_EXCHANGE).
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    rustix::fs::renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(Into::into)
}

/// Whether this process runs as root (and so can give copies their owners).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Free bytes for an unprivileged writer on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Whether a process exists (signal 0: nothing is sent). A process of another
/// user, which we may not signal, exists too.
pub fn process_alive(pid: i32) -> bool {
    let Some(pid) = Pid::from_raw(pid) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Asks a process group to stop (SIGTERM).
pub fn terminate_group(pgid: u32) {
    signal_group(pgid, Signal::TERM);
}

/// Stops a process group (SIGKILL).
pub fn kill_group(pgid: u32) {
    signal_group(pgid, Signal::KILL);
}

fn signal_group(pgid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        // The group may be gone already; there is nothing to do then.
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}
