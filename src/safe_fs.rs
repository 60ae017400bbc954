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

use rustix::fs::OFlags;
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

/// A new file in `dir` under an unpredictable name, created with `O_EXCL`;
/// removed when dropped unless kept. For callers that link or rename it.
pub fn new_temp_in(dir: &Path, prefix: &str) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// A name no other account can guess: `prefix` and 16 random hex digits.
pub fn unguessable(prefix: &str) -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    let n = u64::from_ne_bytes(b) ^ (std::process::id() as u64).rotate_left(32);
    format!("{prefix}{n:016x}")
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
            return open_regular(&resolve_inside(root, rel)?, "file");
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

/// Reads a file of the tool's own (see [`open_own`]).
pub fn read_own(path: &Path) -> Result<Option<Vec<u8>>> {
    let Some(mut f) = open_own(path)? else { return Ok(None) };
    let mut b = Vec::new();
    f.read_to_end(&mut b).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(b))
}

/// Whether something (anything, a link included) is at `path`.
pub fn exists_nofollow(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
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

/// Reads a regular file given to the tool (see [`open_regular`]).
pub fn read_regular(path: &Path, what: &str) -> Result<Vec<u8>> {
    let mut f = open_regular(path, what)?;
    let mut b = Vec::new();
    f.read_to_end(&mut b).with_context(|| format!("reading {}", path.display()))?;
    Ok(b)
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

/// Reads `root/rel`, following links only while they stay inside `root`,
/// and only a regular file.
pub fn read_inside(root: &Path, rel: &Path) -> Result<Vec<u8>> {
    let resolved = resolve_inside(root, rel)?;
    read_regular(&resolved, "file").with_context(|| format!("reading {}", root.join(rel).display()))
}

/// Device and inode of what is at `path` (links followed).
pub fn dev_ino(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Device and inode of what is at `path` itself (a link is not followed).
pub fn dev_ino_nofollow(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
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
    let f = match rustix::fs::openat(&fd, &name, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK, rustix::fs::Mode::empty()) {
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
