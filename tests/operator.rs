//! The operator's day through the real binary: `status` of an output,
//! `--settings FILE.toml`, help, completions and man pages, colour, archives
//! with real times, and the JSON schemas the documents follow.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

const PASSWORD: &str = "S3cr3t-Pa55word!";

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Splits the fixture into the three default profiles with the update double.
fn updated_split(home: &Path, out: &Path, scenario: &str) -> Output {
    split_with_double(home, out, scenario, PASSWORD).output().unwrap()
}

fn status(args: &[&Path], extra: &[&str]) -> Output {
    bin().arg("status").args(args).args(extra).output().unwrap()
}

fn by_profile(doc: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    doc["profiles"]
        .as_array()
        .expect("profiles array")
        .iter()
        .map(|p| (p["profile"].as_str().unwrap().to_string(), p.clone()))
        .collect()
}

// ---------------------------------------------------------------- status

#[test]
fn status_of_a_three_profile_output() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let o = updated_split(&home, &out, "success");
    assert!(o.status.success(), "{}", text(&o.stderr));

    let o = status(&[&out], &["--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["command"], "status");
    assert_eq!(doc["changed"], false);
    let m = by_profile(&doc);
    assert_eq!(m.keys().collect::<Vec<_>>(), ["control-plane", "gateway-worker", "traffic-manager"]);
    for (name, p) in &m {
        assert_eq!(p["status"], "current", "{name}: {p}");
        assert_eq!(p["product"], "wso2am");
        assert_eq!(p["version"], "4.2.0");
        assert_eq!(p["update_level"], "4.2.0.5", "{name}: the double updates to 4.2.0.5");
        assert_eq!(p["last_update"]["status"], "updated");
        let at = p["last_update"]["at"].as_str().expect("when the update finished");
        assert!(at.starts_with("20") && at.ends_with('Z'), "{at}");
        assert!(p["bytes"].as_u64().unwrap() > 1000);
        assert!(p["entries"].as_u64().unwrap() > 50);
        assert_eq!(p["path"], out.join(name).join("wso2am-4.2.0").to_str().unwrap());
    }

    // The human form: a header and one line per copy.
    let o = status(&[&out], &[]);
    assert!(o.status.success());
    let s = text(&o.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 4, "{s}");
    assert!(lines[0].contains("PROFILE") && lines[0].contains("LEVEL") && lines[0].contains("SIZE"), "{s}");
    for (line, name) in lines[1..].iter().zip(["control-plane", "gateway-worker", "traffic-manager"]) {
        assert!(line.starts_with(name), "{line}");
        assert!(line.contains("4.2.0.5") && line.contains("updated") && line.contains("current"), "{line}");
    }
    assert!(!s.contains('\x1b'), "no colour off a terminal: {s:?}");

    // One copy, one size and one entry count, whichever command reports it
    // (issue 31): the split that made it (updated: the update added entries
    // after the plan), a re-run of it, verify and status, as JSON and as text.
    let copies: Vec<PathBuf> = m.keys().map(|n| out.join(n).join("wso2am-4.2.0")).collect();
    let made = by_profile(&json(&updated_split(&home, &out, "success")));
    let verified = bin().arg("verify").args(&copies).arg("--json").output().unwrap();
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let verified = by_profile(&json(&verified));
    for (name, p) in &m {
        let size = (p["entries"].as_u64().unwrap(), p["bytes"].as_u64().unwrap());
        for (what, r) in [("split", &made[name]), ("verify", &verified[name])] {
            assert_eq!((r["entries_kept"].as_u64().unwrap(), r["bytes"].as_u64().unwrap()), size, "{what} {name}: {r}");
        }
    }
    let mut rerun = bin();
    rerun.arg("split").arg(&home).arg("--out").arg(&out).arg("--update-tool").arg(double());
    let rerun = rerun.env("WSO2_USERNAME", "ops@example.com").env("WSO2_PASSWORD", PASSWORD).output().unwrap();
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    let verified = bin().arg("verify").args(&copies).output().unwrap();
    let by_text = |o: &Output, what: &str| summaries(&text(&o.stdout), what);
    let (rerun, verified) = (by_text(&rerun, "split"), by_text(&verified, "verify"));
    for (line, name) in lines[1..].iter().zip(m.keys()) {
        let (entries, size) = (m[name]["entries"].as_u64().unwrap(), &rerun[name].1);
        assert!(line.contains(&format!("  {size}  ")), "status shows {size} for {name}: {line}");
        assert_eq!(rerun[name], (entries, size.clone()), "split of {name}");
        assert_eq!(verified[name], (entries, size.clone()), "verify of {name}");
    }
}

/// The `summary:` line of each profile of a human report: its entries and
/// its size as printed (`N entries kept (SIZE)` or `N entries (SIZE)`).
fn summaries(report: &str, what: &str) -> std::collections::BTreeMap<String, (u64, String)> {
    let mut out = std::collections::BTreeMap::new();
    let mut profile = None;
    for l in report.lines() {
        if let Some(h) = l.strip_prefix("== ") {
            profile = h.split_whitespace().next().map(str::to_string);
        }
        if let (Some(p), Some(s)) = (&profile, l.strip_prefix("summary: ")) {
            let n = s.split(' ').next().unwrap().parse().unwrap();
            let size = s.split_once('(').and_then(|(_, r)| r.split_once(')')).map(|(v, _)| v.to_string());
            out.insert(p.clone(), (n, size.unwrap_or_else(|| panic!("{what}: no size in {l}"))));
        }
    }
    assert_eq!(out.len(), 3, "{what}: {report}");
    out
}

#[test]
fn status_takes_copies_and_says_when_none_was_updated() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    let copy = out.join("gateway-worker/wso2am-4.2.0");
    let o = status(&[&copy], &["--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = json(&o);
    let p = &doc["profiles"][0];
    assert_eq!(p["profile"], "gateway-worker");
    assert_eq!(p["status"], "current");
    assert_eq!(p["update_level"], "4.2.0.0", "the fixture's own level from updates/config.json");
    assert!(p["last_update"].is_null(), "{p}");
    let o = status(&[&copy], &[]);
    assert!(text(&o.stdout).contains("never"), "{}", text(&o.stdout));
}

#[test]
fn status_shows_conflicts_waiting() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    // The each order: a copy that stops on conflicts is published for a person.
    let o = split_with_double(&home, &out, "conflicts", PASSWORD).arg("--update-each").output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let o = status(&[&out], &["--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for (name, p) in by_profile(&json(&o)) {
        assert_eq!(p["status"], "conflicts", "{name}: {p}");
        assert_eq!(p["last_update"]["status"], "conflicts");
        let files: Vec<&str> = p["conflicts"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(files.contains(&"repository/conf/deployment.toml"), "{files:?}");
    }
    // The table says `conflicts [n]`; the note names the files and the command that goes on.
    let s = text(&bin().arg("status").arg(&out).env("COLUMNS", "1000").output().unwrap().stdout);
    for (n, name) in ["control-plane", "gateway-worker", "traffic-manager"].iter().enumerate() {
        let row = s.lines().find(|l| l.starts_with(name)).unwrap();
        assert!(row.contains(&format!(" conflicts [{}] ", n + 1)), "{s}");
        let note = s.lines().find(|l| l.starts_with(&format!("[{}] {name}: ", n + 1))).unwrap_or_else(|| panic!("{s}"));
        assert!(note.contains("repository/conf/deployment.toml"), "{note}");
        assert!(note.ends_with("then run:"), "{note}");
        // The command on a line of its own, whole, to be copied as it stands.
        let copy = out.join(name).join("wso2am-4.2.0");
        let command = format!("    apim-profiles update --continue {}", copy.display());
        assert!(s.lines().skip_while(|l| *l != note).nth(1) == Some(command.as_str()), "{s}");
    }
}

#[test]
fn status_says_why_a_copy_is_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker,traffic-manager"]);
    std::fs::write(home.join("README.txt"), "changed in the source\n").unwrap();
    let o = status(&[&out], &["--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = json(&o);
    check("status.json", &doc);
    for (name, p) in by_profile(&doc) {
        assert_eq!(p["status"], "stale", "{name}: {p}");
        let why = p["reasons"][0].as_str().unwrap();
        // The changed source path is named, in split's own words.
        assert!(why.contains("the source home changed since it was made"), "{why}");
        assert!(why.contains("README.txt: size"), "{why}");
    }
    // The table says one word and a note's number; the notes under it say why,
    // wrapped to COLUMNS.
    let o = bin().arg("status").arg(&out).env("COLUMNS", "60").output().unwrap();
    let s = text(&o.stdout);
    let (table, notes) = s.split_once("\n\n").unwrap_or_else(|| panic!("no notes under the table: {s}"));
    for (line, (n, name)) in table.lines().skip(1).zip([(1, "gateway-worker"), (2, "traffic-manager")]) {
        assert!(line.starts_with(name) && line.contains(&format!(" stale [{n}] ")), "{s}");
    }
    let unwrapped = notes.split_whitespace().collect::<Vec<_>>().join(" ");
    let why = "the source home changed since it was made (1 path differs): README.txt: size";
    assert!(unwrapped.starts_with(&format!("[1] gateway-worker: {why}")), "{s}");
    assert!(unwrapped.contains(&format!(" [2] traffic-manager: {why}")), "{s}");
    assert!(notes.contains("\n[2] traffic-manager: "), "{s}");
    for l in notes.lines() {
        assert!(l.chars().count() <= 60 || !l.trim().contains(' '), "a note line wider than COLUMNS=60: {l:?}");
        assert!(l.starts_with('[') || l.starts_with("    "), "continuations are indented: {l:?}");
    }

    // split names the same reason when it refuses the stale copy.
    let o = split_no_update(&home, &out).args(["--profiles", "gateway-worker"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let e = text(&o.stderr);
    assert!(e.contains("is stale: the source home changed") && e.contains("README.txt: size"), "{e}");

    std::fs::rename(&home, tmp.path().join("moved")).unwrap();
    let o = status(&[&out], &["--json"]);
    let p = &json(&o)["profiles"][0];
    assert_eq!(p["status"], "stale");
    assert!(
        p["reasons"].to_string().contains("the source home") && p["reasons"].to_string().contains("is gone"),
        "{p}"
    );
}

#[test]
fn status_names_what_drifted_and_split_and_verify_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker,traffic-manager"]);
    let gw = out.join("gateway-worker/wso2am-4.2.0");
    let edited = "repository/conf/deployment.toml";
    let mut toml = read(gw.join(edited));
    toml.extend_from_slice(b"\n# edited by hand on the node\n");
    std::fs::write(gw.join(edited), toml).unwrap();
    std::fs::write(gw.join("repository/notes.txt"), "a note\n").unwrap();

    let o = status(&[&out], &["--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = json(&o);
    check("status.json", &doc);
    let m = by_profile(&doc);
    assert_eq!(m["traffic-manager"]["status"], "current", "{doc}");
    assert_eq!(m["traffic-manager"]["drift_total"], 0);
    let p = &m["gateway-worker"];
    assert_eq!(p["status"], "drifted", "{p}");
    assert_eq!(p["drift_total"], 2, "{p}");
    let status_drift = p["drift"].clone();
    let drift = p["drift"].as_array().unwrap();
    assert_eq!(drift[0]["change"], "changed");
    assert_eq!(drift[0]["path"], edited);
    assert!(drift[0]["what"].to_string().contains("size"), "{p}");
    assert_eq!(drift[1], serde_json::json!({"change": "added", "path": "repository/notes.txt", "kind": "f"}));
    let why = p["reasons"][0].as_str().unwrap();
    assert!(why.starts_with("2 changes since apim-profiles left it: repository/conf/deployment.toml: size"), "{why}");

    let s = text(&status(&[&out], &[]).stdout);
    let line = s.lines().find(|l| l.starts_with("gateway-worker")).unwrap();
    assert!(line.contains(" drifted [1] "), "{s}");
    let note = s
        .split("\n[1] ")
        .nth(1)
        .unwrap_or_else(|| panic!("no note: {s}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        note.starts_with(
            "gateway-worker: 2 changes since apim-profiles left it: repository/conf/deployment.toml: size"
        ),
        "{s}"
    );
    assert!(note.contains("repository/notes.txt: file added"), "{s}");

    // A split re-run of the same output says the same of each copy, and verify too.
    let o = bin()
        .arg("split")
        .arg(&home)
        .arg("--out")
        .arg(&out)
        .args(["--no-update", "--profiles", "gateway-worker,traffic-manager", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    let m = by_profile(&json(&o));
    assert_eq!(m["gateway-worker"]["status"], "drifted");
    // The same differences in the same shape as status's.
    assert_eq!(m["gateway-worker"]["drift"], status_drift);
    assert_eq!(m["gateway-worker"]["drift_total"], 2);
    assert_eq!(m["traffic-manager"]["status"], "current");
    let o = bin().arg("verify").arg(&gw).arg("--json").output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert_eq!(json(&o)["profiles"][0]["status"], "drifted");

    // Other inputs outrank drift: status and split both say stale.
    std::fs::write(home.join("README.txt"), "changed in the source\n").unwrap();
    let p = &json(&status(&[&gw], &["--json"]))["profiles"][0];
    assert_eq!(p["status"], "stale", "{p}");
    assert_eq!(p["drift_total"], 0, "{p}");
    // ...but the reason says that a rebuild would discard the copy's own changes.
    let why = p["reasons"][0].as_str().unwrap();
    assert!(why.contains("README.txt"), "{why}");
    assert!(why.contains("2 changes since apim-profiles left it, which a rebuild would discard"), "{why}");
    assert!(why.contains(edited), "{why}");
    let o = split_no_update(&home, &out).args(["--profiles", "gateway-worker"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("is stale"), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("which a rebuild would discard"), "{}", text(&o.stderr));
}

#[test]
fn status_reads_no_byte_of_a_copy() {
    // A named pipe in a copy: reading it would block; status must only stat
    // it, and it is a difference from what the tool left.
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "traffic-manager"]);
    let copy = out.join("traffic-manager/wso2am-4.2.0");
    let fifo = copy.join("repository/logs-pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let o = bin().arg("status").arg(&out).arg("--json").timeout(std::time::Duration::from_secs(20)).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let p = &json(&o)["profiles"][0];
    assert_eq!(p["profile"], "traffic-manager");
    assert_eq!(p["status"], "drifted", "{p}");
    assert_eq!(p["drift"][0], serde_json::json!({"change": "added", "path": "repository/logs-pipe", "kind": "s"}));
    // The same with a fifo in place of the record's updates/config.json: not opened either.
    std::fs::remove_file(copy.join("updates/config.json")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(copy.join("updates/config.json")).status().unwrap().success());
    let o = bin().arg("status").arg(&out).arg("--json").timeout(std::time::Duration::from_secs(20)).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(json(&o)["profiles"][0]["update_level"].is_null());
}

#[test]
fn status_refuses_what_is_not_a_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let o = status(&[tmp.path()], &["--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["schema_version"], 2);
    assert!(doc["error"].as_str().unwrap().contains("no copy"), "{doc}");
    let e = text(&status(&[&tmp.path().join("nope")], &[]).stderr);
    assert!(e.starts_with("error: ") && e.contains("hint: "), "{e}");
    // A path that is not there is said to be missing, not to hold no copy.
    assert!(e.lines().next().unwrap().ends_with("/nope does not exist"), "{e}");
}

// ---------------------------------------------------------------- hints that work as typed

/// The `error:` and `hint:` lines of a refusal (exit 2).
fn refusal(o: &Output) -> (String, String) {
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    let line = |tag: &str| {
        e.lines().find_map(|l| l.strip_prefix(tag)).unwrap_or_else(|| panic!("no {tag} in {e}")).to_string()
    };
    (line("error: "), line("hint: "))
}

/// The long options a hint names (`--credentials-file`, `--jobs`).
fn options_in(hint: &str) -> Vec<String> {
    hint.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(String::from)
        .collect()
}

#[test]
fn update_without_credentials_suggests_only_what_update_takes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(&tmp.path().join("src"));
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    let copy = out.join("gateway-worker/wso2am-4.2.0");
    let o = bin().arg("update").arg(&copy).arg("--update-tool").arg(double()).write_stdin("").output().unwrap();
    let (what, hint) = refusal(&o);
    assert!(what.contains("no WSO2 credentials"), "{what}");
    let help = text(&bin().args(["update", "--help"]).output().unwrap().stdout);
    let named = options_in(&hint);
    assert!(named.contains(&"--credentials-file".to_string()), "{hint}");
    for opt in named {
        assert!(
            help.contains(&format!("{opt} ")) || help.contains(&format!("{opt}\n")),
            "the hint names {opt}, which update does not take: {hint}"
        );
    }
    // Taken as typed: the hint's option is accepted by update.
    let creds = tmp.path().join("creds");
    std::fs::write(&creds, format!("username=ops@example.com\npassword={PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let o = bin()
        .arg("update")
        .arg(&copy)
        .arg("--update-tool")
        .arg(double())
        .arg("--credentials-file")
        .arg(&creds)
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

#[test]
fn zero_jobs_are_refused_and_the_hint_agrees_with_help() {
    let tmp = tempfile::tempdir().unwrap();
    let help = text(&bin().args(["split", "--help"]).output().unwrap().stdout);
    for (flag, help_says) in [("--jobs", "default: four per core"), ("--update-jobs", "[default: 1]")] {
        let mut split = bin();
        split.arg("split").arg(fixture()).arg("--out").arg(tmp.path().join("out")).args([flag, "0"]);
        let o = split.output().unwrap();
        let (what, hint) = refusal(&o);
        assert!(what.contains(&format!("{flag} 0")), "{what}");
        assert!(help.contains(help_says), "{help}");
        let default =
            hint.split("(the default, ").nth(1).and_then(|h| h.split(',').next()).unwrap_or_else(|| panic!("{hint}"));
        assert!(
            help_says.contains(default),
            "{flag}: the hint says the default is {default:?}, --help says {help_says:?}"
        );
        assert!(!tmp.path().join("out").exists(), "nothing written");
    }
}

#[test]
fn a_mistyped_profile_is_matched_by_edit_distance() {
    let tmp = tempfile::tempdir().unwrap();
    for (typed, nearest) in [
        ("api-key-manager", Some("api-key-manager-deprecated")),
        ("gateway-workr", Some("gateway-worker")),
        ("traffic", Some("traffic-manager")),
        ("xyz", None),
    ] {
        let o = split_no_update(&fixture(), &tmp.path().join("out")).args(["-p", typed]).output().unwrap();
        let (what, hint) = refusal(&o);
        assert!(what.contains(&format!("unknown profile `{typed}`")), "{what}");
        match nearest {
            Some(n) => assert!(hint.starts_with(&format!("did you mean `{n}`?")), "{typed}: {hint}"),
            None => assert!(!hint.contains("did you mean"), "{typed}: nothing is close, yet: {hint}"),
        }
    }
}

#[test]
fn a_stale_refusal_names_every_stale_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(&tmp.path().join("src"));
    let out = tmp.path().join("out");
    split_json(&home, &out, &[]);
    std::fs::write(home.join("README.txt"), "changed in the source\n").unwrap();
    let o = split_no_update(&home, &out).output().unwrap();
    let (what, hint) = refusal(&o);
    assert!(what.starts_with("3 copies exist and are stale: "), "{what}");
    for p in ["control-plane", "gateway-worker", "traffic-manager"] {
        assert!(what.contains(&format!("{}/{p}/wso2am-4.2.0 (the source home changed", out.display())), "{p}: {what}");
    }
    assert!(hint.contains("--force"), "{hint}");
}

// ---------------------------------------------------------------- settings

const SETTINGS: &str = r#"# a three-profile rollout
profiles = ["control-plane", "gateway-worker", "traffic-manager"]
carry = ["super_admin", "database.shared_db"]

[set]
"server.offset" = 0

[update]
enabled = false

[profile.gateway-worker.set]
"apim.key_manager.service_url" = "https://cp.example.com:9443/services/"

[profile.traffic-manager]
overlay = ["tm.toml"]
"#;

fn settings_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let conf = tmp.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(conf.join("settings.toml"), SETTINGS).unwrap();
    std::fs::write(conf.join("tm.toml"), "[server]\nhostname = \"tm.example.com\"\n").unwrap();
    (tmp, home, conf.join("settings.toml"))
}

#[test]
fn settings_file_gives_profiles_carry_sets_and_overlays() {
    let (tmp, home, settings) = settings_dir();
    let out = tmp.path().join("out");
    let o = bin()
        .arg("split")
        .arg(&home)
        .arg("-o")
        .arg(&out)
        .arg("--settings")
        .arg(&settings)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let m = by_profile(&json(&o));
    assert_eq!(m.len(), 3);
    for name in m.keys() {
        let t = std::fs::read_to_string(out.join(name).join("wso2am-4.2.0").join(TOML)).unwrap();
        let home_toml = std::fs::read_to_string(home.join(TOML)).unwrap();
        let doc: toml_edit::DocumentMut = t.parse().unwrap();
        let home_doc: toml_edit::DocumentMut = home_toml.parse().unwrap();
        assert_eq!(doc["super_admin"].to_string(), home_doc["super_admin"].to_string(), "{name}: carried");
        assert_eq!(doc["server"]["offset"].as_integer(), Some(0), "{name}");
    }
    let gw = std::fs::read_to_string(out.join("gateway-worker/wso2am-4.2.0").join(TOML)).unwrap();
    assert!(gw.contains("https://cp.example.com:9443/services/"), "{gw}");
    let tm = std::fs::read_to_string(out.join("traffic-manager/wso2am-4.2.0").join(TOML)).unwrap();
    assert!(tm.contains("tm.example.com"), "overlay path read beside the settings file: {tm}");
    // No update ran: [update] enabled = false.
    assert!(m["gateway-worker"]["update"].is_null());
}

#[test]
fn command_line_wins_over_the_settings_file() {
    let (tmp, home, settings) = settings_dir();
    let out = tmp.path().join("out");
    let o = bin()
        .arg("split")
        .arg(&home)
        .arg("--out")
        .arg(&out)
        .arg("--settings")
        .arg(&settings)
        .args(["-p", "gateway-worker", "--set", "server.offset=3", "-n", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["dry_run"], true);
    let m = by_profile(&doc);
    assert_eq!(m.keys().collect::<Vec<_>>(), ["gateway-worker"]);
    let diff = m["gateway-worker"]["diff"].to_string();
    assert!(diff.contains("offset = 3"), "{diff}");
    assert!(!out.exists(), "dry run wrote nothing");
}

fn settings_error(body: &str) -> (Output, String) {
    let (tmp, home, settings) = settings_dir();
    std::fs::write(&settings, body).unwrap();
    let o = bin()
        .arg("split")
        .arg(&home)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--settings")
        .arg(&settings)
        .output()
        .unwrap();
    assert!(!tmp.path().join("out").exists(), "nothing written");
    let e = text(&o.stderr);
    (o, e)
}

#[test]
fn settings_file_errors_name_file_line_and_column() {
    let (o, e) = settings_error("profiles = [\"gateway-worker\"]\ncary = [\"super_admin\"]\n");
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("settings.toml:2:1"), "{e}");
    assert!(e.contains("cary") && e.contains("carry"), "names the key and the nearest one: {e}");
    assert!(e.contains("hint: "), "{e}");

    let (o, e) = settings_error("[update]\ntimeout = \"soon\"\n");
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("settings.toml:2:11"), "{e}");

    let (o, e) = settings_error("profiles = [\"gateway-worker\"\n");
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("settings.toml:"), "{e}");

    let (o, e) = settings_error("[profile.gateway-workr]\noverlay = []\n");
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("gateway-worker"), "did you mean: {e}");
}

#[test]
fn settings_file_never_takes_the_password() {
    let (o, e) = settings_error("[update]\npassword = \"Hunter2-Secret\"\n");
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("password"), "{e}");
    assert!(!e.contains("Hunter2-Secret") && !text(&o.stdout).contains("Hunter2-Secret"), "{e}");
    assert!(e.contains("WSO2_PASSWORD") || e.contains("credentials-file"), "{e}");
}

// ---------------------------------------------------------------- help

#[test]
fn help_is_grouped_with_examples_and_short_flags() {
    let o = bin().args(["split", "--help"]).output().unwrap();
    assert!(o.status.success());
    let h = text(&o.stdout);
    for heading in ["What to make:", "Configuration:", "Update:", "Output:", "Examples:"] {
        assert!(h.contains(heading), "{heading} missing in:\n{h}");
    }
    for short in ["-o, --out", "-p, --profiles", "-n, --dry-run", "-j, --jobs"] {
        assert!(h.contains(short), "{short} missing in:\n{h}");
    }
    let top = text(&bin().arg("--help").output().unwrap().stdout);
    assert!(top.contains("status") && top.contains("completions") && top.contains("Examples:"), "{top}");
}

/// Every argument and option in each command's `-h` has its description.
#[test]
fn every_argument_is_described_in_short_help() {
    for sub in ["split", "optimize", "update", "verify", "status", "profiles", "completions", "man", "schema"] {
        let o = bin().args([sub, "-h"]).output().unwrap();
        assert!(o.status.success());
        let help = text(&o.stdout);
        let items = help.lines().take_while(|l| !l.starts_with("Examples:")).filter(|l| {
            let t = l.trim_start();
            l.len() - t.len() >= 2 && (t.starts_with('<') || t.starts_with('-') || t.starts_with('['))
        });
        let mut n = 0;
        for item in items {
            n += 1;
            let described = item.trim().split_once("  ").is_some_and(|(_, d)| !d.trim().is_empty());
            assert!(described, "{sub} -h: {item:?} has no description\n{help}");
        }
        assert!(n >= 2, "{sub}: no items read from {help}");
    }
}

#[test]
fn dry_run_summary_lists_files_and_lost_settings_and_suggests_carry_common() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = |extra: &[&str]| {
        let o = split_no_update(&fixture(), &out)
            .args(["-n", "-p", "gateway-worker"])
            .args(extra)
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let full = run(&[]);
    let short = run(&["--summary"]);
    assert!(!short.contains("\n@@ ") && !short.contains("\n--- a/"), "no diff in the summary: {short}");
    assert!(
        short.lines().count() * 2 < full.lines().count(),
        "{} lines against {}",
        short.lines().count(),
        full.lines().count()
    );
    assert!(short.contains("rewritten (2):\n  repository/conf/deployment.toml\n"), "{short}");
    assert!(
        short.contains("removed (56 entries, ")
            && short.contains("\n  repository/deployment/server/webapps/publisher/  (8 entries)\n"),
        "{short}"
    );
    let words = short.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("settings of the home replaced by the profile's (13): apim.key_manager.service_url,"),
        "{short}"
    );
    assert!(words.contains("super_admin.username"), "{short}");
    assert!(words.contains("settings of the home dropped (15): ") && words.contains("truststore.password"), "{short}");
    assert!(words.contains("hint: the home's super_admin, database.shared_db, keystore.tls, truststore would not reach the copy: add --carry-common"), "{short}");
    assert!(!short.contains("Fixture-Admin-Pw1") && !short.contains("********"), "names only, never a value: {short}");
    assert!(short.lines().all(|l| l.chars().count() <= 100 || !l.trim().contains(' ')), "wrapped to COLUMNS: {short}");
    assert!(short.ends_with("dry run: nothing was written\n"), "{short}");
    // Carried, nothing the hint names is lost any more.
    let carried = run(&["--summary", "--carry-common"]);
    assert!(!carried.contains("--carry-common"), "{carried}");
    assert!(!carried.contains("super_admin.username") && !carried.contains("truststore.password"), "{carried}");
    // --summary is a form of the dry-run.
    let o = split_no_update(&fixture(), &out).arg("--summary").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
}

#[test]
fn quiet_reports_only_copies_that_need_attention() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = split_no_update(&fixture(), &out).arg("-q").output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "", "a split that went well says nothing with -q");
    assert_eq!(text(&o.stderr), "");
    let copies: Vec<PathBuf> = ["control-plane", "gateway-worker", "traffic-manager"]
        .iter()
        .map(|p| out.join(p).join("wso2am-4.2.0"))
        .collect();
    let o = bin().arg("verify").args(&copies).arg("-q").output().unwrap();
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), "");
    std::fs::write(copies[1].join("README.txt"), "changed\n").unwrap();
    let o = bin().arg("verify").args(&copies).arg("-q").output().unwrap();
    assert_eq!(o.status.code(), Some(4));
    let s = text(&o.stdout);
    assert!(s.starts_with("== gateway-worker (drifted)") && s.contains("README.txt"), "{s}");
    assert!(!s.contains("control-plane") && !s.contains("traffic-manager"), "only the copy that drifted: {s}");
}

#[test]
fn version_lists_the_product_versions() {
    let o = bin().arg("--version").output().unwrap();
    assert!(o.status.success());
    let v = text(&o.stdout);
    assert!(v.starts_with(&format!("apim-profiles {}", env!("CARGO_PKG_VERSION"))), "{v}");
    assert!(v.contains("4.2.0"), "{v}");
}

// ---------------------------------------------------------------- completions and man

#[test]
fn bash_completion_parses_and_completes() {
    let o = bin().args(["completions", "bash"]).output().unwrap();
    assert!(o.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("apim-profiles.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    let st = std::process::Command::new("bash").arg("-n").arg(&script).status().unwrap();
    assert!(st.success(), "bash -n rejects the completion script");
    // Source it and ask the function it registers for `apim-profiles sp<TAB>`.
    let probe = format!(
        "source {}; f=$(complete -p apim-profiles | sed 's/.*-F \\([^ ]*\\).*/\\1/'); \
         COMP_WORDS=(apim-profiles sp); COMP_CWORD=1; COMP_LINE='apim-profiles sp'; COMP_POINT=16; \
         \"$f\" apim-profiles sp apim-profiles; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let o = std::process::Command::new("bash").arg("-c").arg(&probe).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).lines().any(|l| l == "split"), "{}", text(&o.stdout));
}

#[test]
fn other_shells_get_completions_naming_every_command() {
    for shell in ["zsh", "fish", "powershell"] {
        let o = bin().args(["completions", shell]).output().unwrap();
        assert!(o.status.success(), "{shell}");
        let s = text(&o.stdout);
        for cmd in ["split", "optimize", "update", "verify", "status", "profiles"] {
            assert!(s.contains(cmd), "{shell} completion lacks {cmd}");
        }
    }
    let o = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn man_pages_render() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bin().arg("man").arg("--out").arg(tmp.path()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let pages = names_in(tmp.path());
    for p in ["apim-profiles.1", "apim-profiles-split.1", "apim-profiles-status.1"] {
        assert!(pages.contains(&p.to_string()), "{pages:?}");
    }
    // Every page: EXIT STATUS and ENVIRONMENT, and no heading with nothing under it.
    for p in &pages {
        let roff = std::fs::read_to_string(tmp.path().join(p)).unwrap();
        for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH EXAMPLES"] {
            assert!(roff.contains(section), "{p} has no {section}");
        }
        for code in ["\\fB2\\fR", "\\fB4\\fR", "\\fB130\\fR", "\\fB143\\fR"] {
            assert!(roff.contains(code), "{p}: EXIT STATUS lacks {code}");
        }
        for var in ["WSO2_PASSWORD", "NO_COLOR", "COLUMNS"] {
            assert!(roff.contains(var), "{p}: ENVIRONMENT lacks {var}");
        }
        let lines: Vec<&str> = roff.lines().filter(|l| !l.trim().is_empty()).collect();
        for (i, l) in lines.iter().enumerate() {
            let next = lines.get(i + 1);
            assert!(!l.starts_with(".SH") || next.is_some_and(|n| !n.starts_with(".SH")), "{p}: empty section {l}");
        }
    }
    if std::process::Command::new("man").arg("--version").output().is_err() {
        eprintln!("skipped rendering: man is not installed (apt-get install man-db)");
        return;
    }
    let o = std::process::Command::new("man")
        .arg("-l")
        .arg(tmp.path().join("apim-profiles-split.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let page = text(&o.stdout);
    assert!(page.contains("--out") && page.contains("EXAMPLES"), "{page}");
    assert!(!text(&o.stderr).contains("warning"), "{}", text(&o.stderr));
}

// ---------------------------------------------------------------- colour

fn dry_run(color: &str, env: &[(&str, &str)], json: bool) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = bin();
    c.arg("split").arg(fixture()).arg("--out").arg(tmp.path().join("out"));
    c.args(["--no-update", "-n", "-p", "gateway-worker", "--color", color]);
    if json {
        c.arg("--json");
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn colour_where_asked_and_never_in_json() {
    let o = dry_run("always", &[], false);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    assert!(s.lines().any(|l| l.starts_with("\x1b[32m+")), "green additions: {s:?}");
    assert!(s.lines().any(|l| l.starts_with("\x1b[31m-")), "red removals");
    assert!(s.contains("\x1b[1m"), "bold headers");
    for (c, env) in [("never", vec![]), ("auto", vec![]), ("auto", vec![("NO_COLOR", "1")])] {
        let o = dry_run(c, &env, false);
        assert!(!text(&o.stdout).contains('\x1b') && !text(&o.stderr).contains('\x1b'), "--color {c} {env:?}");
    }
    let o = dry_run("always", &[], true);
    assert!(!text(&o.stdout).contains('\x1b'), "never colour in JSON");
    json(&o);
    // Errors are coloured when asked.
    let o = bin().args(["verify", "/nonexistent-copy", "--color", "always"]).output().unwrap();
    assert!(text(&o.stderr).contains("\x1b[1;31merror"), "{:?}", text(&o.stderr));
    let o = bin().args(["verify", "/nonexistent-copy", "--color=always"]).env("NO_COLOR", "1").output().unwrap();
    assert!(text(&o.stderr).contains('\x1b'), "--color always wins over NO_COLOR");
}

#[test]
fn progress_only_on_a_terminal_and_never_with_quiet() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin_path = assert_cmd::cargo::cargo_bin("apim-profiles");
    let run = |extra: &str, out: &str| {
        let cmd = format!(
            "{} split {} --out {} --no-update {extra} 2>&1",
            bin_path.display(),
            fixture().display(),
            tmp.path().join(out).display()
        );
        let o = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("TERM", "xterm")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stdout));
        text(&o.stdout)
    };
    let s = run("", "a");
    assert!(s.contains("plan: 3 profile(s)"), "the plan phase on a terminal: {s:?}");
    let q = run("--quiet", "b");
    assert!(!q.contains("plan: "), "--quiet: {q:?}");
    let o = split_no_update(&fixture(), &tmp.path().join("c")).output().unwrap();
    assert!(!text(&o.stderr).contains("plan: "), "no progress off a terminal: {}", text(&o.stderr));
}

// ---------------------------------------------------------------- archives

#[test]
fn archives_keep_real_times_and_say_where_they_are() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let o =
        split_no_update(&home, &out).args(["-p", "gateway-worker", "--archive", "tar.gz", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = json(&o);
    let path = PathBuf::from(doc["profiles"][0]["archive"].as_str().expect("archive path in JSON"));
    assert!(path.is_file(), "{}", path.display());
    let copy = out.join("gateway-worker/wso2am-4.2.0");
    let rel = "bin/version.txt";
    let want = std::fs::symlink_metadata(copy.join(rel)).unwrap().mtime();
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap());
    let mut ar = tar::Archive::new(gz);
    let mut seen = false;
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap() == Path::new("wso2am-4.2.0").join(rel) {
            assert_eq!(e.header().mtime().unwrap() as i64, want);
            seen = true;
        }
    }
    assert!(seen);

    let out2 = tmp.path().join("out2");
    let o = split_no_update(&home, &out2).args(["-p", "gateway-worker", "--archive", "zip"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let zpath = out2.join("gateway-worker/wso2am-4.2.0.zip");
    assert!(text(&o.stdout).contains(zpath.to_str().unwrap()), "the path is printed: {}", text(&o.stdout));
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zpath).unwrap()).unwrap();
    let f = z.by_name(&format!("wso2am-4.2.0/{rel}")).unwrap();
    let t = f.last_modified().unwrap();
    assert!(t.year() > 2000, "a real date, not 1980: {t:?}");
    drop(f);
    // Every entry, the root directory's included, carries the time of what it
    // holds (zip keeps even seconds, in UTC).
    let copy2 = out2.join("gateway-worker/wso2am-4.2.0");
    let mut root_seen = false;
    for i in 0..z.len() {
        let f = z.by_index(i).unwrap();
        let name = f.name().trim_end_matches('/').to_string();
        let rel = name.strip_prefix("wso2am-4.2.0").unwrap().trim_start_matches('/');
        root_seen |= rel.is_empty();
        let want = std::fs::symlink_metadata(copy2.join(rel)).unwrap().mtime();
        let t = f.last_modified().unwrap();
        let days = days_from_civil(t.year().into(), t.month().into(), t.day().into());
        let got = days * 86_400 + i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second());
        assert!((0..=1).contains(&(want - got)), "{name}: zip says {t:?}, the copy {want}");
    }
    assert!(root_seen, "the zip has an entry for the copy's root directory");
    // And the tarball's root directory.
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap());
    let mut ar = tar::Archive::new(gz);
    let root =
        ar.entries().unwrap().map(|e| e.unwrap()).find(|e| e.path().unwrap() == Path::new("wso2am-4.2.0")).unwrap();
    assert_eq!(root.header().mtime().unwrap() as i64, std::fs::symlink_metadata(&copy).unwrap().mtime());
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------- JSON schema

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema")
}

fn check(schema: &str, doc: &serde_json::Value) {
    let s: serde_json::Value = serde_json::from_slice(&read(schema_dir().join(schema))).unwrap();
    let v = jsonschema::validator_for(&s).unwrap_or_else(|e| panic!("{schema}: {e}"));
    let errors: Vec<String> = v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{schema}: {errors:#?}\n{doc:#}");
    assert_eq!(doc["schema_version"], 2, "{schema}");
}

#[test]
fn committed_schemas_are_the_generated_ones() {
    for cmd in ["split", "optimize", "update", "verify", "status", "profiles", "error"] {
        let o = bin().args(["schema", cmd]).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", text(&o.stderr));
        let committed = read(schema_dir().join(format!("{cmd}.json")));
        assert_eq!(
            text(&o.stdout),
            text(&committed),
            "schema/{cmd}.json is out of date: run `apim-profiles schema {cmd} > schema/{cmd}.json`"
        );
    }
}

#[test]
fn real_outputs_follow_their_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let o = updated_split(&home, &out, "success");
    assert!(o.status.success());
    check("split.json", &json(&o));
    let dry = json(&split_no_update(&home, &tmp.path().join("dry")).args(["-n", "--json"]).output().unwrap());
    check("split.json", &dry);
    let copy = out.join("gateway-worker/wso2am-4.2.0");
    check("verify.json", &json(&bin().arg("verify").arg(&copy).arg("--json").output().unwrap()));
    check("status.json", &json(&status(&[&out], &["--json"])));
    check("profiles.json", &json(&bin().args(["profiles", "--json"]).output().unwrap()));
    let o = bin()
        .arg("update")
        .arg(&copy)
        .arg("--json")
        .env("WSO2_USERNAME", "ops@example.com")
        .env("WSO2_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    check("update.json", &json(&o));
    let other = home_in(&tmp.path().join("o"));
    let o = bin().arg("optimize").arg(&other).args(["--profile", "traffic-manager", "--json"]).output().unwrap();
    check("optimize.json", &json(&o));
    let o = bin().arg("verify").arg(tmp.path().join("nope")).arg("--json").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    check("error.json", &json(&o));
}

#[test]
fn status_escapes_control_characters_in_names() {
    // A file planted in a copy with an escape sequence in its name is named in
    // the drifted reason, written as a Rust escape, never raw to the terminal.
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    std::fs::write(out.join("gateway-worker/wso2am-4.2.0/evil\x1b[31mred"), "x").unwrap();
    let o = bin().arg("status").arg(&out).args(["--color", "never"]).env("COLUMNS", "1000").output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    assert!(!s.contains('\x1b'), "a raw escape reached the terminal: {s:?}");
    assert!(s.contains("evil\\u{1b}[31mred: file added"), "{s}");
    // The same name in a split re-run's report and its dry-run.
    for extra in [&[][..], &["--dry-run"][..]] {
        let o = split_no_update(&home, &out)
            .args(["--profiles", "gateway-worker", "--color", "never"])
            .args(extra)
            .output()
            .unwrap();
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(all.contains("evil\\u{1b}[31mred"), "{all}");
        assert!(!all.contains('\x1b'), "a raw escape reached the terminal: {all:?}");
    }
}
