//! Archives for distribution: `<DIR>/<profile>/<home>.zip` (or `.tar.gz`)
//! holding the copy under its home directory name, the shape a pack has, so
//! that an existing distribution engine (wso2/ansible-apim's `files/packs/`)
//! ships each profile to its nodes.
//!
//! Written as the rest of the output is: a new file under an unguessable
//! name, `O_EXCL`, no link followed, beneath the profile directory's handle,
//! with a mode no wider than the copy's (0600, or the copy root's mode
//! without any bit for others), then renamed into place. The copy is read
//! through the same kind of handles as the walk: each directory opened
//! relative to its parent with no link followed, each file checked to be
//! what was listed, so a directory of the copy swapped for a link while it
//! is archived fails the archive instead of putting outside files in it.
//! Entry names are the names' exact bytes: a zip (whose names are UTF-8)
//! of a copy with a name that is not UTF-8 is refused, never decoded lossily.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::safe_fs::Beneath;
use crate::sys::{self, Stat};

/// An archive's format (`--archive`: the command line's names are in `cli`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    Zip,
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
    copy.with_file_name(archive_name(copy, format))
}

fn archive_name(copy: &Path, format: Format) -> OsString {
    let mut name = copy.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(format.extension());
    name
}

/// One entry of the copy, as read beneath its handle.
enum Item {
    Dir,
    File(File),
    Link(PathBuf),
}

/// Visits the entries below `dir` (named `rel` in the archive) depth first
/// in byte order of names, each read relative to its directory's descriptor
/// with no link followed (the copy's own record at its root left out).
fn walk(dir: &OwnedFd, rel: &Path, root: &Path, visit: &mut dyn FnMut(&Path, &Stat, Item) -> Result<()>) -> Result<()> {
    let mut names = sys::list_dir(dir).with_context(|| format!("reading {}", root.join(rel).display()))?;
    names.sort_unstable_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    for (name, _) in names {
        let here = rel.join(&name);
        if rel.as_os_str().is_empty() && crate::model::tree::is_own_entry(&here) {
            continue;
        }
        let full = root.join(&here);
        let st = sys::stat_at(dir, &name).with_context(|| format!("reading {}", full.display()))?;
        if st.is_dir() {
            crate::hooks::before_open(&here);
            let sub = sys::open_dir_at(dir, &name).map_err(|e| changed(&full, e))?;
            if sys::fd_id(&sub).ok() != Some((st.dev(), st.ino())) {
                return Err(changed(&full, std::io::Error::other("another directory than the one listed")));
            }
            visit(&here, &st, Item::Dir)?;
            walk(&sub, &here, root, visit)?;
        } else if st.is_symlink() {
            let target = sys::readlink_at(dir, &name).map_err(|e| changed(&full, e))?;
            visit(&here, &st, Item::Link(target))?;
        } else if st.is_file() {
            let f = open_listed(dir, &name, &st).map_err(|e| changed(&full, e))?;
            visit(&here, &st, Item::File(f))?;
        } else {
            anyhow::bail!("{} is a special file (FIFO, socket or device); a copy holds none", full.display());
        }
    }
    Ok(())
}

/// The regular file `name` of `dir`, only if it is the one listed.
fn open_listed(dir: &OwnedFd, name: &OsStr, st: &Stat) -> std::io::Result<File> {
    use rustix::fs::OFlags;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let f = File::from(rustix::fs::openat(dir, name, flags, rustix::fs::Mode::empty())?);
    let md = f.metadata()?;
    use std::os::unix::fs::MetadataExt;
    if (md.dev(), md.ino()) != (st.dev(), st.ino()) || !md.is_file() {
        return Err(std::io::Error::other("another file than the one listed"));
    }
    Ok(f)
}

fn changed(path: &Path, e: std::io::Error) -> anyhow::Error {
    crate::outcome::Refusal::new(
        format!("{} changed while it was archived ({e}); links are never followed into an archive", path.display()),
        "run again when nothing else changes the copy",
    )
    .into()
}

/// Writes the archive of `copy`; returns its path and size.
pub fn write(copy: &Path, format: Format) -> Result<(PathBuf, u64)> {
    let dest = archive_path(copy, format);
    let parent = copy.parent().context("a copy has a parent")?;
    let dir = crate::engine::output::open_profile_dir(parent)?;
    let top_name = copy.file_name().context("copy has a name")?;
    let top = dir.dir(Path::new(top_name))?;
    let root_mode = top.stat()?.st_mode;
    let final_name = archive_name(copy, format);
    let mut tmp = OsString::from(".");
    tmp.push(&final_name);
    let tmp = OsString::from(crate::safe_fs::unguessable(&format!("{}.apim-profiles-tmp-", tmp.to_string_lossy()))?);
    let f = dir.create_new(&tmp, 0o600)?;
    // No wider than the copy: 0600, or its root's mode without others' bits.
    let mode = (root_mode & 0o660) | 0o600;
    rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(mode))?;
    let result = match format {
        Format::TarGz => write_tar_gz(&top, Path::new(top_name), f),
        Format::Zip => write_zip(&top, Path::new(top_name), f),
    };
    let size = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = dir.remove_tree(&tmp);
            return Err(e.context(format!("writing {}", dest.display())));
        }
    };
    dir.rename(&tmp, &final_name).with_context(|| format!("publishing {}", dest.display()))?;
    Ok((dest, size))
}

fn finish(f: File) -> Result<u64> {
    f.sync_all()?;
    Ok(f.metadata()?.len())
}

fn write_tar_gz(top: &Beneath, name: &Path, f: File) -> Result<u64> {
    let gz = flate2::write::GzEncoder::new(BufWriter::new(f), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let root_st = Stat::of(top.stat()?);
    tar.append_data(&mut tar_header(&root_st, tar::EntryType::Directory), name, std::io::empty())?;
    walk(top.fd(), Path::new(""), top.path(), &mut |rel, st, item| {
        let path = name.join(rel);
        match item {
            Item::Dir => tar.append_data(&mut tar_header(st, tar::EntryType::Directory), &path, std::io::empty()),
            Item::Link(target) => tar.append_link(&mut tar_header(st, tar::EntryType::Symlink), &path, &target),
            Item::File(f) => {
                let mut h = tar_header(st, tar::EntryType::Regular);
                h.set_size(st.size());
                tar.append_data(&mut h, &path, f)
            }
        }
        .with_context(|| format!("adding {}", path.display()))
    })?;
    let mut w = tar.into_inner()?.finish()?;
    w.flush()?;
    finish(w.into_inner().map_err(|e| e.into_error())?)
}

fn tar_header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.mode() & 0o7777);
    h.set_uid(u64::from(st.uid()));
    h.set_gid(u64::from(st.gid()));
    h.set_mtime(st.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// A name for a zip entry: its exact bytes, which zip (UTF-8 names) can
/// hold only when they are UTF-8; anything else is refused.
fn zip_name(p: &Path) -> Result<String> {
    match p.to_str() {
        Some(s) => Ok(s.to_string()),
        None => Err(crate::outcome::Refusal::new(
            format!("{} is not a UTF-8 name, which a zip cannot hold exactly", p.display()),
            "use --archive tar.gz, which keeps names as their exact bytes",
        )
        .into()),
    }
}

fn write_zip(top: &Beneath, name: &Path, f: File) -> Result<u64> {
    use zip::write::SimpleFileOptions;
    let mut z = zip::ZipWriter::new(BufWriter::new(f));
    // The root's entry carries the copy's own time and mode, as every other entry does.
    let root = Stat::of(top.stat()?);
    let root_opts =
        SimpleFileOptions::default().unix_permissions(root.mode() & 0o7777).last_modified_time(zip_time(root.mtime()));
    z.add_directory(format!("{}/", zip_name(name)?), root_opts)?;
    walk(top.fd(), Path::new(""), top.path(), &mut |rel, st, item| {
        let path = zip_name(&name.join(rel))?;
        let opts = SimpleFileOptions::default()
            .unix_permissions(st.mode() & 0o7777)
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip_time(st.mtime()))
            .large_file(st.size() >= 0xFFFF_FFFF);
        match item {
            Item::Link(target) => z.add_symlink(path, zip_name(&target)?, opts)?,
            Item::Dir => z.add_directory(format!("{path}/"), opts)?,
            Item::File(mut src) => {
                z.start_file(path, opts)?;
                std::io::copy(&mut src, &mut z)?;
            }
        }
        Ok(())
    })?;
    let mut w = z.finish()?;
    w.flush()?;
    finish(w.into_inner().map_err(|e| e.into_error())?)
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
