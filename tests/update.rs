//! The update step through the real binary, with the test double of WSO2's
//! update tool (fixtures/update-tool), which follows the documented
//! behaviour: exit codes, self-update, prompting, `--template` output, files
//! it brings back and modifies.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use predicates::prelude::*;

const PASSWORD: &str = "S3cr3t-Pa55word!";

struct Setup {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    out: PathBuf,
    calls: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let calls = tmp.path().join("calls.log");
    Setup { home, out, calls, _tmp: tmp }
}

/// `split` in the per-copy order (each copy updated in place), which these
/// tests are about; tests/update_once.rs and tests/update_contract.rs cover
/// the once order.
fn split_cmd(s: &Setup, scenario: &str, extra: &[&str]) -> assert_cmd::Command {
    let mut c = split_with_double(&s.home, &s.out, scenario, PASSWORD);
    c.arg("--update-each").args(extra).env("APIM_DOUBLE_CALLS", &s.calls);
    c
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

/// No file under `dir` holds the password.
fn assert_no_password_under(dir: &Path) {
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let b = std::fs::read(e.path()).unwrap();
            assert!(!String::from_utf8_lossy(&b).contains(PASSWORD), "password written to {}", e.path().display());
        }
    }
}

/// The tool's update runs (its `current-state` questions left out).
fn calls(s: &Setup) -> Vec<String> {
    let text = std::fs::read_to_string(&s.calls).unwrap_or_default();
    text.lines().filter(|l| !l.contains("args=current-state")).map(str::to_string).collect()
}

#[test]
fn split_updates_every_copy_then_reoptimizes_and_verifies() {
    let s = setup();
    let o = split_cmd(&s, "success", &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    let calls = calls(&s);
    assert_eq!(calls.len(), 3, "{calls:?}");
    for p in ["control-plane", "gateway-worker", "traffic-manager"] {
        // The tool ran from each copy's bin/ (staged beside the final place), with credentials.
        assert!(
            calls
                .iter()
                .any(|c| c.contains(&format!("/{p}/")) && c.contains("/bin ") && c.contains("password=present")),
            "{calls:?}"
        );
        let copy = s.out.join(p).join("wso2am-4.2.0");
        bin().arg("verify").arg(&copy).assert().success();
        assert!(!copy.join(format!("{WEBAPPS}/api#am#publisher.war")).exists() || p == "control-plane");
    }
    let gw = s.out.join("gateway-worker/wso2am-4.2.0");
    // What the update brought back was removed again; what it added stays.
    assert!(!gw.join(format!("{WEBAPPS}/api#am#devportal.war")).exists());
    let p = v["profiles"].as_array().unwrap().iter().find(|p| p["profile"] == "gateway-worker").unwrap();
    assert_eq!(p["update"]["status"], "updated");
    assert!(
        p["update"]["reoptimized"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("api#am#publisher.war")),
        "{p}"
    );
    // The update changed the TM axis2 variant and the default: the updated
    // variant is in place, and the backup is the updated default (what the
    // product's script backs up from the updated pack), with no second one.
    let tm = s.out.join("traffic-manager/wso2am-4.2.0");
    let axis2 = format!("{T}/repository/conf/axis2/axis2.xml.j2");
    let variant = read(tm.join(format!("{T}/repository/conf/axis2/axis2_TM.xml.j2")));
    assert_eq!(read(tm.join(&axis2)), variant);
    assert!(String::from_utf8_lossy(&variant).contains("wso2 update level 5"));
    let backup = read(tm.join(format!("{axis2}.backup")));
    assert!(backup.starts_with(&read(s.home.join(&axis2))) && backup != read(s.home.join(&axis2)));
    assert!(!tm.join(format!("{axis2}.backup.1")).exists());
    // The password appears nowhere.
    assert!(!String::from_utf8_lossy(&o.stdout).contains(PASSWORD));
    assert!(!String::from_utf8_lossy(&o.stderr).contains(PASSWORD));
    assert!(!calls.iter().any(|c| c.contains(PASSWORD)));
    assert_no_password_under(&s.out);
}

#[test]
fn self_update_is_followed_by_a_second_run() {
    let s = setup();
    let o = split_cmd(&s, "selfupdate", &["--profiles", "gateway-worker"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    assert_eq!(v["profiles"][0]["update"]["self_updates"], 1);
    assert_eq!(v["profiles"][0]["update"]["runs"], 2);
    assert_eq!(calls(&s).len(), 2);
}

#[test]
fn endless_self_updates_are_bounded() {
    let s = setup();
    let o = split_cmd(&s, "selfupdate", &["--profiles", "gateway-worker"])
        .env("APIM_DOUBLE_SELFUPDATE_TIMES", "10")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(calls(&s).len(), 4, "three self-updates, then give up");
    assert!(!s.out.join("gateway-worker/wso2am-4.2.0").exists());
}

#[test]
fn conflicts_keep_the_copy_exit_3_then_continue() {
    let s = setup();
    let o = split_cmd(&s, "conflicts", &["--profiles", "gateway-worker,traffic-manager"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    for p in v["profiles"].as_array().unwrap() {
        assert_eq!(p["status"], "conflicts");
        let list = p["update"]["conflicts"].to_string();
        assert!(list.contains("repository/conf/deployment.toml"), "{list}");
    }
    assert!(String::from_utf8_lossy(&o.stderr).contains("update --continue"));
    let gw = s.out.join("gateway-worker/wso2am-4.2.0");
    assert!(gw.is_dir(), "the copy is kept for the person to resolve");
    // Resume before resolving: still conflicts.
    let resume = |copy: &Path| {
        let mut c = bin();
        c.arg("update")
            .arg("--continue")
            .arg(copy)
            .arg("--json")
            .env("WSO2_USERNAME", "ops@example.com")
            .env("WSO2_PASSWORD", PASSWORD)
            .env("APIM_DOUBLE_SCENARIO", "conflicts")
            .env("APIM_DOUBLE_CALLS", &s.calls);
        c
    };
    resume(&gw).assert().code(3);
    // Resolve: save each resolved file as <file>.final, then continue.
    for f in
        ["repository/conf/deployment.toml", "repository/resources/conf/templates/repository/conf/axis2/axis2.xml.j2"]
    {
        std::fs::copy(gw.join(f), gw.join(format!("{f}.final"))).unwrap();
    }
    let o = resume(&gw).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&o)["profiles"][0]["status"], "updated");
    bin().arg("verify").arg(&gw).assert().success();
    assert!(calls(&s).iter().any(|c| c.contains("--continue")));
}

#[test]
fn tool_errors_and_reverts_fail_that_profile() {
    for (scenario, word) in [("error", "failed"), ("revert", "reverted")] {
        let s = setup();
        let o = split_cmd(&s, scenario, &["--profiles", "gateway-worker"]).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{scenario}");
        let v = json(&o);
        assert_eq!(v["profiles"][0]["status"], "failed");
        let err = v["profiles"][0]["error"].as_str().unwrap();
        assert!(err.contains(word) && err.contains("updates/logs"), "{err}");
        assert!(!s.out.join("gateway-worker/wso2am-4.2.0").exists(), "no half-made copy at the final place");
        assert!(s.out.join("gateway-worker/wso2am-4.2.0.update-failed/updates/logs").is_dir());
    }
}

#[test]
fn a_hanging_tool_is_stopped_with_its_children() {
    let s = setup();
    let marker = s.home.parent().unwrap().display().to_string();
    let started = std::time::Instant::now();
    let o = split_cmd(&s, "hang", &["--profiles", "gateway-worker", "--update-timeout", "2"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(started.elapsed().as_secs() < 30);
    let v = json(&o);
    assert!(v["profiles"][0]["error"].as_str().unwrap().contains("longer than 2 s"));
    // Nothing the tool started is left running in that copy.
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(!ps.lines().any(|l| l.contains(&marker) && l.contains("wso2update")), "{ps}");
}

#[test]
fn missing_credentials_are_refused_before_copying() {
    let s = setup();
    bin()
        .arg("split")
        .arg(&s.home)
        .arg("--out")
        .arg(&s.out)
        .arg("--update-tool")
        .arg(double())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("WSO2_USERNAME").and(predicate::str::contains("hint:")));
    assert!(!s.out.exists());
    // A credentials file others can read is refused too.
    let f = s.home.parent().unwrap().join("creds");
    std::fs::write(&f, format!("username=ops@example.com\npassword={PASSWORD}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = bin()
        .arg("split")
        .arg(&s.home)
        .arg("--out")
        .arg(&s.out)
        .arg("--update-tool")
        .arg(double())
        .arg("--credentials-file")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("chmod 600"));
    assert!(!s.out.exists());
    // Mode 600: accepted, and the password still appears nowhere.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = bin()
        .arg("split")
        .arg(&s.home)
        .arg("--out")
        .arg(&s.out)
        .args(["--profiles", "traffic-manager", "--update-tool"])
        .arg(double())
        .arg("--credentials-file")
        .arg(&f)
        .env("APIM_DOUBLE_EXPECT_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stdout).contains(PASSWORD));
    assert!(!String::from_utf8_lossy(&o.stderr).contains(PASSWORD));
    assert_no_password_under(&s.out);
    // `--credentials-file -`: the lines on standard input (a pipe; nothing on
    // disk holds them), used as from a file; an empty input is refused.
    let o = bin()
        .args(["update", "--credentials-file", "-"])
        .arg(s.out.join("traffic-manager/wso2am-4.2.0"))
        .env("APIM_DOUBLE_LATEST_LEVEL", "9")
        .env("APIM_DOUBLE_EXPECT_PASSWORD", PASSWORD)
        .write_stdin(format!("username=ops@example.com\npassword={PASSWORD}\n"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("updated"), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(!String::from_utf8_lossy(&o.stdout).contains(PASSWORD));
    assert!(!String::from_utf8_lossy(&o.stderr).contains(PASSWORD));
    let o = bin()
        .args(["update", "--credentials-file", "-"])
        .arg(s.out.join("traffic-manager/wso2am-4.2.0"))
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--credentials-file - (standard input) has no username="));
}

#[test]
fn offline_update_zip_needs_no_account() {
    let s = setup();
    let zip = s.home.parent().unwrap().join("update-4.2.0.5.zip");
    // What the tool's create-update makes (the double's own archive format).
    std::fs::write(&zip, b"wso2-update-double-archive 1\nproduct=wso2am-4.2.0\nstart=1\nend=5\n").unwrap();
    let o = bin()
        .arg("split")
        .arg(&s.home)
        .arg("--out")
        .arg(&s.out)
        .args(["--profiles", "gateway-worker", "--json", "--update-tool"])
        .arg(double())
        .arg("--update-zip")
        .arg(&zip)
        .env("APIM_DOUBLE_CALLS", &s.calls)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = calls(&s);
    assert!(c[0].contains("apply-update") && c[0].contains("update-4.2.0.5.zip"), "{c:?}");
    // Only what WSO2 lists for apply-update: a backup place, no template.
    assert!(c[0].contains("--backup") && !c[0].contains("--template"), "{c:?}");
    assert_eq!(json(&o)["profiles"][0]["update"]["level"], "4.2.0.5");
    bin().arg("verify").arg(s.out.join("gateway-worker/wso2am-4.2.0")).assert().success();
}

#[test]
fn ctrl_c_stops_the_update_tool_and_publishes_nothing() {
    let s = setup();
    let marker = s.home.parent().unwrap().display().to_string();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("apim-profiles"))
        .arg("split")
        .arg(&s.home)
        .arg("--out")
        .arg(&s.out)
        .args(["--profiles", "gateway-worker", "--json", "--update-tool"])
        .arg(double())
        .env("WSO2_USERNAME", "ops@example.com")
        .env("WSO2_PASSWORD", PASSWORD)
        .env("APIM_DOUBLE_SCENARIO", "hang")
        .env("APIM_DOUBLE_CALLS", &s.calls)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the tool runs, then interrupt as a terminal's Ctrl-C would.
    let t = std::time::Instant::now();
    while calls(&s).is_empty() {
        assert!(t.elapsed().as_secs() < 20, "the tool never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(130));
    let mut doc = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut doc).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
    assert_eq!(doc["exit_code"], 130, "the JSON's exit_code is the process's: {doc}");
    assert!(!s.out.join("gateway-worker/wso2am-4.2.0").exists(), "nothing is published after Ctrl-C");
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(!ps.lines().any(|l| l.contains(&marker) && l.contains("wso2update")), "{ps}");
}

/// A question the tool asks that apim-profiles does not answer stops that
/// run at once, with the question in the error: the trial-subscription
/// question (answered only with --update-trial-subscription), a second
/// password prompt (the service refused the credentials), and a silent wait
/// on the terminal.
#[test]
fn unanswered_questions_stop_the_run_with_the_question_shown() {
    let started = std::time::Instant::now();
    let cases: [(&str, &[&str], Option<&str>, &str); 3] = [
        ("trial", &[], None, "trial subscription? [y/N]"),
        ("success", &[], Some("another-password"), "Password for 'ops@example.com'"),
        ("silent-read", &["--update-input-timeout", "2"], None, "waited 2 s for input"),
    ];
    for (scenario, extra, expect, shown) in cases {
        let s = setup();
        let mut c = split_cmd(&s, scenario, &["--profiles", "gateway-worker"]);
        c.args(extra);
        if let Some(p) = expect {
            c.env("APIM_DOUBLE_EXPECT_PASSWORD", p);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{scenario}: {}", String::from_utf8_lossy(&o.stderr));
        let err = json(&o)["profiles"][0]["error"].as_str().unwrap().to_string();
        assert!(err.contains("stopped to ask") && err.contains(shown), "{scenario}: {err}");
        assert!(!err.contains(PASSWORD));
    }
    assert!(started.elapsed().as_secs() < 120, "a question waited for the update timeout");
    // Accepted when the operator says so.
    let s = setup();
    let o = split_cmd(&s, "trial", &["--profiles", "gateway-worker", "--update-trial-subscription"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Newer packs ship bin/update_tool_setup.sh instead of the tool; a zip
/// carries its own levels.
#[test]
fn setup_script_packs_and_levels_with_a_zip_are_refused_with_the_next_step() {
    let s = setup();
    let script = s.home.join("bin/update_tool_setup.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let o = bin()
        .arg("split")
        .arg(&s.home)
        .arg("--out")
        .arg(&s.out)
        .env("WSO2_USERNAME", "u")
        .env("WSO2_PASSWORD", "p")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("update_tool_setup.sh") && err.contains("--update-tool"), "{err}");
    let zip = s.home.parent().unwrap().join("u.zip");
    std::fs::write(&zip, b"x").unwrap();
    let o = split_cmd(&s, "success", &["--update-level", "5", "--update-zip", zip.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("apply-update takes no level"));
    assert!(!s.out.exists());
}

/// The double's record of the committed fixture as shipped is the fixture's:
/// a fixture file changed without `ship` would make every update conflict.
#[test]
fn the_committed_fixture_is_recorded_as_shipped() {
    let ship = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/update-tool/ship");
    let o = std::process::Command::new(ship).arg("--check").arg(fixture()).output().unwrap();
    assert!(
        o.status.success(),
        "run fixtures/update-tool/ship fixtures/wso2am-4.2.0: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
