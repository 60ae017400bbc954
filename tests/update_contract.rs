//! The update contract: a copy that an update made equals WSO2's documented
//! procedure — the pack updated by the tool, then the product's optimization
//! for its profile (as `apim-profiles optimize` reproduces it; tests/versions.rs
//! holds that to the product's own script), then the operator's settings — in
//! both orders (per copy, and `--update-once`), on the first run and when an
//! updated copy is updated again. The update tool is the strict double of
//! fixtures/update-tool: it changes deployment.toml, the profile templates,
//! the `.j2` templates, a webapp profiles remove and jars, and conflicts on
//! any file that differs from the pack as shipped. Every entry is compared
//! (kind, content, mode, link target) except the tool's own state
//! (`updates/`) and apim-profiles' record and logs.

mod common;
#[path = "common/packs.rs"]
mod packs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use packs::Pack;

const PW: &str = "C0ntract-Pa55word!";

/// Every entry of a copy but the tool's state and this tool's files.
fn entries(root: &Path) -> BTreeMap<String, Item> {
    digest(root).into_iter().filter(|(k, _)| k != "updates" && !k.starts_with("updates/")).collect()
}

/// Where two trees differ, one line per path.
fn differences(a: &BTreeMap<String, Item>, b: &BTreeMap<String, Item>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("only in the procedure's copy: {k}")),
            Some(w) if w != v => out.push(format!("differs: {k}: {v:?} vs {w:?}")),
            _ => {}
        }
    }
    out.extend(b.keys().filter(|k| !a.contains_key(*k)).map(|k| format!("only in apim-profiles' copy: {k}")));
    out
}

/// The double run by hand in `home`'s bin/, as an operator runs WSO2's tool.
fn run_tool(home: &Path, args: &[&str], latest: u32) -> std::process::Output {
    let tool = home.join("bin/wso2update_linux");
    if !tool.exists() {
        std::fs::copy(double(), &tool).unwrap();
    }
    Command::new(&tool)
        .args(args)
        .current_dir(home.join("bin"))
        .env("APIM_DOUBLE_LATEST_LEVEL", latest.to_string())
        .env("APIM_DOUBLE_EXPECT_PASSWORD", PW)
        .output()
        .unwrap()
}

/// WSO2's procedure for one profile: a copy of the pack, updated to the
/// latest level, then optimized for the profile with the operator's settings.
fn procedure(home: &Path, profile: &str, work: &Path, latest: u32, settings: &[&str]) -> PathBuf {
    let copy = work.join(format!("procedure-{profile}-{latest}"));
    assert!(Command::new("cp").arg("-a").arg(home).arg(&copy).status().unwrap().success());
    let backup = work.join(format!("procedure-backup-{profile}-{latest}"));
    let o = run_tool(&copy, &["-u", "ops@example.com", "-p", PW, "-b", backup.to_str().unwrap()], latest);
    assert!(o.status.success(), "the tool: {}", String::from_utf8_lossy(&o.stderr));
    bin()
        .arg("optimize")
        .arg(&copy)
        .args(["--profile", profile])
        .args(for_profile(settings, profile))
        .assert()
        .success();
    copy
}

/// The settings that apply to `profile` (optimize refuses another profile's).
fn for_profile<'a>(settings: &[&'a str], profile: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < settings.len() {
        if settings[i] == "--set" {
            let v = settings[i + 1];
            let other = v.split_once(':').is_some_and(|(p, rest)| !p.contains('=') && !rest.is_empty() && p != profile);
            if !other {
                out.extend([settings[i], v]);
            }
            i += 2;
        } else {
            out.push(settings[i]);
            i += 1;
        }
    }
    out
}

fn split(home: &Path, out: &Path, latest: u32, extra: &[&str]) -> serde_json::Value {
    let o = split_with_double(home, out, "success", PW)
        .env("APIM_DOUBLE_LATEST_LEVEL", latest.to_string())
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "split {extra:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Both orders against the procedure, for every default profile of `home`.
fn both_orders_give_the_procedure(home: &Path, work: &Path, settings: &[&str]) {
    let name = home.file_name().unwrap().to_str().unwrap().to_string();
    let mut each_args = settings.to_vec();
    each_args.push("--update-each");
    let each = split(home, &work.join("each"), 5, &each_args);
    // The once order is the default with one home.
    split(home, &work.join("once"), 5, settings);
    let profiles: Vec<String> =
        each["profiles"].as_array().unwrap().iter().map(|p| p["profile"].as_str().unwrap().to_string()).collect();
    assert!(!profiles.is_empty());
    for (p, r) in profiles.iter().zip(each["profiles"].as_array().unwrap()) {
        assert_eq!(r["update"]["level"], format!("{}.5", &name[name.len() - 5..]), "{p}: the level reached");
        let want = entries(&procedure(home, p, work, 5, settings));
        for order in ["each", "once"] {
            let got = entries(&work.join(order).join(p).join(&name));
            let d = differences(&want, &got);
            assert!(d.is_empty(), "{name} {p}, order {order}:\n{}", d.join("\n"));
        }
        let kept = work.join("each").join(p).join(&name);
        bin().arg("verify").arg(&kept).assert().code(0);
    }
}

#[test]
fn both_orders_equal_wso2s_procedure_on_4_2_0_with_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let settings = ["--carry-common", "--set", "gateway-worker:server.hostname=\"gw.example.com\""];
    both_orders_give_the_procedure(&home, tmp.path(), &settings);
}

#[test]
fn both_orders_equal_wso2s_procedure_on_3_2_0_and_4_4_0() {
    for version in ["3.2.0", "4.4.0"] {
        let tmp = tempfile::tempdir().unwrap();
        let Some(home) = packs::build(Pack::AllInOne, version, &tmp.path().join("packs")) else {
            eprintln!("skipped: the {version} configuration files are not beside the project");
            continue;
        };
        both_orders_give_the_procedure(&home, tmp.path(), &[]);
    }
}

fn update(copy: &Path, latest: u32, extra: &[&str]) -> std::process::Output {
    bin()
        .arg("update")
        .arg(copy)
        .arg("--json")
        .args(extra)
        .env("WSO2_USERNAME", "ops@example.com")
        .env("WSO2_PASSWORD", PW)
        .env("APIM_DOUBLE_LATEST_LEVEL", latest.to_string())
        .env("APIM_DOUBLE_EXPECT_PASSWORD", PW)
        .output()
        .unwrap()
}

fn report(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

/// An updated copy updated again (level 5 to 7) with its settings read back
/// from the deployment.toml apim-profiles wrote: the procedure at level 7;
/// rolled back, the procedure at level 5.
fn updated_again_keeps_the_contract(home: &Path, work: &Path, profile: &str, settings: &[&str]) {
    let name = home.file_name().unwrap().to_str().unwrap().to_string();
    let version = &name[name.len() - 5..];
    let mut args = settings.to_vec();
    args.extend(["-p", profile, "--update-each"]);
    split(home, &work.join("out"), 5, &args);
    let copy = work.join("out").join(profile).join(&name);
    let o = update(&copy, 7, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = &report(&o)["profiles"][0];
    assert_eq!(r["update"]["level_before"], format!("{version}.5"));
    assert_eq!(r["update"]["level"], format!("{version}.7"));
    let added: Vec<&str> = r["update"]["added"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(added.contains(&"repository/components/dropins/wso2-update-fix-7.jar"), "{added:?}");
    let want = entries(&procedure(home, profile, work, 7, settings));
    let d = differences(&want, &entries(&copy));
    assert!(d.is_empty(), "{name} {profile}:\n{}", d.join("\n"));
    bin().arg("verify").arg(&copy).assert().code(0);

    // Rolled back: the copy is the procedure at level 5 again.
    let o = update(&copy, 7, &["--revert"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(report(&o)["profiles"][0]["status"], "reverted");
    assert_eq!(report(&o)["profiles"][0]["update"]["level"], format!("{version}.5"));
    let want = entries(&procedure(home, profile, work, 5, settings));
    let d = differences(&want, &entries(&copy));
    assert!(d.is_empty(), "{name} {profile} after the revert:\n{}", d.join("\n"));
}

#[test]
fn an_updated_copy_updated_again_keeps_the_contract_and_its_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let settings = ["--carry-common", "--set", "gateway-worker:server.hostname=\"gw.example.com\""];
    updated_again_keeps_the_contract(&home, tmp.path(), "gateway-worker", &settings);
}

/// 3.2.0 moves its template variants into place: putting them back for the
/// tool moves them back where the pack has them.
#[test]
fn a_3_2_0_copy_whose_variants_were_moved_is_updated_again_to_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(home) = packs::build(Pack::AllInOne, "3.2.0", &tmp.path().join("packs")) else {
        eprintln!("skipped: the 3.2.0 configuration files are not beside the project");
        return;
    };
    updated_again_keeps_the_contract(&home, tmp.path(), "traffic-manager", &[]);
}

/// A file the operator edited and the update changes: the tool stops on
/// exactly that conflict; resolved with the update's version, the copy is
/// the procedure's and verify says so.
#[test]
fn an_operators_edit_is_the_only_conflict_and_its_resolution_gives_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    split(&home, &tmp.path().join("out"), 5, &["-p", "gateway-worker"]);
    let copy = tmp.path().join("out/gateway-worker/wso2am-4.2.0");
    let toml = copy.join(TOML);
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("# tuned by ops\n");
    std::fs::write(&toml, text).unwrap();

    // Held back without --force: the copy changed since it was made.
    let o = update(&copy, 8, &[]);
    assert_eq!(report(&o)["profiles"][0]["status"], "drifted");
    let o = update(&copy, 8, &["--force"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let r = &report(&o)["profiles"][0];
    assert_eq!(r["status"], "conflicts");
    assert_eq!(r["update"]["conflicts"], serde_json::json!([TOML]));
    bin().arg("verify").arg(&copy).assert().code(4);

    // The natural resolution: the update's version is kept.
    std::fs::copy(copy.join(format!("{TOML}.new")), copy.join(format!("{TOML}.final"))).unwrap();
    let o = update(&copy, 8, &["--continue"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(report(&o)["profiles"][0]["update"]["level"], "4.2.0.8");
    let want = entries(&procedure(&home, "gateway-worker", tmp.path(), 8, &[]));
    let d = differences(&want, &entries(&copy));
    assert!(d.is_empty(), "{}", d.join("\n"));
    bin().arg("verify").arg(&copy).assert().code(0);
    assert!(std::fs::read_to_string(&toml).unwrap().contains("server_role = \"gateway-worker\""));
}

/// A level asked for is never ignored: in the per-copy order, split over
/// current copies at another level refuses with the command that updates
/// them (the once order rolls them forward: tests/rollforward.rs); status names
/// copies at different levels; after the roll forward split is current.
#[test]
fn a_level_asked_for_is_never_ignored_and_mixed_levels_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split(&home, &out, 5, &["-p", "gateway-worker,traffic-manager", "--update-each"]);
    let again = |level: &str| {
        split_with_double(&home, &out, "success", PW)
            .env("APIM_DOUBLE_LATEST_LEVEL", "7")
            .args(["-p", "gateway-worker,traffic-manager", "--update-each", "--update-level", level])
            .output()
            .unwrap()
    };
    let o = again("7");
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is at update level 4.2.0.5, not 7") && err.contains("apim-profiles update --update-level 7"),
        "{err}"
    );
    // One copy rolled forward: status names the two levels and what to run.
    let gw = out.join("gateway-worker/wso2am-4.2.0");
    let o = update(&gw, 7, &["--update-level", "7"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin().arg("status").arg(&out).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let w = v["warnings"][0].as_str().unwrap_or_default().to_string();
    assert!(w.contains("4.2.0.5 (traffic-manager)") && w.contains("4.2.0.7 (gateway-worker)"), "{v}");
    assert!(w.contains("update --update-level 4.2.0.7") && w.contains("traffic-manager/wso2am-4.2.0"), "{w}");
    let o = update(&out.join("traffic-manager/wso2am-4.2.0"), 7, &["--update-level", "7"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = again("7");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["profiles"].as_array().unwrap().iter().all(|p| p["status"] == "current"), "{v}");
}
