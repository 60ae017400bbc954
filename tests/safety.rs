//! Never lose data: interruption (signals, kills, injected faults) leaves no
//! half-made copy where a finished one is expected and the source untouched;
//! a re-run completes. Every refusal exits 2 with a line of what is wrong and
//! one of what to do, and writes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::refusals::cases;
use common::*;
use predicates::prelude::*;

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("apim-profiles")
}

/// A generated home of `mb` megabytes under `dir`.
fn big_home(dir: &Path, mb: u64, files: u64, edge: bool) -> PathBuf {
    let mut c = Command::new(env!("CARGO_BIN_EXE_apim-gen-home"));
    c.arg(dir).arg("--template").arg(fixture()).args(["--size-mb", &mb.to_string(), "--files", &files.to_string()]);
    if edge {
        c.arg("--names-edge");
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.join("wso2am-4.2.0")
}

fn staging_dirs(out: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for p in ["control-plane", "gateway-worker", "traffic-manager"] {
        if let Ok(rd) = std::fs::read_dir(out.join(p)) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().contains("apim-profiles-staging") {
                    v.push(e.path());
                }
            }
        }
    }
    v
}

fn finals(out: &Path) -> Vec<PathBuf> {
    ["control-plane", "gateway-worker", "traffic-manager"]
        .iter()
        .map(|p| out.join(p).join("wso2am-4.2.0"))
        .filter(|p| p.exists())
        .collect()
}

fn spawn_split(home: &Path, out: &Path) -> Child {
    Command::new(exe())
        .arg("split")
        .arg(home)
        .arg("--out")
        .arg(out)
        .args(["--no-update", "--jobs", "1", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the copy has started (a staging directory exists).
fn wait_for_staging(out: &Path) {
    let t = Instant::now();
    while staging_dirs(out).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(20), "the split never started copying");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(150));
}

fn rerun_completes(home: &Path, out: &Path) -> serde_json::Value {
    let v = split_json(home, out, &[]);
    assert_eq!(finals(out).len(), 3);
    assert!(staging_dirs(out).is_empty(), "staging left after a complete run");
    for f in finals(out) {
        bin().arg("verify").arg(&f).assert().success();
    }
    v
}

#[test]
fn sigint_and_sigterm_stop_the_work_and_leave_nothing_half_made() {
    let tmp = tempfile::tempdir().unwrap();
    let home = big_home(&tmp.path().join("src"), 200, 2000, false);
    let before = digest(&home);
    for (i, sig) in [libc::SIGINT, libc::SIGTERM].into_iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        let mut child = spawn_split(&home, &out);
        wait_for_staging(&out);
        unsafe { libc::kill(child.id() as i32, sig) };
        let st = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(!st.success(), "signal {sig}: the run went on to success");
        // The JSON document says the code the process exits with: 128 + the signal.
        let mut doc = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut doc).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        assert_eq!(st.code(), Some(128 + sig), "signal {sig}: {doc}");
        assert_eq!(doc["exit_code"], 128 + sig, "signal {sig}: {doc}");
        assert!(finals(&out).is_empty(), "signal {sig}: a copy was published: {err}");
        assert!(staging_dirs(&out).is_empty(), "signal {sig}: staging left behind: {err}");
        assert!(err.contains("interrupted"), "{err}");
        assert!(!out.join(".apim-profiles.lock").exists());
        rerun_completes(&home, &out);
    }
    assert_eq!(digest(&home), before, "the source changed");
}

#[test]
fn after_sigkill_the_next_run_removes_stale_staging_and_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = big_home(&tmp.path().join("src"), 200, 2000, false);
    let before = digest(&home);
    let out = tmp.path().join("out");
    let mut child = spawn_split(&home, &out);
    wait_for_staging(&out);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(finals(&out).is_empty(), "a half-made copy is visible at the final place");
    assert!(!staging_dirs(&out).is_empty(), "a killed run cannot clean up; its staging stays");
    let v = rerun_completes(&home, &out);
    assert!(v["warnings"].to_string().contains("left by an interrupted run"), "{v}");
    assert_eq!(digest(&home), before);
}

#[test]
fn injected_faults_leave_no_copy_and_a_rerun_completes() {
    let mut tried = 0;
    for n in [0, 1, 7, 40, 150] {
        let tmp = tempfile::tempdir().unwrap();
        let home = home_in(tmp.path());
        let before = digest(&home);
        let out = tmp.path().join("out");
        split_no_update(&home, &out)
            .env("APIM_PROFILES_FAIL_AFTER_FILES", n.to_string())
            .assert()
            .code(1)
            .stderr(predicate::str::contains("fault injected").and(predicate::str::contains("no copy was published")));
        assert!(finals(&out).is_empty());
        assert!(staging_dirs(&out).is_empty());
        assert_eq!(digest(&home), before);
        rerun_completes(&home, &out);
        tried += 1;
    }
    assert_eq!(tried, 5);
}

#[test]
fn a_failed_force_rebuild_leaves_the_old_copy_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &[]);
    let old = digest(&out.join("gateway-worker/wso2am-4.2.0"));
    std::fs::write(home.join("README.txt"), "changed source\n").unwrap();
    split_no_update(&home, &out).args(["--force"]).env("APIM_PROFILES_FAIL_AFTER_FILES", "20").assert().code(1);
    assert_eq!(digest(&out.join("gateway-worker/wso2am-4.2.0")), old);
    assert!(staging_dirs(&out).is_empty());
}

#[test]
fn an_interrupted_optimize_is_completed_by_the_next_run_at_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = home_in(&tmp.path().join("clean"));
    bin().arg("optimize").arg(&clean).args(["--profile", "traffic-manager"]).assert().success();
    let want = digest(&clean);
    let o = bin()
        .arg("optimize")
        .arg(home_in(&tmp.path().join("count")))
        .args(["--profile", "traffic-manager", "--dry-run", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &v["profiles"][0];
    let actions = p["removed"].as_array().unwrap().len()
        + p["backups"].as_array().unwrap().len()
        + p["rewritten"].as_array().unwrap().len();
    assert!(actions > 10, "{actions}");
    for n in 0..actions {
        let dir = tmp.path().join(format!("n{n}"));
        let home = home_in(&dir);
        let original_toml = read(home.join(TOML));
        bin()
            .arg("optimize")
            .arg(&home)
            .args(["--profile", "traffic-manager"])
            .env("APIM_PROFILES_FAIL_AFTER_ACTIONS", n.to_string())
            .assert()
            .code(1);
        bin()
            .arg("optimize")
            .arg(&home)
            .args(["--profile", "traffic-manager"])
            .assert()
            .success()
            .stdout(predicate::str::contains("interrupted"));
        assert_eq!(digest(&home), want, "crash after {n} actions, then a re-run: not the clean result");
        assert_eq!(read(home.join(TOML_BACKUP)), original_toml);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_second_split_into_the_same_output_is_refused_and_a_stale_lock_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // A live holder: this test process, holding the lock's flock as a run does.
    let me = std::process::id();
    std::fs::write(out.join(".apim-profiles.lock"), format!("{me}\n")).unwrap();
    let held = std::fs::File::open(out.join(".apim-profiles.lock")).unwrap();
    assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&held), libc::LOCK_EX) }, 0);
    split_no_update(&home, &out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("pid {me}")).and(predicate::str::contains("hint:")));
    assert!(finals(&out).is_empty());
    drop(held);
    // A file naming a live pid that holds no flock (a killed run's pid reused)
    // is not a lock.
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    assert!(!out.join(".apim-profiles.lock").exists());
    std::fs::remove_dir_all(out.join("gateway-worker")).unwrap();
    // A dead holder: the lock is stale and taken over.
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(out.join(".apim-profiles.lock"), format!("{dead_pid}\n")).unwrap();
    split_json(&home, &out, &[]);
    assert!(!out.join(".apim-profiles.lock").exists());
}

#[test]
fn every_refusal_exits_2_with_what_and_hint_and_writes_nothing() {
    let mut tried = 0;
    for case in cases() {
        let tmp = tempfile::tempdir().unwrap();
        let home = home_in(tmp.path());
        let out = tmp.path().join("out");
        let argv = (case.prepare)(&home, &out);
        let out_before = out.exists().then(|| digest(&out));
        let before = digest(&home);
        let o = bin().args(&argv).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", case.name);
        let lines: Vec<&str> = err.lines().collect();
        assert!(lines[0].starts_with("error: ") && lines[0].contains(case.expect), "{}: {err}", case.name);
        assert!(lines.iter().any(|l| l.starts_with("hint: ")), "{}: no hint in {err}", case.name);
        assert_eq!(digest(&home), before, "{}: the home changed", case.name);
        assert_eq!(out.exists().then(|| digest(&out)), out_before, "{}: the output changed", case.name);
        // The same refusal as JSON, for playbooks.
        let o = bin().args(&argv).arg("--json").output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(v["exit_code"], 2, "{}", case.name);
        assert!(v["error"].as_str().unwrap().contains(case.expect) && v["hint"].is_string(), "{}: {v}", case.name);
        tried += 1;
    }
    assert_eq!(tried, cases().len());
}

#[test]
fn not_enough_space_is_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_no_update(&home, &out)
        .env("APIM_PROFILES_PRETEND_FREE_BYTES", "1000")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not enough disk space").and(predicate::str::contains("hint:")));
    assert!(!out.exists());
}

#[test]
fn awkward_names_links_loops_and_read_only_entries_are_copied_as_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let home = big_home(&tmp.path().join("src"), 5, 200, true);
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "control-plane"]);
    let cp = out.join("control-plane/wso2am-4.2.0");
    assert_eq!(std::fs::read_link(cp.join("repository/logs/loop-a")).unwrap(), Path::new("loop-b"));
    assert!(cp.join("repository/resources/ünïcode dir/#hash file.txt").is_file());
    assert!(cp.join("repository/logs/empty/deeper").is_dir());
    let src = digest(&home);
    let dst = digest(&cp);
    for k in ["repository/resources/readonly", "repository/resources/readonly/locked.txt"] {
        assert_eq!(src.get(k), dst.get(k), "{k}");
    }
    // A copy with read-only directories can still be replaced.
    std::fs::write(home.join("README.txt"), "changed\n").unwrap();
    split_json(&home, &out, &["--profiles", "control-plane", "--force"]);
}
