//! Paths as the kernel will resolve them, before any containment check.
//!
//! `std::fs::canonicalize` needs the whole path to exist, and comparing the
//! text of paths misses both `missing/../` (which the kernel resolves once
//! `missing` is created) and a bind mount (another path to the same
//! directory). [`resolve`] resolves every existing component (links
//! included) and the missing rest lexically, the way `mkdir -p` will walk it;
//! [`overlap`] then compares both the resolved paths and the device and inode
//! of every existing ancestor.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

use crate::safe_fs::dev_ino;

/// The absolute path `p` names: components that exist are resolved (links
/// followed), `.` dropped and `..` applied to what was resolved so far, as
/// the kernel does once the missing parts have been created.
pub fn resolve(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
    let mut out = PathBuf::from("/");
    let mut pending: Vec<std::ffi::OsString> = abs.components().rev().filter_map(|c| as_name(&c)).collect();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == "." {
            continue;
        }
        if name == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&name);
        match std::fs::symlink_metadata(&next) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    bail!("{}: too many levels of links", p.display());
                }
                let target = std::fs::read_link(&next)?;
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                pending.extend(target.components().rev().filter_map(|c| as_name(&c)));
            }
            _ => out = next,
        }
    }
    Ok(out)
}

fn as_name(c: &Component<'_>) -> Option<std::ffi::OsString> {
    match c {
        Component::RootDir | Component::Prefix(_) => None,
        Component::CurDir => Some(".".into()),
        Component::ParentDir => Some("..".into()),
        Component::Normal(n) => Some(n.to_os_string()),
    }
}

/// The relative path that leads from directory `from` to `to`, both
/// relative to the same root.
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The existing ancestors of a resolved path, itself first when it exists.
fn existing_ancestors(p: &Path) -> impl Iterator<Item = &Path> {
    p.ancestors().filter(|a| a.exists())
}

/// How two directories overlap, by path or by identity on disk.
#[derive(Debug, PartialEq)]
pub enum Overlap {
    None,
    /// `inner` is `outer` or lies below it.
    Inside,
    /// `outer` lies below `inner`.
    Contains,
}

/// Whether `out` is, is inside, or contains `home`, by resolved path and by
/// the device and inode of every existing ancestor (a bind mount of the home
/// is the home). `home_dirs` are the (device, inode) pairs of the home's own
/// directories, so that an alias of any of them counts too.
pub fn overlap(home: &Path, out: &Path, home_dirs: &HashSet<(u64, u64)>) -> Overlap {
    if out.starts_with(home) {
        return Overlap::Inside;
    }
    if home.starts_with(out) {
        return Overlap::Contains;
    }
    let home_id = dev_ino(home);
    for a in existing_ancestors(out) {
        if let Some(id) = dev_ino(a) {
            if home_dirs.contains(&id) || Some(id) == home_id {
                return Overlap::Inside;
            }
        }
    }
    if out.exists() {
        let out_id = dev_ino(out);
        if home.ancestors().any(|a| dev_ino(a) == out_id) {
            return Overlap::Contains;
        }
    }
    Overlap::None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotdot_after_a_missing_dir_is_applied() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir(root.join("home")).unwrap();
        let r = resolve(&root.join("missing/../home/nodes")).unwrap();
        assert_eq!(r, root.join("home/nodes"));
        let r = resolve(&root.join("a/b/../../home/./x/../y")).unwrap();
        assert_eq!(r, root.join("home/y"));
        std::os::unix::fs::symlink(root.join("home"), root.join("alias")).unwrap();
        assert_eq!(resolve(&root.join("alias/sub")).unwrap(), root.join("home/sub"));
        std::os::unix::fs::symlink("home/deep", root.join("rel")).unwrap();
        assert_eq!(resolve(&root.join("rel/../z")).unwrap(), root.join("home/z"));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("bin"), Path::new("bin/version.txt")), PathBuf::from("version.txt"));
        assert_eq!(relative(Path::new("repository"), Path::new("repository/conf")), PathBuf::from("conf"));
        assert_eq!(relative(Path::new("a/b"), Path::new("c/d")), PathBuf::from("../../c/d"));
        assert_eq!(relative(Path::new("a"), Path::new("")), PathBuf::from(".."));
        assert_eq!(relative(Path::new(""), Path::new("")), PathBuf::from("."));
    }

    #[test]
    fn overlap_by_path_and_identity() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let home = root.join("home");
        std::fs::create_dir_all(home.join("conf")).unwrap();
        let dirs: HashSet<_> = [dev_ino(&home).unwrap(), dev_ino(&home.join("conf")).unwrap()].into();
        assert_eq!(overlap(&home, &home.join("x"), &dirs), Overlap::Inside);
        assert_eq!(overlap(&home, &root, &dirs), Overlap::Contains);
        assert_eq!(overlap(&home, &root.join("out"), &dirs), Overlap::None);
    }
}
