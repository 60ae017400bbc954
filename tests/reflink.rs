//! `--reflink never` copies bytes and `--reflink auto` shares them, checked by
//! the new blocks a split takes on a loop-mounted XFS image with reflink. Needs
//! root, mkfs.xfs (apt-get install xfsprogs) and loop devices; otherwise the
//! test is reported skipped (`ignored, skipped: <why>`, see tests/runner).

mod common;
mod runner;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use runner::{skip, Outcome};

const BIG: u64 = 24 << 20;
/// The sparse file: 8 MiB of data, an 8 MiB hole, 8 MiB of data.
const SPARSE_DATA: u64 = 16 << 20;

struct Xfs {
    mnt: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

/// A fresh XFS with reflink on a loop device, or why there is none.
fn xfs() -> Result<Xfs, String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root".into());
    }
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let img = tmp.path().join("xfs.img");
    std::fs::File::create(&img).and_then(|f| f.set_len(400 << 20)).map_err(|e| e.to_string())?;
    let mkfs = Command::new("mkfs.xfs").args(["-q", "-m", "reflink=1"]).arg(&img).status();
    if !mkfs.is_ok_and(|s| s.success()) {
        return Err("mkfs.xfs missing or failed (apt-get install xfsprogs)".into());
    }
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).map_err(|e| e.to_string())?;
    let mount = Command::new("mount").args(["-o", "loop"]).arg(&img).arg(&mnt).status();
    if !mount.is_ok_and(|s| s.success()) {
        return Err("loop mount not permitted here".into());
    }
    Ok(Xfs { mnt, _tmp: tmp })
}

fn used(dir: &Path) -> u64 {
    rustix::fs::sync();
    let st = rustix::fs::statvfs(dir).unwrap();
    (st.f_blocks - st.f_bfree) * st.f_frsize
}

fn split_with(home: &Path, out: &Path, reflink: &str) -> u64 {
    let before = used(home);
    let o = bin()
        .arg("split")
        .arg(home)
        .arg("--out")
        .arg(out)
        .args(["--no-update", "--profiles", "gateway-worker", "--reflink", reflink])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    used(home) - before
}

fn reflink_never_writes_new_blocks_and_auto_shares_them_on_xfs() -> Outcome {
    let fs = match xfs() {
        Ok(fs) => fs,
        Err(why) => return skip(format!("no XFS to test on: {why}")),
    };
    let home = home_in(&fs.mnt);
    // One big file that every profile keeps, of bytes that do not compress.
    let mut f = std::fs::File::create(home.join("repository/components/lib/big-bench.jar")).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let chunk: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for _ in 0..BIG >> 20 {
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    // A sparse one too: its data ranges take another path (SEEK_DATA/SEEK_HOLE).
    // The far end first: XFS preallocates beyond the end of a file as it grows.
    let sparse = home.join("repository/components/lib/sparse-bench.jar");
    let f = std::fs::File::create(&sparse).unwrap();
    for (i, at) in [16u64 << 20, 0].into_iter().enumerate() {
        for k in 0..8u64 {
            let mut c = chunk.clone();
            c[0] = (i * 8) as u8 + k as u8; // no two MiB alike
            std::os::unix::fs::FileExt::write_all_at(&f, &c, at + (k << 20)).unwrap();
        }
    }
    drop(f);
    assert!(allocated(&sparse) < 20 << 20, "the file system filled the hole of the test file");

    let data = BIG + SPARSE_DATA;
    let never = split_with(&home, &fs.mnt.join("never"), "never");
    assert!(never >= data * 9 / 10, "--reflink never took {never} new bytes for a copy of {data}: extents were shared");
    let auto = split_with(&home, &fs.mnt.join("auto"), "auto");
    assert!(auto < data / 10, "--reflink auto took {auto} new bytes: extents were not shared");
    let lib = "gateway-worker/wso2am-4.2.0/repository/components/lib";
    let never_copy = fs.mnt.join("never").join(lib).join("big-bench.jar");
    assert_eq!(read(&never_copy), read(home.join("repository/components/lib/big-bench.jar")));
    let never_sparse = fs.mnt.join("never").join(lib).join("sparse-bench.jar");
    assert_eq!(read(&never_sparse), read(&sparse));
    assert!(allocated(&never_sparse) < 20 << 20, "--reflink never filled the hole of a sparse file");
    Outcome::Passed
}

/// The digests of cloned files, taken from their source once for every copy
/// that clones it, are the clones' own: `verify --content` passes on every
/// copy, and a byte changed in one clone is found in that copy alone.
fn the_digests_of_clones_are_the_clones_own_in_every_copy() -> Outcome {
    let fs = match xfs() {
        Ok(fs) => fs,
        Err(why) => return skip(format!("no XFS to test on: {why}")),
    };
    let home = home_in(&fs.mnt);
    let jar = "repository/components/lib/shared-bench.jar";
    std::fs::write(home.join(jar), (0..3u32 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).unwrap();
    let out = fs.mnt.join("out");
    let o = bin().arg("split").arg(&home).arg("--out").arg(&out).args(["--no-update", "--reflink", "always"]).output();
    let o = o.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let copies: Vec<PathBuf> = ["control-plane", "gateway-worker", "traffic-manager"]
        .iter()
        .map(|p| out.join(p).join("wso2am-4.2.0"))
        .collect();
    let differs = |c: &Path| {
        let o = bin().args(["verify", "--content", "--json"]).arg(c).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let p = &v["profiles"][0];
        assert!(p["content"]["files_checked"].as_u64().unwrap_or(0) > 0, "{p}");
        p["content"]["differs"].clone()
    };
    for c in &copies {
        assert_eq!(differs(c), serde_json::json!([]), "{}", c.display());
    }
    // One byte of the shared jar changed in one clone, size and times put back.
    let changed = copies[1].join(jar);
    let md = std::fs::metadata(&changed).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&changed).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0xff], 1 << 20).unwrap();
    let t = filetime::FileTime::from_last_modification_time(&md);
    filetime::set_file_handle_times(&f, Some(t), Some(t)).unwrap();
    drop(f);
    assert_eq!(differs(&copies[1]), serde_json::json!([jar]), "the changed clone");
    for c in [&copies[0], &copies[2]] {
        assert_eq!(differs(c), serde_json::json!([]), "{}", c.display());
    }
    Outcome::Passed
}

/// Bytes the file system allocated to a file.
fn allocated(p: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(p).unwrap()) * 512
}

fn main() -> std::process::ExitCode {
    runner::run(&[
        (
            "reflink_never_writes_new_blocks_and_auto_shares_them_on_xfs",
            reflink_never_writes_new_blocks_and_auto_shares_them_on_xfs,
        ),
        (
            "the_digests_of_clones_are_the_clones_own_in_every_copy",
            the_digests_of_clones_are_the_clones_own_in_every_copy,
        ),
    ])
}
