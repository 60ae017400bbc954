//! Image layers straight from plans: which entries every profile shares
//! ([`partition`]), and one layer's tar written from the plan's tree as the
//! home's files are read ([`write`]) — no copy on disk first.
//!
//! Reproducible: entries in path order, owner and times fixed (the home's own
//! modification times, clamped to `SOURCE_DATE_EPOCH` when it is set), and a
//! fixed compression. The tar stream is cut into 1 MiB pieces, each
//! compressed on its own as a gzip member, many at once on all threads; the
//! members, concatenated in order, are one gzip stream (RFC 1952, 2.2) that
//! every gzip reader unpacks. The cut points depend on the bytes only, so
//! the digest does not depend on the number of threads.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{BlobWriter, Descriptor, Layout, LAYER_GZIP};
use crate::model::tree::{Entry, Kind, Origin, Tree};

/// The gzip level of every layer (a constant: part of the digest).
pub const LEVEL: u32 = 6;
/// The size of the pieces compressed apart.
const PIECE: usize = 1 << 20;

/// One entry of a plan's tree.
pub type Item<'a> = (&'a Path, &'a Entry);

/// The entries every tree has alike (kind, mode, time, content), and what
/// is left of each tree.
pub struct Partition<'a> {
    pub shared: Vec<Item<'a>>,
    pub own: Vec<Vec<Item<'a>>>,
}

/// Splits the trees of one home's plans into what all of them hold alike
/// and each one's rest, both in path order.
pub fn partition<'a>(trees: &[&'a Tree]) -> Partition<'a> {
    let Some((first, others)) = trees.split_first() else {
        return Partition { shared: Vec::new(), own: Vec::new() };
    };
    let shared: Vec<Item<'a>> =
        first.iter().filter(|(p, e)| others.iter().all(|t| t.get(p).is_some_and(|o| alike(e, o)))).collect();
    let names: HashSet<&Path> = shared.iter().map(|(p, _)| *p).collect();
    let own = trees.iter().map(|t| t.iter().filter(|(p, _)| !names.contains(p)).collect()).collect();
    Partition { shared, own }
}

/// Whether two planned entries make the same tar entry.
fn alike(a: &Entry, b: &Entry) -> bool {
    let content = |e: &Entry| match &e.origin {
        Origin::Source(p) | Origin::SourceFresh(p) => (Some(p.clone()), None),
        Origin::Generated(b) => (None, Some(b.clone())),
    };
    a.kind == b.kind && a.meta.mode == b.meta.mode && a.meta.mtime == b.meta.mtime && content(a) == content(b)
}

/// One layer to write.
pub struct Spec<'a> {
    /// The home the entries' origins point into.
    pub source_root: &'a Path,
    /// Directories put first, as (path in the image, mode, owner, time).
    pub dirs_first: Vec<(PathBuf, u32, (u32, u32), i64)>,
    /// Where the home is in the image (`home/wso2carbon/<home name>`).
    pub home: PathBuf,
    pub entries: Vec<Item<'a>>,
    /// Owner of every entry of the home.
    pub owner: (u32, u32),
    /// `SOURCE_DATE_EPOCH`: no time later than it.
    pub epoch: Option<i64>,
}

/// A layer as written.
#[derive(Debug, Clone)]
pub struct Written {
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    pub entries: usize,
    /// Bytes of file content in it.
    pub bytes: u64,
    /// Whether the blob was new in the layout.
    pub new: bool,
}

/// The modification time an entry gets: its own, clamped to the epoch.
pub fn clamp(mtime: i64, epoch: Option<i64>) -> u64 {
    epoch.map_or(mtime, |e| mtime.min(e)).max(0) as u64
}

fn header(kind: tar::EntryType, mode: u32, (uid, gid): (u32, u32), mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

/// Writes the layer `spec` into the layout.
pub fn write(layout: &Layout, spec: &Spec<'_>) -> Result<Written> {
    let mut sink = Pieces::new(layout.blob_writer()?);
    let mut bytes = 0;
    {
        let mut tar = tar::Builder::new(&mut sink);
        for (path, mode, owner, mtime) in &spec.dirs_first {
            let mut h = header(tar::EntryType::Directory, *mode, *owner, clamp(*mtime, spec.epoch));
            tar.append_data(&mut h, path, std::io::empty())?;
        }
        for (rel, e) in &spec.entries {
            if crate::signals::interrupted() {
                anyhow::bail!("interrupted");
            }
            bytes += e.size();
            append(&mut tar, spec, rel, e).with_context(|| format!("adding {} to a layer", rel.display()))?;
        }
        tar.finish()?;
    }
    let (blob, diff_id) = sink.finish()?;
    let (digest, size, new) = blob.finish()?;
    let descriptor = Descriptor { media_type: LAYER_GZIP.into(), digest, size, annotations: Default::default() };
    Ok(Written { descriptor, diff_id, entries: spec.entries.len() + spec.dirs_first.len(), bytes, new })
}

fn append(tar: &mut tar::Builder<&mut Pieces<'_>>, spec: &Spec<'_>, rel: &Path, e: &Entry) -> Result<()> {
    let path = spec.home.join(rel);
    let mtime = clamp(e.meta.mtime, spec.epoch);
    match (&e.kind, &e.origin) {
        (Kind::Dir, _) => {
            let mut h = header(tar::EntryType::Directory, e.meta.mode, spec.owner, mtime);
            tar.append_data(&mut h, &path, std::io::empty())?;
        }
        (Kind::Symlink { target }, _) => {
            let mut h = header(tar::EntryType::Symlink, e.meta.mode, spec.owner, mtime);
            tar.append_link(&mut h, &path, target)?;
        }
        (Kind::File { size }, Origin::Generated(b)) => {
            let mut h = header(tar::EntryType::Regular, e.meta.mode, spec.owner, mtime);
            h.set_size(*size);
            tar.append_data(&mut h, &path, &b[..])?;
        }
        (Kind::File { size }, Origin::Source(p) | Origin::SourceFresh(p)) => {
            // Never through a link that leaves the home, never a FIFO; the
            // file the plan was made from, or a refusal.
            let f = crate::safe_fs::open_source(spec.source_root, p, (e.meta.dev, e.meta.ino))?;
            let mut h = header(tar::EntryType::Regular, e.meta.mode, spec.owner, mtime);
            h.set_size(*size);
            tar.append_data(&mut h, &path, Exact { inner: f, left: *size })?;
        }
    }
    Ok(())
}

/// A file's bytes, exactly as many as the header says: a file that shrank
/// since it was planned fails the layer instead of corrupting the tar.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(std::io::Error::other("the file shrank since the home was read; run again"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The tar stream on its way to the blob: hashed (the diff id), cut into
/// pieces, the pieces compressed in parallel a batch at a time and written
/// in order.
struct Pieces<'a> {
    blob: BlobWriter<'a>,
    raw: Sha256,
    piece: Vec<u8>,
    batch: Vec<Vec<u8>>,
}

impl<'a> Pieces<'a> {
    fn new(blob: BlobWriter<'a>) -> Pieces<'a> {
        Pieces { blob, raw: Sha256::new(), piece: Vec::with_capacity(PIECE), batch: Vec::new() }
    }

    /// Pieces compressed at once: enough to keep every thread busy.
    fn batch_len() -> usize {
        (rayon::current_num_threads() * 4).max(8)
    }

    fn compress_batch(&mut self) -> std::io::Result<()> {
        let members: Vec<std::io::Result<Vec<u8>>> = self.batch.par_iter().map(|p| member(p)).collect();
        self.batch.clear();
        for m in members {
            self.blob.write_all(&m?)?;
        }
        Ok(())
    }

    /// The blob with every piece written, and the digest of the tar.
    fn finish(mut self) -> Result<(BlobWriter<'a>, String)> {
        if !self.piece.is_empty() {
            let p = std::mem::take(&mut self.piece);
            self.batch.push(p);
        }
        self.compress_batch()?;
        let diff_id = format!("sha256:{}", crate::model::tree::hex(&self.raw.finalize()));
        Ok((self.blob, diff_id))
    }
}

/// One piece as a gzip member: no name, time 0, OS "unknown", level [`LEVEL`].
fn member(piece: &[u8]) -> std::io::Result<Vec<u8>> {
    let out = Vec::with_capacity(piece.len() / 2 + 64);
    let mut gz = flate2::GzBuilder::new().operating_system(255).write(out, flate2::Compression::new(LEVEL));
    gz.write_all(piece)?;
    gz.finish()
}

impl Write for Pieces<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(PIECE - self.piece.len());
        self.piece.extend_from_slice(&buf[..n]);
        self.raw.update(&buf[..n]);
        if self.piece.len() == PIECE {
            let full = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
            self.batch.push(full);
            if self.batch.len() >= Self::batch_len() {
                self.compress_batch()?;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A home-like tree with a file larger than a few pieces.
    fn tree() -> (tempfile::TempDir, Tree) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("bin/run.sh"), "#!/bin/sh\n").unwrap();
        let mut x: u64 = 7;
        let big: Vec<u8> = (0..(PIECE * 5 / 2))
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 59) as u8 // compressible, not constant
            })
            .collect();
        std::fs::write(d.path().join("big.bin"), &big).unwrap();
        std::os::unix::fs::symlink("bin/run.sh", d.path().join("link")).unwrap();
        let t = Tree::scan(d.path()).unwrap();
        (d, t)
    }

    fn write_with(threads: usize, root: &Path, t: &Tree, out: &Path) -> Written {
        let layout = Layout::open(out).unwrap();
        let spec = Spec {
            source_root: root,
            dirs_first: vec![(PathBuf::from("home"), 0o755, (0, 0), 5)],
            home: PathBuf::from("home/h"),
            entries: t.iter().collect(),
            owner: (802, 802),
            epoch: Some(1_000),
        };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| write(&layout, &spec)).unwrap()
    }

    #[test]
    fn a_layer_is_one_gzip_stream_with_the_same_digest_on_any_number_of_threads() {
        let (src, t) = tree();
        let out = tempfile::tempdir().unwrap();
        let one = write_with(1, src.path(), &t, out.path());
        let other = tempfile::tempdir().unwrap();
        let three = write_with(3, src.path(), &t, other.path());
        assert_eq!(one.descriptor, three.descriptor);
        let blob = out.path().join("blobs/sha256").join(one.descriptor.digest.trim_start_matches("sha256:"));
        let gz = std::fs::File::open(blob).unwrap();
        let mut raw = Vec::new();
        flate2::read::MultiGzDecoder::new(gz).read_to_end(&mut raw).unwrap();
        assert_eq!(one.diff_id, format!("sha256:{}", crate::model::tree::hex(&Sha256::digest(&raw))));
        let mut seen = Vec::new();
        for e in tar::Archive::new(&raw[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header();
            seen.push((e.path().unwrap().display().to_string(), h.uid().unwrap(), h.mtime().unwrap()));
            if seen.last().unwrap().0 == "home/h/big.bin" {
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                assert_eq!(body, std::fs::read(src.path().join("big.bin")).unwrap());
            }
        }
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["home", "home/h/big.bin", "home/h/bin", "home/h/bin/run.sh", "home/h/link"]);
        assert!(seen[1..].iter().all(|s| s.1 == 802 && s.2 <= 1_000), "owner fixed, times clamped: {seen:?}");
    }
}
