//! The output directory: where each copy goes, the lock that keeps two runs
//! apart, staging beside the final place, and the one rename that publishes a
//! finished copy. Nothing half-made is ever visible at `<DIR>/<P>/<home>`.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::model::paths::Overlap;
use crate::outcome::refuse;
use crate::safe_fs::Beneath;
use crate::sys;

pub const LOCK_FILE: &str = ".apim-profiles.lock";

/// Where the copy of one profile lives: `<out>/<profile>/<home dir name>`.
pub fn copy_path(out: &Path, profile: &str, home_dir_name: &std::ffi::OsStr) -> PathBuf {
    out.join(profile).join(home_dir_name)
}

/// The one naming of the tool's temporary entries: `.<name>.apim-profiles-<kind>-<pid>`
/// beside `path`, on the same file system, so that finishing is one rename.
/// Hidden, and recognisable as the tool's by a later run.
pub fn sibling_temp(path: &Path, kind: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.apim-profiles-{kind}-{}", std::process::id()))
}

/// The staging directory for a copy: beside it, so that publishing is one rename.
pub fn staging_path(final_path: &Path) -> PathBuf {
    sibling_temp(final_path, "staging")
}

fn is_staging_name(name: &str, home_dir_name: &std::ffi::OsStr) -> bool {
    name.starts_with(&format!(".{}.apim-profiles-staging-", home_dir_name.to_string_lossy()))
}

/// The directory whose lock guards a copy or home changed in place: its
/// `<DIR>` when it sits in the layout (`<DIR>/<profile>/<home>`), so that
/// `update`, `optimize` and `split` into that `<DIR>` never overlap; else its
/// parent.
pub fn lock_dir(copy: &Path, profile: &str) -> PathBuf {
    let parent = copy.parent().unwrap_or(copy);
    if parent.file_name().is_some_and(|n| n == profile) {
        parent.parent().unwrap_or(parent).to_path_buf()
    } else {
        parent.to_path_buf()
    }
}

/// The absolute path the kernel will use for `p`, which may not exist yet:
/// existing components resolved (links followed), the missing rest with `.`
/// and `..` applied as `mkdir -p` will apply them.
pub fn absolute(p: &Path) -> Result<PathBuf> {
    // A link on the way to a directory still to be made is never followed
    // to create it.
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
    let mut existing = abs.as_path();
    while !existing.exists() {
        if std::fs::symlink_metadata(existing).is_ok_and(|m| m.file_type().is_symlink()) {
            let target = std::fs::read_link(existing).unwrap_or_default();
            return refuse(
                format!("{} is a link to {}, which does not exist", existing.display(), target.display()),
                "give the real output directory, or create the link's target first: links are never followed to create directories",
            );
        }
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    crate::model::paths::resolve(&abs)
}

/// Refuses an output that overlaps the source by any route: by resolved path,
/// or by device and inode of the output's existing ancestors (a bind mount of
/// the home, or of a directory in it, is the home). `home_dirs` holds the
/// (device, inode) of the home's directories. Writing inside the home would
/// change it, and a home inside the output could be swept by a later run.
pub fn check_separate(home: &Path, out: &Path, home_dirs: &HashSet<(u64, u64)>) -> Result<()> {
    match crate::model::paths::overlap(home, out, home_dirs) {
        Overlap::Inside => {
            return refuse(
                format!("the output {} is inside the home {}", out.display(), home.display()),
                "choose an output directory outside the home: the source is never modified",
            )
        }
        Overlap::Contains => {
            return refuse(
                format!("the home {} is inside the output {}", home.display(), out.display()),
                "choose an output directory that does not contain the home, e.g. a sibling directory",
            )
        }
        Overlap::None => {}
    }
    if out.exists() && !out.is_dir() {
        return refuse(
            format!("the output {} exists and is not a directory", out.display()),
            "give a directory (it is created when missing)",
        );
    }
    Ok(())
}

/// The directories a run creates on the way to its output. When the run ends,
/// however it ends, each one that is still empty is removed again, deepest
/// first; a directory that was there before the run is never touched.
#[derive(Default)]
pub struct CreatedDirs {
    dirs: Vec<PathBuf>,
}

impl CreatedDirs {
    /// `create_dir_all`, remembering which directories it made.
    pub fn create_all(&mut self, dir: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(d) = at.filter(|d| std::fs::symlink_metadata(d).is_err()) {
            missing.push(d.to_path_buf());
            at = d.parent();
        }
        for d in missing.into_iter().rev() {
            use std::os::unix::fs::DirBuilderExt;
            match std::fs::DirBuilder::new().mode(0o755).create(&d) {
                Ok(()) => self.dirs.push(d),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", d.display())),
            }
        }
        Ok(())
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            // Fails, as it should, on a directory that holds something.
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A lock on an output directory: an exclusive `flock` on
/// `<DIR>/.apim-profiles.lock`, which the kernel releases when the holder's
/// process ends however it ends, so a lock is never stale. The holder's pid is
/// written inside, only to name it in the refusal of a second run.
pub struct Lock {
    path: PathBuf,
    /// Holds the flock while open.
    _file: File,
}

impl Lock {
    pub fn acquire(out: &Path) -> Result<Lock> {
        let path = out.join(LOCK_FILE);
        for _ in 0..3 {
            let file = match sys::open_lock_file(&path) {
                Ok(f) => f,
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                    // A link planted at the lock's name (never one of ours): it
                    // is removed, not followed, and the lock made anew.
                    std::fs::remove_file(&path).with_context(|| format!("removing the link {}", path.display()))?;
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("opening the lock {}", path.display())),
            };
            if !file.metadata().is_ok_and(|m| m.file_type().is_file()) {
                // A FIFO or device planted at the lock's name: removed the
                // same way, never used.
                std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                continue;
            }
            if !sys::try_lock(&file).with_context(|| format!("locking {}", path.display()))? {
                let holder = crate::safe_fs::read_own_bounded(&path, 64)
                    .ok()
                    .flatten()
                    .and_then(|t| String::from_utf8_lossy(&t).trim().parse::<u32>().ok());
                let who = holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
                return refuse(
                    format!("another apim-profiles run{who} is writing into {}", out.display()),
                    format!("wait for it to finish, or use another --out; the lock is {}", path.display()),
                );
            }
            // A run that just finished removes its lock file: the file locked
            // must still be the one at `path`, else take the new one.
            if !sys::same_file(&file, &path) {
                continue;
            }
            file.set_len(0)
                .and_then(|()| (&file).write_all(format!("{}\n", std::process::id()).as_bytes()))
                .with_context(|| format!("writing {}", path.display()))?;
            return Ok(Lock { path, _file: file });
        }
        refuse(format!("could not take the lock {}", path.display()), "another run keeps taking it; try again")
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still locked; the flock goes with the file handle.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Opens a profile directory of the output (`<DIR>/<profile>`) as the
/// handle a copy is written beneath. Only a directory the running account
/// made is used: a link planted there (to the home, to `/etc`) or a
/// directory another account made or may write in is refused, never
/// written through.
pub fn open_profile_dir(dir: &Path) -> Result<Beneath> {
    let not_ours = |why: String| -> Result<Beneath> {
        refuse(
            format!("{} is not a directory apim-profiles made: {why}", dir.display()),
            "remove it (it was not made by this tool) or choose another --out; copies are written only into directories the running account owns and no one else may write",
        )
    };
    let h = match Beneath::open(dir, false) {
        Ok(h) => h,
        Err(_) if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) => {
            return not_ours("it is a link".into())
        }
        Err(e) => return Err(e),
    };
    let st = h.stat()?;
    let me = crate::sys::effective_uid();
    if st.st_uid != me {
        return not_ours(format!("it belongs to uid {}", st.st_uid));
    }
    if st.st_mode & 0o022 != 0 {
        return not_ours(format!("other accounts may write in it (mode {:o})", st.st_mode & 0o7777));
    }
    Ok(h)
}

/// A staging directory, removed when dropped unless it was published or kept:
/// every way out of a run (an error, a panic, Ctrl-C) cleans up the same way.
pub struct Staging {
    path: PathBuf,
    armed: bool,
    /// The profile directory, opened and checked (see [`open_profile_dir`]).
    dir: Option<Beneath>,
}

impl Staging {
    /// The staging place for the copy at `final_path` (not yet created).
    pub fn for_copy(final_path: &Path) -> Staging {
        Staging { path: staging_path(final_path), armed: true, dir: None }
    }

    /// The same, beneath the profile directory's handle `dir`.
    pub fn for_copy_in(final_path: &Path, dir: Beneath) -> Staging {
        Staging { path: staging_path(final_path), armed: true, dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where to write the copy: the staging place reached through the
    /// profile directory's handle (`/proc/self/fd/<n>/<name>`), so that the
    /// profile directory renamed and replaced by a link meanwhile cannot
    /// turn the writes elsewhere. Its [`Staging::path`] where there is no
    /// handle or no `/proc`.
    pub fn write_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        let (Some(dir), Some(name)) = (&self.dir, self.path.file_name()) else { return self.path.clone() };
        let via = PathBuf::from(format!("/proc/self/fd/{}", dir.fd().as_raw_fd()));
        // Where /proc is missing, the handle's path as a path.
        let id = dir.stat().ok().map(|s| (s.st_dev, s.st_ino));
        if id.is_none() || crate::safe_fs::dev_ino(&via) != id {
            return self.path.clone();
        }
        via.join(name)
    }

    /// Makes the staged copy the copy at `final_path` (see [`publish`]).
    /// Its files and directories are flushed to disk first, so a published
    /// copy survives a power cut.
    pub fn publish(mut self, final_path: &Path, expected: Option<(u64, u64)>) -> Result<()> {
        let r =
            crate::engine::writeback::make_durable(&self.path).and_then(|()| publish(&self.path, final_path, expected));
        if let Err(e) = &r {
            if let Some(PlaceTaken(why)) = e.downcast_ref::<PlaceTaken>() {
                // Keep the finished copy beside the place (a long update is
                // not thrown away); what is at the place stays untouched.
                let why = why.clone();
                let kept = keep_aside(&self.path, final_path, "not-published")?;
                self.armed = false;
                return Err(PlaceTaken(format!("{why}; the new copy is kept at {}", kept.display())).into());
            }
        }
        // After an exchange the old copy sits in staging: still ours to remove.
        self.armed = r.is_err() || self.path.exists();
        r
    }

    /// Makes the staged tree the one at `final_path` without flushing it
    /// first: for a tree that is checked before each use and made again
    /// when a power cut took it (the kept base).
    pub fn publish_unflushed(mut self, final_path: &Path, expected: Option<(u64, u64)>) -> Result<()> {
        let r = publish(&self.path, final_path, expected);
        self.armed = r.is_err() || self.path.exists();
        r
    }

    /// Moves the staged tree to a free name beside `final_path`
    /// (`<name>.<suffix>`, `.1`, ...) and stops guarding it.
    pub fn keep_aside(mut self, final_path: &Path, suffix: &str) -> Result<PathBuf> {
        let kept = keep_aside(&self.path, final_path, suffix)?;
        self.armed = false;
        Ok(kept)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed {
            let _ = remove_tree(&self.path);
        }
    }
}

/// Removes staging directories that an interrupted or killed run left beside
/// `final_path`. Only called while holding the output's lock, so no live run
/// owns them.
pub fn remove_stale_staging(final_path: &Path, home_dir_name: &std::ffi::OsStr) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Some(parent) = final_path.parent() else {
        return Ok(removed);
    };
    let Ok(rd) = std::fs::read_dir(parent) else {
        return Ok(removed);
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_staging_name(&name, home_dir_name) {
            remove_tree(&e.path())?;
            removed.push(e.path());
        }
    }
    Ok(removed)
}

/// Removes a tree, first making read-only directories writable (a copy keeps
/// the modes of the pack, and some are read-only).
pub fn remove_tree(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
    };
    if !md.is_dir() {
        return std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()));
    }
    if std::fs::remove_dir_all(p).is_ok() {
        return Ok(());
    }
    for e in walkdir::WalkDir::new(p).follow_links(false).into_iter().flatten() {
        if e.file_type().is_dir() {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
    std::fs::remove_dir_all(p).with_context(|| format!("removing {}", p.display()))
}

/// Why a finished copy could not be put at its final place: what is there is
/// not what the run decided on before it started (someone put a directory
/// there, or swapped the old copy for another one).
#[derive(Debug)]
pub struct PlaceTaken(pub String);

impl std::fmt::Display for PlaceTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlaceTaken {}

fn exists_error(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::EXIST.raw_os_error() || code == rustix::io::Errno::NOTEMPTY.raw_os_error())
}

/// Makes the staged copy the copy, deciding again at that moment, atomically:
/// `expected` is the (device, inode) of the copy the run found there before it
/// started, or None when the place was free.
///
/// - free: `renameat2(RENAME_NOREPLACE)`, which fails if anything appeared;
/// - an older copy (`--force`): only if the same directory is still there, an
///   atomic `RENAME_EXCHANGE`, checked again after the exchange (and undone
///   if another directory was swapped in meanwhile); then the older copy is
///   removed. A failure before the exchange leaves the older copy intact.
pub fn publish(staging: &Path, final_path: &Path, expected: Option<(u64, u64)>) -> Result<()> {
    let taken = |what: &str| -> anyhow::Error {
        PlaceTaken(format!(
            "{} {what} during the run; it was left alone and the new copy was not published",
            final_path.display()
        ))
        .into()
    };
    match expected {
        None => match sys::rename_noreplace(staging, final_path) {
            Ok(()) => {}
            Err(e) if exists_error(&e) => return Err(taken("appeared")),
            Err(e) => return Err(e).with_context(|| format!("publishing {}", final_path.display())),
        },
        Some(id) => {
            let is_it = |p: &Path| {
                std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
                    && crate::safe_fs::dev_ino_nofollow(p) == Some(id)
            };
            if !is_it(final_path) {
                return Err(taken("was replaced by another directory (or removed)"));
            }
            sys::exchange(staging, final_path)
                .with_context(|| format!("swapping the new copy into {}", final_path.display()))?;
            if !is_it(staging) {
                // Swapped in between the check and the exchange: undo.
                sys::exchange(staging, final_path)
                    .with_context(|| format!("undoing the swap at {}", final_path.display()))?;
                return Err(taken("was replaced by another directory"));
            }
            remove_tree(staging)
                .with_context(|| format!("removing the replaced copy (now at {})", staging.display()))?;
        }
    }
    if let Some(parent) = final_path.parent() {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Moves `from` to a free name beside `final_path` (`<name>.<suffix>`, then
/// `.1`, `.2`...), never over anything that is there.
pub fn keep_aside(from: &Path, final_path: &Path, suffix: &str) -> Result<PathBuf> {
    let name = final_path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    for n in 0..1000 {
        let extra = if n == 0 { String::new() } else { format!(".{n}") };
        let kept = final_path.with_file_name(format!("{name}.{suffix}{extra}"));
        match sys::rename_noreplace(from, &kept) {
            Ok(()) => return Ok(kept),
            Err(e) if exists_error(&e) => continue,
            Err(e) => return Err(e).with_context(|| format!("keeping {} at {}", from.display(), kept.display())),
        }
    }
    anyhow::bail!("no free name beside {} to keep {}", final_path.display(), from.display())
}
