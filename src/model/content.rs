//! Content digests of a copy: the SHA-256 of every file as the tool left it,
//! taken from the bytes as they are copied (`engine::copy`), so that
//! `verify --content` can prove what a metadata check only suggests.
//!
//! The record keeps them as one hex string, 64 characters a file, in the
//! order of the copy fingerprint's file lines: the paths are already there
//! once, and the seal covers both, so a digest cannot be moved to another
//! file without breaking it.
//!
//! A digest belongs to an inode as it was at one change time: a file changed
//! after it was hashed (by the update tool, by re-optimization, by the link of
//! a second name) has another change time and is hashed again when the copy
//! is stamped, from the copy itself.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::model::fingerprint::{Fingerprint, Stamp};
use crate::model::record::Record;

pub type Sha = [u8; 32];

/// Digests known by (device, inode), each with the change time the file had
/// when it was hashed: valid while the file still has that change time.
///
/// A vector sorted by (device, inode), 64 bytes a file, not a hash map (~85
/// bytes a file at its load factor, and twice that while it grows): a split
/// holds one per copy from the copying until the copy is stamped, 800,000
/// files for four copies of a 200,000-file home. Filled in any order, in
/// chunks of a fixed size (a vector doubling as it fills leaves up to half
/// of itself unused, on every thread), it is gathered and sorted once
/// ([`Known::sort`]) before it is asked.
#[derive(Debug, Default, Clone)]
pub struct Known {
    digests: Vec<KnownDigest>,
    filling: Vec<Vec<KnownDigest>>,
    sorted: bool,
}

type KnownDigest = ((u64, u64), (i64, u32), Sha);

/// Digests in one chunk while filling (64 KiB).
const CHUNK: usize = 1024;

impl Known {
    pub fn insert(&mut self, id: (u64, u64), ctime: (i64, u32), sha: Sha) {
        if self.filling.last().is_none_or(|c| c.len() == CHUNK) {
            self.filling.push(Vec::with_capacity(CHUNK));
        }
        self.filling.last_mut().expect("a chunk").push((id, ctime, sha));
        self.sorted = false;
    }

    pub fn extend(&mut self, mut other: Known) {
        self.filling.append(&mut other.filling);
        self.filling.push(other.digests);
        self.sorted = false;
    }

    /// Gathers and sorts by (device, inode); of two digests of one inode
    /// the later inserted wins.
    pub fn sort(&mut self) {
        if self.sorted {
            return;
        }
        let n = self.digests.len() + self.filling.iter().map(Vec::len).sum::<usize>();
        let mut all = Vec::with_capacity(n);
        all.append(&mut self.digests);
        for c in std::mem::take(&mut self.filling) {
            all.extend(c);
        }
        // Reversed, then sorted stably: the later of two digests of an inode
        // comes first, and is the one kept.
        all.reverse();
        all.sort_by_key(|(id, _, _)| *id);
        all.dedup_by_key(|(id, _, _)| *id);
        all.shrink_to_fit();
        self.digests = all;
        self.sorted = true;
    }

    fn find(&self, id: (u64, u64)) -> Option<usize> {
        assert!(self.sorted || self.digests.is_empty(), "Known asked before it was sorted");
        self.digests.binary_search_by_key(&id, |(i, _, _)| *i).ok()
    }

    /// The file `id` now has change time `ctime` through no write of its
    /// bytes (a name added or removed): its digest holds on.
    pub fn retime(&mut self, id: (u64, u64), ctime: (i64, u32)) {
        if let Some(i) = self.find(id) {
            self.digests[i].1 = ctime;
        }
    }

    /// The digest of the file with this stamp, if it was hashed as it is now.
    fn get(&self, st: &Stamp) -> Option<Sha> {
        let (_, at, sha) = self.digests[self.find(st.id?)?];
        (Some(at) == st.ctime).then_some(sha)
    }

    /// What a record says of its copy's files; None when it keeps no digests.
    pub fn of_record(rec: &Record) -> Option<Known> {
        let (fp, text) = (rec.copy_fingerprint.as_ref()?, rec.content_sha256.as_ref()?);
        let mut k = Known::default();
        for ((_, st), sha) in unpack(fp, text)? {
            if let (Some(id), Some(ctime)) = (st.id, st.ctime) {
                k.insert(id, ctime, sha);
            }
        }
        k.sort();
        Some(k)
    }
}

/// The file lines of a fingerprint, each with its recorded digest; None when
/// the digests do not fit the fingerprint (then none is trusted).
pub fn unpack<'a>(fp: &'a Fingerprint, text: &str) -> Option<Vec<((&'a str, Stamp), Sha)>> {
    let files: Vec<(&str, Stamp)> = fp.iter().filter(|(_, st)| st.kind == 'f').collect();
    if text.len() != files.len() * 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digests = text.as_bytes().chunks(64).map(|c| {
        let mut sha = [0u8; 32];
        for (i, pair) in c.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).unwrap_or("00");
            sha[i] = u8::from_str_radix(hex, 16).unwrap_or(0);
        }
        sha
    });
    Some(files.into_iter().zip(digests).collect())
}

/// Streams bytes into a SHA-256.
#[derive(Default, Clone)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// `n` zero bytes (a hole of a sparse file).
    pub fn zeros(&mut self, mut n: u64) {
        static Z: [u8; 64 << 10] = [0; 64 << 10];
        while n > 0 {
            let k = n.min(Z.len() as u64) as usize;
            self.0.update(&Z[..k]);
            n -= k as u64;
        }
    }

    pub fn finish(self) -> Sha {
        self.0.finalize().into()
    }
}

thread_local! {
    /// One read buffer per thread: a fresh megabyte per file would be an
    /// `mmap` and its page faults each time.
    static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 1 << 20]);
}

/// Runs `f` with this thread's read buffer.
pub fn with_buffer<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    BUF.with(|b| f(&mut b.borrow_mut()))
}

/// The SHA-256 of a whole open file, read from its start (positioned reads:
/// the file's offset is left alone); with the number of bytes read.
pub fn hash_file(f: &File) -> std::io::Result<(Sha, u64)> {
    with_buffer(|buf| {
        let mut h = Hasher::default();
        let mut off = 0u64;
        loop {
            let n = match f.read_at(buf, off) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
            off += n as u64;
        }
        Ok((h.finish(), off))
    })
}

/// The digests to record for `fp` (a copy just stamped), in its file order:
/// known ones as they are, the files changed since they were hashed (or
/// never hashed) read now, in parallel, from the copy itself.
pub fn pack(root: &Path, fp: &Fingerprint, known: &Known) -> Result<String> {
    use rayon::prelude::*;
    // A batch of lines at a time: the fingerprint's lines parsed all at once
    // would cost more than the text made of them (120 against 64 bytes a file).
    const BATCH: usize = 4096;
    let dir = crate::sys::open_dir(root, true).with_context(|| format!("opening {}", root.display()))?;
    let mut files = fp.iter().filter(|(_, st)| st.kind == 'f').peekable();
    let mut text = String::new();
    let mut batch: Vec<(&str, Stamp)> = Vec::with_capacity(BATCH);
    while files.peek().is_some() {
        batch.clear();
        batch.extend(files.by_ref().take(BATCH));
        let shas: Vec<Sha> = batch
            .par_iter()
            .with_max_len(1)
            .map(|(p, st)| match known.get(st) {
                Some(sha) => Ok(sha),
                None => hash_recorded(&dir, root, p, st),
            })
            .collect::<Result<_>>()?;
        crate::model::tree::push_hex(&mut text, shas.as_flattened());
    }
    text.shrink_to_fit();
    Ok(text)
}

/// Hashes the file the fingerprint names, which must still be as stamped.
fn hash_recorded(dir: &std::os::fd::OwnedFd, root: &Path, rel: &str, st: &Stamp) -> Result<Sha> {
    let what = || format!("hashing {}", root.join(rel).display());
    let f = crate::safe_fs::open_beneath(dir, Path::new(rel)).with_context(what)?;
    let (sha, _) = hash_file(&f).with_context(what)?;
    let md = f.metadata().with_context(what)?;
    if Some((md.dev(), md.ino())) != st.id || Some((md.ctime(), md.ctime_nsec() as u32)) != st.ctime {
        bail!(
            "{} changed while its digest was taken: run again when nothing else writes to it",
            root.join(rel).display()
        );
    }
    Ok(sha)
}

/// What `verify --content` found, per copy (JSON: `profiles[].content`).
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct ContentCheck {
    /// Files read and compared with their recorded digests.
    pub files_checked: u64,
    pub bytes_read: u64,
    /// Each file whose bytes differ from what the tool left, in path order.
    pub differs: Vec<String>,
    /// Each recorded file that could not be read as a regular file of the
    /// copy (gone, now a link or a directory, or not readable), with why.
    pub unreadable: Vec<String>,
}

/// One file's outcome.
enum Found {
    Same(u64),
    Differs(u64),
    Unreadable(String),
}

/// Reads every file the record names, in parallel (largest first), and
/// compares it with its digest. None when the record keeps no digests that
/// fit its fingerprint.
pub fn verify(root: &Path, rec: &Record) -> Result<Option<ContentCheck>> {
    use rayon::prelude::*;
    let (Some(fp), Some(text)) = (rec.copy_fingerprint.as_ref(), rec.content_sha256.as_ref()) else {
        return Ok(None);
    };
    let Some(mut files) = unpack(fp, text) else {
        return Ok(None);
    };
    let dir = crate::sys::open_dir(root, true).with_context(|| format!("opening {}", root.display()))?;
    files.sort_by_key(|((_, st), _)| std::cmp::Reverse(st.size));
    let found: Vec<(&str, Found)> =
        files.par_iter().with_max_len(1).map(|((p, _), sha)| (*p, check_one(&dir, p, sha))).collect();
    let mut c = ContentCheck::default();
    for (p, f) in found {
        match f {
            Found::Same(n) => c.bytes_read += n,
            Found::Differs(n) => {
                c.bytes_read += n;
                c.differs.push(p.to_string());
            }
            Found::Unreadable(why) => c.unreadable.push(format!("{p}: {why}")),
        }
        c.files_checked += 1;
    }
    c.differs.sort();
    c.unreadable.sort();
    Ok(Some(c))
}

fn check_one(dir: &std::os::fd::OwnedFd, rel: &str, want: &Sha) -> Found {
    let f = match crate::safe_fs::open_beneath(dir, Path::new(rel)) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Found::Unreadable("a link is on its way, which is not followed".into())
        }
        Err(e) => return Found::Unreadable(format!("cannot be opened ({e})")),
    };
    match f.metadata() {
        Ok(md) if md.is_file() => {}
        Ok(_) => return Found::Unreadable("not a regular file".into()),
        Err(e) => return Found::Unreadable(format!("cannot be read ({e})")),
    }
    match hash_file(&f) {
        Ok((sha, n)) if sha == *want => Found::Same(n),
        Ok((_, n)) => Found::Differs(n),
        Err(e) => Found::Unreadable(format!("cannot be read ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(id: (u64, u64), ctime: (i64, u32)) -> Stamp {
        Stamp { kind: 'f', mode: 0o644, size: 1, mtime: Some((1, 0)), target: None, ctime: Some(ctime), id: Some(id) }
    }

    /// Filled from several threads' chunks in any order, the digests are
    /// found by inode once sorted; of two digests of one inode the later
    /// holds, and a digest holds only at the change time it was taken at.
    #[test]
    fn known_digests_are_found_by_inode_and_change_time_whatever_the_order_they_came_in() {
        let mut a = Known::default();
        let mut b = Known::default();
        for i in (0..3000u64).rev() {
            let k = if i % 2 == 0 { &mut a } else { &mut b };
            k.insert((1, i), (5, 0), [i as u8; 32]);
        }
        b.insert((1, 10), (6, 0), [0xee; 32]);
        a.extend(b);
        a.insert((1, 20), (7, 1), [0xdd; 32]);
        a.sort();
        assert_eq!(a.get(&stamp((1, 7), (5, 0))), Some([7; 32]));
        assert_eq!(a.get(&stamp((1, 2999), (5, 0))), Some([2999u64 as u8; 32]));
        assert_eq!(a.get(&stamp((1, 10), (6, 0))), Some([0xee; 32]), "the later digest of an inode");
        assert_eq!(a.get(&stamp((1, 10), (5, 0))), None, "the earlier one no longer holds");
        assert_eq!(a.get(&stamp((1, 20), (7, 1))), Some([0xdd; 32]));
        assert_eq!(a.get(&stamp((2, 7), (5, 0))), None, "another device");
        assert_eq!(a.get(&stamp((1, 3000), (5, 0))), None);
        a.retime((1, 7), (9, 9));
        assert_eq!(a.get(&stamp((1, 7), (9, 9))), Some([7; 32]));
        assert_eq!(a.digests.len(), 3000);
    }

    #[test]
    fn zeros_hash_like_zero_bytes() {
        let mut a = Hasher::default();
        a.zeros(200_000);
        let mut b = Hasher::default();
        b.update(&vec![0u8; 200_000]);
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn digests_that_do_not_fit_are_not_trusted() {
        let fp = Fingerprint::from_lines(&["f 644 1 1.000000001,1.000000002,1:2 a".into()]).unwrap();
        assert!(unpack(&fp, &"ab".repeat(32)).is_some());
        assert!(unpack(&fp, &"ab".repeat(31)).is_none());
        assert!(unpack(&fp, &"zz".repeat(32)).is_none());
    }
}
