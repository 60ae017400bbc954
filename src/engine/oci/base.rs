//! The base image the profiles' layers go on: an OCI image layout
//! (`skopeo copy docker://eclipse-temurin:17-jre oci:jre:17`) or a `docker
//! save` archive, read whole and checked before anything is written; its
//! layers are copied into the output layout unchanged (same digests, so a
//! registry that has the base already stores nothing new for it).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rustix::fs::OFlags;

use super::{digest_of, hex_of, read_small, Descriptor, Layout, Manifest, LAYER_GZIP, LAYER_TAR, REF_NAME};
use crate::outcome::Refusal;
use crate::safe_fs::Beneath;

/// The base image, read.
pub struct Base {
    /// How the operator named it.
    pub reference: String,
    /// Its configuration (the image's settings, `rootfs.diff_ids`, history).
    pub config: serde_json::Value,
    pub layers: Vec<BaseLayer>,
}

pub struct BaseLayer {
    pub media_type: String,
    /// Known from a layout's manifest; a `docker save` archive's is taken as
    /// the layer is copied.
    pub digest: Option<String>,
    pub size: u64,
    from: From,
}

enum From {
    Layout { dir: PathBuf, hex: String },
    Archive { file: PathBuf, offset: u64 },
}

fn bad_base(what: String) -> anyhow::Error {
    Refusal::new(
        what,
        "give --base an OCI image layout directory (skopeo copy docker://IMAGE oci:DIR:TAG) or a `docker save` archive, optionally with :TAG",
    )
    .into()
}

/// Reads the base `spec` (`PATH` or `PATH:TAG`).
pub fn open(spec: &str) -> Result<Base> {
    let (path, tag) = match std::fs::metadata(spec) {
        Ok(_) => (PathBuf::from(spec), None),
        Err(_) => match spec.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') && std::fs::metadata(p).is_ok() => (PathBuf::from(p), Some(t)),
            _ => return Err(bad_base(format!("the base image {spec} does not exist"))),
        },
    };
    let base = if path.is_dir() { open_layout(&path, tag) } else { open_archive(&path, tag) }?;
    let diff_ids = base.config.pointer("/rootfs/diff_ids").and_then(|d| d.as_array()).map_or(0, Vec::len);
    if diff_ids != base.layers.len() {
        return Err(bad_base(format!(
            "the base image {spec} has {} layers but its configuration lists {diff_ids}",
            base.layers.len()
        )));
    }
    Ok(Base { reference: spec.to_string(), ..base })
}

/// A layer's media type in OCI terms (Docker's are the same bytes).
fn oci_layer_type(t: &str) -> Option<&'static str> {
    match t {
        LAYER_GZIP | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(LAYER_GZIP),
        LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => Some(LAYER_TAR),
        _ => None,
    }
}

/// The platform this machine runs, in OCI's words.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The manifest of `tag` (or the only one) in a layout's index, following an
/// image index to this machine's platform.
fn choose(dir: &Beneath, index: &serde_json::Value, tag: Option<&str>) -> Result<Descriptor> {
    let list: Vec<Descriptor> = index
        .get("manifests")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .ok_or_else(|| bad_base(format!("{}/index.json lists no manifests", dir.path().display())))?;
    let tags: Vec<&str> = list.iter().filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str)).collect();
    let found = match tag {
        Some(t) => list.iter().find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(t)),
        None if list.len() == 1 => list.first(),
        None => None,
    };
    let Some(d) = found else {
        let what = match tag {
            Some(t) => format!("the base image layout {} has no tag `{t}`", dir.path().display()),
            None => format!("the base image layout {} holds {} images", dir.path().display(), list.len()),
        };
        return Err(Refusal::new(what, format!("name one with --base DIR:TAG (tags: {})", tags.join(", "))).into());
    };
    if d.media_type != super::INDEX && d.media_type != "application/vnd.docker.distribution.manifest.list.v2+json" {
        return Ok(d.clone());
    }
    let nested: serde_json::Value = serde_json::from_slice(&blob(dir, &d.digest)?)?;
    let arch = host_arch();
    let platform = |m: &serde_json::Value| {
        m.pointer("/platform/os").and_then(|o| o.as_str()) == Some("linux")
            && m.pointer("/platform/architecture").and_then(|a| a.as_str()) == Some(arch)
    };
    let m = nested.get("manifests").and_then(|m| m.as_array()).and_then(|l| l.iter().find(|m| platform(m)));
    match m.and_then(|m| serde_json::from_value(m.clone()).ok()) {
        Some(d) => Ok(d),
        None => Err(bad_base(format!("the base image {} has no linux/{arch} image", dir.path().display()))),
    }
}

/// A blob of the layout `dir`, checked against its digest.
fn blob(dir: &Beneath, digest: &str) -> Result<Vec<u8>> {
    let bytes = read_small(dir, &format!("blobs/sha256/{}", hex_of(digest)?))
        .map_err(|e| bad_base(format!("the base image's blob {digest} cannot be read: {e:#}")))?;
    if digest_of(&bytes) != digest {
        return Err(bad_base(format!("the base image's blob {digest} does not match its digest")));
    }
    Ok(bytes)
}

fn open_layout(path: &Path, tag: Option<&str>) -> Result<Base> {
    let dir = Beneath::open(path, true)?;
    let index: serde_json::Value = match read_small(&dir, "index.json") {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| bad_base(format!("{}/index.json is not JSON: {e}", path.display())))?,
        Err(_) => return Err(bad_base(format!("{} is not an OCI image layout (no index.json)", path.display()))),
    };
    let chosen = choose(&dir, &index, tag)?;
    let manifest: Manifest = serde_json::from_slice(&blob(&dir, &chosen.digest)?)
        .map_err(|e| bad_base(format!("the base image's manifest {} cannot be read: {e}", chosen.digest)))?;
    let config: serde_json::Value = serde_json::from_slice(&blob(&dir, &manifest.config.digest)?)?;
    let mut layers = Vec::new();
    for l in &manifest.layers {
        let Some(media_type) = oci_layer_type(&l.media_type) else {
            return Err(bad_base(format!("the base image has a layer of type {}", l.media_type)));
        };
        let hex = hex_of(&l.digest)?.to_string();
        let rel = format!("blobs/sha256/{hex}");
        let st = crate::sys::stat_at(dir.fd(), std::ffi::OsStr::new(&rel));
        if !st.is_ok_and(|s| s.is_file() && s.size() == l.size) {
            return Err(bad_base(format!("the base image's layer {} is missing or has another size", l.digest)));
        }
        let from = From::Layout { dir: path.to_path_buf(), hex };
        layers.push(BaseLayer { media_type: media_type.into(), digest: Some(l.digest.clone()), size: l.size, from });
    }
    Ok(Base { reference: String::new(), config, layers })
}

/// The regular files (offset of the data, size) and links of a tar.
#[derive(Default)]
struct TarIndex {
    files: std::collections::HashMap<String, (u64, u64)>,
    links: std::collections::HashMap<String, String>,
}

impl TarIndex {
    fn read(file: &File) -> Result<TarIndex> {
        let mut ix = TarIndex::default();
        let mut archive = tar::Archive::new(file);
        for e in archive.entries_with_seek()? {
            let e = e?;
            let name = e.path()?.to_string_lossy().trim_start_matches("./").to_string();
            match e.header().entry_type() {
                tar::EntryType::Regular => {
                    ix.files.insert(name, (e.raw_file_position(), e.size()));
                }
                tar::EntryType::Symlink => {
                    let target = e.link_name()?.map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                    let dir = Path::new(&name).parent().unwrap_or(Path::new("")).to_path_buf();
                    ix.links.insert(name, normal(&dir.join(target)));
                }
                _ => {}
            }
        }
        Ok(ix)
    }

    /// (offset, size) of `name`, through at most a few links.
    fn find(&self, name: &str) -> Option<(u64, u64)> {
        let mut n = name.trim_start_matches("./").to_string();
        for _ in 0..8 {
            if let Some(f) = self.files.get(&n) {
                return Some(*f);
            }
            n = self.links.get(&n)?.clone();
        }
        None
    }
}

/// `a/b/../c` as `a/c` (a link's target inside the archive).
fn normal(p: &Path) -> String {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out.iter().map(|s| s.to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn read_at(file: &File, (offset, size): (u64, u64), limit: u64) -> Result<Vec<u8>> {
    anyhow::ensure!(size <= limit, "too large ({size} bytes)");
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; usize::try_from(size)?];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

fn open_archive(path: &Path, tag: Option<&str>) -> Result<Base> {
    let file = crate::safe_fs::open_regular(path, "the base image")?;
    let not_archive = |why: String| bad_base(format!("{} is not a `docker save` archive: {why}", path.display()));
    let ix = TarIndex::read(&file).map_err(|e| not_archive(format!("{e}")))?;
    let list = ix.find("manifest.json").ok_or_else(|| not_archive("it has no manifest.json".into()))?;
    let list: Vec<serde_json::Value> = serde_json::from_slice(&read_at(&file, list, 16 << 20)?)
        .map_err(|e| not_archive(format!("manifest.json: {e}")))?;
    let tags = |m: &serde_json::Value| -> Vec<String> {
        let t = m.get("RepoTags").and_then(|t| t.as_array()).cloned().unwrap_or_default();
        t.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()
    };
    let found = match tag {
        Some(t) => {
            list.iter().find(|m| tags(m).iter().any(|x| x == t || x.rsplit_once(':').is_some_and(|(_, v)| v == t)))
        }
        None if list.len() == 1 => list.first(),
        None => None,
    };
    let Some(m) = found else {
        let all: Vec<String> = list.iter().flat_map(tags).collect();
        return Err(Refusal::new(
            format!(
                "the base archive {} has no image {}",
                path.display(),
                tag.map_or("to choose".into(), |t| format!("`{t}`"))
            ),
            format!("name one with --base FILE:TAG (tags: {})", all.join(", ")),
        )
        .into());
    };
    let name = |k: &str| m.get(k).and_then(|c| c.as_str()).map(str::to_string);
    let config_at = name("Config").and_then(|c| ix.find(&c)).ok_or_else(|| not_archive("no image config".into()))?;
    let config: serde_json::Value = serde_json::from_slice(&read_at(&file, config_at, 16 << 20)?)?;
    let mut layers = Vec::new();
    for l in m.get("Layers").and_then(|l| l.as_array()).cloned().unwrap_or_default() {
        let l = l.as_str().unwrap_or_default();
        let (offset, size) = ix.find(l).ok_or_else(|| not_archive(format!("layer {l} is missing")))?;
        let magic = read_at(&file, (offset, size.min(2)), 2)?;
        let media_type = if magic == [0x1f, 0x8b] { LAYER_GZIP } else { LAYER_TAR };
        let from = From::Archive { file: path.to_path_buf(), offset };
        layers.push(BaseLayer { media_type: media_type.into(), digest: None, size, from });
    }
    Ok(Base { reference: String::new(), config, layers })
}

impl Base {
    /// Copies the base's layers into `layout` (each one not already there),
    /// checking each against its digest. Returns their descriptors and how
    /// many were new.
    pub fn copy_layers(&self, layout: &Layout) -> Result<(Vec<Descriptor>, usize)> {
        let mut out = Vec::new();
        let mut new = 0;
        for l in &self.layers {
            let mut d = Descriptor {
                media_type: l.media_type.clone(),
                digest: l.digest.clone().unwrap_or_default(),
                size: l.size,
                annotations: Default::default(),
            };
            if l.digest.as_ref().is_some_and(|dg| layout.has_blob(dg, l.size)) {
                out.push(d);
                continue;
            }
            let mut w = layout.blob_writer()?;
            let shown = match &l.from {
                From::Layout { dir, hex } => {
                    let base = Beneath::open(dir, true)?;
                    let rel = PathBuf::from(format!("blobs/sha256/{hex}"));
                    let f = File::from(base.open_at(&rel, OFlags::RDONLY | OFlags::NONBLOCK, 0)?);
                    w.copy_from(&mut f.take(l.size))?;
                    dir.join(rel)
                }
                From::Archive { file, offset } => {
                    let mut f = crate::safe_fs::open_regular(file, "the base image")?;
                    f.seek(SeekFrom::Start(*offset))?;
                    w.copy_from(&mut f.take(l.size))?;
                    file.clone()
                }
            };
            let (digest, size, fresh) = w.finish().with_context(|| format!("copying {}", shown.display()))?;
            if l.digest.as_ref().is_some_and(|dg| *dg != digest) || size != l.size {
                anyhow::bail!("a layer of the base image {} changed while it was copied", self.reference);
            }
            new += usize::from(fresh);
            d.digest = digest;
            out.push(d);
        }
        Ok((out, new))
    }

    /// The base's `rootfs.diff_ids`.
    pub fn diff_ids(&self) -> Vec<String> {
        let ids = self.config.pointer("/rootfs/diff_ids").and_then(|d| d.as_array()).cloned().unwrap_or_default();
        ids.iter().filter_map(|d| d.as_str().map(str::to_string)).collect()
    }
}
