//! What `cp -a` keeps beyond bytes, mode, owner and times, kept here apart
//! from the copy loop: holes of sparse files, hard links (once per inode
//! group per copy), extended attributes (POSIX ACLs are two of them) and the
//! copy root's own owner, mode and times. Every system call goes through
//! rustix.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rustix::fs::{SeekFrom, XattrFlags};
use rustix::io::Errno;

use crate::model::content::Hasher;
use crate::model::tree::{Kind, Origin, Tree};

/// Copies `len` bytes from `src` into the empty `dst`, data ranges only: the
/// ranges are found with SEEK_DATA/SEEK_HOLE, each one read and written
/// through `hash` (which takes the holes as the zeros they read as). The
/// length is set first: no write then extends the file, so XFS does not
/// preallocate past its end into what becomes a hole (seen filling an 8 MiB
/// hole), and a trailing hole stays a hole. Never `copy_file_range`: it
/// clones on XFS and Btrfs, and its bytes could not be hashed on the way.
pub fn copy_sparse(src: &File, dst: &File, len: u64, hash: &mut Hasher) -> std::io::Result<()> {
    dst.set_len(len)?;
    let mut pos = 0;
    while pos < len {
        let data = match rustix::fs::seek(src, SeekFrom::Data(pos)) {
            Ok(d) => d.min(len),
            Err(Errno::NXIO) => break, // only a hole is left
            Err(e) => return Err(e.into()),
        };
        hash.zeros(data - pos);
        let hole = rustix::fs::seek(src, SeekFrom::Hole(data))?.min(len);
        let end = copy_range(src, dst, data, hole, hash)?;
        pos = end;
        if end < hole {
            break; // the source shrank under us: the rest of the copy is zeros
        }
    }
    // What is left reads as zeros: a trailing hole, or a source that shrank.
    hash.zeros(len - pos.min(len));
    Ok(())
}

/// Copies bytes `start..end` of `src` to the same offsets of `dst` through
/// `hash`; returns where it stopped (before `end` when the source shrank).
pub fn copy_range(src: &File, dst: &File, start: u64, end: u64, hash: &mut Hasher) -> std::io::Result<u64> {
    crate::model::content::with_buffer(|buf| {
        let mut off = start;
        while off < end {
            let want = usize::try_from(end - off).unwrap_or(usize::MAX).min(buf.len());
            let n = match src.read_at(&mut buf[..want], off) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hash.update(&buf[..n]);
            dst.write_all_at(&buf[..n], off)?;
            off += n as u64;
        }
        Ok(off)
    })
}

/// Whether an attribute that could not be set may be passed over, as `cp -a`
/// does: the destination takes no attributes of this kind, or only root may
/// set them and we are not root.
fn skippable(name: &[u8], e: Errno) -> bool {
    match e {
        Errno::NOTSUP => true,
        Errno::PERM | Errno::ACCESS => !crate::sys::is_root() || !name.starts_with(b"user."),
        _ => false,
    }
}

fn names(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|b| *b == 0).filter(|n| !n.is_empty())
}

/// Reads a list or a value whose size `query` tells into a buffer of that
/// size, again if it grew in between.
fn read_sized(
    query: impl Fn() -> rustix::io::Result<usize>,
    read: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
) -> rustix::io::Result<Vec<u8>> {
    loop {
        let need = query()?;
        if need == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; need];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Copies every extended attribute of an open file (ACLs included) to another.
/// Called after the owner and mode are set: a chown clears
/// `security.capability`, and an ACL's mask must win over the mode.
pub fn copy_xattrs_fd(src: impl AsFd, dst: impl AsFd) -> std::io::Result<()> {
    let (src, dst) = (src.as_fd(), dst.as_fd());
    let list = match read_sized(|| rustix::fs::flistxattr_query(src), |b| rustix::fs::flistxattr(src, b)) {
        Ok(l) => l,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names(&list) {
        let value = match read_sized(|| rustix::fs::fgetxattr_query(src, name), |b| rustix::fs::fgetxattr(src, name, b))
        {
            Ok(v) => v,
            Err(Errno::NODATA) => continue, // removed in between
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::fsetxattr(dst, name, &value, XattrFlags::empty()) {
            Ok(()) => {}
            Err(e) if skippable(name, e) => {}
            Err(e) => return Err(xattr_error(name, e)),
        }
    }
    Ok(())
}

/// The same for paths, not following a final link (directories, the root).
pub fn copy_xattrs_path(src: &Path, dst: &Path) -> std::io::Result<()> {
    let list = match read_sized(|| rustix::fs::llistxattr_query(src), |b| rustix::fs::llistxattr(src, b)) {
        Ok(l) => l,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names(&list) {
        let value = match read_sized(|| rustix::fs::lgetxattr_query(src, name), |b| rustix::fs::lgetxattr(src, name, b))
        {
            Ok(v) => v,
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::lsetxattr(dst, name, &value, XattrFlags::empty()) {
            Ok(()) => {}
            Err(e) if skippable(name, e) => {}
            Err(e) => return Err(xattr_error(name, e)),
        }
    }
    Ok(())
}

fn xattr_error(name: &[u8], e: Errno) -> std::io::Error {
    let e = std::io::Error::from(e);
    std::io::Error::new(e.kind(), format!("setting the extended attribute {}: {e}", String::from_utf8_lossy(name)))
}

/// Hard links of a planned tree: for every file that shares its source inode
/// with an earlier one, the earlier one's path. Only files copied as they are
/// (`Origin::Source`) keep their links, as with `cp -a`; a generated or
/// freshly copied file is a file of its own.
pub fn link_followers(tree: &Tree) -> HashMap<PathBuf, PathBuf> {
    let mut leaders: HashMap<(u64, u64), &Path> = HashMap::new();
    let mut followers = HashMap::new();
    for (rel, e) in tree.iter() {
        if !matches!(e.kind, Kind::File { .. }) || !matches!(e.origin, Origin::Source(_)) || e.meta.nlink < 2 {
            continue;
        }
        match leaders.entry((e.meta.dev, e.meta.ino)) {
            std::collections::hash_map::Entry::Occupied(l) => {
                followers.insert(rel.to_path_buf(), l.get().to_path_buf());
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(rel);
            }
        }
    }
    followers
}

/// Makes the links: each follower a new name of its leader's copy.
pub fn make_links(dest: &Path, followers: &HashMap<PathBuf, PathBuf>) -> Result<u64> {
    for (rel, leader) in followers {
        let (from, to) = (dest.join(leader), dest.join(rel));
        std::fs::hard_link(&from, &to).with_context(|| format!("linking {} to {}", to.display(), from.display()))?;
    }
    Ok(followers.len() as u64)
}

/// Gives the copy's root the home root's extended attributes, owner, mode and
/// times. Called last, just before the copy is published: writing the
/// record into the root would move its time.
pub fn finish_root(home: &Path, dest: &Path) -> Result<()> {
    let md = std::fs::symlink_metadata(home).with_context(|| format!("reading {}", home.display()))?;
    if crate::sys::is_root() {
        std::os::unix::fs::chown(dest, Some(md.uid()), Some(md.gid()))
            .with_context(|| format!("setting the owner of {}", dest.display()))?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(md.mode() & 0o7777))
        .with_context(|| format!("setting the mode of {}", dest.display()))?;
    copy_xattrs_path(home, dest).with_context(|| format!("copying the extended attributes of {}", home.display()))?;
    let atime = filetime::FileTime::from_last_access_time(&md);
    let mtime = filetime::FileTime::from_last_modification_time(&md);
    filetime::set_file_times(dest, atime, mtime).with_context(|| format!("setting the times of {}", dest.display()))?;
    Ok(())
}
