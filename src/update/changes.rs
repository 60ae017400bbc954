//! What an update did to a copy, learnt by looking: the copy's entries before
//! and after the tool ran, compared. The tool's own lists are not relied on
//! (`apply-update` prints none), nor its own state (`updates/`) or this tool's
//! files counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::model::tree::{Kind, Tree};

/// A file's or link's identity, as far as an update changes it.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    kind: u8,
    size: u64,
    mtime: (i64, u32),
    ino: u64,
    link: Option<PathBuf>,
}

/// The files and links of a copy, with what tells a change.
pub struct Snapshot(BTreeMap<PathBuf, Seen>);

/// Paths an update's report leaves out: the tool's state, this tool's files.
fn counted(p: &Path) -> bool {
    !p.starts_with("updates") && !p.to_string_lossy().starts_with(".apim-profiles")
}

impl Snapshot {
    pub fn take(copy: &Path) -> Result<Snapshot> {
        let tree = Tree::scan(copy)?;
        let mut m = BTreeMap::new();
        for (p, e) in tree.iter().filter(|(p, e)| !e.is_dir() && counted(p)) {
            let (kind, link) = match &e.kind {
                Kind::File { .. } => (0, None),
                Kind::Symlink { target } => (1, Some(target.to_path_buf())),
                Kind::Dir => (2, None),
            };
            let seen = Seen { kind, size: e.size(), mtime: (e.meta.mtime, e.meta.mtime_nsec), ino: e.meta.ino, link };
            m.insert(p.to_path_buf(), seen);
        }
        Ok(Snapshot(m))
    }
}

/// Added, changed and removed paths from `before` to `after`, each sorted.
pub fn compare(before: &Snapshot, after: &Snapshot) -> [Vec<String>; 3] {
    let show = |p: &Path| p.to_string_lossy().into_owned();
    let added = after.0.keys().filter(|p| !before.0.contains_key(*p)).map(|p| show(p)).collect();
    let changed =
        after.0.iter().filter(|(p, s)| before.0.get(*p).is_some_and(|b| b != *s)).map(|(p, _)| show(p)).collect();
    let removed = before.0.keys().filter(|p| !after.0.contains_key(*p)).map(|p| show(p)).collect();
    [added, changed, removed]
}
