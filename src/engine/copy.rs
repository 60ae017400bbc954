//! Writing a planned tree to disk as fast as the machine allows: all profiles'
//! files in one parallel pass, each file a reflink clone where the file system
//! can (no bytes moved), else a copy, keeping what `cp -a` keeps.
//!
//! Every file's SHA-256 is taken as it is written (`model::content`): a copied
//! file's bytes are hashed on their way through, between the read of the
//! source and the write of the copy (a copy through user space, not
//! `copy_file_range`, so that no byte is read twice); a clone, which moves no
//! bytes, is hashed by reading the clone itself right after it is made.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};

pub use crate::engine::writeback::Flush;
use crate::engine::{fidelity, writeback};
use crate::model::content::{self, Hasher, Known, Sha};
use crate::model::plan::Plan;
use crate::model::tree::{Entry, Kind, Origin};
use crate::signals::interrupted;
use crate::{hooks, sys};

/// `--reflink`: whether to clone file extents instead of copying bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reflink {
    /// Clone where the file system can, copy elsewhere.
    #[default]
    Auto,
    /// Clone or fail: for operators who count on no extra disk use.
    Always,
    /// Always copy bytes (RHEL 8/9 `cp` behaviour).
    Never,
}

/// What a copy tells of its progress while it writes: the bytes of each file
/// done. The report layer shows it (a bar at a terminal); the engine knows
/// nothing of terminals.
pub trait Progress: Sync {
    fn advance(&self, bytes: u64);
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct CopyStats {
    pub files: u64,
    pub bytes: u64,
    pub cloned: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Files taken as they were from an earlier copy (a roll forward): linked,
    /// not written; counted in `files` too.
    #[serde(skip_serializing_if = "is_zero")]
    pub reused: u64,
    /// Their bytes, counted in `bytes` too.
    #[serde(skip_serializing_if = "is_zero")]
    pub reused_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CopyStats {
    fn add(&mut self, s: &CopyStats) {
        self.files += s.files;
        self.bytes += s.bytes;
        self.cloned += s.cloned;
        self.dirs += s.dirs;
        self.symlinks += s.symlinks;
        self.reused += s.reused;
        self.reused_bytes += s.reused_bytes;
    }
}

/// What writing one job's tree did: its figures, and the digest of every
/// file as written (by device and inode, with the change time it was left with).
#[derive(Debug, Default, Clone)]
pub struct Copied {
    pub stats: CopyStats,
    pub digests: Known,
}

/// One file as written: whether it was cloned, and its digest.
pub struct Written {
    pub cloned: bool,
    pub id: (u64, u64),
    pub ctime: (i64, u32),
    pub sha: Sha,
}

/// One tree to write: a plan's final tree into `dest` (which must not exist).
pub struct Job<'a> {
    pub plan: &'a Plan,
    pub dest: PathBuf,
    /// When its files are flushed to disk (see [`Flush`]).
    pub flush: Flush,
    /// Files an earlier copy has as this one needs them (a roll forward).
    pub reuse: Option<&'a Reuse>,
}

/// The files of an earlier copy that a new copy takes as they are, by
/// relative path: each is given a name in the new copy (a hard link: the
/// same inode, its times untouched) when it is still the file the earlier
/// copy's record names, else it is written as any other.
pub struct Reuse {
    pub from: crate::safe_fs::Beneath,
    pub files: std::collections::HashMap<PathBuf, Reused>,
}

/// One file of an earlier copy as its record names it.
pub struct Reused {
    pub id: (u64, u64),
    pub ctime: (i64, u32),
    /// Its digest, when the record keeps one.
    pub sha: Option<Sha>,
}

/// (device, inode) and change time of a file linked into a new copy.
type LinkedAs = ((u64, u64), (i64, u32));

/// Links the earlier copy's file to `dst` when it is still the recorded file
/// with the owner, mode and size `e` asks; its (device, inode) and the change
/// time it is left with. None when it cannot be taken (then it is written).
fn link_reused(reuse: &Reuse, rel: &Path, f: &Reused, e: &Entry, dst: &Path) -> Result<Option<LinkedAs>> {
    let Ok((dir, name)) = reuse.from.parent_of(rel) else { return Ok(None) };
    let Ok(st) = sys::stat_at(dir.fd(), &name) else { return Ok(None) };
    let same = st.is_file()
        && (st.dev(), st.ino()) == f.id
        && (st.ctime(), st.ctime_nsec()) == f.ctime
        && (st.uid(), st.gid(), st.mode() & 0o7777, st.size())
            == (e.meta.uid, e.meta.gid, e.meta.mode & 0o7777, e.size());
    if !same || sys::link_from(dir.fd(), &name, dst).is_err() {
        return Ok(None);
    }
    let md = std::fs::symlink_metadata(dst).with_context(|| format!("reading back {}", dst.display()))?;
    if (md.dev(), md.ino()) != f.id {
        // Replaced between the check and the link: written instead.
        std::fs::remove_file(dst).with_context(|| format!("removing {}", dst.display()))?;
        return Ok(None);
    }
    Ok(Some(((md.dev(), md.ino()), (md.ctime(), md.ctime_nsec() as u32))))
}

/// Directories first, in order (parents before children), writable for now.
fn make_dirs(jobs: &[Job<'_>]) -> Result<()> {
    for job in jobs {
        std::fs::create_dir(&job.dest).with_context(|| format!("creating {}", job.dest.display()))?;
        for (rel, e) in job.plan.tree.iter() {
            if e.is_dir() {
                let d = job.dest.join(rel);
                std::fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
            }
        }
    }
    Ok(())
}

/// Copies one file or link of a job's tree to its place in the job's `dest`.
fn copy_entry(job: &Job<'_>, rel: &Path, e: &Entry, reflink: Reflink, root_user: bool, out: &mut Copied) -> Result<()> {
    let dst = job.dest.join(rel);
    if matches!(e.kind, Kind::File { .. }) && reused(job, rel, e, &dst, out)? {
        return Ok(());
    }
    let s = &mut out.stats;
    match &e.kind {
        Kind::Symlink { target } => {
            std::os::unix::fs::symlink(target, &dst).with_context(|| format!("creating link {}", dst.display()))?;
            if root_user {
                let _ = std::os::unix::fs::lchown(&dst, Some(e.meta.uid), Some(e.meta.gid));
            }
            let t = filetime::FileTime::from_unix_time(e.meta.mtime, e.meta.mtime_nsec);
            let _ = filetime::set_symlink_file_times(&dst, t, t);
            s.symlinks += 1;
        }
        Kind::File { .. } => {
            let w = write_file(&job.plan.root, e, &dst, reflink, root_user, job.flush)?;
            s.files += 1;
            s.bytes += e.size();
            s.cloned += w.cloned as u64;
            out.digests.insert(w.id, w.ctime, w.sha);
        }
        Kind::Dir => unreachable!("directories are made by make_dirs"),
    }
    Ok(())
}

/// Takes the file at `rel` from the job's earlier copy where it can.
fn reused(job: &Job<'_>, rel: &Path, e: &Entry, dst: &Path, out: &mut Copied) -> Result<bool> {
    let Some((reuse, f)) = job.reuse.and_then(|r| r.files.get(rel).map(|f| (r, f))) else { return Ok(false) };
    let Some((id, ctime)) = link_reused(reuse, rel, f, e, dst)? else { return Ok(false) };
    let s = &mut out.stats;
    (s.files, s.bytes, s.reused, s.reused_bytes) =
        (s.files + 1, s.bytes + e.size(), s.reused + 1, s.reused_bytes + e.size());
    if let Some(sha) = f.sha {
        out.digests.insert(id, ctime, sha);
    }
    Ok(true)
}

/// Writes every job's tree. Files of all jobs share one pass on all threads of
/// the current pool, in the order `writeback::schedule` gives, so that every
/// thread stays busy whatever the spread of file sizes across profiles.
pub fn materialize(jobs: &[Job<'_>], reflink: Reflink, progress: Option<&dyn Progress>) -> Result<Vec<Copied>> {
    let root_user = sys::is_root();
    make_dirs(jobs)?;
    // Second names of hard-linked files are linked after the pass, to the
    // copy of their first name.
    let links: Vec<_> = jobs.iter().map(|j| fidelity::link_followers(&j.plan.tree)).collect();
    let items = || {
        jobs.iter().enumerate().flat_map(|(i, j)| {
            let links = &links[i];
            j.plan.tree.iter().filter(move |(r, e)| !e.is_dir() && !links.contains_key(*r)).map(move |(r, e)| (i, r, e))
        })
    };
    // Counted first: 32 bytes an item, 800,000 items for four copies of a
    // 200,000-file home, and a vector grown by doubling holds up to twice that.
    let mut work: Vec<(usize, &Path, &Entry)> = Vec::with_capacity(items().count());
    work.extend(items());
    writeback::schedule(&mut work, |(_, _, e)| e.size());
    let fail_after = hooks::fail_after_files();
    let done = AtomicU64::new(0);
    let per_thread: Vec<Vec<Copied>> = writeback::in_order(&work, |acc: &mut Vec<Copied>, (i, rel, e)| {
        if interrupted() {
            bail!("interrupted");
        }
        if let Some(n) = fail_after {
            if done.fetch_add(1, Ordering::SeqCst) >= n {
                bail!("fault injected after {n} files (APIM_PROFILES_FAIL_AFTER_FILES)");
            }
        }
        acc.resize(jobs.len(), Copied::default());
        copy_entry(&jobs[*i], rel, e, reflink, root_user, &mut acc[*i])?;
        if let Some(p) = progress {
            p.advance(e.size());
        }
        Ok(())
    })?;
    let mut out = vec![Copied::default(); jobs.len()];
    for t in per_thread {
        for (o, c) in out.iter_mut().zip(t) {
            o.stats.add(&c.stats);
            o.digests.extend(c.digests);
        }
    }
    for o in &mut out {
        o.digests.sort();
    }
    for (i, job) in jobs.iter().enumerate() {
        out[i].stats.files += fidelity::make_links(&job.dest, &links[i])?;
    }
    // Directory modes and times last, deepest first: writing into a directory
    // moves its time, and a read-only directory could not be filled.
    for (i, job) in jobs.iter().enumerate() {
        let dirs: Vec<_> = job.plan.tree.iter().filter(|(_, e)| e.is_dir()).collect();
        for (rel, e) in dirs.into_iter().rev() {
            finish_dir(&job.plan.root, &job.dest.join(rel), e, root_user)?;
            out[i].stats.dirs += 1;
        }
    }
    Ok(out)
}

fn finish_dir(source_root: &Path, d: &Path, e: &Entry, root_user: bool) -> Result<()> {
    if root_user {
        let _ = std::os::unix::fs::chown(d, Some(e.meta.uid), Some(e.meta.gid));
    }
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(e.meta.mode))
        .with_context(|| format!("setting the mode of {}", d.display()))?;
    if let Origin::Source(p) = &e.origin {
        let src = source_root.join(p);
        fidelity::copy_xattrs_path(&src, d)
            .with_context(|| format!("copying the extended attributes of {} to {}", src.display(), d.display()))?;
    }
    let t = filetime::FileTime::from_unix_time(e.meta.mtime, e.meta.mtime_nsec);
    filetime::set_file_times(d, t, t).with_context(|| format!("setting the times of {}", d.display()))?;
    Ok(())
}

/// Writes one planned file, flushed to disk as `flush` says; returns whether
/// it was cloned, and the digest of its bytes with the inode and change time
/// it was left with.
pub fn write_file(
    source_root: &Path,
    e: &Entry,
    dst: &Path,
    reflink: Reflink,
    root_user: bool,
    flush: Flush,
) -> Result<Written> {
    // Readable too: a clone is hashed through this descriptor.
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .with_context(|| format!("creating {}", dst.display()))?;
    write_into(source_root, e, out, dst, reflink, root_user, flush)
}

/// [`write_file`] into a file already created (`O_EXCL`, mode 600, open for
/// reading too: a clone is hashed through it) by the caller, e.g. beneath a
/// directory handle; `dst` names it in messages.
pub fn write_into(
    source_root: &Path,
    e: &Entry,
    out: File,
    dst: &Path,
    reflink: Reflink,
    root_user: bool,
    flush: Flush,
) -> Result<Written> {
    let (cloned, sha, keep_time, src) = match &e.origin {
        Origin::Generated(bytes) => {
            use std::io::Write;
            (&out).write_all(bytes).with_context(|| format!("writing {}", dst.display()))?;
            let mut h = Hasher::default();
            h.update(bytes);
            (false, h.finish(), false, None)
        }
        Origin::Source(p) | Origin::SourceFresh(p) => {
            let src_path = source_root.join(p);
            // Never through a link that leaves the home, never a FIFO.
            let src = crate::safe_fs::open_source(source_root, p, (e.meta.dev, e.meta.ino))?;
            let (cloned, sha) = copy_contents(&src, &out, reflink, e.meta.sparse)
                .with_context(|| format!("copying {} to {}", src_path.display(), dst.display()))?;
            if !cloned && flush != Flush::Never {
                writeback::file_written(&out);
            }
            (cloned, sha, matches!(e.origin, Origin::Source(_)), Some((src, src_path)))
        }
    };
    finish_file(e, &out, dst, root_user, keep_time, src.as_ref().map(|(f, p)| (f, p.as_path())))?;
    writeback::file_done(&out, e.size(), cloned, flush)
        .with_context(|| format!("flushing {} to disk", dst.display()))?;
    // Last: the change time the file is left with, which its digest goes with.
    let md = out.metadata().with_context(|| format!("reading back {}", dst.display()))?;
    Ok(Written { cloned, id: (md.dev(), md.ino()), ctime: (md.ctime(), md.ctime_nsec() as u32), sha })
}

/// Owner, mode, attributes and times of a written file, in that order.
fn finish_file(
    e: &Entry,
    out: &File,
    dst: &Path,
    root_user: bool,
    keep_time: bool,
    src: Option<(&File, &Path)>,
) -> Result<()> {
    if root_user {
        let _ = std::os::unix::fs::fchown(out, Some(e.meta.uid), Some(e.meta.gid));
    }
    out.set_permissions(std::fs::Permissions::from_mode(e.meta.mode))
        .with_context(|| format!("setting the mode of {}", dst.display()))?;
    // After owner and mode: a chown clears file capabilities, and an ACL's
    // mask must have the last word on the group bits. A plain `cp` (the
    // product script's fresh copies) keeps no attributes.
    if let (Some((src, src_path)), Origin::Source(_)) = (src, &e.origin) {
        fidelity::copy_xattrs_fd(src, out)
            .with_context(|| format!("copying the extended attributes of {}", src_path.display()))?;
    }
    if keep_time {
        let t = filetime::FileTime::from_unix_time(e.meta.mtime, e.meta.mtime_nsec);
        filetime::set_file_handle_times(out, Some(t), Some(t))
            .with_context(|| format!("setting the times of {}", dst.display()))?;
    }
    Ok(())
}

/// Clone, else a copy through user space that hashes the bytes on their
/// way; a file the scan found sparse is copied range by range so that its
/// holes stay holes. Returns whether it cloned, and the digest of the copy
/// (for a clone, see [`clone_digest`]).
fn copy_contents(src: &File, dst: &File, reflink: Reflink, sparse: bool) -> Result<(bool, Sha)> {
    if reflink != Reflink::Never {
        let before = Unchanged::of(src)?;
        match sys::clone_file(dst, src) {
            Ok(()) => return Ok((true, clone_digest(src, dst, before)?)),
            Err(err) if reflink == Reflink::Always => {
                return Err(anyhow::Error::new(err).context("the file system cannot clone (--reflink always)"));
            }
            Err(_) => {}
        }
    }
    let mut h = Hasher::default();
    if sparse {
        fidelity::copy_sparse(src, dst, src.metadata()?.len(), &mut h)?;
    } else {
        // To the end of the source as it is now; never `copy_file_range`,
        // which clones on XFS and Btrfs (`--reflink never`) and moves the
        // bytes where they cannot be hashed.
        fidelity::copy_range(src, dst, 0, u64::MAX, &mut h)?;
    }
    Ok((false, h.finish()))
}

/// What says a source file's bytes did not change: its identity, size,
/// modification and change time (every write moves the change time, which no
/// one can set back).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Unchanged {
    id: (u64, u64),
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Unchanged {
    fn of(f: &File) -> Result<Unchanged> {
        let md = f.metadata()?;
        Ok(Unchanged {
            id: (md.dev(), md.ino()),
            size: md.len(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        })
    }
}

/// Digests of the source files cloned in this run, by their state when
/// cloned: the same file cloned into three copies is hashed once.
static CLONED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<Unchanged, Sha>>> =
    std::sync::LazyLock::new(Default::default);

/// The digest of a clone: a clone moves no bytes, so they are read to hash
/// them, from the source (whose pages a home just scanned and copied before
/// often has in memory; a clone's pages are its own, read from disk), once
/// per source file and state. The clone holds the bytes hashed when the
/// source is as it was before the clone was made, after the hashing; else
/// the clone itself is read back.
fn clone_digest(src: &File, dst: &File, before: Unchanged) -> Result<Sha> {
    let known = CLONED.lock().unwrap_or_else(|e| e.into_inner()).get(&before).copied();
    let sha = match known {
        Some(sha) => sha,
        None => content::hash_file(src)?.0,
    };
    if Unchanged::of(src)? != before {
        return Ok(content::hash_file(dst)?.0);
    }
    CLONED.lock().unwrap_or_else(|e| e.into_inner()).insert(before, sha);
    Ok(sha)
}

/// Whether a clone from `src_dir`'s file system into `dest_dir` works: decides
/// whether copies cost disk space, for the space check.
pub fn probe_reflink(src_file: &Path, dest_dir: &Path) -> bool {
    let Ok(src) = File::open(src_file) else {
        return false;
    };
    let Ok(tmp) = tempfile::Builder::new().prefix(".apim-profiles-probe").tempfile_in(dest_dir) else {
        return false;
    };
    sys::clone_file(tmp.as_file(), &src).is_ok()
}
