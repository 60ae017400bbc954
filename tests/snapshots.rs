//! What users and playbooks see, locked: `--help` of each command, every
//! refusal's lines (text and JSON), the human report, the dry-run diff and the
//! JSON of each command, all run through the real binary on the committed
//! fixture. Only what varies from run to run is redacted: temporary paths,
//! durations, process ids and clone counts (which depend on the file system).
//! Review a change with `cargo insta review`, or accept it with
//! `INSTA_UPDATE=always cargo test --test snapshots`.

mod common;

use std::path::Path;

use common::refusals::cases;
use common::*;

/// Runs `f` with the filters that hide what varies between runs.
fn redacted(tmp: &Path, f: impl FnOnce()) {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    let tmp = std::fs::canonicalize(tmp).unwrap_or_else(|_| tmp.to_path_buf());
    s.add_filter(&regex_escape(&tmp.display().to_string()), "[TMP]");
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    s.add_filter(&regex_escape(env!("CARGO_MANIFEST_DIR")), "[REPO]");
    s.add_filter(r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#);
    s.add_filter(r#""finished_at": "[0-9T:Z-]+""#, r#""finished_at": "[time]""#);
    s.add_filter(r#""files_cloned": \d+"#, r#""files_cloned": "[n]""#);
    s.add_filter(r"; \d+ cloned\)", "; [n] cloned)");
    s.add_filter(r"\bpid \d+", "pid [PID]");
    // Masked secrets carry a tag keyed per run (so a changed one shows as changed).
    s.add_filter(r"\*{8}~[0-9a-f]{6}", "********~[tag]");
    s.add_filter(r"\bprocess \d+", "process [PID]");
    s.add_filter(r"staging-\d+", "staging-[PID]");
    s.bind(f);
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Exit code, stdout and stderr of one run, as one text.
fn shown(o: &std::process::Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        o.status.code().map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(args: &[&str]) -> std::process::Output {
    bin().args(args).output().unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn help_of_each_command() {
    let tmp = tempfile::tempdir().unwrap();
    redacted(tmp.path(), || {
        insta::assert_snapshot!("help", shown(&run(&["--help"])));
        for c in ["split", "optimize", "update", "verify", "profiles"] {
            insta::assert_snapshot!(format!("help_{c}"), shown(&run(&[c, "--help"])));
        }
    });
}

#[test]
fn every_refusal_text_and_json() {
    for case in cases() {
        let tmp = tempfile::tempdir().unwrap();
        let home = home_in(tmp.path());
        let out = tmp.path().join("out");
        let argv = (case.prepare)(&home, &out);
        let text = bin().args(&argv).output().unwrap();
        let json = bin().args(&argv).arg("--json").output().unwrap();
        let name = format!("refusal_{}", case.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
        redacted(tmp.path(), || {
            insta::assert_snapshot!(name, format!("{}\n=== --json\n{}", shown(&text), shown(&json)));
        });
    }
}

#[test]
fn split_human_report_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let human = run(&["split", path(&home), "--out", path(&out), "--no-update"]);
    // Again, as JSON: every copy is current now.
    let again = run(&["split", path(&home), "--out", path(&out), "--no-update", "--json"]);
    let out2 = tmp.path().join("out2");
    let json = run(&["split", path(&home), "--out", path(&out2), "--no-update", "--json"]);
    redacted(tmp.path(), || {
        insta::assert_snapshot!("split_human", shown(&human));
        insta::assert_snapshot!("split_json", shown(&json));
        insta::assert_snapshot!("split_again_json", shown(&again));
    });
}

#[test]
fn dry_run_diff_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let base = ["split", path(&home), "--out", path(&out), "--no-update", "--dry-run"];
    let human = run(&base);
    let settings =
        [&base[..], &["--carry-common", "--set", "gateway-worker:server.hostname=\"gw1.example.com\""]].concat();
    let with_settings = run(&settings);
    let json = run(&[&base[..], &["--json"]].concat());
    let opt = run(&["optimize", path(&home), "--profile", "traffic-manager", "--dry-run"]);
    redacted(tmp.path(), || {
        insta::assert_snapshot!("dry_run_human", shown(&human));
        insta::assert_snapshot!("dry_run_settings_human", shown(&with_settings));
        insta::assert_snapshot!("dry_run_json", shown(&json));
        insta::assert_snapshot!("optimize_dry_run_human", shown(&opt));
    });
}

#[test]
fn optimize_and_verify_json() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let first = run(&["optimize", path(&home), "--profile", "gateway-worker", "--json"]);
    let again = run(&["optimize", path(&home), "--profile", "gateway-worker", "--json"]);
    let human = run(&["optimize", path(&home), "--profile", "gateway-worker"]);
    let verified = run(&["verify", path(&home), "--json"]);
    let verified_human = run(&["verify", path(&home)]);
    // Drift: a webapp the profile removes comes back.
    std::fs::create_dir_all(home.join(format!("{WEBAPPS}/api#am#publisher"))).unwrap();
    let drifted = run(&["verify", path(&home), "--json"]);
    let drifted_human = run(&["verify", path(&home)]);
    redacted(tmp.path(), || {
        insta::assert_snapshot!("optimize_json", shown(&first));
        insta::assert_snapshot!("optimize_again_json", shown(&again));
        insta::assert_snapshot!("optimize_again_human", shown(&human));
        insta::assert_snapshot!("verify_json", shown(&verified));
        insta::assert_snapshot!("verify_human", shown(&verified_human));
        insta::assert_snapshot!("verify_drifted_json", shown(&drifted));
        insta::assert_snapshot!("verify_drifted_human", shown(&drifted_human));
    });
}

fn with_double(c: &mut assert_cmd::Command, scenario: &str) {
    c.env("WSO2_USERNAME", "ops@example.com")
        .env("WSO2_PASSWORD", "s3cret-Pa55")
        .env("APIM_DOUBLE_SCENARIO", scenario)
        .env("APIM_DOUBLE_EXPECT_PASSWORD", "s3cret-Pa55");
}

#[test]
fn split_and_update_with_the_update_tool_double() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let mut c = bin();
    c.args(["split", path(&home), "--out", path(&out), "--profiles", "gateway-worker", "--json", "--update-tool"])
        .arg(double());
    with_double(&mut c, "success");
    let split = c.output().unwrap();
    let out2 = tmp.path().join("out2");
    let mut c = bin();
    c.args([
        "split",
        path(&home),
        "--out",
        path(&out2),
        "--profiles",
        "traffic-manager",
        "--update-each",
        "--update-tool",
    ])
    .arg(double());
    with_double(&mut c, "conflicts");
    let conflicts_human = c.output().unwrap();
    let copy = out.join("gateway-worker/wso2am-4.2.0");
    let mut c = bin();
    c.args(["update", path(&copy), "--json"]);
    with_double(&mut c, "success");
    let update = c.output().unwrap();
    let mut c = bin();
    c.args(["update", path(&copy)]);
    with_double(&mut c, "error");
    let failed_human = c.output().unwrap();
    redacted(tmp.path(), || {
        insta::assert_snapshot!("split_update_json", shown(&split));
        insta::assert_snapshot!("split_update_conflicts_human", shown(&conflicts_human));
        insta::assert_snapshot!("update_json", shown(&update));
        insta::assert_snapshot!("update_failed_human", shown(&failed_human));
    });
}

#[test]
fn profiles_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    redacted(tmp.path(), || {
        insta::assert_snapshot!("profiles_human", shown(&run(&["profiles"])));
        insta::assert_snapshot!("profiles_json", shown(&run(&["profiles", "--json"])));
        insta::assert_snapshot!("update_no_update", shown(&run(&["update", "/nonexistent", "--no-update"])));
    });
}
