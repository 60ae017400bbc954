//! The fingerprint of a tree: for each entry its path, type, size, mode,
//! modification time and link target (metadata only, never a byte of content).
//! A copy's record keeps the fingerprint of the copy as the tool left it, and
//! of the source it was made from; comparing one with a fresh scan says what
//! changed since, entry by entry. `split` re-runs, `verify`, `update` and the
//! operator's `status` all answer from [`compare`].
//!
//! Kept in the record as one line per entry, `<type> <mode> <size> <times> <path>`
//! (`f`, `d`, `l`, or `s` for a special file; mode in octal), a link's target
//! after a NUL, so that a record stays a readable list. `<times>` is the
//! modification time as `seconds.nanoseconds` (`-` for a directory); a copy's
//! fingerprint adds `,<ctime>,<dev>:<ino>`: the inode change time (`-` for a
//! directory) and the entry's device and inode, which no owner of a file can
//! set back. A line without them is from an earlier version (or of a source
//! home, which does not need them) and is compared without them.

use std::fmt;
use std::path::{Component, Path};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::tree::{Kind, Tree};

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
    /// The inode change time (files, links, special files of a copy).
    pub ctime: Option<(i64, u32)>,
    /// Device and inode (every entry of a copy).
    pub id: Option<(u64, u64)>,
}

/// A tree's fingerprint: one stamp per relative path (as text), in byte
/// order of the paths.
///
/// Kept as the record's lines themselves, end to end in one string: a home of
/// 200,000 entries costs its text (about 90 bytes an entry), not a map of
/// strings and stamps three times that. A stamp is parsed when compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    text: String,
    /// Where each line starts in `text`; a line ends where the next starts.
    starts: Vec<usize>,
}

/// One way a copy differs from what it should be: from its fingerprint
/// (what the tool left), or from its profile. Every report's `drift` (split,
/// update, verify, status) lists these. As JSON: `change` (`added`,
/// `removed`, `changed`, `profile`), `path` (null for a profile step that is
/// not one path's), and `kind` (`f`, `d`, `l`, `s`) of an added or removed
/// entry, `what` changed in words, or the `message` of a profile difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Difference {
    Added {
        path: String,
        kind: char,
    },
    Removed {
        path: String,
        kind: char,
    },
    Changed {
        path: String,
        what: Vec<String>,
    },
    /// The copy is not what its profile makes of it (an entry the profile
    /// removes is there, a rewritten file differs, a step cannot apply).
    Profile {
        path: Option<String>,
        message: String,
    },
}

impl Difference {
    pub fn path(&self) -> Option<&str> {
        match self {
            Difference::Added { path, .. } | Difference::Removed { path, .. } | Difference::Changed { path, .. } => {
                Some(path)
            }
            Difference::Profile { path, .. } => path.as_deref(),
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
            Difference::Profile { message, .. } => f.write_str(message),
        }
    }
}

/// A scanned entry's stamp; `ids`: with its change time, device and inode
/// (a copy's), else without (a source's listing).
fn entry_stamp(e: &crate::model::tree::Entry, ids: bool) -> Stamp {
    let (kind, size, target) = match &e.kind {
        Kind::File { size } => ('f', *size, None),
        Kind::Dir => ('d', 0, None),
        Kind::Symlink { target } => ('l', 0, Some(target.to_string_lossy().into_owned())),
    };
    let mtime = (kind != 'd').then_some((e.meta.mtime, e.meta.mtime_nsec));
    let ctime = (ids && kind != 'd').then_some(e.meta.ctime);
    Stamp { kind, mode: e.meta.mode, size, mtime, target, ctime, id: ids.then_some((e.meta.dev, e.meta.ino)) }
}

impl Fingerprint {
    /// The fingerprint of a scanned tree (the tool's own entries are not in a scan).
    pub fn of_tree(tree: &Tree) -> Fingerprint {
        Fingerprint::of_walk(tree.iter().collect(), |e| entry_stamp(e, false))
    }

    /// The fingerprint of a scanned copy, as [`Fingerprint::of_dir`] makes
    /// it: with change times, devices and inodes.
    pub fn of_copy_tree(tree: &Tree) -> Fingerprint {
        Fingerprint::of_walk(tree.iter().collect(), |e| entry_stamp(e, true))
    }

    /// The tree's size as every command reports it (docs/reference.md,
    /// "Sizes and counts"): its entries (the root and the tool's own files
    /// at the root not counted) and the apparent bytes of its regular files.
    pub fn size(&self) -> (usize, u64) {
        self.iter().fold((0, 0), |(n, b), (_, st)| (n + 1, b + if st.kind == 'f' { st.size } else { 0 }))
    }

    /// Whether every entry carries its change time, device and inode (a
    /// fingerprint the tool made before it kept them does not).
    pub fn has_change_times(&self) -> bool {
        self.iter().all(|(_, st)| st.id.is_some())
    }

    /// The fingerprint of walked entries (in path order, each path once), each
    /// stamped by `stamp`: sorted in place into the byte order of the text.
    fn of_walk<P: AsRef<Path>, T>(mut entries: Vec<(P, T)>, stamp: impl Fn(&T) -> Stamp) -> Fingerprint {
        entries.sort_unstable_by(|(a, _), (b, _)| a.as_ref().as_os_str().cmp(b.as_ref().as_os_str()));
        // Byte and text order agree unless a name is not UTF-8: then by its
        // text, and of two names that read alike one line is kept.
        if entries.iter().any(|(p, _)| p.as_ref().to_str().is_none()) {
            let text = |p: &P| p.as_ref().to_string_lossy().into_owned();
            entries.sort_by_cached_key(|(p, _)| text(p));
            entries.dedup_by(|(a, _), (b, _)| text(a) == text(b));
        }
        let mut f = Fingerprint { text: String::new(), starts: Vec::with_capacity(entries.len()) };
        f.text.reserve(entries.iter().map(|(p, _)| p.as_ref().as_os_str().len() + 40).sum());
        for (p, t) in &entries {
            f.push(&p.as_ref().to_string_lossy(), &stamp(t));
        }
        f.text.shrink_to_fit();
        f
    }

    /// The fingerprint of these stamps; of two stamps for one path, the last.
    pub fn from_stamps(stamps: impl IntoIterator<Item = (String, Stamp)>) -> Fingerprint {
        let mut all: Vec<(String, Stamp)> = stamps.into_iter().collect();
        // Stable: of equal paths the last given ends up last, and is kept.
        all.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut f = Fingerprint { text: String::new(), starts: Vec::with_capacity(all.len()) };
        for (i, (p, st)) in all.iter().enumerate() {
            if all.get(i + 1).is_none_or(|(next, _)| next != p) {
                f.push(p, st);
            }
        }
        f
    }

    /// Appends a line; paths must come in byte order.
    fn push(&mut self, path: &str, st: &Stamp) {
        use std::fmt::Write;
        self.starts.push(self.text.len());
        let time = |t: Option<(i64, u32)>| t.map_or("-".to_string(), |(sec, ns)| format!("{sec}.{ns:09}"));
        let _ = write!(self.text, "{} {:o} {} {}", st.kind, st.mode, st.size, time(st.mtime));
        if let Some((dev, ino)) = st.id {
            let _ = write!(self.text, ",{},{dev}:{ino}", time(st.ctime));
        }
        let _ = write!(self.text, " {path}");
        if let Some(t) = &st.target {
            self.text.push('\0');
            self.text.push_str(t);
        }
    }

    /// A stand-in of one line of text that is no fingerprint line: where a
    /// listing read piece by piece goes in a record's text
    /// (`model::record_stream`).
    pub(crate) fn marker(text: &str) -> Fingerprint {
        Fingerprint { text: text.to_string(), starts: vec![0] }
    }

    /// The record's lines, in path order.
    fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        let ends = self.starts.iter().skip(1).copied().chain(std::iter::once(self.text.len()));
        self.starts.iter().zip(ends).map(|(&a, b)| &self.text[a..b])
    }

    /// Each path with its stamp, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Stamp)> + '_ {
        self.lines().map(|l| parse_line(l).expect("lines are checked when made"))
    }

    /// Walks `root` (links never followed) and fingerprints it: the same
    /// stamps as [`Fingerprint::of_tree`], from `lstat` alone. Unlike a
    /// source scan it takes any entry: a fifo, socket or device found in a
    /// copy is a stamp of kind `s` (a difference to report, never opened).
    ///
    /// Walked in the order of its lines ([`walk_sorted`]), each line written
    /// as it comes: no list of the entries besides the text. Where that walk
    /// stops (a name that is not UTF-8, a tree changed while read), the tree
    /// is walked whole and sorted, which sorts such names by their text or
    /// says what went wrong.
    pub fn of_dir(root: &Path) -> Result<Fingerprint> {
        let mut f = Fingerprint::default();
        if walk_sorted(root).try_for_each(|e| e.map(|(p, st)| f.push(&p, &st))).is_ok() {
            f.text.shrink_to_fit();
            f.starts.shrink_to_fit();
            return Ok(f);
        }
        let entries = crate::model::tree::walk(root, &|_, md, link| Ok(stamp_of(md, link)))?;
        Ok(Fingerprint::of_walk(entries, Stamp::clone))
    }

    /// Reads the record's lines; any line that is not one, or a path that is
    /// not a plain relative path inside the tree, makes the whole list invalid.
    #[cfg(test)]
    pub fn from_lines(lines: &[String]) -> std::result::Result<Fingerprint, String> {
        let mut b = LineReader::default();
        for l in lines {
            b.add(l)?;
        }
        Ok(b.finish())
    }
}

/// Takes a record's lines one at a time, checking each.
#[derive(Default)]
struct LineReader {
    f: Fingerprint,
    /// Some line came out of order, or twice: sort when done.
    unordered: bool,
    last_path: std::ops::Range<usize>,
}

impl LineReader {
    fn add(&mut self, l: &str) -> std::result::Result<(), String> {
        let (path, _) = checked_line(l)?;
        let at = self.f.text.len();
        let path_at = at + (path.as_ptr() as usize - l.as_ptr() as usize);
        if !self.f.starts.is_empty() && &self.f.text[self.last_path.clone()] >= path {
            self.unordered = true;
        }
        self.f.starts.push(at);
        self.f.text.push_str(l);
        self.last_path = path_at..path_at + path.len();
        Ok(())
    }

    fn finish(self) -> Fingerprint {
        if !self.unordered {
            return self.f; // as the tool writes them: in order, each path once
        }
        Fingerprint::from_stamps(self.f.iter().map(|(p, st)| (p.to_string(), st)).collect::<Vec<_>>())
    }
}

/// A record's line read as it is checked: a fingerprint line whose path
/// stays inside the tree.
pub(crate) fn checked_line(l: &str) -> std::result::Result<(&str, Stamp), String> {
    let (path, st) = parse_line(l).ok_or_else(|| format!("`{}` is not a fingerprint line", shorten(l)))?;
    check_inside(path)?;
    Ok((path, st))
}

/// One entry's stamp from its `lstat`, as [`Fingerprint::of_tree`] makes it.
pub(crate) fn stamp_of(md: &crate::sys::Stat, link: Option<std::path::PathBuf>) -> Stamp {
    let (kind, size, target) = if let Some(t) = link {
        ('l', 0, Some(t.to_string_lossy().into_owned()))
    } else if md.is_dir() {
        ('d', 0, None)
    } else if md.is_file() {
        ('f', md.size(), None)
    } else {
        ('s', 0, None)
    };
    let mtime = (kind != 'd').then_some((md.mtime(), md.mtime_nsec()));
    let ctime = (kind != 'd').then_some((md.ctime(), md.ctime_nsec()));
    Stamp { kind, mode: md.mode() & 0o7777, size, mtime, target, ctime, id: Some((md.dev(), md.ino())) }
}

/// `seconds.nanoseconds`, or `-`.
fn parse_time(t: &str) -> Option<Option<(i64, u32)>> {
    if t == "-" {
        return Some(None);
    }
    let (s, ns) = t.split_once('.')?;
    Some(Some((s.parse().ok()?, ns.parse().ok()?)))
}

/// `<mtime>` or `<mtime>,<ctime>,<dev>:<ino>`.
type Times = (Option<(i64, u32)>, Option<(i64, u32)>, Option<(u64, u64)>);
fn parse_times(t: &str) -> Option<Times> {
    let mut parts = t.split(',');
    let mtime = parse_time(parts.next()?)?;
    let Some(ctime) = parts.next() else {
        return Some((mtime, None, None));
    };
    let ctime = parse_time(ctime)?;
    let (dev, ino) = parts.next()?.split_once(':')?;
    if parts.next().is_some() {
        return None;
    }
    Some((mtime, ctime, Some((dev.parse().ok()?, ino.parse().ok()?))))
}

fn parse_line(l: &str) -> Option<(&str, Stamp)> {
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
    let (mtime, ctime, id) = parse_times(parts.next()?)?;
    let path = parts.next()?;
    if (kind == 'l') != target.is_some() {
        return None;
    }
    Some((path, Stamp { kind, mode, size, mtime, target, ctime, id }))
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
        s.collect_seq(self.lines())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // Line by line into the text: no list of strings on the way.
        struct Lines;
        impl<'de> serde::de::Visitor<'de> for Lines {
            type Value = Fingerprint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of fingerprint lines")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Fingerprint, A::Error> {
                let mut r = LineReader::default();
                while let Some(l) = seq.next_element::<String>()? {
                    r.add(&l).map_err(serde::de::Error::custom)?;
                }
                Ok(r.finish())
            }
        }
        d.deserialize_seq(Lines)
    }
}

/// Compares a recorded fingerprint with a tree's entries as both come, in
/// path order: neither is held whole (a re-run walks each copy against its
/// record's lines as they are read).
///
/// A copy moved as a whole (unpacked on a node, copied with `cp -a`) has its
/// entries, but not one keeps the inode it was recorded with: such a copy is
/// compared by what a move keeps (kind, size, mode, link target,
/// modification time); `verify --content` proves its bytes. Which it is is
/// known at the end only, so until an entry with its recorded inode is met
/// both lists of differences are kept (the first entry decides for a copy in
/// place).
pub struct Comparer<S, I: Iterator<Item = Result<(S, Stamp)>>> {
    now: std::iter::Peekable<I>,
    /// With inodes and change times compared (the copy is in place).
    strict: Vec<Difference>,
    /// Without them (the copy was moved), while that can still be so.
    loose: Vec<Difference>,
    /// An entry kept its recorded device and inode: the copy is in place.
    in_place: bool,
    /// Entries on both sides with a device and inode.
    common: usize,
}

impl<S: AsRef<str>, I: Iterator<Item = Result<(S, Stamp)>>> Comparer<S, I> {
    pub fn new(now: I) -> Self {
        Comparer { now: now.peekable(), strict: Vec::new(), loose: Vec::new(), in_place: false, common: 0 }
    }

    fn push(&mut self, d: Difference) {
        if !self.in_place {
            self.loose.push(d.clone());
        }
        self.strict.push(d);
    }

    /// The next recorded entry (paths in increasing order).
    pub fn recorded(&mut self, path: &str, a: &Stamp) -> Result<()> {
        loop {
            let order = match self.now.peek() {
                None => std::cmp::Ordering::Less,
                Some(Err(_)) => return Err(self.now.next().and_then(|r| r.err()).expect("peeked an error")),
                Some(Ok((p, _))) => path.cmp(p.as_ref()),
            };
            match order {
                std::cmp::Ordering::Less => {
                    self.push(Difference::Removed { path: path.to_string(), kind: a.kind });
                    return Ok(());
                }
                std::cmp::Ordering::Greater => {
                    let (p, b) = self.now.next().expect("peeked")?;
                    self.push(Difference::Added { path: p.as_ref().to_string(), kind: b.kind });
                }
                std::cmp::Ordering::Equal => {
                    let (_, b) = self.now.next().expect("peeked")?;
                    self.same_path(path, a, &b);
                    return Ok(());
                }
            }
        }
    }

    fn same_path(&mut self, path: &str, a: &Stamp, b: &Stamp) {
        if let (Some(x), Some(y)) = (a.id, b.id) {
            self.common += 1;
            if x == y && !self.in_place {
                self.in_place = true;
                self.loose = Vec::new();
            }
        }
        let what = changes(a, b, false);
        if !self.in_place {
            let moved = changes(a, b, true);
            if !moved.is_empty() {
                self.loose.push(Difference::Changed { path: path.to_string(), what: moved });
            }
        }
        if !what.is_empty() {
            self.strict.push(Difference::Changed { path: path.to_string(), what });
        }
    }

    /// The differences, in path order: the entries not recorded are added.
    pub fn finish(mut self) -> Result<Vec<Difference>> {
        while let Some(next) = self.now.next() {
            let (p, b) = next?;
            self.push(Difference::Added { path: p.as_ref().to_string(), kind: b.kind });
        }
        let moved = !self.in_place && self.common > 0;
        Ok(if moved { self.loose } else { self.strict })
    }
}

/// How `now` differs from `recorded`, in path order.
pub fn compare(recorded: &Fingerprint, now: &Fingerprint) -> Vec<Difference> {
    let mut c = Comparer::new(now.iter().map(Ok));
    for (p, st) in recorded.iter() {
        c.recorded(p, &st).expect("an in-memory fingerprint has no error");
    }
    c.finish().expect("an in-memory fingerprint has no error")
}

fn changes(a: &Stamp, b: &Stamp, moved: bool) -> Vec<String> {
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
    // Compared only when both sides keep them (an earlier record does not),
    // and where the copy was not moved as a whole.
    let (Some(ia), Some(ib), false) = (a.id, b.id, moved) else {
        return what;
    };
    if ia != ib {
        what.push("replaced by another file (device and inode changed)".to_string());
    } else if a.ctime.is_some() && b.ctime.is_some() && a.ctime != b.ctime {
        what.push("change time changed (rewritten, renamed or its metadata set since)".to_string());
    }
    what
}

/// The entries of a copy as [`Fingerprint::of_dir`] stamps them, in the
/// order of its lines, walked as they are asked for (see
/// [`crate::model::tree::SortedWalk`]).
pub fn walk_sorted(root: &Path) -> impl Iterator<Item = Result<(String, Stamp)>> {
    crate::model::tree::SortedWalk::new(root, stamp_of)
}

/// Scans a copy and compares it with the fingerprint its record keeps, the
/// walk and the comparison in step. Where that walk stops (a name that is not
/// UTF-8, an entry that changed while read), the copy is walked whole as
/// before, which sorts such names by their text or says what went wrong.
pub fn compare_dir(root: &Path, recorded: &Fingerprint) -> Result<Vec<Difference>> {
    let mut c = Comparer::new(walk_sorted(root));
    let streamed = recorded.iter().try_for_each(|(p, st)| c.recorded(p, &st)).and_then(|()| c.finish());
    match streamed {
        Ok(d) => Ok(d),
        Err(_) => {
            let entries = crate::model::tree::walk(root, &|_, md, link| Ok(stamp_of(md, link)))?;
            Ok(compare(recorded, &Fingerprint::of_walk(entries, Stamp::clone)))
        }
    }
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
        Stamp {
            kind,
            mode: 0o644,
            size,
            mtime: Some((mtime, 5)),
            target: (kind == 'l').then(|| "t".into()),
            ctime: Some((mtime, 7)),
            id: Some((1, mtime as u64)),
        }
    }

    #[test]
    fn lines_round_trip_with_spaces_and_links() {
        let f = Fingerprint::from_stamps([
            ("a dir/with space.war".into(), stamp('f', 3, 9)),
            ("bin/x -> y".into(), stamp('l', 0, 9)),
            (
                "d".into(),
                Stamp { kind: 'd', mode: 0o755, size: 0, mtime: None, target: None, ctime: None, id: Some((1, 2)) },
            ),
        ]);
        let text = serde_json::to_string(&f).unwrap();
        let back: Fingerprint = serde_json::from_str(&text).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn a_change_time_alone_is_a_change_and_old_lines_still_read() {
        let old = Fingerprint::from_lines(&["f 644 3 9.000000005 a".into()]).unwrap();
        assert!(!old.has_change_times());
        let now = Fingerprint::from_stamps([("a".into(), stamp('f', 3, 9))]);
        assert!(now.has_change_times());
        assert!(compare(&old, &now).is_empty(), "an earlier line is compared without what it lacks");
        let mut touched = stamp('f', 3, 9);
        touched.ctime = Some((10, 0));
        let d = compare(&now, &Fingerprint::from_stamps([("a".into(), touched)]));
        assert_eq!(d.len(), 1);
        assert!(d[0].to_string().starts_with("a: change time changed"), "{}", d[0]);
        let line = serde_json::to_string(&now).unwrap();
        assert_eq!(line, r#"["f 644 3 9.000000005,9.000000007,1:9 a"]"#);
        assert!(Fingerprint::from_lines(&["f 644 3 9.5,9.5,1 a".into()]).is_err(), "a device without an inode");
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

    /// A copy moved as a whole (unpacked on a node) keeps no inode: it is
    /// compared by what a move keeps, and an edit still shows.
    #[test]
    fn a_copy_moved_as_a_whole_is_compared_without_inodes() {
        let line = |ino: u32, size: u32| format!("f 644 {size} 9.5,9.6,1:{ino} a");
        let other = |ino: u32| format!("f 644 1 9.5,9.6,1:{ino} b");
        let recorded = Fingerprint::from_lines(&[line(10, 3), other(11)]).unwrap();
        let moved = Fingerprint::from_lines(&[line(20, 3), other(21)]).unwrap();
        assert!(compare(&recorded, &moved).is_empty());
        let moved_and_edited = Fingerprint::from_lines(&[line(20, 4), other(21)]).unwrap();
        assert_eq!(compare(&recorded, &moved_and_edited).len(), 1);
        // In place, one file replaced: named.
        let replaced = Fingerprint::from_lines(&[line(20, 3), other(11)]).unwrap();
        assert!(compare(&recorded, &replaced)[0].to_string().contains("replaced by another file"));
    }

    /// The walk in step gives the lines of the walk whole, in their order
    /// (`a-b` between `a` and `a/c`), and the comparison in step finds what
    /// the comparison of the two lists finds.
    #[test]
    fn the_sorted_walk_is_the_fingerprint_in_order() {
        let d = tempfile::tempdir().unwrap();
        for dir in ["a", "a/c", "a.b", "b"] {
            std::fs::create_dir(d.path().join(dir)).unwrap();
        }
        for f in ["a-b", "a/c/x", "a/c-d", "a0", "b/z", ".apim-profiles.json"] {
            std::fs::write(d.path().join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("a0", d.path().join("a/l")).unwrap();
        let whole = Fingerprint::of_dir(d.path()).unwrap();
        let walked: Vec<(String, Stamp)> = walk_sorted(d.path()).collect::<Result<_>>().unwrap();
        let lines: Vec<(String, Stamp)> = whole.iter().map(|(p, s)| (p.to_string(), s)).collect();
        assert_eq!(walked, lines);
        assert!(compare_dir(d.path(), &whole).unwrap().is_empty());
        std::fs::write(d.path().join("a/c-d"), "longer").unwrap();
        std::fs::remove_file(d.path().join("b/z")).unwrap();
        std::fs::write(d.path().join("a/c/y"), "y").unwrap();
        let now = Fingerprint::of_dir(d.path()).unwrap();
        assert_eq!(compare_dir(d.path(), &whole).unwrap(), compare(&whole, &now));
        assert_eq!(compare_dir(d.path(), &whole).unwrap().len(), 3);
    }

    #[test]
    fn compare_names_each_kind_of_change() {
        let a = Fingerprint::from_stamps([
            ("gone".into(), stamp('f', 1, 1)),
            ("same".into(), stamp('f', 1, 1)),
            ("edited".into(), stamp('f', 1, 1)),
            ("typed".into(), stamp('f', 1, 1)),
        ]);
        let b = Fingerprint::from_stamps([
            ("same".into(), stamp('f', 1, 1)),
            ("new".into(), stamp('f', 1, 1)),
            ("edited".into(), stamp('f', 2, 2)),
            ("typed".into(), stamp('l', 0, 1)),
        ]);
        let d = compare(&a, &b);
        let text: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "edited: size 1 -> 2, modification time changed, replaced by another file (device and inode changed)",
                "gone: file removed",
                "new: file added",
                "typed: was a file, is a link"
            ]
        );
        assert!(compare(&a, &a).is_empty());
        assert_eq!(summarize(&d, 2).last().unwrap(), "and 2 more");
    }
}
