//! A snapshot of a directory tree taken in one walk, and the virtual tree the
//! plan edits. Planning on a model instead of the disk is what lets `split`
//! copy only what survives, `--dry-run` write nothing, and `verify` compare.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::outcome::Refusal;
use crate::sys::Stat;

/// What an entry is, with what a faithful copy must keep of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File { size: u64 },
    Dir,
    Symlink { target: Box<Path> },
}

/// Metadata a copy keeps (`cp -a` keeps the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Inode change time (seconds, nanoseconds): what the copy's fingerprint
    /// keeps besides the times an owner can set back.
    pub ctime: (i64, u32),
    pub uid: u32,
    pub gid: u32,
    pub dev: u64,
    pub ino: u64,
    /// Names of the file (hard links); only a file with more than one can
    /// share its inode with another entry.
    pub nlink: u32,
    /// Fewer blocks allocated than the length needs: the file has holes,
    /// which a byte copy must keep.
    pub sparse: bool,
}

/// Where a planned entry's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The entry of the source at this relative path, times kept (`cp -a`, `mv`).
    /// The path is shared with the scan's own name for the entry.
    Source(Arc<Path>),
    /// A copy of the source entry at this path made the way `cp` without `-p`
    /// makes one: same bytes, new modification time.
    SourceFresh(Arc<Path>),
    /// Bytes the tool produces (an edited deployment.toml).
    Generated(Arc<Vec<u8>>),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    pub meta: Meta,
    pub origin: Origin,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::File { size } => *size,
            _ => 0,
        }
    }
}

/// The entries of one scan, in path order: `Path` orders by component, so a
/// directory's descendants follow it contiguously and parents come first.
type Scanned = Vec<(Arc<Path>, Entry)>;

/// A tree keyed by relative path, in path order.
///
/// A scan is taken once and shared: every plan computed on it holds the
/// scan, one bit per entry for whether the entry is still there, and the few
/// entries it added or changed (backups, rewrites, relative links). Planning
/// four profiles of a 200,000-file home thus costs one scan's memory, not five.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub root: PathBuf,
    base: Arc<Scanned>,
    /// Bit `i` set: `base[i]` is in this tree.
    kept: Vec<u64>,
    /// Entries added since the scan, or changed; a path here hides the
    /// scan's entry of the same path (whose bit is then clear).
    extra: BTreeMap<PathBuf, Entry>,
}

/// Names the tool keeps for itself at a copy's root; never part of a plan.
pub fn is_own_entry(rel: &Path) -> bool {
    let mut comps = rel.components();
    match (comps.next(), comps.next()) {
        (Some(first), None) => first.as_os_str().to_string_lossy().starts_with(".apim-profiles"),
        _ => false,
    }
}

/// Refuses a file this user cannot read: found while planning, before
/// anything is written, instead of half-way through a copy. Only a file that
/// others may not read costs the extra check.
fn check_readable(full: &Path, md: &Stat) -> Result<()> {
    if md.mode() & 0o004 != 0 || crate::sys::can_read(full) {
        return Ok(());
    }
    Err(Refusal::new(
        format!("{} cannot be read by this user (mode {:o})", full.display(), md.mode() & 0o7777),
        "run as a user who can read the whole home (the owner of the pack, or root)",
    )
    .into())
}

fn unreadable(path: &Path, e: std::io::Error) -> anyhow::Error {
    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
        "run as a user who can read the whole home (the owner of the pack, or root)"
    } else {
        "check the home's file system"
    };
    Refusal::new(format!("cannot read {}: {e}", path.display()), hint).into()
}

/// The model of one entry from its metadata (taken without following links).
fn entry_of(root: &Path, rel: &Arc<Path>, md: &Stat, link: Option<PathBuf>) -> Result<Entry> {
    let full = || root.join(rel);
    let kind = if let Some(target) = link {
        Kind::Symlink { target: target.into_boxed_path() }
    } else if md.is_dir() {
        Kind::Dir
    } else if md.is_file() {
        check_readable(&full(), md)?;
        Kind::File { size: md.size() }
    } else {
        return Err(Refusal::new(
            format!("{} is a special file (socket, fifo or device)", full().display()),
            "remove it from the home; a product home holds only files, directories and links",
        )
        .into());
    };
    let meta = Meta {
        mode: md.mode() & 0o7777,
        mtime: md.mtime(),
        mtime_nsec: md.mtime_nsec(),
        ctime: (md.ctime(), md.ctime_nsec()),
        uid: md.uid(),
        gid: md.gid(),
        dev: md.dev(),
        ino: md.ino(),
        nlink: md.nlink().min(u32::MAX as u64) as u32,
        sparse: md.is_file() && md.blocks().saturating_mul(512) < md.size(),
    };
    Ok(Entry { kind, meta, origin: Origin::Source(rel.clone()) })
}

/// Walks `root` without following a link, and gives what `visit` makes of
/// each entry (its path relative to `root`, its metadata) in path order. The
/// tool's own entries at the root are left out.
///
/// Two passes: the names, directory after directory (directory reads only),
/// then every entry's metadata in parallel, each read relative to its
/// directory's descriptor, straight into the one result list. On a home of
/// 200,000 files the walk thus holds the result and a list of names, never
/// two copies of the result, and keeps every thread busy whatever the shape
/// of the tree.
pub fn walk<T: Send>(
    root: &Path,
    visit: &(impl Fn(&Arc<Path>, &Stat, Option<PathBuf>) -> Result<T> + Sync),
) -> Result<Vec<(Arc<Path>, T)>> {
    use rayon::prelude::*;
    let Names { dirs, entries } = Names::list(root)?;
    let failed = std::sync::Mutex::new(None::<(usize, anyhow::Error)>);
    let mut found: Vec<Option<(Arc<Path>, T)>> = Vec::with_capacity(entries.len());
    entries
        .par_iter()
        .enumerate()
        .map_init(
            || None::<(u32, std::os::fd::OwnedFd)>,
            |open, (i, (path, dir, listed_dir))| {
                let seen = examine(root, &dirs, open, path, *dir, *listed_dir, visit);
                seen.map_err(|e| {
                    let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
                    if f.as_ref().is_none_or(|(j, _)| i < *j) {
                        *f = Some((i, e)); // the first in path order, whatever the thread
                    }
                })
                .ok()
                .map(|item| (path.clone(), item))
            },
        )
        .collect_into_vec(&mut found);
    if let Some((_, e)) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // In place: an Option of the pair is the pair's size.
    Ok(found.into_iter().map(|x| x.expect("no entry failed")).collect())
}

/// How many entries [`SortedWalk`] reads the metadata of at once (on all
/// threads): enough to keep them busy, few enough to stay small.
const SORTED_BATCH: usize = 2048;

/// A tree's entries in the byte order of their paths as text (the order of a
/// fingerprint's lines), read as they are asked for: only the names of the
/// directories on the way down and one batch of entries are held, whatever
/// the size of the tree. Each batch's metadata is read on all threads,
/// relative to its directory's descriptor (opened `O_NOFOLLOW`). A name that
/// is not UTF-8, whose text order may differ from its byte order, ends the
/// walk with an error (the caller then walks with [`walk`]).
///
/// Within a directory, entry `c` comes at its name and everything below it at
/// `c/`: `c-d` sorts between `c` and `c/x` in byte order, so the entries of a
/// directory interleave with its subdirectories' trees by these keys.
pub struct SortedWalk<T, F> {
    root: PathBuf,
    visit: F,
    stack: Vec<SortedFrame>,
    ready: std::vec::IntoIter<(String, T)>,
    started: bool,
    failed: bool,
}

struct SortedFrame {
    fd: Arc<std::os::fd::OwnedFd>,
    rel: String,
    /// The directory's names end to end: a directory of 100,000 entries
    /// costs its names and 12 bytes a key, not a string each.
    names: String,
    /// (start, length, flags) of each key in `names`, in walk order;
    /// flags: [`BELOW`], [`LISTED_DIR`].
    keys: Vec<(u32, u32, u8)>,
    next: usize,
}

/// The key stands for everything below the directory, not its entry.
const BELOW: u8 = 1;
/// The entry was listed as a directory.
const LISTED_DIR: u8 = 2;

impl<T: Send, F: Fn(&Stat, Option<PathBuf>) -> T + Sync> SortedWalk<T, F> {
    pub fn new(root: &Path, visit: F) -> Self {
        let ready = Vec::new().into_iter();
        SortedWalk { root: root.to_path_buf(), visit, stack: Vec::new(), ready, started: false, failed: false }
    }

    fn open(&mut self, fd: std::os::fd::OwnedFd, rel: String) -> Result<()> {
        let full = self.root.join(&rel);
        let (mut names, mut keys) = (String::new(), Vec::new());
        for e in rustix::fs::Dir::read_from(&fd).map_err(|e| unreadable(&full, e.into()))? {
            let e = e.map_err(|e| unreadable(&full, e.into()))?;
            let raw = e.file_name().to_bytes();
            if raw == b"."
                || raw == b".."
                || (rel.is_empty()
                    && is_own_entry(Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(raw))))
            {
                continue;
            }
            let name = std::str::from_utf8(raw)
                .map_err(|_| anyhow::anyhow!("{}: a name that is not UTF-8", full.display()))?;
            let is_dir = match e.file_type() {
                rustix::fs::FileType::Directory => true,
                rustix::fs::FileType::Unknown => {
                    crate::sys::stat_at(&fd, std::ffi::OsStr::new(name)).map_err(|e| unreadable(&full, e))?.is_dir()
                }
                _ => false,
            };
            let at = u32::try_from(names.len()).context("a directory's names over 4 GiB")?;
            names.push_str(name);
            let len = name.len() as u32;
            if is_dir {
                keys.push((at, len, BELOW | LISTED_DIR));
            }
            keys.push((at, len, if is_dir { LISTED_DIR } else { 0 }));
        }
        let key = |&(at, len, flags): &(u32, u32, u8)| {
            names.as_bytes()[at as usize..(at + len) as usize]
                .iter()
                .copied()
                .chain((flags & BELOW != 0).then_some(b'/'))
        };
        keys.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        keys.shrink_to_fit();
        names.shrink_to_fit();
        self.stack.push(SortedFrame { fd: Arc::new(fd), rel, names, keys, next: 0 });
        Ok(())
    }

    /// Names the next batch, descending into directories as their keys come,
    /// and reads the batch's metadata in parallel.
    fn fill(&mut self) -> Result<()> {
        use rayon::prelude::*;
        let mut todo = Vec::with_capacity(SORTED_BATCH);
        while todo.len() < SORTED_BATCH {
            let Some(top) = self.stack.last_mut() else { break };
            let Some(&(at, len, flags)) = top.keys.get(top.next) else {
                self.stack.pop();
                continue;
            };
            top.next += 1;
            let name = &top.names[at as usize..(at + len) as usize];
            let (below, is_dir) = (flags & BELOW != 0, flags & LISTED_DIR != 0);
            let path = if top.rel.is_empty() { name.to_string() } else { format!("{}/{name}", top.rel) };
            if below {
                let fd = crate::sys::open_dir_at(&top.fd, std::ffi::OsStr::new(name))
                    .map_err(|e| changed_while_read(&self.root.join(&path), e))?;
                self.open(fd, path)?;
            } else {
                todo.push((top.fd.clone(), path, name.len(), is_dir));
            }
        }
        let root = &self.root;
        let visit = &self.visit;
        let read: Result<Vec<(String, T)>> = todo
            .into_par_iter()
            .map(|(fd, path, name_len, listed_dir)| {
                let name = std::ffi::OsStr::new(&path[path.len() - name_len..]);
                let st = crate::sys::stat_at(&fd, name).map_err(|e| changed_while_read(&root.join(&path), e))?;
                if st.is_dir() != listed_dir {
                    let e = std::io::Error::other("it was replaced while the tree was read");
                    return Err(changed_while_read(&root.join(&path), e));
                }
                let link = if st.is_symlink() {
                    Some(crate::sys::readlink_at(&fd, name).map_err(|e| changed_while_read(&root.join(&path), e))?)
                } else {
                    None
                };
                Ok((path, visit(&st, link)))
            })
            .collect();
        self.ready = read?.into_iter();
        Ok(())
    }

    fn step(&mut self) -> Result<()> {
        if !self.started {
            self.started = true;
            let fd = crate::sys::open_dir(&self.root, true).map_err(|e| unreadable(&self.root, e))?;
            self.open(fd, String::new())?;
        }
        self.fill()
    }
}

impl<T: Send, F: Fn(&Stat, Option<PathBuf>) -> T + Sync> Iterator for SortedWalk<T, F> {
    type Item = Result<(String, T)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(x) = self.ready.next() {
                return Some(Ok(x));
            }
            if self.failed || (self.started && self.stack.is_empty()) {
                return None;
            }
            if let Err(e) = self.step() {
                self.failed = true;
                return Some(Err(e));
            }
        }
    }
}

/// The first pass: names in path order, and the directories they are in.
#[derive(Default)]
struct Names {
    /// Directories, relative (the root first, as the empty path), with the
    /// (device, inode) the first pass read them as.
    dirs: Vec<(Arc<Path>, (u64, u64))>,
    /// Each entry, the index of its directory, and whether it was listed as one.
    entries: Vec<(Arc<Path>, u32, bool)>,
}

/// A directory being listed: its descriptor, index and path, and the names
/// in it not yet taken.
struct Open {
    fd: std::os::fd::OwnedFd,
    index: u32,
    rel: Arc<Path>,
    names: std::vec::IntoIter<(std::ffi::OsString, bool)>,
}

impl Names {
    /// Depth first, in name order, without recursion. Below the root each
    /// directory is opened relative to its parent's descriptor, never
    /// through a link: the walk cannot be led out of the tree by a
    /// directory swapped for a link, wherever in the path.
    fn list(root: &Path) -> Result<Names> {
        let mut names = Names::default();
        let fd = crate::sys::open_dir(root, true).map_err(|e| unreadable(root, e))?;
        let mut stack = vec![names.open(fd, root, Arc::from(Path::new("")))?];
        while let Some(top) = stack.last_mut() {
            let Some((name, is_dir)) = top.names.next() else {
                stack.pop();
                continue;
            };
            let path: Arc<Path> = Arc::from(top.rel.join(&name));
            names.entries.push((path.clone(), top.index, is_dir));
            if is_dir {
                let full = root.join(&path);
                let fd = crate::sys::open_dir_at(&top.fd, &name).map_err(|e| changed_while_read(&full, e))?;
                let next = names.open(fd, &full, path)?;
                stack.push(next);
            }
        }
        Ok(names)
    }

    fn open(&mut self, fd: std::os::fd::OwnedFd, full: &Path, rel: Arc<Path>) -> Result<Open> {
        let index = u32::try_from(self.dirs.len()).context("more than 4 billion directories")?;
        let id = crate::sys::fd_id(&fd).map_err(|e| unreadable(full, e))?;
        let mut here = crate::sys::list_dir(&fd).map_err(|e| unreadable(full, e))?;
        if rel.as_os_str().is_empty() {
            here.retain(|(name, _)| !is_own_entry(Path::new(name)));
        }
        here.sort_unstable_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
        self.dirs.push((rel.clone(), id));
        Ok(Open { fd, index, rel, names: here.into_iter() })
    }
}

/// The second pass for one entry: its metadata, read relative to its
/// directory (`open` keeps the last directory opened on this thread), which
/// must be the directory the first pass listed.
fn examine<T>(
    root: &Path,
    dirs: &[(Arc<Path>, (u64, u64))],
    open: &mut Option<(u32, std::os::fd::OwnedFd)>,
    path: &Arc<Path>,
    dir: u32,
    listed_dir: bool,
    visit: &impl Fn(&Arc<Path>, &Stat, Option<PathBuf>) -> Result<T>,
) -> Result<T> {
    if open.as_ref().is_none_or(|(d, _)| *d != dir) {
        let (rel, id) = &dirs[dir as usize];
        let at = root.join(rel);
        let fd = crate::sys::open_dir(&at, dir == 0).map_err(|e| changed_while_read(&at, e))?;
        if crate::sys::fd_id(&fd).ok() != Some(*id) {
            let e = std::io::Error::other("it is another directory than the one listed");
            return Err(changed_while_read(&at, e));
        }
        *open = Some((dir, fd));
    }
    let fd = &open.as_ref().expect("opened above").1;
    let name = path.file_name().expect("a walked path has a name");
    let st = crate::sys::stat_at(fd, name).map_err(|e| changed_while_read(&root.join(path), e))?;
    if st.is_dir() != listed_dir {
        let e = std::io::Error::other("it was replaced while the tree was read");
        return Err(changed_while_read(&root.join(path), e));
    }
    let link = if st.is_symlink() {
        Some(crate::sys::readlink_at(fd, name).map_err(|e| changed_while_read(&root.join(path), e))?)
    } else {
        None
    };
    visit(path, &st, link)
}

/// An entry gone, or a directory now a link or a file, since the walk saw it.
fn changed_while_read(path: &Path, e: std::io::Error) -> anyhow::Error {
    let changed = matches!(e.raw_os_error(), Some(libc_errno::ENOENT | libc_errno::ENOTDIR | libc_errno::ELOOP))
        || e.kind() == std::io::ErrorKind::Other;
    if !changed {
        return unreadable(path, e);
    }
    Refusal::new(
        format!("cannot read {}: {e}", path.display()),
        "the tree changed while it was read (or a directory in it is now a link): run again when nothing else writes to it",
    )
    .into()
}

/// The error numbers that say a walked tree changed under the walk.
mod libc_errno {
    pub const ENOENT: i32 = rustix::io::Errno::NOENT.raw_os_error();
    pub const ENOTDIR: i32 = rustix::io::Errno::NOTDIR.raw_os_error();
    pub const ELOOP: i32 = rustix::io::Errno::LOOP.raw_os_error();
}

/// Whether `p` is `dir` or below it; both relative and normal, as scans and
/// profiles make them (`dir` empty: the whole tree).
fn is_within(p: &Path, dir: &Path) -> bool {
    let (p, d) = (p.as_os_str().as_encoded_bytes(), dir.as_os_str().as_encoded_bytes());
    debug_assert!(
        !d.ends_with(b"/") && dir.components().all(|c| matches!(c, std::path::Component::Normal(_))),
        "{} is not a relative path in normal form",
        dir.display()
    );
    d.is_empty() || (p.starts_with(d) && (p.len() == d.len() || p[d.len()] == b'/'))
}

impl Tree {
    /// Walks `root` once. Symlinks are recorded, never followed; a loop or a
    /// link out of the tree is therefore copied as the link it is.
    pub fn scan(root: &Path) -> Result<Tree> {
        let base = walk(root, &|rel, md, link| entry_of(root, rel, md, link))?;
        debug_assert!(base.windows(2).all(|w| w[0].0 < w[1].0), "a scan is in path order");
        let mut kept = vec![u64::MAX; base.len().div_ceil(64)];
        if base.len() % 64 != 0 {
            *kept.last_mut().expect("not empty") = (1u64 << (base.len() % 64)) - 1;
        }
        Ok(Tree { root: root.to_path_buf(), base: Arc::new(base), kept, extra: BTreeMap::new() })
    }

    fn is_kept(&self, i: usize) -> bool {
        self.kept[i / 64] & (1 << (i % 64)) != 0
    }

    fn drop_base(&mut self, i: usize) {
        self.kept[i / 64] &= !(1 << (i % 64));
    }

    fn base_index(&self, rel: &Path) -> Option<usize> {
        self.base.binary_search_by(|(p, _)| p.as_ref().cmp(rel)).ok()
    }

    /// The scan's entries at `dir` and below: a range of indices.
    fn base_range(&self, dir: &Path) -> std::ops::Range<usize> {
        let start = self.base.partition_point(|(p, _)| p.as_ref() < dir);
        let len = self.base[start..].partition_point(|(p, _)| is_within(p, dir));
        start..start + len
    }

    pub fn get(&self, rel: &Path) -> Option<&Entry> {
        if let Some(e) = self.extra.get(rel) {
            return Some(e);
        }
        self.base_index(rel).filter(|&i| self.is_kept(i)).map(|i| &self.base[i].1)
    }

    pub fn contains(&self, rel: &Path) -> bool {
        self.get(rel).is_some()
    }

    pub fn len(&self) -> usize {
        self.kept.iter().map(|w| w.count_ones() as usize).sum::<usize>() + self.extra.len()
    }

    /// Every entry, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &Entry)> + '_ {
        self.merged(0..self.base.len(), self.extra.iter())
    }

    /// The scan's entries of `range` still kept, merged in path order with
    /// `extra` (entries within the same bounds).
    fn merged<'a>(
        &'a self,
        range: std::ops::Range<usize>,
        extra: impl Iterator<Item = (&'a PathBuf, &'a Entry)> + 'a,
    ) -> impl Iterator<Item = (&'a Path, &'a Entry)> + 'a {
        // Where each added entry falls among the scan's: the merge then
        // compares indices, not paths.
        let mut extra = extra
            .map(|(p, e)| (self.base.partition_point(|(b, _)| b.as_ref() < p.as_path()), p.as_path(), e))
            .peekable();
        let end = range.end;
        let mut i = range.start;
        std::iter::from_fn(move || loop {
            if let Some(&(at, p, e)) = extra.peek() {
                if at <= i || i >= end {
                    extra.next();
                    return Some((p, e));
                }
            }
            if i >= end {
                return None;
            }
            i += 1;
            if self.is_kept(i - 1) {
                let (p, e) = &self.base[i - 1];
                return Some((p.as_ref(), e));
            }
        })
    }

    /// The entry and everything below it, in order.
    pub fn subtree<'a>(&'a self, rel: &'a Path) -> impl Iterator<Item = (&'a Path, &'a Entry)> + 'a {
        let extra = self
            .extra
            .range::<Path, _>((Bound::Included(rel), Bound::Unbounded))
            .take_while(move |(p, _)| is_within(p, rel));
        self.merged(self.base_range(rel), extra)
    }

    /// Direct children of a directory.
    pub fn children<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = (&'a Path, &'a Entry)> + 'a {
        let depth = dir.components().count() + 1;
        self.subtree(dir).filter(move |(p, _)| p.components().count() == depth)
    }

    /// Removes an entry and its descendants; returns the entries count and bytes.
    pub fn remove(&mut self, rel: &Path) -> (usize, u64) {
        let (mut count, mut bytes) = (0, 0);
        for i in self.base_range(rel) {
            if self.is_kept(i) {
                self.drop_base(i);
                count += 1;
                bytes += self.base[i].1.size();
            }
        }
        let added: Vec<PathBuf> = self
            .extra
            .range::<Path, _>((Bound::Included(rel), Bound::Unbounded))
            .take_while(|(p, _)| is_within(p, rel))
            .map(|(p, _)| p.clone())
            .collect();
        for p in added {
            if let Some(e) = self.extra.remove(&p) {
                count += 1;
                bytes += e.size();
            }
        }
        (count, bytes)
    }

    /// Moves a file entry to another name (`mv` of a file: times kept).
    pub fn rename_file(&mut self, from: &Path, to: &Path) {
        if let Some(e) = self.get(from).cloned() {
            self.remove(from);
            self.insert(to.to_path_buf(), e);
        }
    }

    pub fn insert(&mut self, rel: PathBuf, e: Entry) {
        if let Some(i) = self.base_index(&rel) {
            self.drop_base(i);
        }
        self.extra.insert(rel, e);
    }

    /// Rewrites, for a copy of this tree, each absolute link that leads into
    /// `home` (this tree's root) to the relative link to the same place: in
    /// the copy it then leads into the copy, so nothing written through it
    /// (by the update tool, say) reaches the home. Returns the links changed.
    pub fn relativize_links_into(&mut self, home: &Path) -> Vec<PathBuf> {
        let mut changed = Vec::new();
        for (rel, e) in self.iter() {
            let Kind::Symlink { target } = &e.kind else { continue };
            let parent = rel.parent().unwrap_or(Path::new(""));
            // A relative link that stays below the home is fine as it is; one
            // that climbs out of it (and maybe back in) is seen as absolute.
            let through = if target.is_absolute() {
                target.to_path_buf()
            } else if climbs_out(parent, target) {
                home.join(parent).join(target)
            } else {
                continue;
            };
            let Ok(resolved) = crate::model::paths::resolve(&through) else { continue };
            let Ok(inside) = resolved.strip_prefix(home) else { continue };
            let mut e = e.clone();
            e.kind = Kind::Symlink { target: crate::model::paths::relative(parent, inside).into_boxed_path() };
            changed.push((rel.to_path_buf(), e));
        }
        let paths = changed.iter().map(|(p, _)| p.clone()).collect();
        for (rel, e) in changed {
            self.insert(rel, e);
        }
        paths
    }

    /// (device, inode) of every directory of the tree, its root included.
    pub fn dir_ids(&self) -> std::collections::HashSet<(u64, u64)> {
        let mut ids: std::collections::HashSet<(u64, u64)> =
            self.iter().filter(|(_, e)| e.is_dir()).map(|(_, e)| (e.meta.dev, e.meta.ino)).collect();
        ids.extend(crate::safe_fs::dev_ino(&self.root));
        ids
    }

    pub fn total_bytes(&self) -> u64 {
        self.iter().map(|(_, e)| e.size()).sum()
    }

    /// Reads the bytes an entry of this tree stands for: its origin in
    /// `source`, or the generated content.
    /// A file of the source is read only through links that stay inside it,
    /// and only when it is a regular file (never a FIFO that would block).
    pub fn read(&self, source_root: &Path, rel: &Path) -> Result<Vec<u8>> {
        match self.get(rel).map(|e| &e.origin) {
            Some(Origin::Generated(b)) => Ok(b.as_ref().clone()),
            Some(Origin::Source(p)) | Some(Origin::SourceFresh(p)) => crate::safe_fs::read_inside(source_root, p),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "not in plan").into()),
        }
    }
}

/// A cheap digest of a tree's metadata: paths, kinds, sizes, modes and
/// modification times, hashed (the record's `source_fingerprint`, compared
/// whole; [`crate::model::fingerprint::Fingerprint`] is the listing itself,
/// compared entry by entry). It tells a re-run whether the source changed
/// without reading a byte of content.
pub fn metadata_digest(tree: &Tree) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (p, e) in tree.iter() {
        h.update(p.as_os_str().as_encoded_bytes());
        h.update([0]);
        match &e.kind {
            Kind::File { size } => h.update(format!("f{size}")),
            Kind::Dir => h.update("d"),
            Kind::Symlink { target } => {
                h.update("l");
                h.update(target.as_os_str().as_encoded_bytes());
            }
        }
        if !e.is_dir() {
            h.update(format!(":{:o}:{}.{}\n", e.meta.mode, e.meta.mtime, e.meta.mtime_nsec));
        } else {
            h.update(format!(":{:o}\n", e.meta.mode));
        }
    }
    hex(&h.finalize())
}

/// Whether the link `target`, found in the directory `parent` (relative to
/// the root), climbs above the root on its way.
fn climbs_out(parent: &Path, target: &Path) -> bool {
    use std::path::Component;
    let mut depth = parent.components().filter(|c| matches!(c, Component::Normal(_))).count();
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth == 0 => return true,
            Component::ParentDir => depth -= 1,
            _ => {}
        }
    }
    false
}

/// A hash of everything the scan saw of each entry, the change time and the
/// (device, inode) included (the update tool's logs left out): two scans give
/// the same identity only when no entry was written, replaced, renamed or had its metadata set between them.
/// The kept base's identity, which tells which files an update changed.
pub fn identity(tree: &Tree) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    // The tool's logs grow at every run, one that finds nothing new too.
    for (p, e) in tree.iter().filter(|(p, _)| !p.starts_with("updates/logs")) {
        h.update(p.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(same_entry_key(e));
    }
    hex(&h.finalize())
}

/// What must be equal for two scans of an entry to be the same file as it
/// was (its bytes then unchanged): kind, size, link target, mode, owner,
/// times and (device, inode).
pub fn same_entry_key(e: &Entry) -> String {
    let m = &e.meta;
    let kind = match &e.kind {
        Kind::File { size } => format!("f{size}"),
        Kind::Dir => "d".to_string(),
        Kind::Symlink { target } => format!("l{}", target.display()),
    };
    format!(
        "{kind}:{:o}:{}:{}:{}.{}:{}.{}:{}:{}\n",
        m.mode, m.uid, m.gid, m.mtime, m.mtime_nsec, m.ctime.0, m.ctime.1, m.dev, m.ino
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::new();
    push_hex(&mut text, bytes);
    text
}

/// Appends `bytes` in lowercase hex.
pub fn push_hex(text: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    text.reserve(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 15)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Names whose byte order differs from path order (`a.b` < `a/b` as
    /// bytes, `a/b` < `a.b` as paths) and a hard link.
    fn home() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for dir in ["a/b", "a/c/d", "a-x", "a.b", "z"] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        for f in ["a/b/1", "a/c/d/2", "a/c/3", "a.b/4", "a-x/5", "z/6", "7", "a/8"] {
            std::fs::write(d.path().join(f), f).unwrap();
        }
        std::fs::hard_link(d.path().join("7"), d.path().join("a-x/7")).unwrap();
        std::os::unix::fs::symlink("../7", d.path().join("z/l")).unwrap();
        d
    }

    fn paths(t: &Tree) -> Vec<PathBuf> {
        t.iter().map(|(p, _)| p.to_path_buf()).collect()
    }

    #[test]
    fn a_scan_is_in_path_order_with_kinds_and_links() {
        let d = home();
        let t = Tree::scan(d.path()).unwrap();
        let mut model: Vec<PathBuf> = walkdir::WalkDir::new(d.path())
            .min_depth(1)
            .into_iter()
            .map(|e| e.unwrap().path().strip_prefix(d.path()).unwrap().to_path_buf())
            .collect();
        model.sort();
        assert_eq!(paths(&t), model);
        assert!(matches!(t.get(Path::new("z/l")).unwrap().kind, Kind::Symlink { .. }));
        assert!(t.get(Path::new("a/c")).unwrap().is_dir());
        assert_eq!(t.get(Path::new("a-x/7")).unwrap().meta.nlink, 2);
        assert_eq!(t.get(Path::new("a/b/1")).unwrap().size(), 5);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Remove(usize),
        Insert(usize, String),
        Rename(usize, String),
    }

    fn op() -> impl Strategy<Value = Op> {
        let name = prop::sample::select(vec!["a/c/x", "a.b/new", "a/0", "zz", "a/c/d/9", "a-x/7.backup"]);
        prop_oneof![
            (0usize..20).prop_map(Op::Remove),
            (0usize..20, name.clone()).prop_map(|(i, n)| Op::Insert(i, n.to_string())),
            (0usize..20, name).prop_map(|(i, n)| Op::Rename(i, n.to_string())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The shared scan with its bits and additions behaves as the map of
        /// path to entry it stands for, whatever a plan does to it.
        #[test]
        fn edits_behave_as_a_sorted_map(ops in prop::collection::vec(op(), 1..12)) {
            let d = home();
            let mut t = Tree::scan(d.path()).unwrap();
            let mut model: BTreeMap<PathBuf, Entry> = t.iter().map(|(p, e)| (p.to_path_buf(), e.clone())).collect();
            for o in ops {
                let keys: Vec<PathBuf> = model.keys().cloned().collect();
                let pick = |i: usize| keys.get(i % keys.len().max(1)).cloned();
                match o {
                    Op::Remove(i) => if let Some(k) = pick(i) {
                        let doomed: Vec<PathBuf> = model.keys().filter(|p| p.starts_with(&k)).cloned().collect();
                        let bytes: u64 = doomed.iter().map(|p| model[p].size()).sum();
                        prop_assert_eq!(t.remove(&k), (doomed.len(), bytes));
                        for p in doomed { model.remove(&p); }
                    },
                    Op::Insert(i, name) => if let Some(k) = pick(i) {
                        let e = model[&k].clone();
                        t.insert(PathBuf::from(&name), e.clone());
                        model.insert(PathBuf::from(name), e);
                    },
                    Op::Rename(i, name) => if let Some(k) = pick(i) {
                        if !model[&k].is_dir() {
                            t.rename_file(&k, Path::new(&name));
                            let e = model.remove(&k).unwrap();
                            model.insert(PathBuf::from(name), e);
                        }
                    },
                }
                prop_assert_eq!(paths(&t), model.keys().cloned().collect::<Vec<_>>());
                prop_assert_eq!(t.len(), model.len());
                for dir in ["a", "a/c", "a.b", ""] {
                    let sub: Vec<PathBuf> = t.subtree(Path::new(dir)).map(|(p, _)| p.to_path_buf()).collect();
                    let want: Vec<PathBuf> = model.keys().filter(|p| p.starts_with(dir)).cloned().collect();
                    prop_assert_eq!(sub, want);
                }
                for k in model.keys() {
                    prop_assert!(t.contains(k));
                }
            }
        }
    }
}
