//! Helpers shared by the integration tests: the committed fixture, fresh
//! copies of it in temporary directories, and a digest of a tree that sees
//! everything a faithful copy must keep.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

pub const WEBAPPS: &str = "repository/deployment/server/webapps";
pub const TOML: &str = "repository/conf/deployment.toml";
pub const TOML_BACKUP: &str = "repository/conf/deployment.toml.backup";
pub const DTPL: &str = "repository/resources/conf/deployment-templates";
pub const T: &str = "repository/resources/conf/templates";
pub const SYN: &str = "repository/deployment/server/synapse-configs/default";

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wso2am-4.2.0")
}

pub fn bin() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("apim-profiles").unwrap();
    c.env_remove("WSO2_USERNAME").env_remove("WSO2_PASSWORD");
    c
}

/// A fresh `cp -a` of the fixture under `dir`, as `<dir>/wso2am-4.2.0`.
pub fn home_in(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let home = dir.join("wso2am-4.2.0");
    let st = Command::new("cp").arg("-a").arg(fixture()).arg(&home).status().unwrap();
    assert!(st.success());
    home
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    File { sha: String, exec: bool, mode: u32 },
    Dir,
    Link(PathBuf),
}

/// Every entry below `root` (not `.apim-profiles*` at its root): kind, content
/// hash, mode, link target.
pub fn digest(root: &Path) -> BTreeMap<String, Item> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if !rel.contains('/') && rel.starts_with(".apim-profiles") {
            continue;
        }
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let item = if md.file_type().is_symlink() {
            Item::Link(std::fs::read_link(e.path()).unwrap())
        } else if md.is_dir() {
            Item::Dir
        } else {
            let bytes = std::fs::read(e.path()).unwrap();
            Item::File { sha: hex(&Sha256::digest(&bytes)), exec: md.mode() & 0o111 != 0, mode: md.mode() & 0o7777 }
        };
        m.insert(rel, item);
    }
    m
}

/// Modification times of every non-directory entry, for "nothing moved" checks.
pub fn mtimes(root: &Path) -> BTreeMap<String, (i64, i64)> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            (e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned(), (md.mtime(), md.mtime_nsec()))
        })
        .collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn read(p: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(p.as_ref()).unwrap_or_else(|e| panic!("reading {}: {e}", p.as_ref().display()))
}

pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Runs split and returns the JSON report.
pub fn split_json(home: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let o = bin()
        .arg("split")
        .arg(home)
        .arg("--out")
        .arg(out)
        .args(["--no-update", "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "split failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_slice(&o.stdout).expect("one JSON document on stdout")
}

/// Secret values in the fixture's TOML files: none may be printed.
pub fn fixture_secrets() -> Vec<String> {
    let mut out = Vec::new();
    let mut files = vec![fixture().join(TOML)];
    for e in std::fs::read_dir(fixture().join(DTPL)).unwrap() {
        files.push(e.unwrap().path());
    }
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let l = line.trim().trim_start_matches('#').trim();
            if let Some((k, v)) = l.split_once('=') {
                let k = k.trim().to_ascii_lowercase();
                if k.ends_with("password") || k.ends_with("secret") {
                    let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
                    if v.len() >= 4 && !v.contains('$') {
                        out.push(v);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `apim-profiles split HOME --out OUT --no-update`; more arguments may follow.
pub fn split_no_update(home: &Path, out: &Path) -> assert_cmd::Command {
    let mut c = bin();
    c.arg("split").arg(home).arg("--out").arg(out).arg("--no-update");
    c
}
pub mod refusals;

/// The update tool's double (fixtures/update-tool), which follows the
/// documented U2 behaviour.
pub fn double() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/update-tool/wso2update_linux")
}

/// `split HOME --out OUT --update-tool <double> --json` with U2 credentials in
/// the environment; the double answers as `scenario` says and checks that
/// it got `password`.
pub fn split_with_double(home: &Path, out: &Path, scenario: &str, password: &str) -> assert_cmd::Command {
    let mut c = bin();
    c.arg("split")
        .arg(home)
        .arg("--out")
        .arg(out)
        .arg("--update-tool")
        .arg(double())
        .arg("--json")
        .env("WSO2_USERNAME", "ops@example.com")
        .env("WSO2_PASSWORD", password)
        .env("APIM_DOUBLE_SCENARIO", scenario)
        .env("APIM_DOUBLE_EXPECT_PASSWORD", password);
    c
}

/// The seal apim-profiles gives a record whose compact JSON (without its
/// seal) is `body`: HMAC-SHA256 under the output's `key`, or, without a key,
/// the unkeyed SHA-256 earlier versions wrote (which anyone can compute).
pub fn seal_of(body: &str, key: Option<&[u8]>) -> String {
    use hmac::Mac;
    use sha2::Digest;
    match key {
        Some(k) => {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(k).unwrap();
            m.update(b"apim-profiles record\0");
            m.update(body.as_bytes());
            format!("hmac-sha256:{}", hex(&m.finalize().into_bytes()))
        }
        None => hex(&sha2::Sha256::digest(body.as_bytes())),
    }
}

/// The key of the output a copy at `<OUT>/<profile>/<home>` was split into.
pub fn output_key(copy: &Path) -> Vec<u8> {
    std::fs::read(copy.parent().unwrap().parent().unwrap().join(".apim-profiles-key")).unwrap()
}
