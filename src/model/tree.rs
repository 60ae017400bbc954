//! A snapshot of a directory tree taken in one walk, and the virtual tree the
//! plan edits. Planning on a model instead of the disk is what lets `split`
//! copy only what survives, `--dry-run` write nothing, and `verify` compare.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::outcome::Refusal;

/// What an entry is, with what a faithful copy must keep of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File { size: u64 },
    Dir,
    Symlink { target: PathBuf },
}

/// Metadata a copy keeps (`cp -a` keeps the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub uid: u32,
    pub gid: u32,
    pub dev: u64,
    pub ino: u64,
    /// Fewer blocks allocated than the length needs: the file has holes,
    /// which a byte copy must keep.
    pub sparse: bool,
}

/// Where a planned entry's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The entry of the source at this relative path, times kept (`cp -a`, `mv`).
    Source(PathBuf),
    /// A copy of the source entry at this path made the way `cp` without `-p`
    /// makes one: same bytes, new modification time.
    SourceFresh(PathBuf),
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

/// A tree keyed by relative path. `PathBuf` ordering is by component, so a
/// directory's descendants follow it contiguously and parents come first.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub root: PathBuf,
    pub entries: BTreeMap<PathBuf, Entry>,
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
fn check_readable(full: &Path, md: &std::fs::Metadata) -> Result<()> {
    if md.mode() & 0o004 != 0 || crate::sys::can_read(full) {
        return Ok(());
    }
    Err(Refusal::new(
        format!("{} cannot be read by this user (mode {:o})", full.display(), md.mode() & 0o7777),
        "run as a user who can read the whole home (the owner of the pack, or root)",
    )
    .into())
}

impl Tree {
    /// Walks `root` once. Symlinks are recorded, never followed; a loop or a
    /// link out of the tree is therefore copied as the link it is.
    pub fn scan(root: &Path) -> Result<Tree> {
        // One walk for the names (directory reads only), then the stat calls
        // in parallel: on a home of thousands of files the stats are most of
        // the time, and they do not depend on each other.
        let mut paths = Vec::new();
        let walker = walkdir::WalkDir::new(root).follow_links(false).min_depth(1);
        for item in walker {
            let item = item.map_err(|e| {
                let path = e.path().map(|p| p.display().to_string()).unwrap_or_default();
                let hint = if e.io_error().is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied) {
                    "run as a user who can read the whole home (the owner of the pack, or root)"
                } else {
                    "check the home's file system"
                };
                anyhow::Error::new(Refusal::new(format!("cannot read {path}: {e}"), hint))
            })?;
            let rel = item.path().strip_prefix(root).expect("walk stays below root").to_path_buf();
            if !is_own_entry(&rel) {
                paths.push(rel);
            }
        }
        use rayon::prelude::*;
        let entries: Vec<(PathBuf, Entry)> = paths
            .into_par_iter()
            .map(|rel| {
                let full = root.join(&rel);
                let md = std::fs::symlink_metadata(&full).with_context(|| format!("reading {}", full.display()))?;
                let ft = md.file_type();
                let kind = if ft.is_symlink() {
                    Kind::Symlink {
                        target: std::fs::read_link(&full)
                            .with_context(|| format!("reading link {}", full.display()))?,
                    }
                } else if ft.is_dir() {
                    Kind::Dir
                } else if ft.is_file() {
                    check_readable(&full, &md)?;
                    Kind::File { size: md.len() }
                } else {
                    return Err(Refusal::new(
                        format!("{} is a special file (socket, fifo or device)", full.display()),
                        "remove it from the home; a product home holds only files, directories and links",
                    )
                    .into());
                };
                let meta = Meta {
                    mode: md.mode() & 0o7777,
                    mtime: md.mtime(),
                    mtime_nsec: md.mtime_nsec(),
                    uid: md.uid(),
                    gid: md.gid(),
                    dev: md.dev(),
                    ino: md.ino(),
                    sparse: ft.is_file() && md.blocks().saturating_mul(512) < md.len(),
                };
                Ok((rel.clone(), Entry { kind, meta, origin: Origin::Source(rel) }))
            })
            .collect::<Result<_>>()?;
        Ok(Tree { root: root.to_path_buf(), entries: entries.into_iter().collect() })
    }

    pub fn get(&self, rel: &Path) -> Option<&Entry> {
        self.entries.get(rel)
    }

    pub fn contains(&self, rel: &Path) -> bool {
        self.entries.contains_key(rel)
    }

    /// The entry and everything below it, in order.
    pub fn subtree<'a>(&'a self, rel: &'a Path) -> impl Iterator<Item = (&'a PathBuf, &'a Entry)> + 'a {
        self.entries.range(rel.to_path_buf()..).take_while(move |(p, _)| p.starts_with(rel))
    }

    /// Direct children of a directory.
    pub fn children<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = (&'a PathBuf, &'a Entry)> + 'a {
        let depth = dir.components().count() + 1;
        self.subtree(dir).filter(move |(p, _)| p.components().count() == depth)
    }

    /// Removes an entry and its descendants; returns the entries count and bytes.
    pub fn remove(&mut self, rel: &Path) -> (usize, u64) {
        let keys: Vec<PathBuf> = self.subtree(rel).map(|(p, _)| p.clone()).collect();
        let mut bytes = 0;
        for k in &keys {
            if let Some(e) = self.entries.remove(k) {
                bytes += e.size();
            }
        }
        (keys.len(), bytes)
    }

    /// Moves a file entry to another name (`mv` of a file: times kept).
    pub fn rename_file(&mut self, from: &Path, to: &Path) {
        if let Some(e) = self.entries.remove(from) {
            self.entries.insert(to.to_path_buf(), e);
        }
    }

    pub fn insert(&mut self, rel: PathBuf, e: Entry) {
        self.entries.insert(rel, e);
    }

    /// Rewrites, for a copy of this tree, each absolute link that leads into
    /// `home` (this tree's root) to the relative link to the same place: in
    /// the copy it then leads into the copy, so nothing written through it
    /// (by the update tool, say) reaches the home. Returns the links changed.
    pub fn relativize_links_into(&mut self, home: &Path) -> Vec<PathBuf> {
        let mut changed = Vec::new();
        for (rel, e) in self.entries.iter_mut() {
            let Kind::Symlink { target } = &e.kind else { continue };
            if !target.is_absolute() {
                continue;
            }
            let Ok(resolved) = crate::model::paths::resolve(target) else { continue };
            let Ok(inside) = resolved.strip_prefix(home) else { continue };
            let parent = rel.parent().unwrap_or(Path::new(""));
            e.kind = Kind::Symlink { target: crate::model::paths::relative(parent, inside) };
            changed.push(rel.clone());
        }
        changed
    }

    /// (device, inode) of every directory of the tree, its root included.
    pub fn dir_ids(&self) -> std::collections::HashSet<(u64, u64)> {
        let mut ids: std::collections::HashSet<(u64, u64)> =
            self.entries.values().filter(|e| e.is_dir()).map(|e| (e.meta.dev, e.meta.ino)).collect();
        ids.extend(crate::safe_fs::dev_ino(&self.root));
        ids
    }

    pub fn total_bytes(&self) -> u64 {
        self.entries.values().map(Entry::size).sum()
    }

    /// Reads the bytes an entry of this tree stands for: its origin in
    /// `source`, or the generated content.
    /// A file of the source is read only through links that stay inside it,
    /// and only when it is a regular file (never a FIFO that would block).
    pub fn read(&self, source_root: &Path, rel: &Path) -> Result<Vec<u8>> {
        match self.entries.get(rel).map(|e| &e.origin) {
            Some(Origin::Generated(b)) => Ok(b.as_ref().clone()),
            Some(Origin::Source(p)) | Some(Origin::SourceFresh(p)) => crate::safe_fs::read_inside(source_root, p),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "not in plan").into()),
        }
    }
}

/// A cheap fingerprint of a tree: paths, kinds, sizes, modes and modification
/// times, hashed. It tells a re-run whether the source changed without reading
/// a byte of content.
pub fn fingerprint(tree: &Tree) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (p, e) in &tree.entries {
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

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
