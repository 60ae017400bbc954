//! OCI images without a container daemon: an image layout directory (the OCI
//! image-layout specification: `oci-layout`, `index.json`, `blobs/sha256/`)
//! written beneath its directory handle, the base image read from another
//! layout or a `docker save` archive (`base`), and layers streamed from a
//! plan's tree, compressed in parallel (`layer`).
//!
//! Every blob is written as the rest of the output is: a new file under an
//! unguessable name (`O_EXCL`, no link followed, mode 0600: an image holds the
//! home's files, secrets included), hashed on its way to the disk, then
//! renamed to its digest. A blob already there under its digest is kept: a
//! re-run with the same inputs writes nothing new.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use rustix::fs::OFlags;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::outcome::refuse;
use crate::safe_fs::Beneath;

pub mod base;
pub mod layer;

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// The annotation that names a manifest of a layout (`oci:<dir>:<tag>`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A pointer to a blob (OCI content descriptor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest, as written (fields in the specification's order).
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::model::tree::hex(&Sha256::digest(bytes)))
}

/// The hex of a `sha256:` digest, refused when it is anything else (a name
/// that could leave `blobs/sha256/`).
pub fn hex_of(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => Ok(h),
        _ => refuse(
            format!("`{digest}` is not a sha256 digest"),
            "give an image whose blobs are named by sha256 digests (skopeo copy writes such a layout)",
        ),
    }
}

/// JSON with object keys in byte order at every level, whatever order the
/// value was read or built in: the same image gives the same bytes.
pub fn canonical_json(v: &serde_json::Value) -> Vec<u8> {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(v)).unwrap_or_default()
}

/// An OCI image layout being written.
pub struct Layout {
    dir: Beneath,
    blobs: Beneath,
}

/// Refuses, before anything is written, an output that is neither missing,
/// nor empty, nor an image layout (which this run then adds its tags to).
pub fn check_out(out: &Path) -> Result<()> {
    let Ok(md) = std::fs::symlink_metadata(out) else { return Ok(()) };
    let names: Vec<OsString> = match (md.is_dir(), std::fs::read_dir(out)) {
        (true, Ok(rd)) => rd.flatten().map(|e| e.file_name()).collect(),
        _ => {
            return refuse(
                format!("the output {} is not a directory", out.display()),
                "give a directory for the image layout (it is created when missing)",
            )
        }
    };
    if names.is_empty() || names.iter().any(|n| n == "oci-layout") {
        return Ok(());
    }
    refuse(
        format!("the output {} holds files and is not an OCI image layout (it has no oci-layout file)", out.display()),
        "give a new or empty directory, or an image layout this command wrote (its tags are then added or replaced)",
    )
}

impl Layout {
    /// Opens the layout directory `out` (made by the caller, owned by this
    /// account), making `blobs/sha256/` and `oci-layout` when missing.
    pub fn open(out: &Path) -> Result<Layout> {
        let dir = crate::engine::output::open_profile_dir(out)?;
        for d in ["blobs", "blobs/sha256"] {
            match rustix::fs::mkdirat(dir.fd(), d, rustix::fs::Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", out.join(d).display())),
            }
        }
        let blobs = dir.dir(Path::new("blobs/sha256"))?;
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        if read_small(&dir, "oci-layout").ok().as_deref() != Some(&layout[..]) {
            dir.write_atomic(OsStr::new("oci-layout"), layout, 0o644)?;
        }
        Ok(Layout { dir, blobs })
    }

    /// Whether the blob `digest` is there, as a regular file of `size` bytes.
    pub fn has_blob(&self, digest: &str, size: u64) -> bool {
        let Ok(hex) = hex_of(digest) else { return false };
        crate::sys::stat_at(self.blobs.fd(), OsStr::new(hex)).is_ok_and(|st| st.is_file() && st.size() == size)
    }

    /// A new blob, written under a temporary name until [`BlobWriter::finish`].
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>> {
        let tmp = OsString::from(crate::safe_fs::unguessable(".blob.apim-profiles-tmp-")?);
        let file = self.blobs.create_new(&tmp, 0o600)?;
        Ok(BlobWriter {
            layout: self,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            hash: Sha256::new(),
            size: 0,
        })
    }

    /// Writes `bytes` as a blob of `media_type` (kept when already there).
    pub fn put(&self, bytes: &[u8], media_type: &str) -> Result<(Descriptor, bool)> {
        let digest = digest_of(bytes);
        let d = Descriptor {
            media_type: media_type.into(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        };
        if self.has_blob(&digest, d.size) {
            return Ok((d, false));
        }
        self.blobs.write_atomic(OsStr::new(hex_of(&digest)?), bytes, 0o600)?;
        Ok((d, true))
    }

    /// Points each tag at its manifest in `index.json`: a tag already there
    /// is replaced, other tags stay. Returns whether the index changed.
    pub fn tag(&self, tagged: &[(String, Descriptor)]) -> Result<bool> {
        let old = read_small(&self.dir, "index.json").ok();
        let mut manifests: Vec<serde_json::Value> = old
            .as_deref()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|v| v.get("manifests").and_then(|m| m.as_array()).cloned())
            .unwrap_or_default();
        let ours = |m: &serde_json::Value| {
            let name = m.pointer("/annotations/org.opencontainers.image.ref.name").and_then(|n| n.as_str());
            tagged.iter().any(|(t, _)| Some(t.as_str()) == name)
        };
        manifests.retain(|m| !ours(m));
        for (tag, d) in tagged {
            let mut d = d.clone();
            d.annotations.insert(REF_NAME.into(), tag.clone());
            manifests.push(serde_json::to_value(d)?);
        }
        let name = |m: &serde_json::Value| m.pointer("/annotations/org.opencontainers.image.ref.name").cloned();
        manifests.sort_by_key(|m| name(m).and_then(|n| n.as_str().map(str::to_string)).unwrap_or_default());
        let index = serde_json::json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": manifests });
        let bytes = canonical_json(&index);
        if old.as_deref() == Some(&bytes[..]) {
            return Ok(false);
        }
        self.dir.write_atomic(OsStr::new("index.json"), &bytes, 0o644)?;
        Ok(true)
    }
}

/// A small file of a directory (at most 16 MiB), no link followed, only a
/// regular file.
pub fn read_small(dir: &Beneath, rel: &str) -> Result<Vec<u8>> {
    let path = dir.path().join(rel);
    let fd = dir
        .open_at(Path::new(rel), OFlags::RDONLY | OFlags::NONBLOCK, 0)
        .with_context(|| format!("opening {}", path.display()))?;
    let f = File::from(fd);
    if !f.metadata()?.is_file() {
        anyhow::bail!("{} is not a regular file", path.display());
    }
    crate::safe_fs::read_bounded(f, &path, 16 << 20)
}

/// A blob on its way into the layout: hashed and counted as it is written.
pub struct BlobWriter<'a> {
    layout: &'a Layout,
    out: Option<BufWriter<File>>,
    tmp: OsString,
    hash: Sha256,
    size: u64,
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.as_mut().expect("open until finished").write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.as_mut().expect("open until finished").flush()
    }
}

impl BlobWriter<'_> {
    /// Copies everything `r` gives into the blob.
    pub fn copy_from(&mut self, r: &mut dyn Read) -> Result<u64> {
        Ok(std::io::copy(r, self)?)
    }

    /// Names the blob by its digest; the same blob already there is kept
    /// (and this one dropped). Returns its digest, its size and whether it
    /// is new in the layout.
    pub fn finish(mut self) -> Result<(String, u64, bool)> {
        let out = self.out.take().expect("finished once");
        let f = out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all().context("flushing a blob to disk")?;
        let digest = format!("sha256:{}", crate::model::tree::hex(&self.hash.clone().finalize()));
        let hex = hex_of(&digest)?.to_string();
        let new = !self.layout.has_blob(&digest, self.size);
        if new {
            self.layout.blobs.rename(&self.tmp, OsStr::new(&hex))?;
        } else {
            let _ = rustix::fs::unlinkat(self.layout.blobs.fd(), &self.tmp, rustix::fs::AtFlags::empty());
        }
        self.tmp.clear();
        Ok((digest, self.size, new))
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if !self.tmp.is_empty() {
            let _ = rustix::fs::unlinkat(self.layout.blobs.fd(), &self.tmp, rustix::fs::AtFlags::empty());
        }
    }
}
