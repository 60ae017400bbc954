//! The system calls std does not offer, through `rustix` (safe wrappers, no
//! `unsafe` here): cloning file extents, the atomic exchange of two paths,
//! the effective user, free space, process probes and process-group signals,
//! starting writeback, flushing a file system, in-kernel byte copies,
//! directory handles. Modules that need one of these ask here.
//!
//! Not every kernel call is here, by choice: a module whose whole job is a
//! system interface calls rustix itself, where its calls read together —
//! `safe_fs` (openat2 beneath a directory handle), `update::process` (the
//! update tool's session, pseudo-terminal, process group and poll) and
//! `engine::fidelity` (owners, modes, times and extended attributes of a
//! copied file); `engine::archive` and `engine::oci` create their files and
//! directories at a handle; `report::wrap` asks the terminal's width;
//! `model` and `engine::output` name errno values. Wrapping each of those
//! here would add a layer with a single caller; a call two modules share
//! belongs here.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{FlockOperation, Mode, OFlags, RenameFlags, CWD};
use rustix::process::{Pid, Signal};

/// Clones `src`'s extents into `dst` (FICLONE): no bytes are copied, the
/// blocks are shared until either side writes. Fails where the file system
/// cannot (different file systems, ext4, tmpfs).
pub fn clone_file(dst: &File, src: &File) -> std::io::Result<()> {
    rustix::fs::ioctl_ficlone(dst, src).map_err(Into::into)
}

/// Starts writeback of a file's dirty pages without waiting for it and drops
/// the pages already clean: `posix_fadvise(DONTNEED)`, which on Linux begins
/// writeback of the range (as `sync_file_range(SYNC_FILE_RANGE_WRITE)` does,
/// which rustix does not offer) before dropping what it can.
pub fn start_writeback(f: &File) -> std::io::Result<()> {
    rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed).map_err(Into::into)
}

/// Flushes the whole file system holding `dir` (syncfs): data, metadata and
/// directories, with any writeback error since they were written.
pub fn sync_file_system(dir: &Path) -> std::io::Result<()> {
    let d = File::open(dir)?;
    rustix::fs::syncfs(&d).map_err(Into::into)
}

/// Fills `buf` from the kernel's random source (getrandom(2)). There is no
/// fallback: a name or key made without it would be guessable.
pub fn random(buf: &mut [u8]) -> std::io::Result<()> {
    getrandom::fill(buf).map_err(|e| std::io::Error::other(format!("the system's random source failed: {e}")))
}

/// Swaps two existing paths in one step (renameat2 RENAME_EXCHANGE).
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    rustix::fs::renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(Into::into)
}

/// Renames `a` to `b` only if nothing is at `b` (renameat2 RENAME_NOREPLACE).
pub fn rename_noreplace(a: &Path, b: &Path) -> std::io::Result<()> {
    rustix::fs::renameat_with(CWD, a, CWD, b, RenameFlags::NOREPLACE).map_err(Into::into)
}

/// The effective user's id (the owner a directory the tool uses must have).
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether this process runs as root (and so can give copies their owners).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether this process may read `path` (its effective ids, ACLs included).
pub fn can_read(path: &Path) -> bool {
    rustix::fs::accessat(CWD, path, rustix::fs::Access::READ_OK, rustix::fs::AtFlags::EACCESS).is_ok()
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

/// Opens a file for reading, never through a link (O_NOFOLLOW), and without
/// blocking on a fifo put in its place.
pub fn open_read_nofollow(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    std::fs::OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(p)
}

/// Opens (creating with mode 600) a file to append to, never through a link.
pub fn open_append_nofollow(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(p)
}

/// Whether this process may create entries in the directory `dir`.
pub fn can_create_in(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK).is_ok()
}

/// Opens (creating, mode 600) a lock file for reading and writing, never
/// through a symbolic link.
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o600))?;
    Ok(File::from(fd))
}

/// Takes an exclusive flock without waiting: false when another process
/// holds it.
pub fn try_lock(file: &File) -> std::io::Result<bool> {
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether an open file is the one at `path` now (same device and inode).
pub fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// An entry's metadata as `lstat` gives it (links not followed), read
/// relative to its directory's descriptor by [`stat_at`].
pub struct Stat(rustix::fs::Stat);

impl Stat {
    /// The metadata `fstat` gave.
    pub fn of(st: rustix::fs::Stat) -> Stat {
        Stat(st)
    }
    fn file_type(&self) -> rustix::fs::FileType {
        rustix::fs::FileType::from_raw_mode(self.0.st_mode)
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == rustix::fs::FileType::Directory
    }
    pub fn is_file(&self) -> bool {
        self.file_type() == rustix::fs::FileType::RegularFile
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == rustix::fs::FileType::Symlink
    }
    pub fn mode(&self) -> u32 {
        self.0.st_mode
    }
    /// Size in bytes (a file's length, a link's target length).
    pub fn size(&self) -> u64 {
        self.0.st_size.max(0) as u64
    }
    pub fn mtime(&self) -> i64 {
        self.0.st_mtime
    }
    pub fn mtime_nsec(&self) -> u32 {
        self.0.st_mtime_nsec as u32
    }
    /// The inode change time: set by the kernel on every change of content
    /// or metadata, and no owner can set it back.
    pub fn ctime(&self) -> i64 {
        self.0.st_ctime
    }
    pub fn ctime_nsec(&self) -> u32 {
        self.0.st_ctime_nsec as u32
    }
    pub fn uid(&self) -> u32 {
        self.0.st_uid
    }
    pub fn gid(&self) -> u32 {
        self.0.st_gid
    }
    pub fn dev(&self) -> u64 {
        self.0.st_dev
    }
    pub fn ino(&self) -> u64 {
        self.0.st_ino
    }
    pub fn nlink(&self) -> u64 {
        self.0.st_nlink
    }
    pub fn blocks(&self) -> u64 {
        self.0.st_blocks.max(0) as u64
    }
}

/// Opens a directory to read its entries; a link in its place is refused,
/// never followed, unless `follow` (the root a person named, which may be a
/// link to the real directory).
pub fn open_dir(path: &Path, follow: bool) -> std::io::Result<std::os::fd::OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    rustix::fs::open(path, flags, Mode::empty()).map_err(Into::into)
}

/// Opens the directory `name` of the directory `parent`, never through a link.
pub fn open_dir_at(parent: &std::os::fd::OwnedFd, name: &std::ffi::OsStr) -> std::io::Result<std::os::fd::OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(Into::into)
}

/// (device, inode) of an open file or directory.
pub fn fd_id(fd: &std::os::fd::OwnedFd) -> std::io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// The target of the link `name` in the directory `dir`.
pub fn readlink_at(dir: &std::os::fd::OwnedFd, name: &std::ffi::OsStr) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
    Ok(std::ffi::OsString::from_vec(target.into_bytes()).into())
}

/// The names in an open directory (`.` and `..` left out), each with whether
/// it is a directory: from the entry's `d_type`, or an `lstat` where the
/// file system does not say.
pub fn list_dir(fd: &std::os::fd::OwnedFd) -> std::io::Result<Vec<(std::ffi::OsString, bool)>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(fd)? {
        let e = e?;
        let name = std::ffi::OsStr::from_bytes(e.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let is_dir = match e.file_type() {
            rustix::fs::FileType::Directory => true,
            rustix::fs::FileType::Unknown => stat_at(fd, name)?.is_dir(),
            _ => false,
        };
        out.push((name.to_os_string(), is_dir));
    }
    Ok(out)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: no lookup from the root.
pub fn stat_at(dir: &std::os::fd::OwnedFd, name: &std::ffi::OsStr) -> std::io::Result<Stat> {
    rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).map(Stat).map_err(Into::into)
}

/// A second name `dst` (a path this run made, e.g. in its staging) for the
/// entry `name` of `dir`, never following a link at `name`.
pub fn link_from(dir: &std::os::fd::OwnedFd, name: &std::ffi::OsStr, dst: &Path) -> std::io::Result<()> {
    rustix::fs::linkat(dir, name, rustix::fs::CWD, dst, rustix::fs::AtFlags::empty()).map_err(Into::into)
}
