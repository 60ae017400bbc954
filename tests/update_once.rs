//! `split --update-once`: the update runs once, in a staging copy of the home,
//! and the copies are made from the updated home. Proved against the per-copy
//! order with the update double (fixtures/update-tool): the same copies, except
//! the update tool's own state and the extra backups re-optimization keeps.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

const PASSWORD: &str = "0nce-Pa55word!";
const PROFILES: [&str; 3] = ["control-plane", "gateway-worker", "traffic-manager"];

fn split(home: &Path, out: &Path, calls: &Path, scenario: &str, extra: &[&str]) -> std::process::Output {
    split_with_double(home, out, scenario, PASSWORD).args(extra).env("APIM_DOUBLE_CALLS", calls).output().unwrap()
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

/// What the update tool keeps about itself: its state and logs (`updates/`,
/// which hold dates and the backup place).
fn tool_state(rel: &str) -> bool {
    rel == "updates" || rel.starts_with("updates/")
}

fn without_tool_state(m: BTreeMap<String, Item>) -> BTreeMap<String, Item> {
    m.into_iter().filter(|(k, _)| !tool_state(k)).collect()
}

#[test]
fn update_once_gives_the_per_copy_orders_copies_with_one_tool_run() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    // A root with its own mode and time, which every copy's root must take.
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    let t = filetime::FileTime::from_unix_time(1_100_000_000, 0);
    filetime::set_file_times(&home, t, t).unwrap();
    let before = digest(&home);
    let (each, once) = (tmp.path().join("each"), tmp.path().join("once"));
    let (calls_each, calls_once) = (tmp.path().join("each.log"), tmp.path().join("once.log"));

    let o = split(&home, &each, &calls_each, "success", &["--update-each"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = split(&home, &once, &calls_once, "success", &["--update-once"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = json(&o);

    // One tool run for three profiles, against three in the per-copy order.
    let runs = |p: &Path| std::fs::read_to_string(p).unwrap().lines().filter(|l| l.contains("--backup")).count();
    assert_eq!(runs(&calls_each), 3);
    assert_eq!(runs(&calls_once), 1);
    // HOME itself was never written.
    assert_eq!(digest(&home), before, "the home changed");

    for p in PROFILES {
        let a = each.join(p).join("wso2am-4.2.0");
        let b = once.join(p).join("wso2am-4.2.0");
        let (da, db) = (digest(&a), digest(&b));
        // The update reached the copy: what it brought back is removed again
        // where the profile removes it, its new jar and template change are kept.
        assert!(db.contains_key("repository/components/dropins/wso2-update-fix-5.jar"), "{p}: not updated");
        assert!(db.contains_key("updates/config.json"), "{p}: no update state");
        assert_eq!(without_tool_state(da), without_tool_state(db), "{p}: the orders' copies differ");
        // The root is the home's, as in the per-copy order (not the staged home's).
        let (ma, mb) = (std::fs::metadata(&a).unwrap(), std::fs::metadata(&b).unwrap());
        use std::os::unix::fs::MetadataExt;
        assert_eq!((mb.mode(), mb.mtime()), (ma.mode(), ma.mtime()), "{p}: the copy's root");
        assert_eq!(mb.mtime(), 1_100_000_000, "{p}: the copy's root time");
    }
    // The once order made no `.backup.N` where the per-copy order needed one.
    let tm = "repository/resources/conf/templates/repository/conf/axis2/axis2.xml.j2";
    let tm_once = once.join("traffic-manager/wso2am-4.2.0").join(tm);
    let tm_each = each.join("traffic-manager/wso2am-4.2.0").join(tm);
    assert_eq!(read(&tm_once), read(&tm_each));

    for pr in report["profiles"].as_array().unwrap() {
        assert_eq!(pr["status"], "created");
        assert_eq!(pr["update"]["status"], "updated");
    }
    // No staging left in the output.
    for e in std::fs::read_dir(&once).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("apim-profiles-staging"), "left behind: {name}");
    }
    verify_all(&once);

    // A re-run asks the tool once, on the kept base, for a newer level
    // ("latest" is the default); there is none, so the copies are current.
    assert!(once.join(".apim-profiles-base/wso2am-4.2.0/updates/config.json").is_file());
    let o = split(&home, &once, &calls_once, "success", &["--update-once"]);
    assert!(o.status.success());
    assert!(json(&o)["profiles"].as_array().unwrap().iter().all(|p| p["status"] == "current"));
    assert_eq!(runs(&calls_once), 2);
    // With the level the copies are at, the tool is not even asked.
    let o = split(&home, &once, &calls_once, "success", &["--update-once", "--update-level", "5"]);
    assert!(o.status.success());
    assert!(json(&o)["profiles"].as_array().unwrap().iter().all(|p| p["status"] == "current"));
    assert_eq!(runs(&calls_once), 2);
}

fn verify_all(out: &Path) {
    for p in PROFILES {
        let st = bin().arg("verify").arg(out.join(p).join("wso2am-4.2.0")).output().unwrap();
        assert!(st.status.success(), "verify {p}: {}", String::from_utf8_lossy(&st.stdout));
    }
}

#[test]
fn an_update_once_that_fails_makes_no_copy_and_keeps_the_staged_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let before = digest(&home);
    let out = tmp.path().join("out");
    let o = split(&home, &out, &tmp.path().join("calls.log"), "error", &["--update-once"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let err = json(&o);
    let text = err.to_string();
    assert!(text.contains("with --update-each"), "{text}");
    for p in PROFILES {
        assert!(!out.join(p).join("wso2am-4.2.0").exists(), "{p} was published");
    }
    assert!(out.join("wso2am-4.2.0.update-failed/updates/logs/update.log").is_file());
    assert_eq!(digest(&home), before, "the home changed");
    assert!(!text.contains(PASSWORD));
}

#[test]
fn update_once_needs_the_update() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let o = bin()
        .arg("split")
        .arg(&home)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .args(["--no-update", "--update-once"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!tmp.path().join("out").exists());
}
