//! Re-runs that tell the truth (issue 12): every copy already in the output
//! is examined from what is on disk and in its record, never from the record
//! alone. Each status and transition through the real binary: conflicts that
//! stay conflicts until continued, drift of each kind, stale inputs named,
//! bounded update failures, the dry-run's preflight, corrupt records, and
//! homes the tool must not take as a source.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;

const PASSWORD: &str = "Rerun-Pa55word!";
const GW: &str = "gateway-worker";

struct Setup {
    tmp: tempfile::TempDir,
    home: PathBuf,
    out: PathBuf,
    calls: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let home = home_in(&tmp.path().join("src"));
        let out = tmp.path().join("out");
        let calls = tmp.path().join("calls.log");
        Setup { tmp, home, out, calls }
    }
    fn copy(&self, profile: &str) -> PathBuf {
        self.out.join(profile).join("wso2am-4.2.0")
    }
    /// `split HOME --out OUT --json --no-update`, then `extra`.
    fn split(&self, extra: &[&str]) -> assert_cmd::Command {
        let mut c = bin();
        c.arg("split").arg(&self.home).arg("--out").arg(&self.out).args(["--json", "--no-update"]).args(extra);
        c
    }
    /// `split` with the update double in `scenario` and credentials, in the
    /// each order (a copy that stops on conflicts is published for a person).
    fn split_update(&self, scenario: &str, extra: &[&str]) -> assert_cmd::Command {
        let mut c = bin();
        c.arg("split")
            .arg(&self.home)
            .arg("--out")
            .arg(&self.out)
            .arg("--json")
            .arg("--update-each")
            .arg("--update-tool")
            .arg(double())
            .args(extra);
        self.double_env(&mut c, scenario);
        c
    }
    /// `update` of a copy, with a level above split's (5) on offer.
    fn update(&self, scenario: &str, copy: &Path, extra: &[&str]) -> assert_cmd::Command {
        let mut c = bin();
        c.arg("update").arg(copy).arg("--json").arg("--update-tool").arg(double()).args(extra);
        self.double_env(&mut c, scenario);
        c.env("APIM_DOUBLE_LATEST_LEVEL", "6");
        c
    }
    fn double_env(&self, c: &mut assert_cmd::Command, scenario: &str) {
        c.env("WSO2_USERNAME", "ops@example.com")
            .env("WSO2_PASSWORD", PASSWORD)
            .env("APIM_DOUBLE_SCENARIO", scenario)
            .env("APIM_DOUBLE_EXPECT_PASSWORD", PASSWORD)
            .env("APIM_DOUBLE_CALLS", &self.calls);
    }
    /// The tool's update runs (its `current-state` questions left out).
    fn calls(&self) -> usize {
        let text = std::fs::read_to_string(&self.calls).unwrap_or_default();
        text.lines().filter(|l| !l.contains("args=current-state")).count()
    }
}

fn run(mut c: assert_cmd::Command) -> (i32, Value, String) {
    let o: Output = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("no JSON on stdout ({e}): {}\n{stderr}", String::from_utf8_lossy(&o.stdout)));
    (o.status.code().unwrap_or(-1), v, stderr)
}

fn profile<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["profiles"]
        .as_array()
        .unwrap_or_else(|| panic!("no profiles in {v}"))
        .iter()
        .find(|p| p["profile"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

/// Everything a run could change under `dir`: contents, modes, links and times.
fn state(dir: &Path) -> (std::collections::BTreeMap<String, Item>, std::collections::BTreeMap<String, (i64, i64)>) {
    (digest(dir), mtimes(dir))
}

fn touch_old(p: &Path) {
    let st = std::process::Command::new("touch").args(["-h", "-d", "2001-02-03 04:05:06"]).arg(p).status().unwrap();
    assert!(st.success());
}

// ---------------------------------------------------------------- conflicts

#[test]
fn conflicts_stay_conflicts_until_continued_then_current() {
    let s = Setup::new();
    let (code, v, _) = run(s.split_update("conflicts", &["--profiles", GW]));
    assert_eq!(code, 3, "{v}");
    let gw = s.copy(GW);
    let calls = s.calls();
    let before = state(&s.out);

    // The same split again: still conflicts, exit 3, the files listed again with how to resume.
    let (code, v, stderr) = run(s.split_update("conflicts", &["--profiles", GW]));
    assert_eq!(code, 3, "{v}\n{stderr}");
    let p = profile(&v, GW);
    assert_eq!(p["status"], "conflicts", "{p}");
    assert_eq!(p["changed"], false);
    assert_eq!(v["changed"], false);
    let listed = p["update"]["conflicts"].to_string();
    assert!(listed.contains("repository/conf/deployment.toml"), "{p}");
    assert!(stderr.contains("update --continue") && stderr.contains(&gw.display().to_string()), "{stderr}");
    assert!(stderr.contains(".final"), "{stderr}");
    assert_eq!(s.calls(), calls, "a re-run over a pending conflict must not run the tool");
    assert_eq!(state(&s.out), before, "a re-run over a pending conflict changed something");

    // Half resolved (one .final saved): still conflicts, not drifted.
    std::fs::copy(gw.join(TOML), gw.join(format!("{TOML}.final"))).unwrap();
    let (code, v, _) = run(s.split_update("conflicts", &["--profiles", GW]));
    assert_eq!(code, 3);
    assert_eq!(profile(&v, GW)["status"], "conflicts");

    // Resolve the rest, continue: then the same split is current.
    let axis2 = format!("{T}/repository/conf/axis2/axis2.xml.j2");
    std::fs::copy(gw.join(&axis2), gw.join(format!("{axis2}.final"))).unwrap();
    let (code, v, stderr) = run(s.update("conflicts", &gw, &["--continue"]));
    assert_eq!(code, 0, "{v}\n{stderr}");
    let (code, v, stderr) = run(s.split_update("conflicts", &["--profiles", GW]));
    assert_eq!(code, 0, "{v}\n{stderr}");
    assert_eq!(profile(&v, GW)["status"], "current");
    assert_eq!(v["changed"], false);
}

#[test]
fn update_without_continue_on_a_pending_conflict_answers_conflicts_and_runs_nothing() {
    let s = Setup::new();
    let (code, _, _) = run(s.split_update("conflicts", &["--profiles", GW]));
    assert_eq!(code, 3);
    let calls = s.calls();
    let before = state(&s.out);
    let (code, v, stderr) = run(s.update("conflicts", &s.copy(GW), &[]));
    assert_eq!(code, 3, "{v}\n{stderr}");
    assert_eq!(v["profiles"][0]["status"], "conflicts");
    assert!(stderr.contains("--continue"), "{stderr}");
    assert_eq!(s.calls(), calls);
    assert_eq!(state(&s.out), before);
}

// ---------------------------------------------------------------- drift

type Change = fn(&Setup, &Path) -> String;

fn drift_kinds() -> Vec<(&'static str, Change)> {
    vec![
        ("entry added", |_, c| {
            std::fs::write(c.join("repository/conf/added-by-hand.txt"), b"x").unwrap();
            "repository/conf/added-by-hand.txt".into()
        }),
        ("entry removed", |_, c| {
            std::fs::remove_file(c.join("lib/fixture-endorsed.jar")).unwrap();
            "lib/fixture-endorsed.jar".into()
        }),
        ("size changed (a script edited)", |_, c| {
            let f = c.join("bin/api-manager.sh");
            let mut b = read(&f);
            b.extend_from_slice(b"\necho edited\n");
            std::fs::write(&f, b).unwrap();
            "bin/api-manager.sh".into()
        }),
        ("mode changed", |_, c| {
            std::fs::set_permissions(c.join("bin/api-manager.sh"), std::fs::Permissions::from_mode(0o600)).unwrap();
            "bin/api-manager.sh".into()
        }),
        ("modification time changed", |_, c| {
            touch_old(&c.join("README.txt"));
            "README.txt".into()
        }),
        ("type changed", |_, c| {
            let f = c.join("README.txt");
            std::fs::remove_file(&f).unwrap();
            std::fs::create_dir(&f).unwrap();
            "README.txt".into()
        }),
        ("link target changed", |_, c| {
            let l = c.join("bin/wso2server.sh");
            std::fs::remove_file(&l).unwrap();
            std::os::unix::fs::symlink("elsewhere.sh", &l).unwrap();
            "bin/wso2server.sh".into()
        }),
        ("a removed entry back", |s, c| {
            let w = format!("{WEBAPPS}/api#am#publisher.war");
            std::fs::copy(s.home.join(&w), c.join(&w)).unwrap();
            w
        }),
    ]
}

#[test]
fn drift_of_each_kind_is_reported_touches_nothing_and_force_rebuilds() {
    for (kind, change) in drift_kinds() {
        let s = Setup::new();
        s.split(&["--profiles", GW]).assert().success();
        let gw = s.copy(GW);
        let path = change(&s, &gw);
        let before = state(&s.out);

        let (code, v, stderr) = run(s.split(&["--profiles", GW]));
        assert_eq!(code, 4, "{kind}: {v}\n{stderr}");
        let p = profile(&v, GW);
        assert_eq!(p["status"], "drifted", "{kind}: {p}");
        assert_eq!(p["changed"], false, "{kind}");
        assert_eq!(v["changed"], false, "{kind}");
        assert!(p["drift"].to_string().contains(&path), "{kind}: {path} not in {}", p["drift"]);
        assert_eq!(state(&s.out), before, "{kind}: a drifted copy was touched");

        // The human report lists it too.
        let o = bin()
            .arg("split")
            .arg(&s.home)
            .arg("--out")
            .arg(&s.out)
            .args(["--no-update", "--profiles", GW])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(4), "{kind}");
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(text.contains("drifted") && text.contains(&path) && text.contains("--force"), "{kind}: {text}");

        // verify sees the same difference.
        let (code, v, _) = run({
            let mut c = bin();
            c.arg("verify").arg(&gw).arg("--json");
            c
        });
        assert_eq!(code, 4, "{kind}: verify {v}");
        assert!(v["profiles"][0]["drift"].to_string().contains(&path), "{kind}: verify {v}");

        // The dry-run previews the replacement, with the reason.
        let (code, v, _) = run(s.split(&["--profiles", GW, "--dry-run"]));
        assert_eq!(code, 0, "{kind}: {v}");
        let p = profile(&v, GW);
        assert_eq!(p["status"], "would-replace", "{kind}: {p}");
        assert!(p["reason"].as_str().unwrap_or_default().contains("drift"), "{kind}: {p}");
        assert_eq!(state(&s.out), before, "{kind}: the dry-run wrote something");

        // --force rebuilds it, then the same split is current.
        let (code, v, _) = run(s.split(&["--profiles", GW, "--force"]));
        assert_eq!(code, 0, "{kind}: {v}");
        assert_eq!(profile(&v, GW)["status"], "replaced", "{kind}");
        let (code, v, _) = run(s.split(&["--profiles", GW]));
        assert_eq!(code, 0, "{kind}: {v}");
        assert_eq!(profile(&v, GW)["status"], "current", "{kind}");
        assert_eq!(names_in(&s.out.join(GW)), ["wso2am-4.2.0"], "{kind}: something left beside the copy");
    }
}

#[test]
fn many_differences_are_listed_first_twenty_and_counted() {
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    for i in 0..25 {
        std::fs::write(s.copy(GW).join(format!("repository/conf/extra-{i:02}.txt")), b"x").unwrap();
    }
    let (code, v, _) = run(s.split(&["--profiles", GW]));
    assert_eq!(code, 4);
    let p = profile(&v, GW);
    assert_eq!(p["drift"].as_array().unwrap().len(), 20, "{p}");
    assert_eq!(p["drift_total"], 25, "{p}");
    let o = bin()
        .arg("split")
        .arg(&s.home)
        .arg("--out")
        .arg(&s.out)
        .args(["--no-update", "--profiles", GW])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("and 5 more"), "{text}");
}

#[test]
fn verify_sees_edited_and_deleted_files() {
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    let gw = s.copy(GW);
    bin().arg("verify").arg(&gw).assert().success();
    let f = gw.join("bin/api-manager.sh");
    let mut b = read(&f);
    b.extend_from_slice(b"# edited\n");
    std::fs::write(&f, b).unwrap();
    let (code, v, _) = run({
        let mut c = bin();
        c.arg("verify").arg(&gw).arg("--json");
        c
    });
    assert_eq!(code, 4, "{v}");
    assert!(v["profiles"][0]["drift"].to_string().contains("bin/api-manager.sh"), "{v}");
    std::fs::remove_file(gw.join("lib/fixture-endorsed.jar")).unwrap();
    let o = bin().arg("verify").arg(&gw).output().unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stdout).contains("lib/fixture-endorsed.jar"));
}

#[test]
fn update_refuses_to_touch_a_drifted_copy() {
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    let gw = s.copy(GW);
    std::fs::write(gw.join("repository/conf/added-by-hand.txt"), b"x").unwrap();
    let before = state(&s.out);
    let (code, v, _) = run(s.update("success", &gw, &[]));
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["profiles"][0]["status"], "drifted");
    assert!(v["profiles"][0]["drift"].to_string().contains("added-by-hand.txt"));
    assert_eq!(s.calls(), 0, "the tool ran on a drifted copy");
    assert_eq!(state(&s.out), before);
}

// ---------------------------------------------------------------- stale

#[test]
fn a_stale_source_is_refused_naming_the_paths_and_previewed_by_dry_run() {
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    let before = state(&s.out);
    let f = s.home.join("bin/api-manager.sh");
    let mut b = read(&f);
    b.extend_from_slice(b"# a source edit\n");
    std::fs::write(&f, b).unwrap();
    let (code, v, stderr) = run(s.split(&["--profiles", GW]));
    assert_eq!(code, 2, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("stale") && err.contains("bin/api-manager.sh"), "{err}");
    assert!(stderr.contains("bin/api-manager.sh") && stderr.contains("--force"), "{stderr}");
    assert_eq!(state(&s.out), before);

    // Added and removed paths are named too; past ten, a count.
    std::fs::remove_file(s.home.join("lib/fixture-endorsed.jar")).unwrap();
    for i in 0..12 {
        std::fs::write(s.home.join(format!("repository/conf/new-{i:02}.txt")), b"n").unwrap();
    }
    let (code, v, _) = run(s.split(&["--profiles", GW]));
    assert_eq!(code, 2);
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("lib/fixture-endorsed.jar"), "{err}");
    assert!(err.contains("repository/conf/new-00.txt"), "{err}");
    assert!(err.contains("and 4 more"), "14 differences, 10 named: {err}");

    // The dry-run previews the replacement with the reason, exit 0.
    let (code, v, _) = run(s.split(&["--profiles", GW, "--dry-run"]));
    assert_eq!(code, 0, "{v}");
    let p = profile(&v, GW);
    assert_eq!(p["status"], "would-replace");
    assert!(p["reason"].as_str().unwrap().contains("lib/fixture-endorsed.jar"), "{p}");
    assert_eq!(state(&s.out), before);

    let (code, v, _) = run(s.split(&["--profiles", GW, "--force"]));
    assert_eq!(code, 0, "{v}");
    assert_eq!(profile(&v, GW)["status"], "replaced");
    let (code, v, _) = run(s.split(&["--profiles", GW]));
    assert_eq!((code, profile(&v, GW)["status"].as_str().unwrap()), (0, "current"));
}

#[test]
fn stale_options_and_profile_definitions_are_named() {
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    let (code, v, _) = run(s.split(&["--profiles", GW, "--skip-config-optimization"]));
    assert_eq!(code, 2);
    assert!(v["error"].as_str().unwrap().contains("--skip-config-optimization"), "{v}");
    let (code, v, _) = run(s.split(&["--profiles", GW, "--set", "server.hostname=\"gw.example.com\""]));
    assert_eq!(code, 2);
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("--set") || err.contains("settings"), "{err}");
    // Another profile definition (a --profile-dir with one step more).
    let defs = s.tmp.path().join("defs/4.2.0");
    std::fs::create_dir_all(&defs).unwrap();
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/4.2.0/gateway-worker.toml"))
            .unwrap();
    std::fs::write(
        defs.join("gateway-worker.toml"),
        format!("{text}\n[[step]]\nop = \"remove\"\npaths = [\"README.txt\"]\n"),
    )
    .unwrap();
    let (code, v, _) =
        run(s.split(&["--profiles", GW, "--profile-dir", &defs.parent().unwrap().display().to_string()]));
    assert_eq!(code, 2);
    assert!(v["error"].as_str().unwrap().contains("profile definition"), "{v}");
}

// ---------------------------------------------------------------- update failures

/// Every absolute path below `root` that a string of the document names.
fn named_paths(v: &Value, root: &Path, into: &mut Vec<PathBuf>) {
    match v {
        Value::String(text) => {
            let r = root.display().to_string();
            let mut rest = text.as_str();
            while let Some(i) = rest.find(&r) {
                let tail = &rest[i..];
                let end =
                    tail.find(|c: char| c.is_whitespace() || c == ';' || c == ',' || c == ')').unwrap_or(tail.len());
                into.push(PathBuf::from(tail[..end].trim_end_matches(['.', ':'])));
                rest = &tail[end..];
            }
        }
        Value::Array(a) => a.iter().for_each(|x| named_paths(x, root, into)),
        Value::Object(o) => o.values().for_each(|x| named_paths(x, root, into)),
        _ => {}
    }
}

#[test]
fn three_failed_updates_leave_one_failed_copy_and_name_only_paths_that_exist() {
    let s = Setup::new();
    for attempt in 1..=3 {
        let (code, v, stderr) = run(s.split_update("error", &["--profiles", GW]));
        assert_eq!(code, 1, "attempt {attempt}: {v}");
        let p = profile(&v, GW);
        assert_eq!(p["status"], "failed");
        let kept: Vec<String> = names_in(&s.out.join(GW)).into_iter().filter(|n| n.contains("update-failed")).collect();
        assert_eq!(kept, ["wso2am-4.2.0.update-failed"], "attempt {attempt}");
        assert!(!s.copy(GW).exists());
        let mut paths = Vec::new();
        named_paths(&v, s.tmp.path(), &mut paths);
        let logs = p["update"]["logs"].as_str().unwrap();
        assert!(Path::new(logs).exists(), "attempt {attempt}: logs {logs} do not exist");
        assert!(logs.contains("update-failed"), "the logs are with the failed copy: {logs}");
        assert!(!paths.is_empty());
        for path in &paths {
            assert!(path.exists(), "attempt {attempt}: {} is named but does not exist\n{v}", path.display());
            assert!(!path.display().to_string().contains("staging"), "a staging path is named: {}", path.display());
        }
        assert!(!stderr.contains("apim-profiles-staging"), "{stderr}");
        if attempt > 1 {
            assert!(p["notes"].to_string().contains("replaced the failed copy"), "attempt {attempt}: {p}");
        }
    }
}

// ---------------------------------------------------------------- dry-run preflight

#[test]
fn dry_run_meets_the_real_runs_preconditions() {
    let s = Setup::new();
    let dry = |creds: bool| {
        let mut c = bin();
        c.arg("split").arg(&s.home).arg("--out").arg(&s.out).args(["--json", "--dry-run", "--profiles", GW]);
        c.arg("--update-tool").arg(double());
        if creds {
            c.env("WSO2_USERNAME", "ops@example.com").env("WSO2_PASSWORD", PASSWORD);
        }
        c
    };
    // No credentials: refused the way the real run is.
    let (code, v, stderr) = run(dry(false));
    assert_eq!(code, 2, "{v}");
    assert!(stderr.contains("WSO2_USERNAME") && stderr.contains("hint:"), "{stderr}");
    assert!(!s.out.exists());
    // No tool.
    let (code, v, _) = run({
        let mut c = bin();
        c.arg("split").arg(&s.home).arg("--out").arg(&s.out).args(["--json", "--dry-run", "--profiles", GW]);
        c.env("WSO2_USERNAME", "ops@example.com").env("WSO2_PASSWORD", PASSWORD);
        c
    });
    assert_eq!(code, 2);
    assert!(v["error"].as_str().unwrap().contains("no update tool"), "{v}");
    // Not enough space.
    let (code, v, _) = run({
        let mut c = dry(true);
        c.env("APIM_PROFILES_PRETEND_FREE_BYTES", "1");
        c
    });
    assert_eq!(code, 2);
    assert!(v["error"].as_str().unwrap().contains("not enough disk space"), "{v}");
    // A backup directory that cannot be made (its place is a file).
    std::fs::create_dir_all(s.out.join(GW)).unwrap();
    std::fs::write(s.out.join(GW).join(".apim-profiles-update-backup"), b"not a dir").unwrap();
    let (code, v, _) = run(dry(true));
    assert_eq!(code, 2, "{v}");
    assert!(v["error"].as_str().unwrap().contains(".apim-profiles-update-backup"), "{v}");
    std::fs::remove_file(s.out.join(GW).join(".apim-profiles-update-backup")).unwrap();
    // Everything there: the preview says what the update would run, and with which credentials.
    let (code, v, stderr) = run(dry(true));
    assert_eq!(code, 0, "{v}\n{stderr}");
    let notes = profile(&v, GW)["notes"].to_string();
    assert!(notes.contains("update: would run") && notes.contains("wso2update_linux"), "{notes}");
    assert!(notes.contains("WSO2_USERNAME"), "{notes}");
    assert!(!v.to_string().contains(PASSWORD) && !stderr.contains(PASSWORD));
    assert!(!s.copy(GW).exists());
}

// ---------------------------------------------------------------- records

fn record_path(copy: &Path) -> PathBuf {
    copy.join(".apim-profiles.json")
}

fn edit_record(copy: &Path, f: impl FnOnce(&mut Value)) {
    let p = record_path(copy);
    let mut v: Value = serde_json::from_slice(&read(&p)).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn assert_refused_corrupt(s: &Setup, what: &str) {
    for force in [false, true] {
        let mut c = s.split(&["--profiles", GW]);
        if force {
            c.arg("--force");
        }
        let (code, v, stderr) = run(c);
        assert_eq!(code, 2, "{what} (force {force}): {v}");
        assert!(v["error"].as_str().unwrap().contains("corrupt"), "{what}: {v}");
        assert!(stderr.contains("hint:"), "{what}: {stderr}");
    }
    let (code, v, _) = run({
        let mut c = bin();
        c.arg("verify").arg(s.copy(GW)).arg("--json");
        c
    });
    assert_eq!(code, 2, "{what}: verify {v}");
    let (code, v, _) = run(s.update("success", &s.copy(GW), &[]));
    assert_eq!(code, 2, "{what}: update {v}");
    assert_eq!(s.calls(), 0, "{what}: the update ran on a corrupt record");
}

#[test]
fn a_tampered_record_is_refused_and_nothing_outside_the_copy_is_touched() {
    // Invalid JSON.
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    std::fs::write(record_path(&s.copy(GW)), b"{ not json").unwrap();
    let before = state(&s.tmp.path().join("out"));
    assert_refused_corrupt(&s, "invalid JSON");
    assert_eq!(state(&s.tmp.path().join("out")), before);

    // Paths that leave the copy, with a file there to lose.
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    let victim = s.tmp.path().join("victim.txt");
    std::fs::write(&victim, b"keep me").unwrap();
    edit_record(&s.copy(GW), |v| {
        let list = v["copy_fingerprint"].as_array_mut().expect("the record keeps copy_fingerprint as a list");
        list.push(Value::String("f 644 7 1000000000.000000000 ../../../victim.txt".into()));
        list.push(Value::String("f 644 7 1000000000.000000000 /etc/passwd".into()));
    });
    let before = state(&s.out);
    assert_refused_corrupt(&s, "paths leaving the copy");
    assert_eq!(read(&victim), b"keep me");
    assert_eq!(state(&s.out), before);

    // Unreadable: the record's place holds a directory.
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    std::fs::remove_file(record_path(&s.copy(GW))).unwrap();
    std::fs::create_dir(record_path(&s.copy(GW))).unwrap();
    assert_refused_corrupt(&s, "unreadable");
}

#[test]
fn a_record_naming_another_profile_is_refused() {
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    let before = state(&s.out);
    edit_record(&s.copy(GW), |v| v["profile"] = Value::String("control-plane".into()));
    let edited = state(&s.out);
    assert_refused_corrupt(&s, "profile edited");
    assert_eq!(state(&s.out), edited, "the copy was re-optimized for another profile");
    assert_ne!(before, edited);
}

// ---------------------------------------------------------------- optimize and steps

#[test]
fn optimize_on_a_split_copy_keeps_the_next_split_current() {
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    let (code, v, _) = run({
        let mut c = bin();
        c.arg("optimize").arg(s.copy(GW)).args(["--profile", GW, "--json"]);
        c
    });
    assert_eq!(code, 0);
    assert_eq!(v["changed"], false, "{v}");
    let (code, v, stderr) = run(s.split(&["--profiles", GW]));
    assert_eq!(code, 0, "{v}\n{stderr}");
    assert_eq!(profile(&v, GW)["status"], "current");
    // A webapp brought back and removed again by optimize: the copy is the tool's again.
    let w = format!("{WEBAPPS}/api#am#publisher.war");
    std::fs::copy(s.home.join(&w), s.copy(GW).join(&w)).unwrap();
    let (code, v, _) = run({
        let mut c = bin();
        c.arg("optimize").arg(s.copy(GW)).args(["--profile", GW, "--json"]);
        c
    });
    assert_eq!((code, v["changed"].as_bool()), (0, Some(true)), "{v}");
    let (code, v, _) = run(s.split(&["--profiles", GW]));
    assert_eq!((code, profile(&v, GW)["status"].as_str().unwrap()), (0, "current"), "{v}");
}

#[test]
fn a_step_that_cannot_do_what_the_profile_asks_is_not_silently_created() {
    // webapps/ is a link to a directory elsewhere.
    let s = Setup::new();
    let real = s.tmp.path().join("webapps-elsewhere");
    std::fs::rename(s.home.join(WEBAPPS), &real).unwrap();
    std::os::unix::fs::symlink(&real, s.home.join(WEBAPPS)).unwrap();
    let (code, v, stderr) = run(s.split(&["--profiles", GW]));
    assert_eq!(code, 2, "{v}\n{stderr}");
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("webapps") && err.contains("link"), "{err}");
    assert!(!s.out.exists(), "written despite the refusal");
    let o = bin().arg("optimize").arg(&s.home).args(["--profile", GW]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(real.join("api#am#publisher.war").exists(), "optimize removed through the link");

    // The profile's deployment template is missing.
    let s = Setup::new();
    std::fs::remove_file(s.home.join(format!("{DTPL}/gateway-worker.toml"))).unwrap();
    let (code, v, _) = run(s.split(&["--profiles", GW]));
    assert_eq!(code, 2, "{v}");
    assert!(v["error"].as_str().unwrap().contains("gateway-worker.toml"), "{v}");
    assert!(!s.out.exists());
    // Without config optimization the template is not needed.
    let (code, v, _) = run(s.split(&["--profiles", GW, "--skip-config-optimization"]));
    assert_eq!((code, profile(&v, GW)["status"].as_str().unwrap()), (0, "created"));

    // A copy whose webapps/ became a link afterwards: verify names it.
    let s = Setup::new();
    s.split(&["--profiles", GW]).assert().success();
    let w = s.copy(GW).join(WEBAPPS);
    std::fs::rename(&w, s.tmp.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(s.tmp.path().join("moved"), &w).unwrap();
    let (code, v, _) = run({
        let mut c = bin();
        c.arg("verify").arg(s.copy(GW)).arg("--json");
        c
    });
    assert_eq!(code, 4, "{v}");
    assert!(v["profiles"][0]["drift"].to_string().contains("webapps"), "{v}");
}

#[test]
fn a_copy_made_by_split_is_refused_as_home() {
    let s = Setup::new();
    s.split(&["--profiles", "control-plane"]).assert().success();
    let cp = s.copy("control-plane");
    let out2 = s.tmp.path().join("out2");
    let again = |home: &Path| {
        let mut c = bin();
        c.arg("split").arg(home).arg("--out").arg(&out2).args(["--json", "--no-update", "--profiles", GW]);
        c
    };
    let (code, v, stderr) = run(again(&cp));
    assert_eq!(code, 2, "{v}");
    assert!(v["error"].as_str().unwrap().contains("control-plane"), "{v}");
    assert!(stderr.contains("hint:") && stderr.contains("original"), "{stderr}");
    assert!(!out2.exists());
    // Without its record, its server_role and removed entries still say so.
    std::fs::remove_file(record_path(&cp)).unwrap();
    let (code, v, _) = run(again(&cp));
    assert_eq!(code, 2, "{v}");
    assert!(v["error"].as_str().unwrap().contains("optimized"), "{v}");
    assert!(!out2.exists());
    // A home optimized in place is refused the same way.
    let h = home_in(&s.tmp.path().join("inplace"));
    bin().arg("optimize").arg(&h).args(["--profile", "traffic-manager"]).assert().success();
    let (code, _, _) = run(again(&h));
    assert_eq!(code, 2);
    // The original pack is fine.
    let (code, _, _) = run(again(&s.home));
    assert_eq!(code, 0);
}

#[test]
fn a_copy_whose_last_update_did_not_finish_is_not_current() {
    let s = Setup::new();
    let (code, _, _) = run(s.split_update("success", &["--profiles", GW]));
    assert_eq!(code, 0);
    // An update in place that fails: the copy stays, its record says so.
    let (code, v, _) = run(s.update("error", &s.copy(GW), &[]));
    assert_eq!(code, 1, "{v}");
    assert!(Path::new(v["profiles"][0]["update"]["logs"].as_str().unwrap()).exists(), "{v}");
    let (code, v, stderr) = run(s.split_update("success", &["--profiles", GW]));
    assert_eq!(code, 2, "a re-run must not call it current: {v}\n{stderr}");
    assert!(v["error"].as_str().unwrap().contains("did not finish"), "{v}");
    // Updating it again (successfully) makes it current.
    let (code, v, _) = run(s.update("success", &s.copy(GW), &[]));
    assert_eq!(code, 0, "{v}");
    let (code, v, _) = run(s.split_update("success", &["--profiles", GW]));
    assert_eq!((code, profile(&v, GW)["status"].as_str().unwrap()), (0, "current"), "{v}");
}
