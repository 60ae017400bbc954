//! A copy is as faithful as `cp -a` (issue 14): the copy's root keeps the
//! home root's owner, mode and times; sparse files keep their holes; hard
//! links stay links (once per inode group, per copy); extended attributes and
//! ACLs are kept. Owner changes and some attribute namespaces need root: those
//! checks print why they are skipped otherwise.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn set_times(p: &Path, secs: i64, nsec: u32) {
    let t = filetime::FileTime::from_unix_time(secs, nsec);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

#[test]
fn the_copy_root_keeps_the_home_roots_owner_mode_and_times() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    if is_root() {
        std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    } else {
        println!("skipped the owner check: changing an owner needs root");
    }
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o750)).unwrap();
    set_times(&home, 1_000_000_000, 123_456_789);
    let before = std::fs::metadata(&home).unwrap();
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker,traffic-manager"]);
    for p in ["gateway-worker", "traffic-manager"] {
        let root = out.join(p).join("wso2am-4.2.0");
        let md = std::fs::metadata(&root).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o750, "{p}: mode");
        assert_eq!((md.mtime(), md.mtime_nsec()), (before.mtime(), before.mtime_nsec()), "{p}: modification time");
        if is_root() {
            assert_eq!((md.uid(), md.gid()), (65534, 65534), "{p}: owner");
        }
    }
    // A re-run finds the copies current and leaves their roots alone.
    let v = split_json(&home, &out, &["--profiles", "gateway-worker,traffic-manager"]);
    assert_eq!(v["changed"], false, "{v}");
}

#[test]
fn owners_of_files_directories_and_links_are_kept() {
    if !is_root() {
        println!("skipped: changing an owner needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let f = home.join("bin/version.txt");
    let d = home.join("repository/conf");
    let l = home.join("repository/logs/owned-link");
    std::fs::create_dir_all(l.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../conf", &l).unwrap();
    std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(&d, Some(1234), Some(4321)).unwrap();
    std::os::unix::fs::lchown(&l, Some(4321), Some(1234)).unwrap();
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    let gw = out.join("gateway-worker/wso2am-4.2.0");
    let owner = |p: &Path| {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner(&gw.join("bin/version.txt")), (65534, 65534));
    assert_eq!(owner(&gw.join("repository/conf")), (1234, 4321));
    assert_eq!(owner(&gw.join("repository/logs/owned-link")), (4321, 1234));
}

/// Writes `marks` small blocks into an otherwise empty file of `len` bytes.
fn sparse_file(p: &Path, len: u64, marks: &[u64]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(p).unwrap();
    f.set_len(len).unwrap();
    for &at in marks {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(b"not a hole, a mark").unwrap();
    }
}

fn allocated(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().blocks() * 512
}

#[test]
fn sparse_files_keep_their_holes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    const LEN: u64 = 256 << 20;
    let rel = "repository/database/WSO2AM_DB.mv.db";
    let tail = "repository/components/lib/ends-in-a-hole.bin";
    sparse_file(&home.join(rel), LEN, &[0, 5 << 20, 100 << 20, LEN - 18]);
    sparse_file(&home.join(tail), 64 << 20, &[1 << 20]);
    if allocated(&home.join(rel)) > 8 << 20 {
        println!("skipped: this file system does not keep holes");
        return;
    }
    for (i, reflink) in ["auto", "never"].into_iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        split_json(&home, &out, &["--profiles", "gateway-worker", "--reflink", reflink]);
        let gw = out.join("gateway-worker/wso2am-4.2.0");
        for (r, len) in [(rel, LEN), (tail, 64 << 20)] {
            let copy = gw.join(r);
            assert_eq!(std::fs::metadata(&copy).unwrap().len(), len, "{reflink}: {r}: size");
            assert!(read(&copy) == read(home.join(r)), "{reflink}: {r}: content differs");
            assert!(
                allocated(&copy) <= allocated(&home.join(r)) + (1 << 20),
                "{reflink}: {r}: the copy takes {} bytes, the source {}",
                allocated(&copy),
                allocated(&home.join(r))
            );
        }
    }
}

fn ino(p: &Path) -> (u64, u64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.ino(), m.nlink())
}

#[test]
fn hard_links_stay_links_once_per_inode_group_per_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let lib = home.join("repository/components/lib");
    std::fs::write(lib.join("shared.jar"), b"the same bytes under three names").unwrap();
    std::fs::hard_link(lib.join("shared.jar"), lib.join("shared-alias.jar")).unwrap();
    std::fs::hard_link(lib.join("shared.jar"), home.join("bin/shared-in-bin.jar")).unwrap();
    // A group one of whose names the gateway profile removes.
    let w = home.join(WEBAPPS);
    std::fs::write(lib.join("half.jar"), b"half").unwrap();
    std::fs::hard_link(lib.join("half.jar"), w.join("half.war")).unwrap();
    std::fs::hard_link(lib.join("half.jar"), home.join("bin/half.jar")).unwrap();
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker,traffic-manager"]);
    let src = ino(&lib.join("shared.jar")).0;
    let mut seen = Vec::new();
    for p in ["gateway-worker", "traffic-manager"] {
        let c = out.join(p).join("wso2am-4.2.0");
        let a = ino(&c.join("repository/components/lib/shared.jar"));
        assert_eq!(a.1, 3, "{p}: the three names are one file");
        assert_eq!(ino(&c.join("repository/components/lib/shared-alias.jar")), a, "{p}");
        assert_eq!(ino(&c.join("bin/shared-in-bin.jar")), a, "{p}");
        assert_ne!(a.0, src, "{p}: a copy never shares an inode with the home");
        assert!(!seen.contains(&a.0), "{p}: two copies share an inode");
        seen.push(a.0);
        let h = ino(&c.join("repository/components/lib/half.jar"));
        assert_eq!(ino(&c.join("bin/half.jar")), h, "{p}");
        if !c.join(WEBAPPS).join("half.war").exists() {
            assert_eq!(h.1, 2, "{p}: the names the profile keeps are linked, the removed one is gone");
        }
    }
    // The home's links are untouched.
    assert_eq!(ino(&lib.join("shared.jar")).1, 3);
    bin().arg("verify").arg(out.join("gateway-worker/wso2am-4.2.0")).assert().success();
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> rustix::io::Result<()> {
    rustix::fs::lsetxattr(p, name, value, rustix::fs::XattrFlags::empty())
}

fn get_xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::lgetxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// A POSIX ACL in the kernel's xattr form: owner rw, user `uid` r, group r,
/// mask r, others nothing.
fn acl(uid: u32) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in
        [(0x01u16, 6u16, u32::MAX), (0x02, 4, uid), (0x04, 4, u32::MAX), (0x10, 4, u32::MAX), (0x20, 0, u32::MAX)]
    {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

#[test]
fn extended_attributes_and_acls_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let f = home.join("repository/conf/carbon.xml");
    let d = home.join("repository/components/lib");
    let toml = home.join(TOML);
    if let Err(e) = set_xattr(&f, "user.apim.test", b"file value") {
        println!("skipped: this file system takes no user extended attributes ({e})");
        return;
    }
    set_xattr(&d, "user.apim.dir", b"dir value").unwrap();
    set_xattr(&home, "user.apim.root", b"root value").unwrap();
    set_xattr(&toml, "user.apim.toml", b"kept with the backup").unwrap();
    let acls = set_xattr(&f, "system.posix_acl_access", &acl(65534)).is_ok()
        && set_xattr(&d, "system.posix_acl_default", &acl(65534)).is_ok();
    if !acls {
        println!("skipped the ACL checks: this file system takes no POSIX ACLs");
    }
    let trusted = is_root() && set_xattr(&f, "trusted.apim", b"root only").is_ok();
    if !is_root() {
        println!("skipped the trusted.* check: that namespace needs root");
    }
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    let gw = out.join("gateway-worker/wso2am-4.2.0");
    let cf = gw.join("repository/conf/carbon.xml");
    let cd = gw.join("repository/components/lib");
    assert_eq!(get_xattr(&cf, "user.apim.test").as_deref(), Some(&b"file value"[..]));
    assert_eq!(get_xattr(&cd, "user.apim.dir").as_deref(), Some(&b"dir value"[..]));
    assert_eq!(get_xattr(&gw, "user.apim.root").as_deref(), Some(&b"root value"[..]));
    // The home's deployment.toml is moved to the backup name (`mv` keeps attributes).
    assert_eq!(get_xattr(&gw.join(TOML_BACKUP), "user.apim.toml").as_deref(), Some(&b"kept with the backup"[..]));
    if acls {
        assert_eq!(get_xattr(&cf, "system.posix_acl_access"), get_xattr(&f, "system.posix_acl_access"));
        assert_eq!(get_xattr(&cd, "system.posix_acl_default"), get_xattr(&d, "system.posix_acl_default"));
        let (sm, cm) = (std::fs::metadata(&f).unwrap().mode(), std::fs::metadata(&cf).unwrap().mode());
        assert_eq!(sm & 0o7777, cm & 0o7777, "the mode and the ACL mask agree as in the home");
    }
    if trusted {
        assert_eq!(get_xattr(&cf, "trusted.apim").as_deref(), Some(&b"root only"[..]));
    }
}
