//! Month two: an output split at one update level is rolled forward to the
//! next by the same `split` command. The update tool (the strict double of
//! fixtures/update-tool) runs once, on the kept base; every copy is derived
//! again from it and must equal, entry by entry, a fresh split at the new
//! level, while the files the new level does not change keep their inode and
//! modification time. Copies someone changed are not rolled forward silently.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;

const PW: &str = "R0ll-Forward-Pa55!";
const PROFILES: [&str; 3] = ["control-plane", "gateway-worker", "traffic-manager"];

/// `split` with the double at `latest`, extra flags, and a log of its calls.
fn split_at(home: &Path, out: &Path, latest: u32, calls: &Path, extra: &[&str]) -> std::process::Output {
    split_with_double(home, out, "success", PW)
        .env("APIM_DOUBLE_LATEST_LEVEL", latest.to_string())
        .env("APIM_DOUBLE_CALLS", calls)
        .args(extra)
        .output()
        .unwrap()
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

/// Update runs in a calls log (not `current-state`, which only asks).
fn runs(calls: &Path) -> usize {
    std::fs::read_to_string(calls).unwrap_or_default().lines().filter(|l| l.contains("--backup")).count()
}

/// Every entry but the tool's state (`updates/`) and this tool's record.
fn entries(root: &Path) -> BTreeMap<String, Item> {
    digest(root).into_iter().filter(|(k, _)| k != "updates" && !k.starts_with("updates/")).collect()
}

/// (inode, mtime) of every file of a copy.
fn inodes(root: &Path) -> BTreeMap<String, (u64, i64)> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let md = e.metadata().unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
            m.insert(rel, (md.ino(), md.mtime()));
        }
    }
    m
}

fn copy(out: &Path, p: &str) -> std::path::PathBuf {
    out.join(p).join("wso2am-4.2.0")
}

#[test]
fn rolling_forward_updates_the_base_once_and_rewrites_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let before_home = digest(&home);
    let (out, fresh) = (tmp.path().join("out"), tmp.path().join("fresh"));
    let calls = tmp.path().join("calls.log");

    let o = split_at(&home, &out, 7, &calls, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(runs(&calls), 1);
    let at7: BTreeMap<&str, BTreeMap<String, (u64, i64)>> =
        PROFILES.iter().map(|p| (*p, inodes(&copy(&out, p)))).collect();
    let entries7: BTreeMap<&str, BTreeMap<String, Item>> =
        PROFILES.iter().map(|p| (*p, entries(&copy(&out, p)))).collect();

    // Month two: level 8 is out; the same command rolls the output forward.
    let o = split_at(&home, &out, 8, &calls, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = json(&o);
    assert_eq!(runs(&calls), 2, "one more tool run, on the base, for three copies");
    assert_eq!(report["changed"], true);

    // A fresh split at level 8, for comparison.
    let fresh_calls = tmp.path().join("fresh.log");
    let o = split_at(&home, &fresh, 8, &fresh_calls, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    for p in PROFILES {
        let pr = report["profiles"].as_array().unwrap().iter().find(|r| r["profile"] == p).unwrap();
        assert_eq!(pr["status"], "updated", "{p}: {pr}");
        assert_eq!(pr["update"]["level_before"], "4.2.0.7", "{p}");
        assert_eq!(pr["update"]["level"], "4.2.0.8", "{p}");
        // The report lists what the roll forward added and changed in this copy.
        let added: Vec<&str> = pr["update"]["added"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(added, ["repository/components/dropins/wso2-update-fix-8.jar"], "{p}");
        let modified: Vec<String> =
            pr["update"]["modified"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert!(modified.iter().any(|m| m.ends_with("deployment-templates/gateway-worker.toml")), "{p}: {modified:?}");

        // Equal, entry by entry, to a fresh split at level 8.
        let (rolled, made) = (entries(&copy(&out, p)), entries(&copy(&fresh, p)));
        let differ: Vec<&String> =
            rolled.keys().chain(made.keys()).filter(|k| rolled.get(*k) != made.get(*k)).collect();
        assert!(differ.is_empty(), "{p}: the rolled copy differs from a fresh split at 8: {differ:?}");

        // Unchanged files keep inode and mtime; the changed ones are listed.
        let now = inodes(&copy(&out, p));
        let mut kept = 0;
        for (rel, was) in &at7[p] {
            let unchanged = entries7[p].get(rel) == rolled.get(rel);
            if rel.starts_with("updates/") || rel.starts_with(".apim-profiles") || !unchanged {
                continue;
            }
            assert_eq!(now.get(rel), Some(was), "{p}: {rel} is unchanged but was rewritten");
            kept += 1;
        }
        assert!(kept > 30, "{p}: only {kept} files kept");
        for m in &modified {
            assert_ne!(entries7[p].get(m), rolled.get(m), "{p}: {m} is listed as changed but is not");
        }
        let v = bin().arg("verify").arg("--content").arg(copy(&out, p)).output().unwrap();
        assert!(v.status.success(), "verify {p}: {}", String::from_utf8_lossy(&v.stdout));
    }
    // `status` agrees: every copy at 8, no warning of mixed levels.
    let st = bin().arg("status").arg(&out).arg("--json").output().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["warnings"].as_array().map_or(0, Vec::len), 0, "{st}");
    assert!(st["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["update_level"] == "4.2.0.8" && p["status"] == "current"));

    // A second run: current, nothing changed, exit 0.
    let o = split_at(&home, &out, 8, &calls, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let again = json(&o);
    assert_eq!(again["changed"], false, "{again}");
    assert!(again["profiles"].as_array().unwrap().iter().all(|p| p["status"] == "current"), "{again}");
    assert_eq!(digest(&home), before_home, "the home changed");
}

#[test]
fn a_level_asked_for_is_reached_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let calls = tmp.path().join("calls.log");
    assert!(split_at(&home, &out, 9, &calls, &["--update-level", "7"]).status.success());
    // The level is there: no tool run.
    let o = split_at(&home, &out, 9, &calls, &["--update-level", "4.2.0.7"]);
    assert!(o.status.success());
    assert!(json(&o)["profiles"].as_array().unwrap().iter().all(|p| p["status"] == "current"));
    assert_eq!(runs(&calls), 1);
    // Forward to 8: every copy there.
    let o = split_at(&home, &out, 9, &calls, &["--update-level", "8"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(json(&o)["profiles"].as_array().unwrap().iter().all(|p| p["update"]["level"] == "4.2.0.8"));
    // Back to 7: refused, nothing written, the next step named.
    let before = digest(&out);
    let o = split_at(&home, &out, 9, &calls, &["--update-level", "7"]);
    assert_eq!(o.status.code(), Some(2));
    let err = json(&o);
    assert!(err["hint"].as_str().unwrap_or_default().contains("--revert"), "{err}");
    assert_eq!(digest(&out), before);
    // Copies made without the update are updated by the same command.
    let plain = tmp.path().join("plain");
    split_no_update(&home, &plain).assert().success();
    let o = split_at(&home, &plain, 9, &calls, &["--update-level", "9"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for p in json(&o)["profiles"].as_array().unwrap() {
        assert_eq!(p["status"], "updated", "{p}");
        assert_eq!(p["update"]["level"], "4.2.0.9");
    }
}

#[test]
fn a_changed_copy_is_not_rolled_forward_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let calls = tmp.path().join("calls.log");
    assert!(split_at(&home, &out, 7, &calls, &[]).status.success());
    let edited = copy(&out, "gateway-worker").join("repository/conf/carbon.xml");
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push_str("<!-- a hand edit -->\n");
    std::fs::write(&edited, text).unwrap();

    let before = digest(&out);
    let o = split_at(&home, &out, 8, &calls, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
    let err = json(&o);
    let msg = err["error"].as_str().unwrap();
    assert!(msg.contains("gateway-worker") && msg.contains("repository/conf/carbon.xml"), "{msg}");
    assert!(err["hint"].as_str().unwrap().contains("--force"), "{err}");
    assert_eq!(runs(&calls), 1, "the tool ran for a refused roll forward");
    assert_eq!(digest(&out), before, "a refused run wrote");

    let o = split_at(&home, &out, 8, &calls, &["--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = json(&o);
    let gw = report["profiles"].as_array().unwrap().iter().find(|p| p["profile"] == "gateway-worker").unwrap();
    assert_eq!(gw["status"], "updated");
    assert!(gw["drift"].to_string().contains("repository/conf/carbon.xml"), "{gw}");
    assert!(gw["notes"].to_string().contains("discarded"), "{gw}");
    assert!(!std::fs::read_to_string(&edited).unwrap().contains("a hand edit"));
    assert_eq!(gw["update"]["level"], "4.2.0.8");
}
