//! The one place where the tool opens files of its own and reads files it
//! was given, written for a root process working in directories other
//! accounts can write to:
//!
//! - its own files (record, journal, lock, temporaries) are created with
//!   `O_EXCL` under unpredictable names (`tempfile`) and renamed into place,
//!   so a link planted at a predictable name is replaced, never followed;
//!   files it opens by a fixed name are opened with `O_NOFOLLOW`;
//! - a file read from the home is read only when it resolves inside the home
//!   (a link to `/etc/shadow` is refused, not printed), and only when it is a
//!   regular file: special files are refused before a read could block.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;

use rustix::fs::{OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::outcome::Refusal;

/// Open flags as `OpenOptionsExt::custom_flags` takes them.
fn flags(f: OFlags) -> i32 {
    f.bits() as i32
}

/// Writes `bytes` to `dir/name` atomically: a new file under a random name in
/// `dir` (`O_EXCL`), synced, then renamed over `name`. Whatever was at `name`
/// (a link included) is replaced, not written through.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
    write_atomic_with(dir, name, mode, |w| w.write_all(bytes))
}

/// [`write_atomic`] of what `write` writes, through a buffer: a large file
/// (a record of a 200,000-file copy is tens of MB) is never held whole.
pub fn write_atomic_with(
    dir: &Path,
    name: &str,
    mode: u32,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let shown = tmp.path().display().to_string();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
    write(&mut out).and_then(|()| out.flush()).with_context(|| format!("writing {shown}"))?;
    drop(out);
    tmp.as_file().sync_all().ok();
    let target = dir.join(name);
    tmp.persist(&target).map_err(|e| e.error).with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}

/// A name no other account can guess: `prefix` and 16 random hex digits;
/// an error when the system has no randomness to give (never a guessable
/// name instead).
pub fn unguessable(prefix: &str) -> Result<String> {
    let mut b = [0u8; 8];
    crate::sys::random(&mut b)?;
    Ok(format!("{prefix}{:016x}", u64::from_ne_bytes(b)))
}

/// Opens a source file for copying: a regular file at `path` itself without
/// following a link (the common case, one open), or, when `path` is a link,
/// the file it leads to only if that stays inside `root`.
///
/// The file opened directly must be the one the scan saw (`scanned`:
/// device and inode): a directory above it swapped for a link since (which
/// `O_NOFOLLOW` on the last name cannot see) would otherwise lead the copy
/// to any file on the machine.
pub fn open_source(root: &Path, rel: &Path, scanned: (u64, u64)) -> Result<File> {
    let path = root.join(rel);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags(OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC))
        .open(&path);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
            return open_inside(root, rel);
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let md = f.metadata()?;
    if (md.dev(), md.ino()) != scanned {
        return Err(Refusal::new(
            format!("{} is not the file that was planned: it changed, or a directory above it was replaced, since the home was read", path.display()),
            "run again when nothing else writes to the home",
        )
        .into());
    }
    if !md.file_type().is_file() {
        return Err(Refusal::new(
            format!("{} is not a regular file (a FIFO, socket or device)", path.display()),
            "remove it from the home; a product home holds only files, directories and links",
        )
        .into());
    }
    Ok(f)
}

/// Opens `rel` below the directory `root` for reading, never leaving it:
/// no link is followed anywhere on the way (`openat2` with `RESOLVE_BENEATH`
/// and `RESOLVE_NO_SYMLINKS`; on a kernel without `openat2`, one `openat`
/// with `O_NOFOLLOW` per name). What is opened may still be any kind of
/// entry: the caller checks it (`O_NONBLOCK`: a fifo does not block the open).
pub fn open_beneath(root: &std::os::fd::OwnedFd, rel: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, ResolveFlags};
    let read = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(root, rel, read, Mode::empty(), how) {
        Ok(fd) => return Ok(File::from(fd)),
        Err(Errno::NOSYS) => {}
        Err(e) => return Err(e.into()),
    }
    let names: Vec<_> = rel.components().collect();
    let mut dir: Option<std::os::fd::OwnedFd> = None;
    for (i, c) in names.iter().enumerate() {
        let std::path::Component::Normal(name) = c else {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain relative path"));
        };
        let at = dir.as_ref().unwrap_or(root);
        if i + 1 == names.len() {
            return Ok(File::from(rustix::fs::openat(at, *name, read, Mode::empty())?));
        }
        let through = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        dir = Some(rustix::fs::openat(at, *name, through, Mode::empty())?);
    }
    Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "an empty path"))
}

/// Opens a file of the tool's own for reading without following a link at
/// its name. `Ok(None)` when it does not exist; refused when it is a link or
/// not a regular file (someone else put it there).
pub fn open_own(path: &Path) -> Result<Option<File>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags(OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC))
        .open(path);
    match f {
        Ok(f) => {
            if !f.metadata()?.file_type().is_file() {
                return Err(not_ours(path));
            }
            Ok(Some(f))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => Err(not_ours(path)),
        Err(e) => Err(e).with_context(|| format!("opening {}", path.display())),
    }
}

fn not_ours(path: &Path) -> anyhow::Error {
    Refusal::new(
        format!("{} is not a file apim-profiles wrote: it is a link or a special file", path.display()),
        "someone else created it; inspect and remove it, then run again",
    )
    .into()
}

/// The most a file of the tool's own may hold: a record of a 200,000-file
/// copy is tens of MB; anything near this is not one of ours.
pub const OWN_LIMIT: u64 = 256 << 20;

/// The most a small file (a lock's or a pid file's number, a settings or
/// credentials file, an overlay) may hold.
pub const SMALL_LIMIT: u64 = 16 << 20;

/// Reads a file of the tool's own (see [`open_own`]), refused past
/// [`OWN_LIMIT`].
pub fn read_own(path: &Path) -> Result<Option<Vec<u8>>> {
    read_own_bounded(path, OWN_LIMIT)
}

/// [`read_own`] of a file that may hold no more than `limit` bytes.
pub fn read_own_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let Some(f) = open_own(path)? else { return Ok(None) };
    read_bounded(f, path, limit).map(Some)
}

/// Opens a file given to the tool (an overlay, a credentials file) for
/// reading, refusing anything but a regular file before a read can block (a
/// FIFO opened without `O_NONBLOCK` waits for a writer).
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags(OFlags::NONBLOCK | OFlags::CLOEXEC))
        .open(path)
        .map_err(|e| {
        Refusal::new(
            format!("{what} {} cannot be read ({e})", path.display()),
            "give a regular file this user can read",
        )
    })?;
    let md = f.metadata()?;
    if !md.file_type().is_file() {
        return Err(Refusal::new(
            format!("{what} {} is not a regular file (a FIFO, socket or device)", path.display()),
            "give a regular file; special files are refused because reading them can block forever",
        )
        .into());
    }
    Ok(f)
}

/// Reads a regular file given to the tool (see [`open_regular`]), no
/// larger than [`SMALL_LIMIT`].
pub fn read_regular(path: &Path, what: &str) -> Result<Vec<u8>> {
    let f = open_regular(path, what)?;
    read_bounded(f, path, SMALL_LIMIT).with_context(|| format!("reading the {what} {}", path.display()))
}

/// Where `root/rel` leads, refused when a link takes it outside `root`.
pub fn resolve_inside(root: &Path, rel: &Path) -> Result<PathBuf> {
    let root_c = std::fs::canonicalize(root).with_context(|| format!("resolving {}", root.display()))?;
    let full = root.join(rel);
    let resolved = std::fs::canonicalize(&full).with_context(|| format!("resolving {}", full.display()))?;
    if !resolved.starts_with(&root_c) {
        return Err(Refusal::new(
            format!("{} is a link that leads outside the home {}; it is not read", full.display(), root_c.display()),
            "replace the link with the file itself, or point it at a file inside the home",
        )
        .into());
    }
    Ok(resolved)
}

/// Opens `root/rel` for reading, following links only while they stay
/// inside `root`, and only a regular file. The kernel resolves the name
/// beneath the root's descriptor (`openat2(RESOLVE_BENEATH)`), so a
/// directory swapped for a link to elsewhere at any moment fails the open
/// rather than leading it out. An absolute link into the root (which
/// `RESOLVE_BENEATH` refuses) is resolved first, then its target opened the
/// same way with no link followed.
pub fn open_inside(root: &Path, rel: &Path) -> Result<File> {
    let top = Beneath::open(root, true)?;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    crate::hooks::before_open(rel);
    let fd = match rustix::fs::openat2(top.fd(), rel, flags, rustix::fs::Mode::empty(), how) {
        Ok(fd) => fd,
        Err(e) if e == Errno::XDEV || e == Errno::NOSYS || e == Errno::PERM || e == Errno::AGAIN => {
            let resolved = resolve_inside(root, rel)?;
            let root_c = std::fs::canonicalize(root).with_context(|| format!("resolving {}", root.display()))?;
            let inner = resolved.strip_prefix(&root_c).unwrap_or(Path::new("")).to_path_buf();
            top.open_at(&inner, flags, 0).map_err(|e| refused_link(&root.join(rel), e))?
        }
        Err(e) if e == Errno::LOOP || e == Errno::NOTDIR => return Err(refused_link(&root.join(rel), e.into())),
        Err(e) => return Err(e).with_context(|| format!("opening {}", root.join(rel).display())),
    };
    let f = File::from(fd);
    if !f.metadata()?.file_type().is_file() {
        return Err(Refusal::new(
            format!("{} is not a regular file (a FIFO, socket or device)", root.join(rel).display()),
            "remove it from the home; a product home holds only files, directories and links",
        )
        .into());
    }
    Ok(f)
}

/// Reads `root/rel` (see [`open_inside`]).
pub fn read_inside(root: &Path, rel: &Path) -> Result<Vec<u8>> {
    let shown = root.join(rel);
    let f = open_inside(root, rel)?;
    read_bounded(f, &shown, OWN_LIMIT)
}

/// Device and inode of what is at `path` (links followed).
pub fn dev_ino(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Device and inode of what is at `path` itself (a link is not followed).
pub fn dev_ino_nofollow(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A directory opened once; everything below it is reached relative to its
/// descriptor with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (or, on a
/// kernel without `openat2`, one `openat(O_NOFOLLOW)` per name): no link is
/// followed and no `..` leaves it, so a directory below swapped for a link,
/// at any moment, makes the operation fail instead of reaching elsewhere.
/// The path is kept only to name things in messages.
pub struct Beneath {
    fd: OwnedFd,
    path: PathBuf,
}

/// A link, a special file or a directory swapped since it was read: the
/// error of an open beneath a handle that refused to follow it.
fn led_out(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(c) if c == Errno::LOOP.raw_os_error() || c == Errno::XDEV.raw_os_error() || c == Errno::NOTDIR.raw_os_error())
}

fn refused_link(path: &Path, e: std::io::Error) -> anyhow::Error {
    if led_out(&e) {
        return Refusal::new(
            format!("{} is a link, or a directory on its way was replaced by one; it is not followed", path.display()),
            "run again when nothing else changes the directory; links are never followed below a directory apim-profiles works in",
        )
        .into();
    }
    anyhow::Error::new(e).context(format!("opening {}", path.display()))
}

impl Beneath {
    /// Opens the directory at `path`; `follow` allows `path` itself to be a
    /// link (a directory a person named), never anything below it.
    pub fn open(path: &Path, follow: bool) -> Result<Beneath> {
        let fd = crate::sys::open_dir(path, follow).map_err(|e| refused_link(path, e))?;
        Ok(Beneath { fd, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// (device, inode, mode, owner) of the directory itself.
    pub fn stat(&self) -> Result<rustix::fs::Stat> {
        rustix::fs::fstat(&self.fd).with_context(|| format!("reading {}", self.path.display()))
    }

    /// Opens `rel` below this directory with `flags`, following no link on
    /// the way or at the end. The test suite's fault hook runs between the
    /// name being chosen and the open, where a swap would matter.
    pub fn open_at(&self, rel: &Path, flags: OFlags, mode: u32) -> std::io::Result<OwnedFd> {
        crate::hooks::before_open(rel);
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = rustix::fs::Mode::from_raw_mode(mode);
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(&self.fd, rel, flags, mode, how) {
            Err(e) if e == Errno::NOSYS || e == Errno::PERM => {}
            Err(e) if e == Errno::AGAIN => {}
            r => return r.map_err(Into::into),
        }
        open_by_names(&self.fd, rel, flags, mode)
    }

    /// The directory `rel` below this one (see [`Beneath::open_at`]).
    pub fn dir(&self, rel: &Path) -> Result<Beneath> {
        let path = self.path.join(rel);
        if rel.as_os_str().is_empty() {
            let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?;
            return Ok(Beneath { fd, path });
        }
        let fd = self.open_at(rel, OFlags::RDONLY | OFlags::DIRECTORY, 0).map_err(|e| refused_link(&path, e))?;
        Ok(Beneath { fd, path })
    }

    /// The directory holding `rel`, and `rel`'s last name.
    pub fn parent_of(&self, rel: &Path) -> Result<(Beneath, OsString)> {
        let name = rel.file_name().with_context(|| format!("{} has no name", rel.display()))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        Ok((self.dir(parent)?, name.to_os_string()))
    }

    /// Creates the file `name` in this directory: `O_EXCL`, no link
    /// followed, with `mode`.
    pub fn create_new(&self, name: &OsStr, mode: u32) -> Result<File> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, rustix::fs::Mode::from_raw_mode(mode))
            .with_context(|| format!("creating {}", self.path.join(name).display()))?;
        Ok(File::from(fd))
    }

    /// Writes `bytes` as `name` in this directory: a new file under an
    /// unguessable name (`O_EXCL`, no link followed, `mode`), synced, then
    /// renamed over `name`; whatever was at `name` (a planted link) is
    /// replaced, never written through.
    pub fn write_atomic(&self, name: &OsStr, bytes: &[u8], mode: u32) -> Result<()> {
        let tmp = OsString::from(unguessable(&format!(".{}.apim-profiles-tmp-", name.to_string_lossy()))?);
        let mut f = self.create_new(&tmp, 0o600)?;
        let shown = self.path.join(name);
        let written = rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(mode))
            .map_err(std::io::Error::from)
            .and_then(|()| f.write_all(bytes))
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", shown.display()))
            .and_then(|()| self.rename(&tmp, name));
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, &tmp, rustix::fs::AtFlags::empty());
        }
        written
    }

    /// Renames `from` to `to`, both names in this directory.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> Result<()> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to)
            .with_context(|| format!("renaming {} to {}", self.path.join(from).display(), to.to_string_lossy()))
    }

    /// A second name `to` (in `dir`) for the file `from` of this directory;
    /// fails rather than replace anything at `to`.
    pub fn hard_link(&self, from: &OsStr, dir: &Beneath, to: &OsStr) -> std::io::Result<()> {
        rustix::fs::linkat(&self.fd, from, &dir.fd, to, rustix::fs::AtFlags::empty()).map_err(Into::into)
    }

    /// Removes the name `name` of this directory, and everything below it
    /// when it is a directory (never through a link: a link is removed as a
    /// link). Nothing there is fine.
    pub fn remove_tree(&self, name: &OsStr) -> Result<()> {
        let full = self.path.join(name);
        let st = match crate::sys::stat_at(&self.fd, name) {
            Ok(st) => st,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", full.display())),
        };
        if !st.is_dir() {
            return rustix::fs::unlinkat(&self.fd, name, rustix::fs::AtFlags::empty())
                .with_context(|| format!("removing {}", full.display()));
        }
        let fd = crate::sys::open_dir_at(&self.fd, name).map_err(|e| refused_link(&full, e))?;
        if crate::sys::fd_id(&fd)? != (st.dev(), st.ino()) {
            return Err(changed(&full));
        }
        // A read-only directory of a copy (modes are the pack's) is made
        // writable to be emptied.
        if st.mode() & 0o300 != 0o300 {
            rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o700))?;
        }
        let sub = Beneath { fd, path: full.clone() };
        for (child, _) in crate::sys::list_dir(&sub.fd).with_context(|| format!("reading {}", full.display()))? {
            sub.remove_tree(&child)?;
        }
        rustix::fs::unlinkat(&self.fd, name, rustix::fs::AtFlags::REMOVEDIR)
            .with_context(|| format!("removing {}", full.display()))
    }
}

fn changed(path: &Path) -> anyhow::Error {
    Refusal::new(
        format!("{} is not what was read a moment ago: it was replaced meanwhile", path.display()),
        "run again when nothing else changes the directory",
    )
    .into()
}

/// `open_at` without `openat2`: one `openat(O_NOFOLLOW)` per name, refusing
/// `..` and absolute paths.
fn open_by_names(root: &OwnedFd, rel: &Path, flags: OFlags, mode: rustix::fs::Mode) -> std::io::Result<OwnedFd> {
    use std::path::Component;
    let names: Vec<&OsStr> = rel
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(std::io::Error::from_raw_os_error(Errno::XDEV.raw_os_error())),
        })
        .collect::<std::io::Result<_>>()?;
    let Some((last, dirs)) = names.split_last() else {
        return rustix::io::fcntl_dupfd_cloexec(root, 0).map_err(Into::into);
    };
    let mut at: Option<OwnedFd> = None;
    for d in dirs {
        let next = crate::sys::open_dir_at(at.as_ref().unwrap_or(root), d)?;
        at = Some(next);
    }
    rustix::fs::openat(at.as_ref().unwrap_or(root), *last, flags, mode).map_err(Into::into)
}

/// Reads a file of the tool's own or one it was given (settings, records,
/// pid files) that must be a regular file no larger than `limit`: a FIFO, a
/// device such as `/dev/zero` or a huge file is refused at once instead of
/// hanging the run or filling its memory.
pub fn read_bounded(f: File, path: &Path, limit: u64) -> Result<Vec<u8>> {
    let md = f.metadata().with_context(|| format!("reading {}", path.display()))?;
    if !md.file_type().is_file() {
        return Err(Refusal::new(
            format!("{} is not a regular file (a FIFO, socket or device)", path.display()),
            "replace it with a regular file; special files are refused because reading them can block forever",
        )
        .into());
    }
    if md.len() > limit {
        return Err(Refusal::new(
            format!("{} is {} bytes, more than the {limit} this file can be", path.display(), md.len()),
            "check that it is the right file",
        )
        .into());
    }
    let mut b = Vec::new();
    f.take(limit + 1).read_to_end(&mut b).with_context(|| format!("reading {}", path.display()))?;
    if b.len() as u64 > limit {
        return Err(Refusal::new(format!("{} grew past {limit} bytes while read", path.display()), "run again").into());
    }
    Ok(b)
}

/// Opens the directory `root/rel` beneath `root` (`openat2` with
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`): no link is followed on the way
/// and nothing outside `root` can be reached, whatever is swapped in meanwhile.
pub fn open_dir_beneath(root: &Path, rel: &Path) -> Result<std::os::fd::OwnedFd> {
    let base = crate::sys::open_dir(root, false).with_context(|| format!("opening {}", root.display()))?;
    if rel.as_os_str().is_empty() {
        return Ok(base);
    }
    rustix::fs::openat2(
        &base,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::BENEATH | rustix::fs::ResolveFlags::NO_SYMLINKS,
    )
    .with_context(|| format!("opening {} beneath {}", rel.display(), root.display()))
}

/// The directory holding `root/rel`, opened beneath `root`, and the name in it.
fn parent_beneath(root: &Path, rel: &Path) -> Result<(std::os::fd::OwnedFd, std::ffi::OsString)> {
    let name = rel.file_name().with_context(|| format!("{} names no file", rel.display()))?.to_os_string();
    let dir = open_dir_beneath(root, rel.parent().unwrap_or(Path::new("")))?;
    Ok((dir, name))
}

/// Renames `root/from` to `root/to` (replacing a file there), both beneath
/// `root`, no link followed on either way.
pub fn rename_beneath(root: &Path, from: &Path, to: &Path) -> Result<()> {
    let (fd_from, n_from) = parent_beneath(root, from)?;
    let (fd_to, n_to) = parent_beneath(root, to)?;
    rustix::fs::renameat(&fd_from, &n_from, &fd_to, &n_to)
        .with_context(|| format!("renaming {} to {} in {}", from.display(), to.display(), root.display()))
}

/// Removes the file `root/rel` beneath `root` (a link is removed, not followed).
pub fn remove_file_beneath(root: &Path, rel: &Path) -> Result<()> {
    let (fd, name) = parent_beneath(root, rel)?;
    rustix::fs::unlinkat(&fd, &name, rustix::fs::AtFlags::empty())
        .with_context(|| format!("removing {} in {}", rel.display(), root.display()))
}

/// Reads the regular file `root/rel` beneath `root` (no link followed, a
/// special file refused before it is read); None when nothing is there.
pub fn read_file_beneath(root: &Path, rel: &Path) -> Result<Option<Vec<u8>>> {
    let (fd, name) = parent_beneath(root, rel)?;
    let f = match rustix::fs::openat(
        &fd,
        &name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    ) {
        Ok(f) => File::from(f),
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {} in {}", rel.display(), root.display())),
    };
    if !f.metadata()?.is_file() {
        return Err(Refusal::new(
            format!("{} in {} is not a regular file", rel.display(), root.display()),
            "put the file the product ships in its place",
        )
        .into());
    }
    let mut b = Vec::new();
    (&f).read_to_end(&mut b).with_context(|| format!("reading {} in {}", rel.display(), root.display()))?;
    Ok(Some(b))
}

/// A secret file of the tool's own (the output's seal key): `dir/name`,
/// opened beneath `dir` without following a link and without waiting on a
/// FIFO. `Ok(None)` when nothing is there; `Err(why)`, in words, unless it is
/// a regular file of exactly `len` bytes with one name, owned by the account
/// running the tool, with no bit for group or others: anything else may have
/// been put there, or read, by someone else.
pub fn read_private(dir: &Path, name: &str, len: usize) -> std::result::Result<Option<Vec<u8>>, String> {
    let d = Beneath::open(dir, true).map_err(|e| format!("{} cannot be opened ({e:#})", dir.display()))?;
    let f = match d.open_at(Path::new(name), OFlags::RDONLY | OFlags::NONBLOCK, 0) {
        Ok(f) => File::from(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if led_out(&e) => return Err("it is a link".into()),
        Err(e) => return Err(format!("it cannot be read ({e})")),
    };
    let st = rustix::fs::fstat(&f).map_err(|e| format!("it cannot be read ({e})"))?;
    let me = rustix::process::geteuid().as_raw();
    let mode = st.st_mode & 0o7777;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err("it is not a regular file".into());
    }
    if st.st_uid != me {
        return Err(format!("it is owned by uid {}, not by the account running apim-profiles (uid {me})", st.st_uid));
    }
    if mode & 0o077 != 0 {
        return Err(format!("group or others have access to it (mode {mode:04o}; it must be 0600)"));
    }
    if st.st_nlink != 1 {
        return Err(format!("it has {} names (hard links), not one", st.st_nlink));
    }
    if st.st_size as u64 != len as u64 {
        return Err(format!("it is {} bytes, not {len}", st.st_size));
    }
    let mut b = Vec::with_capacity(len);
    (&f).take(len as u64 + 1).read_to_end(&mut b).map_err(|e| format!("it cannot be read ({e})"))?;
    if b.len() != len {
        return Err(format!("it changed while read ({} bytes)", b.len()));
    }
    Ok(Some(b))
}

/// Creates the secret file `dir/name` holding `bytes`, mode 0600: written
/// under an unguessable name (`O_EXCL`, no link followed), synced, then
/// given its name without replacing anything there (`RENAME_NOREPLACE`), so
/// a reader never sees it half written. `false` when something already
/// holds the name (it is left alone).
pub fn create_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<bool> {
    let d = Beneath::open(dir, true)?;
    let tmp = OsString::from(unguessable(&format!(".{name}.apim-profiles-tmp-"))?);
    let mut f = d.create_new(&tmp, 0o600)?;
    let put = rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(0o600))
        .map_err(std::io::Error::from)
        .and_then(|()| f.write_all(bytes))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", dir.join(name).display()));
    let named = put.and_then(|()| {
        match rustix::fs::renameat_with(&d.fd, &tmp, &d.fd, name, rustix::fs::RenameFlags::NOREPLACE) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("creating {}", dir.join(name).display())),
        }
    });
    if !matches!(named, Ok(true)) {
        let _ = rustix::fs::unlinkat(&d.fd, &tmp, rustix::fs::AtFlags::empty());
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_a_planted_link() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join("own.json")).unwrap();
        write_atomic(d.path(), "own.json", b"{}", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(d.path().join("own.json")).unwrap(), "{}");
        assert!(read_own(&d.path().join("own.json")).unwrap().is_some());
        std::os::unix::fs::symlink(&victim, d.path().join("link")).unwrap();
        assert!(read_own(&d.path().join("link")).is_err());
        assert!(read_own(&d.path().join("missing")).unwrap().is_none());
    }

    #[test]
    fn reads_stay_inside_and_refuse_fifos() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(d.path().join("outside"), "secret").unwrap();
        std::fs::write(root.join("inside"), "ok").unwrap();
        std::os::unix::fs::symlink("inside", root.join("in-link")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("out-link")).unwrap();
        assert_eq!(read_inside(&root, Path::new("in-link")).unwrap(), b"ok");
        let e = read_inside(&root, Path::new("out-link")).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
        let fifo = root.join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let e = read_regular(&fifo, "overlay").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
