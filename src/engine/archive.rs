//! Archives for distribution: `<DIR>/<profile>/<home>.zip` (or `.tar.gz`)
//! holding the copy under its home directory name, the shape a pack has, so
//! that an existing distribution engine (wso2/ansible-apim's `files/packs/`)
//! ships each profile to its nodes. Written to a temporary name and renamed,
//! so a half-written archive is never where a finished one is expected.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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
    // The root's entry carries the copy's own time and mode, as every other entry does.
    let root = std::fs::symlink_metadata(copy).with_context(|| format!("reading {}", copy.display()))?;
    let root_opts = SimpleFileOptions::default()
        .unix_permissions(root.permissions().mode() & 0o7777)
        .last_modified_time(zip_time(root.mtime()));
    z.add_directory(format!("{}/", name(top)), root_opts)?;
    for e in entries(copy)? {
        let rel = top.join(e.path().strip_prefix(copy).expect("below copy"));
        let md = std::fs::symlink_metadata(e.path()).with_context(|| format!("reading {}", e.path().display()))?;
        let opts = SimpleFileOptions::default()
            .unix_permissions(md.permissions().mode() & 0o7777)
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip_time(md.mtime()))
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

/// A zip entry's time (UTC; zip keeps no zone) from a modification time. Zip
/// times run from 1980 to 2107: outside that, the nearest end.
fn zip_time(mtime: i64) -> zip::DateTime {
    let days = mtime.div_euclid(86_400);
    let secs = mtime.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = ((secs / 3600) as u8, (secs % 3600 / 60) as u8, (secs % 60) as u8);
    let y = y.clamp(1980, 2107) as u16;
    zip::DateTime::from_date_and_time(y, m, d, hh, mm, ss).unwrap_or_default()
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_times_are_the_files_times() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = zip_time(1_764_028_800 + 3_724); // 2025-11-25 01:02:04 UTC (zip counts 2 s steps)
        assert_eq!((t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second()), (2025, 11, 25, 1, 2, 4));
        assert_eq!(zip_time(0).year(), 1980, "before 1980: the earliest zip time");
    }
}
