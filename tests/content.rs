//! A copy's content is proven, not assumed: a file rewritten with its size
//! and modification time put back is found by the metadata check (through
//! the change time), named by `verify --content`, and `status` calls the copy
//! drifted; a record made before digests and change times were kept is never
//! reported as verified.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const GW: &str = "gateway-worker";
const SCRIPT: &str = "bin/api-manager.sh";

fn copy_of(tmp: &Path) -> PathBuf {
    let home = home_in(tmp);
    let out = tmp.join("out");
    split_json(&home, &out, &["--profiles", GW]);
    out.join(GW).join("wso2am-4.2.0")
}

/// Exit code and JSON document of a run.
fn run(args: &[&str], copy: &Path) -> (i32, Value) {
    let o = bin().args(args).arg(copy).arg("--json").output().unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    });
    (o.status.code().unwrap(), v)
}

/// Other bytes of the same length, the modification time put back.
fn rewrite_keeping_size_and_time(file: &Path) {
    let before = std::fs::metadata(file).unwrap();
    let mut bytes = std::fs::read(file).unwrap();
    for b in bytes.iter_mut().take(16) {
        *b = if *b == b'#' { b'%' } else { b'#' };
    }
    std::fs::write(file, &bytes).unwrap();
    let f = std::fs::File::options().write(true).open(file).unwrap();
    f.set_times(
        std::fs::FileTimes::new().set_modified(before.modified().unwrap()).set_accessed(before.accessed().unwrap()),
    )
    .unwrap();
    let after = std::fs::metadata(file).unwrap();
    assert_eq!((after.len(), after.modified().unwrap()), (before.len(), before.modified().unwrap()));
}

/// Whether a report's `drift` says that `path` changed in `what`.
fn names_change(drift: &serde_json::Value, path: &str, what: &str) -> bool {
    drift.as_array().is_some_and(|all| {
        all.iter().any(|d| d["change"] == "changed" && d["path"] == path && d["what"].to_string().contains(what))
    })
}

#[test]
fn a_rewrite_that_keeps_size_and_time_is_found_by_every_check() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = copy_of(tmp.path());
    // As published (the staging directory renamed, the record written): the
    // change times in the fingerprint are those of the copy.
    let (code, v) = run(&["verify"], &copy);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["profiles"][0]["status"], "verified");
    let (code, v) = run(&["verify", "--content"], &copy);
    assert_eq!(code, 0, "{v}");
    let c = &v["profiles"][0]["content"];
    assert!(c["files_checked"].as_u64().unwrap() > 10, "{c}");
    assert!(c["bytes_read"].as_u64().unwrap() > 0, "{c}");
    assert_eq!(c["differs"], serde_json::json!([]), "{c}");
    let (_, v) = run(&["status"], &copy);
    assert_eq!(v["profiles"][0]["status"], "current", "{v}");

    rewrite_keeping_size_and_time(&copy.join(SCRIPT));

    let (code, v) = run(&["verify"], &copy);
    assert_eq!(code, 4, "{v}");
    let p = &v["profiles"][0];
    assert_eq!(p["status"], "drifted");
    assert!(names_change(&p["drift"], SCRIPT, "change time changed"), "{p}");
    let drift = p["drift"].to_string();
    assert!(!drift.contains("size"), "{drift}");

    let (code, v) = run(&["verify", "--content"], &copy);
    assert_eq!(code, 4, "{v}");
    let p = &v["profiles"][0];
    assert_eq!(p["status"], "drifted");
    assert_eq!(p["content"]["differs"], serde_json::json!([SCRIPT]), "{p}");
    assert_eq!(p["content"]["unreadable"], serde_json::json!([]), "{p}");

    let (code, v) = run(&["status"], &copy);
    assert_eq!(code, 0, "{v}");
    let p = &v["profiles"][0];
    assert_eq!(p["status"], "drifted", "{p}");
    assert!(p["drift"].to_string().contains(SCRIPT), "{p}");

    // Human output names it too.
    let o = bin().args(["verify", "--content"]).arg(&copy).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("content: ") && out.contains("1 differ"), "{out}");
}

#[test]
fn a_file_renamed_away_and_back_shows_through_its_change_time() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = copy_of(tmp.path());
    let f = copy.join(SCRIPT);
    let before = std::fs::symlink_metadata(&f).unwrap();
    std::fs::rename(&f, copy.join("bin/moved")).unwrap();
    std::fs::rename(copy.join("bin/moved"), &f).unwrap();
    let after = std::fs::symlink_metadata(&f).unwrap();
    if (after.ctime(), after.ctime_nsec()) == (before.ctime(), before.ctime_nsec()) {
        eprintln!("skipped: this file system does not change a file's change time when it is renamed");
        return;
    }
    // ext4, XFS, Btrfs, tmpfs: a rename sets the file's change time (the
    // publishing rename moves the copy's root only, so it changes none).
    let (code, v) = run(&["verify"], &copy);
    assert_eq!(code, 4, "{v}");
    assert!(names_change(&v["profiles"][0]["drift"], SCRIPT, "change time changed"), "{v}");
    // Same bytes: the content check finds nothing to name.
    let (_, v) = run(&["verify", "--content"], &copy);
    assert_eq!(v["profiles"][0]["content"]["differs"], serde_json::json!([]), "{v}");
}

// ------------------------------------------------------------ older records

/// Serde's compact form of pretty JSON: whitespace outside strings removed.
fn minify(pretty: &str) -> String {
    let (mut out, mut in_str, mut esc) = (String::new(), false, false);
    for c in pretty.chars() {
        if in_str {
            out.push(c);
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Rewrites the record as an earlier version wrote it (lines edited by
/// `edit`), sealed as the tool seals: the HMAC of its compact form without
/// the seal under the output's key.
fn rewrite_record(copy: &Path, edit: impl Fn(&str) -> Option<String>) {
    let p = copy.join(".apim-profiles.json");
    let text = String::from_utf8(read(&p)).unwrap();
    let lines: Vec<String> =
        text.lines().filter(|l| !l.trim_start().starts_with("\"seal\"")).filter_map(&edit).collect();
    let mut body = lines.join("\n");
    // The line before the seal lost its comma's reason to be.
    let end = body.rfind('}').unwrap();
    let head = body[..end].trim_end().trim_end_matches(',').to_string();
    body = format!("{head}\n}}");
    let seal = seal_of(&minify(&body), Some(&output_key(copy)));
    let head = body[..body.rfind('}').unwrap()].trim_end().to_string();
    std::fs::write(&p, format!("{head},\n  \"seal\": \"{seal}\"\n}}\n")).unwrap();
}

/// A fingerprint line without its change time, device and inode.
fn without_change_times(l: &str) -> String {
    let indent = l.len() - l.trim_start().len();
    let t = l.trim_start();
    let is_line = t.len() > 2 && t.starts_with('"') && "fdls".contains(&t[1..2]) && t.as_bytes()[2] == b' ';
    if !is_line {
        return l.to_string();
    }
    let parts: Vec<&str> = t.splitn(5, ' ').collect();
    let times = parts[3].split(',').next().unwrap();
    format!("{}{} {} {} {} {}", " ".repeat(indent), parts[0], parts[1], parts[2], times, parts[4])
}

#[test]
fn a_record_without_digests_is_not_verified_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = copy_of(tmp.path());
    rewrite_record(&copy, |l| (!l.trim_start().starts_with("\"content_sha256\"")).then(|| l.to_string()));
    // The record is accepted as the tool's (not corrupt), and the metadata check holds.
    let (code, v) = run(&["verify"], &copy);
    assert_eq!(code, 0, "{v}");
    let (code, v) = run(&["verify", "--content"], &copy);
    assert_eq!(code, 2, "{v}");
    let p = &v["profiles"][0];
    assert_eq!(p["status"], "unverifiable", "{p}");
    assert!(p["reason"].as_str().unwrap().contains("no content digests recorded"), "{p}");
    assert!(p.get("content").is_none(), "{p}");
    let o = bin().args(["verify", "--content"]).arg(&copy).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("not proven") && !out.contains("matches its profile"), "{out}");
}

#[test]
fn a_record_without_change_times_is_not_verified_and_not_current() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = copy_of(tmp.path());
    rewrite_record(&copy, |l| (!l.trim_start().starts_with("\"content_sha256\"")).then(|| without_change_times(l)));
    let rec: Value = serde_json::from_slice(&read(copy.join(".apim-profiles.json"))).unwrap();
    let first = rec["copy_fingerprint"][0].as_str().unwrap();
    assert!(!first.contains(','), "{first}");

    let (code, v) = run(&["verify"], &copy);
    assert_eq!(code, 2, "{v}");
    let p = &v["profiles"][0];
    assert_eq!(p["status"], "unverifiable", "{p}");
    assert!(p["reason"].as_str().unwrap().contains("recorded without change times"), "{p}");
    let (_, v) = run(&["status"], &copy);
    let p = &v["profiles"][0];
    assert_eq!(p["status"], "stale", "{p}");
    assert!(p["reasons"].to_string().contains("without change times"), "{p}");

    // A size change is still drift, whatever the record lacks.
    std::fs::write(copy.join(SCRIPT), b"echo other\n").unwrap();
    let (code, v) = run(&["verify"], &copy);
    assert_eq!(code, 4, "{v}");
}

#[test]
fn files_the_update_and_optimize_change_are_hashed_as_the_tool_leaves_them() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let o = split_with_double(&home, &out, "success", "s3cret-for-tests").args(["--profiles", GW]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let copy = out.join(GW).join("wso2am-4.2.0");
    // The update tool rewrote and added files after the copy was hashed:
    // those are hashed again when the copy is stamped, and all of it verifies.
    let (code, v) = run(&["verify", "--content"], &copy);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["profiles"][0]["content"]["differs"], serde_json::json!([]), "{v}");
    // optimize over the copy keeps the digests of what it leaves alone.
    let o = bin().args(["optimize", "--profile", GW]).arg(&copy).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, v) = run(&["verify", "--content"], &copy);
    assert_eq!(code, 0, "{v}");
    rewrite_keeping_size_and_time(&copy.join(SCRIPT));
    let (code, v) = run(&["verify", "--content"], &copy);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["profiles"][0]["content"]["differs"], serde_json::json!([SCRIPT]), "{v}");
}
