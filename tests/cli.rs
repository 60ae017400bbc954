//! Command-line hygiene (issue 14): Unix conventions for pipes, write errors
//! and signals; the contract's exit codes for bad input; contradictions
//! refused with both flags named; a declared toolchain that matches the lock;
//! names printed safely for people and losslessly for scripts.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use predicates::prelude::*;

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("apim-profiles")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A stdout whose reader is already gone: every write fails with EPIPE, as
/// in `apim-profiles profiles | true` once `true` has exited.
fn closed_pipe() -> Stdio {
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

fn run_with_stdout(args: &[&OsStr], stdout: Stdio) -> Output {
    Command::new(exe())
        .args(args)
        .env_remove("WSO2_USERNAME")
        .env_remove("WSO2_PASSWORD")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---- Unix conventions -------------------------------------------------------

#[test]
fn a_broken_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let cases: Vec<Vec<&OsStr>> = vec![
        vec!["profiles".as_ref()],
        vec!["profiles".as_ref(), "--json".as_ref()],
        vec![
            "split".as_ref(),
            home.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--dry-run".as_ref(),
            "--no-update".as_ref(),
        ],
    ];
    for args in cases {
        let o = run_with_stdout(&args, closed_pipe());
        let err = stderr_of(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: a broken pipe is not worth a message: {err}");
    }
    assert!(!out.exists());
}

#[test]
fn a_full_stdout_fails_with_exit_1_and_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let full = || Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap());
    for args in [
        vec!["profiles".as_ref()],
        vec!["profiles".as_ref(), "--json".as_ref()],
        vec![
            "split".as_ref(),
            home.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--no-update".as_ref(),
            "--json".as_ref(),
            "--profiles".as_ref(),
            "gateway-worker".as_ref(),
        ],
    ] {
        let o = run_with_stdout(&args, full());
        let err = stderr_of(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: a lost report is a failure: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains("stdout") && err.contains("No space left"), "{args:?}: {err}");
    }
}

fn big_home(dir: &Path) -> PathBuf {
    let o = Command::new(env!("CARGO_BIN_EXE_apim-gen-home"))
        .arg(dir)
        .arg("--template")
        .arg(fixture())
        .args(["--size-mb", "150", "--files", "1500"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.join("wso2am-4.2.0")
}

fn has_staging(out: &Path) -> bool {
    walkdir::WalkDir::new(out)
        .max_depth(2)
        .into_iter()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains("apim-profiles-staging"))
}

#[test]
fn ctrl_c_exits_130_and_sigterm_143_leaving_no_directory_the_run_made() {
    let tmp = tempfile::tempdir().unwrap();
    let home = big_home(&tmp.path().join("src"));
    for (sig, code) in [(rustix::process::Signal::INT, 130), (rustix::process::Signal::TERM, 143)] {
        // None of made/by/run exists before the run: the run creates them all.
        let made = tmp.path().join(format!("made-{code}"));
        let out = made.join("by/run/out");
        let mut child = Command::new(exe())
            .arg("split")
            .arg(&home)
            .arg("--out")
            .arg(&out)
            .args(["--no-update", "--jobs", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while !has_staging(&out) {
            assert!(t.elapsed() < Duration::from_secs(30), "the split never started copying");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100));
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
        let st = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(st.code(), Some(code), "{sig:?}: {err}");
        assert!(err.contains("interrupted"), "{err}");
        assert!(!made.exists(), "{sig:?}: the directories the run created are left: {err}");
    }
    // A directory that existed before the run is never removed, even empty.
    let kept = tmp.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    let mut child = Command::new(exe())
        .arg("split")
        .arg(&home)
        .arg("--out")
        .arg(&kept)
        .args(["--no-update", "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !has_staging(&kept) {
        assert!(t.elapsed() < Duration::from_secs(30), "the split never started copying");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(kept.is_dir(), "a directory the operator made was removed");
    assert_eq!(names_in(&kept), Vec::<String>::new(), "the run left something behind");
}

#[test]
fn a_parse_error_with_json_is_a_json_refusal() {
    for args in [
        vec!["profiles", "--json", "--no-such-flag"],
        vec!["split", "--json", "--out", "x"],
        vec!["verify", "--json"],
        vec!["split", "home", "--out", "o", "--json", "--update-timeout", "soon"],
    ] {
        let o = bin().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!("{args:?}: not one JSON document ({e}): {}", String::from_utf8_lossy(&o.stdout))
        });
        assert_eq!(v["exit_code"], 2, "{v}");
        assert_eq!(v["changed"], false, "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty() && !e.contains('\u{1b}')), "{v}");
        assert!(!stderr_of(&o).is_empty(), "people still read the error on stderr");
    }
    // Without --json a parse error stays text, and help is not an error.
    let o = bin().args(["profiles", "--no-such-flag"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    bin().args(["split", "--help", "--json"]).assert().success().stdout(predicate::str::contains("--out"));
}

// ---- exit code 2 for bad input ----------------------------------------------

fn with_update_tool(home: &Path, out: &Path) -> assert_cmd::Command {
    let mut c = bin();
    c.arg("split").arg(home).arg("--out").arg(out).arg("--update-tool").arg(double());
    c
}

#[test]
fn bad_credentials_files_are_refused_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    // Not UTF-8.
    let bad = tmp.path().join("creds-latin1");
    std::fs::write(&bad, b"username=ops@example.com\npassword=caf\xe9\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    with_update_tool(&home, &out)
        .arg("--credentials-file")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("UTF-8").and(predicate::str::contains("caf").not()));
    // A directory, whatever its mode.
    let dir = tmp.path().join("creds-dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    with_update_tool(&home, &out)
        .arg("--credentials-file")
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a directory"));
    // Missing.
    with_update_tool(&home, &out)
        .arg("--credentials-file")
        .arg(tmp.path().join("nope"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope"));
    assert!(!out.exists());
}

/// Runs the binary as `nobody` (root only): the one way for root to meet a
/// file it cannot read.
fn as_nobody(args: &[&OsStr]) -> Output {
    Command::new(exe())
        .args(args)
        .env_remove("WSO2_USERNAME")
        .env_remove("WSO2_PASSWORD")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap()
}

/// A temporary directory that `nobody` can traverse.
fn open_tmp() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    tmp
}

#[test]
fn an_unreadable_credentials_file_is_refused_with_exit_2() {
    let tmp = open_tmp();
    let home = home_in(tmp.path());
    let creds = tmp.path().join("creds");
    std::fs::write(&creds, "username=a\npassword=b\n").unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o000)).unwrap();
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/update-tool/wso2update_linux");
    let out = tmp.path().join("out");
    let args: Vec<&OsStr> = vec![
        "split".as_ref(),
        home.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--update-tool".as_ref(),
        tool.as_os_str(),
        "--credentials-file".as_ref(),
        creds.as_os_str(),
    ];
    let o = if is_root() { as_nobody(&args) } else { Command::new(exe()).args(&args).output().unwrap() };
    let err = stderr_of(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be read") && err.contains("creds"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_missing_profile_dir_is_refused_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-profiles-here");
    bin()
        .arg("profiles")
        .arg("--profile-dir")
        .arg(&missing)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no-profiles-here").and(predicate::str::contains("hint:")));
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_no_update(&home, &out).arg("--profile-dir").arg(&missing).assert().code(2);
    assert!(!out.exists());
}

#[test]
fn a_dangling_link_as_out_is_refused_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let target = tmp.path().join("gone/away");
    std::os::unix::fs::symlink(&target, &out).unwrap();
    split_no_update(&home, &out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("link").and(predicate::str::contains("gone/away")));
    assert!(!tmp.path().join("gone").exists(), "the link was followed for a write");
    assert!(std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
}

#[test]
fn an_unreadable_file_in_home_is_refused_before_anything_is_written() {
    let tmp = open_tmp();
    let home = home_in(tmp.path());
    let secret = home.join("repository/conf/security/locked.jks");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, b"keystore").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    // An output directory the runner may write into.
    let parent = tmp.path().join("writable");
    std::fs::create_dir(&parent).unwrap();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = parent.join("out");
    let args: Vec<&OsStr> =
        vec!["split".as_ref(), home.as_os_str(), "--out".as_ref(), out.as_os_str(), "--no-update".as_ref()];
    let o = if is_root() { as_nobody(&args) } else { Command::new(exe()).args(&args).output().unwrap() };
    let err = stderr_of(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("repository/conf/security/locked.jks"), "the refusal names the file: {err}");
    assert!(!out.exists(), "something was written before the refusal");
}

// ---- contradictions ---------------------------------------------------------

#[test]
fn no_update_with_an_update_option_is_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let zip = tmp.path().join("u.zip");
    std::fs::write(&zip, b"PK").unwrap();
    for (flag, value) in [
        ("--update-tool", zip.to_str().unwrap()),
        ("--update-zip", zip.to_str().unwrap()),
        ("--update-level", "5"),
        ("--credentials-file", zip.to_str().unwrap()),
        ("--update-timeout", "60"),
        ("--update-jobs", "2"),
    ] {
        split_no_update(&home, &out)
            .args([flag, value])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--no-update").and(predicate::str::contains(flag)));
    }
    assert!(!out.exists());
}

#[test]
fn settings_for_a_profile_not_in_the_run_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let overlay = tmp.path().join("gw.toml");
    std::fs::write(&overlay, "[server]\nhostname = \"gw.example.com\"\n").unwrap();
    split_no_update(&home, &out)
        .args(["--profiles", "control-plane", "--set", "gateway-worker:server.hostname=\"gw.example.com\""])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--set").and(predicate::str::contains("--profiles")));
    split_no_update(&home, &out)
        .args(["--profiles", "control-plane", "--overlay"])
        .arg(format!("gateway-worker={}", overlay.display()))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--overlay").and(predicate::str::contains("--profiles")));
    assert!(!out.exists());
    // optimize: the profile is --profile.
    bin()
        .arg("optimize")
        .arg(&home)
        .args(["--profile", "control-plane", "--set", "gateway-worker:server.hostname=\"gw\""])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--set").and(predicate::str::contains("--profile")));
    // The same settings for a profile in the run are accepted.
    split_no_update(&home, &out)
        .args([
            "--profiles",
            "gateway-worker",
            "--dry-run",
            "--set",
            "gateway-worker:server.hostname=\"gw.example.com\"",
        ])
        .assert()
        .success();
}

#[test]
fn an_update_timeout_of_zero_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    bin()
        .arg("split")
        .arg(&home)
        .arg("--out")
        .arg(&out)
        .args(["--update-timeout", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--update-timeout"));
    assert!(!out.exists());
}

#[test]
fn trailing_content_after_a_set_value_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    for v in [
        "server.hostname=\"a\"\nserver.offset = 3",
        "server.hostname=\"a\"\n[database]\nx = 1",
        "server.offset=1\r\nz=2",
    ] {
        split_no_update(&home, &out)
            .args(["--dry-run", "--set", v])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--set").and(predicate::str::contains("after the value")));
    }
    assert!(!out.exists());
}

#[test]
fn update_has_no_no_update_flag() {
    bin().args(["update", "--help"]).assert().success().stdout(predicate::str::contains("--no-update").not());
    let tmp = tempfile::tempdir().unwrap();
    bin()
        .arg("update")
        .arg(tmp.path())
        .arg("--no-update")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--no-update"));
}

// ---- toolchain ---------------------------------------------------------------

fn parse_version(v: &str) -> (u64, u64, u64) {
    let mut it = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// `rust-version` in Cargo.toml is the highest `rust-version` among the
/// locked packages a Linux build uses (dev-dependencies included: CI runs the
/// tests). Checked with `cargo metadata`, which reads the lock only.
#[test]
fn rust_version_is_what_the_locked_dependencies_need() {
    let o = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let used: std::collections::HashSet<&str> =
        m["resolve"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    let mut ours = None;
    let mut need = ((0, 0, 0), String::from("nothing"));
    for p in m["packages"].as_array().unwrap() {
        if !used.contains(p["id"].as_str().unwrap()) {
            continue;
        }
        let Some(rv) = p["rust_version"].as_str() else { continue };
        if p["name"] == "apim-profiles" {
            ours = Some(rv.to_string());
            continue;
        }
        let v = parse_version(rv);
        if v > need.0 {
            need = (v, format!("{} {} needs {rv}", p["name"].as_str().unwrap(), p["version"].as_str().unwrap()));
        }
    }
    let ours = ours.expect("Cargo.toml declares rust-version");
    assert_eq!(parse_version(&ours), need.0, "Cargo.toml says rust-version {ours}, but {}", need.1);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let short = ours.trim_end_matches(".0");
    assert!(readme.contains(&format!("Rust toolchain ({short} or newer")), "README names another Rust version");
    assert!(readme.contains("cargo install --locked --path ."), "README installs without --locked");
}

// ---- the README ----------------------------------------------------------------

/// The README's fenced blocks: (info string, body).
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), String::new())),
            (Some(_), Some("")) => blocks.push(open.take().unwrap()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "the README has a fenced block that is never closed");
    blocks
}

/// A newcomer's checkout in `t`: the fixture and the update double under
/// `fixtures/`, the binary at `target/release/apim-profiles` and on PATH, a
/// "real home" at `opt/wso2am-4.2.0` with the update tool in its `bin/` (as a
/// real pack has it), and a `cargo` that only notes how it was called (the
/// test runs inside cargo's build; `.ci/run` runs those commands for real).
fn newcomer_checkout(t: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for d in ["fixtures", "target/release", "bin", "tmp", "opt"] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    for f in ["wso2am-4.2.0", "update-tool"] {
        let st =
            Command::new("cp").arg("-a").arg(root.join("fixtures").join(f)).arg(t.join("fixtures")).status().unwrap();
        assert!(st.success());
    }
    let home = home_in(&t.join("opt"));
    std::fs::copy(double(), home.join("bin/wso2update_linux")).unwrap();
    std::os::unix::fs::symlink(exe(), t.join("target/release/apim-profiles")).unwrap();
    std::os::unix::fs::symlink(exe(), t.join("bin/apim-profiles")).unwrap();
    let cargo = t.join("bin/cargo");
    std::fs::write(&cargo, format!("#!/bin/sh\necho \"$*\" >> '{}'\n", t.join("cargo.log").display())).unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every command the README shows is run: each shell block is marked
/// `sh run` (an unmarked one fails this test), and each is run as typed with
/// bash -e, in order, from a newcomer's checkout in a temporary directory,
/// through the real binary. The only rewrite: `/tmp/` and `/opt/` lead into
/// that directory. The `cargo` lines are checked to be exactly the set-up
/// commands `.ci/run` runs on a fresh machine.
#[test]
fn every_command_in_the_readme_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = fenced_blocks(&readme);
    let shell = |info: &str| ["sh", "bash", "shell", "console"].contains(&info.split_whitespace().next().unwrap_or(""));
    for (info, body) in &blocks {
        assert!(!shell(info) || info == "sh run", "a README shell block not marked `sh run`:\n{body}");
    }
    let runs: Vec<&String> = blocks.iter().filter(|(i, _)| i == "sh run").map(|(_, b)| b).collect();
    assert!(runs.len() >= 5, "the README shows {} runnable blocks", runs.len());
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    newcomer_checkout(t);
    let path = format!("{}:{}", t.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    for body in runs {
        let script =
            body.replace("/tmp/", &format!("{}/tmp/", t.display())).replace("/opt/", &format!("{}/opt/", t.display()));
        let out = Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c", &script])
            .current_dir(t)
            .env("HOME", t)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env_remove("WSO2_USERNAME")
            .env_remove("WSO2_PASSWORD")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README block failed ({}):\n{body}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cargo = std::fs::read_to_string(t.join("cargo.log")).unwrap();
    assert_eq!(cargo, "install --locked --path .\nbuild --release --locked\ntest\n");
    // What the blocks left: the double's output rolled forward to its latest
    // level, the "real home"'s copies current at it, the man pages written.
    for out in [t.join("tmp/apim-upd"), t.join("opt/nodes")] {
        let s = bin().arg("status").arg(&out).arg("--json").output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
        let copies = v["profiles"].as_array().unwrap();
        assert_eq!(copies.len(), 3, "{v}");
        for c in copies {
            assert_eq!((c["status"].as_str(), c["update_level"].as_str()), (Some("current"), Some("4.2.0.5")), "{v}");
        }
    }
    // The README's sample of `status /opt/nodes` is what it prints, but for
    // when the update finished and the sizes' figures (the update's logs in
    // each copy vary by a few bytes from run to run).
    let sample =
        blocks.iter().find(|(i, b)| i.is_empty() && b.starts_with("PROFILE ")).expect("a status sample").1.clone();
    let s = bin().arg("status").arg(t.join("opt/nodes")).env("COLUMNS", "200").output().unwrap();
    let shown = String::from_utf8_lossy(&s.stdout).replace(&t.display().to_string(), "");
    let words = |text: &str| -> Vec<Vec<String>> {
        let varies = |w: &str| w.starts_with(|c: char| c.is_ascii_digit()) && !w.contains("4.2.0");
        text.lines().map(|l| l.split_whitespace().filter(|w| !varies(w)).map(str::to_string).collect()).collect()
    };
    assert_eq!(words(&shown), words(&sample), "README's status sample:\n{sample}\nstatus prints:\n{shown}");
    assert!(t.join(".local/share/man/man1/apim-profiles-split.1").is_file());
    assert!(t.join("tmp/apim-split/gateway-worker/wso2am-4.2.0/.apim-profiles.json").is_file());
}

/// GitHub's anchor for a heading: lower case, punctuation dropped but `-` and
/// `_`, spaces as `-`.
fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c.to_ascii_lowercase() })
        .collect()
}

/// The benchmarks are commands, not timed tests: each script under bench/
/// at least parses (`bash -n`), and is named in docs/benchmarks.md.
#[test]
fn every_benchmark_script_parses_and_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/benchmarks.md")).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(root.join("bench")).unwrap() {
        let p = e.unwrap().path();
        if p.extension() != Some(OsStr::new("sh")) {
            continue;
        }
        n += 1;
        let st = Command::new("bash").arg("-n").arg(&p).status().unwrap();
        assert!(st.success(), "bash -n rejects {}", p.display());
        let name = format!("bench/{}", p.file_name().unwrap().to_string_lossy());
        assert!(doc.contains(&name), "{name} is not named in docs/benchmarks.md");
    }
    assert!(n >= 4, "the benchmark scripts are missing");
}

/// The README was cut into docs/ (issue 31): every relative link of the README
/// and of docs/*.md leads to a file that exists and, with `#anchor`, to a
/// heading of it.
#[test]
fn readme_and_docs_links_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        pages.push(e.unwrap().path());
    }
    let anchors = |p: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(p).unwrap();
        let mut fenced = false;
        let mut out = Vec::new();
        for l in text.lines() {
            fenced ^= l.starts_with("```");
            if !fenced && l.starts_with('#') {
                out.push(heading_anchor(l.trim_start_matches('#')));
            }
        }
        out
    };
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for link in text.split("](").skip(1).filter_map(|s| s.split(')').next()) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            assert!(target.exists(), "{}: link to {link}: no such file", page.display());
            if !anchor.is_empty() {
                assert!(
                    anchors(&target).iter().any(|a| a == anchor),
                    "{}: link to {link}: no such heading",
                    page.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links found");
}

// ---- names ---------------------------------------------------------------------

#[test]
fn control_characters_in_names_are_escaped_for_people() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let w = home.join(WEBAPPS);
    // Webapps the gateway profile removes, with hostile names.
    std::fs::write(w.join("evil\nsummary: 0 entries kept.war"), b"war").unwrap();
    std::fs::write(w.join("bell\u{7}\u{1b}[31mred.war"), b"war").unwrap();
    let out = tmp.path().join("out");
    let o = split_no_update(&home, &out).args(["--profiles", "gateway-worker", "--dry-run"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("summary: 0 entries kept")), "a name broke a line: {text}");
    assert!(text.contains("evil\\nsummary: 0 entries kept.war"), "{text}");
    assert!(text.contains("bell\\u{7}\\u{1b}[31mred.war"), "{text}");
    // JSON keeps the names as they are.
    let v = split_json(&home, &out, &["--profiles", "gateway-worker", "--dry-run"]);
    let removed: Vec<&str> =
        v["profiles"][0]["removed"].as_array().unwrap().iter().filter_map(|r| r["path"].as_str()).collect();
    assert!(removed.iter().any(|p| p.ends_with("evil\nsummary: 0 entries kept.war")), "{removed:?}");
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn json_keeps_names_that_are_not_utf8_losslessly() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let name = OsStr::from_bytes(b"caf\xe9-latin1.war");
    std::fs::write(home.join(WEBAPPS).join(name), b"war").unwrap();
    let out = tmp.path().join("out");
    let v = split_json(&home, &out, &["--profiles", "gateway-worker", "--dry-run"]);
    let removed = v["profiles"][0]["removed"].as_array().unwrap();
    let entry = removed
        .iter()
        .find(|r| r["path"].as_str().is_some_and(|p| p.contains("latin1.war")))
        .unwrap_or_else(|| panic!("the name is reported: {removed:?}"));
    let exact = Path::new(WEBAPPS).join(name);
    let hex = entry["path_hex"].as_str().unwrap_or_else(|| panic!("no path_hex: {entry}"));
    assert_eq!(from_hex(hex), exact.as_os_str().as_bytes());
    // UTF-8 names carry no second spelling.
    assert!(removed.iter().filter(|r| r["path"] != entry["path"]).all(|r| r.get("path_hex").is_none()), "{removed:?}");
    // And the real run removes it too.
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    assert!(!out.join("gateway-worker/wso2am-4.2.0").join(&exact).exists());
}

#[test]
fn a_home_whose_name_is_not_utf8_keeps_it_and_json_reports_it_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let name = OsStr::from_bytes(b"wso2am-4.2.0-\xff");
    let home = tmp.path().join(name);
    assert!(Command::new("cp").arg("-a").arg(fixture()).arg(&home).status().unwrap().success());
    let out = tmp.path().join("out");
    let v = split_json(&home, &out, &["--profiles", "gateway-worker"]);
    let copy = out.join("gateway-worker").join(name);
    assert!(copy.join("bin/version.txt").is_file(), "the copy keeps the home's own name");
    let p = &v["profiles"][0];
    let hex = p["path_hex"].as_str().unwrap_or_else(|| panic!("no path_hex: {p}"));
    assert_eq!(from_hex(hex), copy.as_os_str().as_bytes());
    bin().arg("verify").arg(&copy).assert().success();
}
