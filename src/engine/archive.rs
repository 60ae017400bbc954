//! Archives for distribution: `<DIR>/<profile>/<home>.zip` (or `.tar.gz`)
//! holding the copy under its home directory name, the shape a pack has, so
//! that an existing distribution engine (wso2/ansible-apim's `files/packs/`)
//! ships each profile to its nodes. Written to a temporary name and renamed,
//! so a half-written archive is never where a finished one is expected.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Format {
    #[value(name = "zip")]
    Zip,
    #[value(name = "tar.gz")]
    TarGz,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TarGz => "tar.gz",
        }
    }
}

/// Where the archive of a copy goes: beside it, named like it.
pub fn archive_path(copy: &Path, format: Format) -> PathBuf {
    let name = copy.file_name().unwrap_or_default().to_string_lossy();
    copy.with_file_name(format!("{name}.{}", format.extension()))
}

/// Entries of a copy in archive order, without the tool's own record.
fn entries(copy: &Path) -> Result<Vec<walkdir::DirEntry>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(copy).follow_links(false).sort_by_file_name().min_depth(1) {
        let e = e?;
        let rel = e.path().strip_prefix(copy).expect("below copy");
        if crate::model::tree::is_own_entry(rel) {
            continue;
        }
        out.push(e);
    }
    Ok(out)
}

/// Writes the archive of `copy`; returns its path and size.
pub fn write(copy: &Path, format: Format) -> Result<(PathBuf, u64)> {
    let dest = archive_path(copy, format);
    let top = PathBuf::from(copy.file_name().context("copy has a name")?);
    let tmp = crate::engine::output::sibling_temp(&dest, "tmp");
    let result = match format {
        Format::TarGz => write_tar_gz(copy, &top, &tmp),
        Format::Zip => write_zip(copy, &top, &tmp),
    };
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("writing {}", dest.display())));
    }
    std::fs::rename(&tmp, &dest).with_context(|| format!("publishing {}", dest.display()))?;
    let size = std::fs::metadata(&dest).with_context(|| format!("reading {}", dest.display()))?.len();
    Ok((dest, size))
}

fn write_tar_gz(copy: &Path, top: &Path, tmp: &Path) -> Result<()> {
    let f = BufWriter::new(File::create(tmp)?);
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.append_dir(top, copy)?;
    for e in entries(copy)? {
        let rel = top.join(e.path().strip_prefix(copy).expect("below copy"));
        tar.append_path_with_name(e.path(), &rel).with_context(|| format!("adding {}", e.path().display()))?;
    }
    let gz = tar.into_inner()?;
    let mut f = gz.finish()?;
    f.flush()?;
    f.get_ref().sync_all()?;
    Ok(())
}

fn write_zip(copy: &Path, top: &Path, tmp: &Path) -> Result<()> {
    use zip::write::SimpleFileOptions;
    let f = BufWriter::new(File::create(tmp)?);
    let mut z = zip::ZipWriter::new(f);
    let name = |p: &Path| p.to_string_lossy().replace('\\', "/");
    z.add_directory(format!("{}/", name(top)), SimpleFileOptions::default())?;
    for e in entries(copy)? {
        let rel = top.join(e.path().strip_prefix(copy).expect("below copy"));
        let md = std::fs::symlink_metadata(e.path()).with_context(|| format!("reading {}", e.path().display()))?;
        let opts = SimpleFileOptions::default()
            .unix_permissions(md.permissions().mode() & 0o7777)
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(md.len() >= 0xFFFF_FFFF);
        if md.file_type().is_symlink() {
            let target =
                std::fs::read_link(e.path()).with_context(|| format!("reading link {}", e.path().display()))?;
            z.add_symlink(name(&rel), name(&target), opts)?;
        } else if md.is_dir() {
            z.add_directory(format!("{}/", name(&rel)), opts)?;
        } else {
            z.start_file(name(&rel), opts)?;
            let mut src = File::open(e.path()).with_context(|| format!("opening {}", e.path().display()))?;
            std::io::copy(&mut src, &mut z)?;
        }
    }
    let mut f = z.finish()?;
    f.flush()?;
    f.get_ref().sync_all()?;
    Ok(())
}
