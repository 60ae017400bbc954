//! The fingerprint of a tree: for each entry its path, type, size, mode,
//! modification time and link target (metadata only, never a byte of content).
//! A copy's record keeps the fingerprint of the copy as the tool left it, and
//! of the source it was made from; comparing one with a fresh scan says what
//! changed since, entry by entry. `split` re-runs, `verify`, `update` and the
//! operator's `status` all answer from [`compare`].
//!
//! Kept in the record as one line per entry, `<type> <mode> <size> <mtime> <path>`
//! (`f`, `d`, `l`, or `s` for a special file; mode in octal; mtime as `seconds.nanoseconds`), a link's
//! target after a NUL, so that a record stays a readable list.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path};

use std::os::unix::fs::MetadataExt;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::tree::{is_own_entry, Kind, Tree};

/// One entry as the fingerprint sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub kind: char,
    pub mode: u32,
    pub size: u64,
    /// Seconds and nanoseconds; directories have none: their time moves with
    /// every entry added or removed below them, which is seen on its own.
    pub mtime: Option<(i64, u32)>,
    pub target: Option<String>,
}

/// A tree's fingerprint: relative path (as text) to stamp.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub entries: BTreeMap<String, Stamp>,
}

/// One way a tree differs from its fingerprint. As JSON: `change`
/// (`added`, `removed`, `changed`), `path`, and `kind` (`f`, `d`, `l`, `s`)
/// of an added or removed entry or `what` changed in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Difference {
    Added { path: String, kind: char },
    Removed { path: String, kind: char },
    Changed { path: String, what: Vec<String> },
}

impl Difference {
    pub fn path(&self) -> &str {
        match self {
            Difference::Added { path, .. } | Difference::Removed { path, .. } | Difference::Changed { path, .. } => {
                path
            }
        }
    }
}

fn kind_word(k: char) -> &'static str {
    match k {
        'd' => "directory",
        'l' => "link",
        's' => "special file",
        _ => "file",
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Added { path, kind } => write!(f, "{path}: {} added", kind_word(*kind)),
            Difference::Removed { path, kind } => write!(f, "{path}: {} removed", kind_word(*kind)),
            Difference::Changed { path, what } => write!(f, "{path}: {}", what.join(", ")),
        }
    }
}

impl Fingerprint {
    /// The fingerprint of a scanned tree (the tool's own entries are not in a scan).
    pub fn of_tree(tree: &Tree) -> Fingerprint {
        let entries = tree
            .entries
            .iter()
            .map(|(p, e)| {
                let (kind, size, target) = match &e.kind {
                    Kind::File { size } => ('f', *size, None),
                    Kind::Dir => ('d', 0, None),
                    Kind::Symlink { target } => ('l', 0, Some(target.to_string_lossy().into_owned())),
                };
                let mtime = (kind != 'd').then_some((e.meta.mtime, e.meta.mtime_nsec as u32));
                (p.to_string_lossy().into_owned(), Stamp { kind, mode: e.meta.mode, size, mtime, target })
            })
            .collect();
        Fingerprint { entries }
    }

    /// Walks `root` (links never followed) and fingerprints it: the same
    /// stamps as [`Fingerprint::of_tree`], from `lstat` alone. Unlike a
    /// source scan it takes any entry: a fifo, socket or device found in a
    /// copy is a stamp of kind `s` (a difference to report, never opened).
    pub fn of_dir(root: &Path) -> Result<Fingerprint> {
        let mut entries = BTreeMap::new();
        for item in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
            let item = item.with_context(|| format!("reading {}", root.display()))?;
            let rel = item.path().strip_prefix(root).expect("walk stays below root");
            if is_own_entry(rel) {
                continue;
            }
            let md =
                std::fs::symlink_metadata(item.path()).with_context(|| format!("reading {}", item.path().display()))?;
            entries.insert(rel.to_string_lossy().into_owned(), stamp_of(item.path(), &md)?);
        }
        Ok(Fingerprint { entries })
    }

    /// A hash of the whole fingerprint: equal hashes, equal trees (as far as
    /// metadata tells).
    pub fn digest(&self) -> String {
        crate::model::tree::sha256_hex(self.lines().join("\n").as_bytes())
    }

    fn lines(&self) -> Vec<String> {
        self.entries.iter().map(|(p, s)| line(p, s)).collect()
    }

    /// Reads the record's lines; any line that is not one, or a path that is
    /// not a plain relative path inside the tree, makes the whole list invalid.
    pub fn from_lines(lines: &[String]) -> std::result::Result<Fingerprint, String> {
        let mut entries = BTreeMap::new();
        for l in lines {
            let (path, stamp) = parse_line(l).ok_or_else(|| format!("`{}` is not a fingerprint line", shorten(l)))?;
            check_inside(&path)?;
            entries.insert(path, stamp);
        }
        Ok(Fingerprint { entries })
    }
}

/// One entry's stamp from its `lstat`, as [`Fingerprint::of_tree`] makes it.
fn stamp_of(full: &Path, md: &std::fs::Metadata) -> Result<Stamp> {
    let ft = md.file_type();
    let (kind, size, target) = if ft.is_symlink() {
        let t = std::fs::read_link(full).with_context(|| format!("reading link {}", full.display()))?;
        ('l', 0, Some(t.to_string_lossy().into_owned()))
    } else if ft.is_dir() {
        ('d', 0, None)
    } else if ft.is_file() {
        ('f', md.len(), None)
    } else {
        ('s', 0, None)
    };
    let mtime = (kind != 'd').then_some((md.mtime(), md.mtime_nsec() as u32));
    Ok(Stamp { kind, mode: md.mode() & 0o7777, size, mtime, target })
}

fn line(path: &str, s: &Stamp) -> String {
    let mtime = s.mtime.map_or("-".to_string(), |(sec, ns)| format!("{sec}.{ns:09}"));
    let mut l = format!("{} {:o} {} {mtime} {path}", s.kind, s.mode, s.size);
    if let Some(t) = &s.target {
        l.push('\0');
        l.push_str(t);
    }
    l
}

fn parse_line(l: &str) -> Option<(String, Stamp)> {
    let (head, target) = match l.split_once('\0') {
        Some((h, t)) => (h, Some(t.to_string())),
        None => (l, None),
    };
    let mut parts = head.splitn(5, ' ');
    let kind = parts.next()?;
    let kind = match kind {
        "f" | "d" | "l" | "s" => kind.chars().next()?,
        _ => return None,
    };
    let mode = u32::from_str_radix(parts.next()?, 8).ok()?;
    let size = parts.next()?.parse().ok()?;
    let mtime = match parts.next()? {
        "-" => None,
        t => {
            let (s, ns) = t.split_once('.')?;
            Some((s.parse().ok()?, ns.parse().ok()?))
        }
    };
    let path = parts.next()?.to_string();
    if (kind == 'l') != target.is_some() {
        return None;
    }
    Some((path, Stamp { kind, mode, size, mtime, target }))
}

/// A path from a record must stay inside the tree it describes.
pub fn check_inside(path: &str) -> std::result::Result<(), String> {
    let p = Path::new(path);
    let plain = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(format!("the path `{}` leaves the copy", shorten(path)))
    }
}

fn shorten(s: &str) -> String {
    let s = s.replace('\0', " -> ");
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.lines().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        Fingerprint::from_lines(&lines).map_err(serde::de::Error::custom)
    }
}

/// How `now` differs from `recorded`, in path order.
pub fn compare(recorded: &Fingerprint, now: &Fingerprint) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut a = recorded.entries.iter().peekable();
    let mut b = now.entries.iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((p, s)), None) => {
                out.push(Difference::Removed { path: (*p).clone(), kind: s.kind });
                a.next();
            }
            (None, Some((p, s))) => {
                out.push(Difference::Added { path: (*p).clone(), kind: s.kind });
                b.next();
            }
            (Some((pa, sa)), Some((pb, sb))) => match pa.cmp(pb) {
                std::cmp::Ordering::Less => {
                    out.push(Difference::Removed { path: (*pa).clone(), kind: sa.kind });
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    out.push(Difference::Added { path: (*pb).clone(), kind: sb.kind });
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    let what = changes(sa, sb);
                    if !what.is_empty() {
                        out.push(Difference::Changed { path: (*pa).clone(), what });
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    out
}

fn changes(a: &Stamp, b: &Stamp) -> Vec<String> {
    if a.kind != b.kind {
        return vec![format!("was a {}, is a {}", kind_word(a.kind), kind_word(b.kind))];
    }
    let mut what = Vec::new();
    if a.size != b.size {
        what.push(format!("size {} -> {}", a.size, b.size));
    }
    if a.mode != b.mode {
        what.push(format!("mode {:o} -> {:o}", a.mode, b.mode));
    }
    if a.target != b.target {
        what.push(format!(
            "link target {} -> {}",
            a.target.as_deref().unwrap_or(""),
            b.target.as_deref().unwrap_or("")
        ));
    }
    if a.mtime != b.mtime {
        what.push("modification time changed".to_string());
    }
    what
}

/// Scans a copy and compares it with the fingerprint its record keeps.
pub fn compare_dir(root: &Path, recorded: &Fingerprint) -> Result<Vec<Difference>> {
    Ok(compare(recorded, &Fingerprint::of_dir(root)?))
}

/// At most `n` lines, and a last one saying how many more there are.
pub fn summarize(diffs: &[Difference], n: usize) -> Vec<String> {
    let mut lines: Vec<String> = diffs.iter().take(n).map(ToString::to_string).collect();
    if diffs.len() > n {
        lines.push(format!("and {} more", diffs.len() - n));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(kind: char, size: u64, mtime: i64) -> Stamp {
        Stamp { kind, mode: 0o644, size, mtime: Some((mtime, 5)), target: (kind == 'l').then(|| "t".into()) }
    }

    #[test]
    fn lines_round_trip_with_spaces_and_links() {
        let mut f = Fingerprint::default();
        f.entries.insert("a dir/with space.war".into(), stamp('f', 3, 9));
        f.entries.insert("bin/x -> y".into(), stamp('l', 0, 9));
        f.entries.insert("d".into(), Stamp { kind: 'd', mode: 0o755, size: 0, mtime: None, target: None });
        let text = serde_json::to_string(&f).unwrap();
        let back: Fingerprint = serde_json::from_str(&text).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.digest(), f.digest());
    }

    #[test]
    fn paths_that_leave_the_tree_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "./a"] {
            let l = format!("f 644 1 1.000000001 {bad}");
            assert!(Fingerprint::from_lines(&[l]).is_err(), "{bad}");
        }
        assert!(Fingerprint::from_lines(&["x 644 1 1.1 a".into()]).is_err());
        assert!(Fingerprint::from_lines(&["l 644 1 1.1 a".into()]).is_err(), "a link without a target");
    }

    #[test]
    fn compare_names_each_kind_of_change() {
        let mut a = Fingerprint::default();
        a.entries.insert("gone".into(), stamp('f', 1, 1));
        a.entries.insert("same".into(), stamp('f', 1, 1));
        a.entries.insert("edited".into(), stamp('f', 1, 1));
        a.entries.insert("typed".into(), stamp('f', 1, 1));
        let mut b = a.clone();
        b.entries.remove("gone");
        b.entries.insert("new".into(), stamp('f', 1, 1));
        b.entries.insert("edited".into(), stamp('f', 2, 2));
        b.entries.insert("typed".into(), stamp('l', 0, 1));
        let d = compare(&a, &b);
        let text: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "edited: size 1 -> 2, modification time changed",
                "gone: file removed",
                "new: file added",
                "typed: was a file, is a link"
            ]
        );
        assert!(compare(&a, &a).is_empty());
        assert_eq!(summarize(&d, 2).last().unwrap(), "and 2 more");
    }
}
