//! `split` through the real binary on real files: the per-profile facts of the
//! product's optimization, the layout, dry-run, and the source left untouched.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use predicates::prelude::*;

fn globish(name: &str, pat: &str) -> bool {
    // Test-side reading of the keep patterns used below (`*` only).
    match pat.split_once('*') {
        Some((a, b)) => name.starts_with(a) && name.ends_with(b) && name.len() >= a.len() + b.len(),
        None => name == pat,
    }
}

/// The entries of the source webapps directory the facts file says a profile keeps.
fn expected_webapps(home: &Path, keep: &[&str]) -> Vec<String> {
    names_in(&home.join(WEBAPPS)).into_iter().filter(|n| keep.iter().any(|k| globish(n, k))).collect()
}

/// Checks "replace-template TARGET with VARIANT, backup B" on a copy.
fn assert_replaced(home: &Path, copy: &Path, target: &str, variant: &str, backup: &str) {
    let (t, v, b) = (format!("{T}/{target}"), format!("{T}/{variant}"), format!("{T}/{backup}"));
    assert_eq!(read(copy.join(&t)), read(home.join(&v)), "{t} is the variant");
    assert_eq!(read(copy.join(&b)), read(home.join(&t)), "{b} holds the original");
    assert_eq!(read(copy.join(&v)), read(home.join(&v)), "the variant stays");
}

fn assert_toml_replaced(home: &Path, copy: &Path, profile: &str) {
    assert_eq!(read(copy.join(TOML)), read(home.join(format!("{DTPL}/{profile}.toml"))));
    assert_eq!(read(copy.join(TOML_BACKUP)), read(home.join(TOML)));
}

/// Every entry of the source that the profile neither removes nor replaces is
/// in the copy, identical; nothing else is added but the listed backups.
fn assert_rest_identical(home: &Path, copy: &Path, changed: &[String], removed_prefixes: &[String], added: &[String]) {
    let src = digest(home);
    let dst = digest(copy);
    for (p, item) in &src {
        let gone = removed_prefixes.iter().any(|r| p == r || p.starts_with(&format!("{r}/")));
        if gone {
            assert!(!dst.contains_key(p), "{p} should be removed");
        } else if !changed.contains(p) {
            assert_eq!(dst.get(p), Some(item), "{p} should be copied unchanged");
        }
    }
    for p in dst.keys() {
        assert!(src.contains_key(p) || added.contains(p), "unexpected entry {p} in the copy");
    }
}

const WS: [&str; 4] = [
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/WebSocketInboundEndpoint.xml",
    "repository/resources/conf/templates/repository/deployment/server/synapse-configs/default/inbound-endpoints/WebSocketInboundEndpoint.xml.j2",
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/SecureWebSocketInboundEndpoint.xml",
    "repository/resources/conf/templates/repository/deployment/server/synapse-configs/default/inbound-endpoints/SecureWebSocketInboundEndpoint.xml.j2",
];
const AUTHWEB: &str = "repository/resources/conf/templates/repository/deployment/server/webapps/authenticationendpoint/WEB-INF/web.xml.j2";
const RECWEB: &str = "repository/resources/conf/templates/repository/deployment/server/webapps/accountrecoveryendpoint/WEB-INF/web.xml.j2";

fn synapse_removals(home: &Path) -> Vec<String> {
    names_in(&home.join(SYN)).into_iter().filter(|n| n != "synapse.xml").map(|n| format!("{SYN}/{n}")).collect()
}

fn webapp_removals(home: &Path, kept: &[String]) -> Vec<String> {
    names_in(&home.join(WEBAPPS)).into_iter().filter(|n| !kept.contains(n)).map(|n| format!("{WEBAPPS}/{n}")).collect()
}

#[test]
fn split_default_profiles_match_the_products_optimization() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let report = split_json(&home, &out, &[]);
    assert_eq!(report["changed"], true);
    let names: Vec<&str> =
        report["profiles"].as_array().unwrap().iter().map(|p| p["profile"].as_str().unwrap()).collect();
    assert_eq!(names, ["control-plane", "gateway-worker", "traffic-manager"]);
    // Beside the copies, the key their records are sealed with (docs/design.md).
    assert_eq!(names_in(&out), [".apim-profiles-key", "control-plane", "gateway-worker", "traffic-manager"]);

    // control-plane
    let cp = out.join("control-plane/wso2am-4.2.0");
    assert_toml_replaced(&home, &cp, "control-plane");
    assert_replaced(
        &home,
        &cp,
        "repository/conf/axis2/axis2.xml.j2",
        "repository/conf/axis2/axis2_ControlPlane.xml.j2",
        "repository/conf/axis2/axis2.xml.j2.backup",
    );
    assert_replaced(
        &home,
        &cp,
        "repository/conf/axis2/tenant-axis2.xml.j2",
        "repository/conf/axis2/tenant-axis2_ControlPlane.xml.j2",
        "repository/conf/axis2/tenant-axis2.xml.j2.backup",
    );
    assert_eq!(names_in(&cp.join(SYN)), ["synapse.xml"]);
    let kept_web: Vec<String> = names_in(&home.join(WEBAPPS))
        .into_iter()
        .filter(|n| n != "api#am#gateway#v2.war" && n != "api#am#gateway#v2")
        .collect();
    assert_eq!(names_in(&cp.join(WEBAPPS)), kept_web);
    let mut gone: Vec<String> = WS.iter().map(|s| s.to_string()).collect();
    gone.extend(synapse_removals(&home));
    gone.extend(webapp_removals(&home, &kept_web));
    let changed = vec![
        TOML.to_string(),
        format!("{T}/repository/conf/axis2/axis2.xml.j2"),
        format!("{T}/repository/conf/axis2/tenant-axis2.xml.j2"),
    ];
    let added = vec![
        TOML_BACKUP.to_string(),
        format!("{T}/repository/conf/axis2/axis2.xml.j2.backup"),
        format!("{T}/repository/conf/axis2/tenant-axis2.xml.j2.backup"),
    ];
    assert_rest_identical(&home, &cp, &changed, &gone, &added);

    // gateway-worker: synapse configs and inbound endpoints stay.
    let gw = out.join("gateway-worker/wso2am-4.2.0");
    assert_toml_replaced(&home, &gw, "gateway-worker");
    let web = "repository/conf/tomcat/carbon/WEB-INF";
    assert_replaced(
        &home,
        &gw,
        &format!("{web}/web.xml.j2"),
        &format!("{web}/web_TM_GW.xml.j2"),
        &format!("{web}/web.xml.j2.backup"),
    );
    let kept = expected_webapps(&home, &["am#sample#pizzashack#v*.war", "api#am#gateway#v2.war"]);
    assert!(kept.contains(&"api#am#gateway#v2.war".to_string()));
    assert_eq!(names_in(&gw.join(WEBAPPS)), kept, "the exploded directory of a kept war goes too");
    assert_eq!(digest(&gw.join(SYN)), digest(&home.join(SYN)));
    let mut gone = vec![AUTHWEB.to_string(), RECWEB.to_string()];
    gone.extend(webapp_removals(&home, &kept));
    let changed = vec![TOML.to_string(), format!("{T}/{web}/web.xml.j2")];
    let added = vec![TOML_BACKUP.to_string(), format!("{T}/{web}/web.xml.j2.backup")];
    assert_rest_identical(&home, &gw, &changed, &gone, &added);

    // traffic-manager
    let tm = out.join("traffic-manager/wso2am-4.2.0");
    assert_toml_replaced(&home, &tm, "traffic-manager");
    assert_replaced(
        &home,
        &tm,
        "repository/conf/axis2/axis2.xml.j2",
        "repository/conf/axis2/axis2_TM.xml.j2",
        "repository/conf/axis2/axis2.xml.j2.backup",
    );
    assert_replaced(
        &home,
        &tm,
        "repository/conf/registry.xml.j2",
        "repository/conf/registry_TM.xml.j2",
        "repository/conf/registry.backup",
    );
    assert_replaced(
        &home,
        &tm,
        &format!("{web}/web.xml.j2"),
        &format!("{web}/web_TM_GW.xml.j2"),
        &format!("{web}/web.xml.j2.backup"),
    );
    let kept = expected_webapps(&home, &["internal#data#v*.war"]);
    assert_eq!(kept, ["internal#data#v1.war"]);
    assert_eq!(names_in(&tm.join(WEBAPPS)), kept);
    assert_eq!(names_in(&tm.join(SYN)), ["synapse.xml"]);
    let mut gone: Vec<String> = WS.iter().map(|s| s.to_string()).collect();
    gone.extend([AUTHWEB.to_string(), RECWEB.to_string()]);
    gone.extend(synapse_removals(&home));
    gone.extend(webapp_removals(&home, &kept));
    let changed = vec![
        TOML.to_string(),
        format!("{T}/repository/conf/axis2/axis2.xml.j2"),
        format!("{T}/repository/conf/registry.xml.j2"),
        format!("{T}/{web}/web.xml.j2"),
    ];
    let added = vec![
        TOML_BACKUP.to_string(),
        format!("{T}/repository/conf/axis2/axis2.xml.j2.backup"),
        format!("{T}/repository/conf/registry.backup"),
        format!("{T}/{web}/web.xml.j2.backup"),
    ];
    assert_rest_identical(&home, &tm, &changed, &gone, &added);
}

#[test]
fn key_manager_profile_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "api-key-manager-deprecated"]);
    assert_eq!(names_in(&out), [".apim-profiles-key", "api-key-manager-deprecated"]);
    let km = out.join("api-key-manager-deprecated/wso2am-4.2.0");
    assert_toml_replaced(&home, &km, "api-key-manager-deprecated");
    assert_replaced(
        &home,
        &km,
        "repository/conf/axis2/axis2.xml.j2",
        "repository/conf/axis2/axis2_KM.xml.j2",
        "repository/conf/axis2/axis2.xml.j2.backup",
    );
    assert_replaced(
        &home,
        &km,
        "repository/conf/axis2/tenant-axis2.xml.j2",
        "repository/conf/axis2/tenant-axis2_KM.xml.j2",
        "repository/conf/axis2/tenant-axis2.xml.j2.backup",
    );
    assert!(!km.join("repository/conf/axis2/axis2_blocking_client.xml").exists());
    assert!(!km.join(format!("{T}/repository/conf/axis2/axis2_blocking_client.xml.j2")).exists());
    let keep = [
        "authenticationendpoint",
        "accountrecoveryendpoint",
        "oauth2.war",
        "api#identity#consent-mgt#v*.war",
        "api#identity#recovery#v*.war",
        "api#identity#user#v*.war",
        "api#identity#oauth2#dcr#v*.war",
        "api#identity#oauth2#v*.war",
        "keymanager-operations.war",
    ];
    assert_eq!(names_in(&km.join(WEBAPPS)), expected_webapps(&home, &keep));
    assert_eq!(names_in(&km.join(SYN)), ["synapse.xml"]);
    for ws in WS {
        assert!(!km.join(ws).exists(), "{ws}");
    }
}

#[test]
fn skip_config_optimization_keeps_the_homes_deployment_toml() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--skip-config-optimization", "--profiles", "gateway-worker,traffic-manager"]);
    for p in ["gateway-worker", "traffic-manager"] {
        let c = out.join(p).join("wso2am-4.2.0");
        assert_eq!(read(c.join(TOML)), read(home.join(TOML)));
        assert!(!c.join(TOML_BACKUP).exists());
        // The rest of the optimization still happens.
        assert!(c.join(format!("{T}/repository/conf/tomcat/carbon/WEB-INF/web.xml.j2.backup")).exists());
    }
}

#[test]
fn dry_run_writes_nothing_and_masks_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let before = digest(&home);
    let before_times = mtimes(&home);
    let out = tmp.path().join("out");
    let all = "control-plane,gateway-worker,traffic-manager,api-key-manager-deprecated";
    let o = split_no_update(&home, &out).args(["--dry-run", "--profiles", all]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(!out.exists(), "dry-run created the output");
    assert_eq!(digest(&home), before);
    assert_eq!(mtimes(&home), before_times);
    assert!(text.contains("--- a/repository/conf/deployment.toml"), "{text}");
    assert!(text.contains("+++ b/repository/resources/conf/templates/repository/conf/axis2/axis2.xml.j2"));
    assert!(text.contains("********"));
    assert!(text.contains("api#am#publisher.war"), "removed entries are listed");
    assert!(text.contains("summary:"));
    let secrets = fixture_secrets();
    assert!(!secrets.is_empty(), "the fixture has secrets to mask");
    for s in secrets {
        assert!(!text.contains(&s), "secret value {s:?} printed by the dry-run");
    }
    // The same in JSON.
    let o = split_no_update(&home, &out).args(["--dry-run", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["changed"], false);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["profiles"][0]["status"], "would-create");
    assert!(v["profiles"][1]["diff"].as_str().unwrap().contains("@@"));
    for s in fixture_secrets() {
        assert!(!String::from_utf8_lossy(&o.stdout).contains(&s));
    }
    assert!(!out.exists());
}

#[test]
fn source_is_never_modified() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let before = digest(&home);
    let before_times = mtimes(&home);
    split_json(
        &home,
        &tmp.path().join("out"),
        &["--profiles", "control-plane,gateway-worker,traffic-manager,api-key-manager-deprecated"],
    );
    assert_eq!(digest(&home), before);
    assert_eq!(mtimes(&home), before_times);
}

#[test]
fn webapp_names_with_spaces_are_removed_and_edge_entries_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let w = home.join(WEBAPPS);
    std::fs::write(w.join("team docs.war"), b"war").unwrap();
    std::fs::create_dir_all(w.join("team docs/WEB-INF")).unwrap();
    std::fs::write(w.join("team docs/WEB-INF/web.xml"), b"<web/>").unwrap();
    // Empty directories and links survive the copy as they are.
    std::fs::create_dir_all(home.join("repository/logs/empty/deeper")).unwrap();
    std::os::unix::fs::symlink("../conf/carbon.xml", home.join("repository/logs/carbon-link")).unwrap();
    std::os::unix::fs::symlink("does-not-exist", home.join("repository/logs/dangling")).unwrap();
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    let gw = out.join("gateway-worker/wso2am-4.2.0");
    let names = names_in(&gw.join(WEBAPPS));
    assert!(!names.iter().any(|n| n.starts_with("team docs")), "{names:?}");
    assert!(gw.join("repository/logs/empty/deeper").is_dir());
    assert_eq!(std::fs::read_link(gw.join("repository/logs/carbon-link")).unwrap(), Path::new("../conf/carbon.xml"));
    assert_eq!(std::fs::read_link(gw.join("repository/logs/dangling")).unwrap(), Path::new("does-not-exist"));
}

#[test]
fn executable_bits_and_times_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    let gw = out.join("gateway-worker/wso2am-4.2.0");
    let src = digest(&home);
    let execs: BTreeSet<&String> =
        src.iter().filter(|(_, i)| matches!(i, Item::File { exec: true, .. })).map(|(p, _)| p).collect();
    assert!(!execs.is_empty(), "the fixture has executable scripts");
    let dst = digest(&gw);
    for p in execs {
        assert!(matches!(dst.get(p), Some(Item::File { exec: true, .. })), "{p} lost its executable bit");
    }
    let st = mtimes(&home);
    let dt = mtimes(&gw);
    assert_eq!(st["bin/version.txt"], dt["bin/version.txt"]);
    assert_eq!(st[TOML], dt[TOML_BACKUP], "a backup is a move: its time is kept");
}

#[test]
fn rerun_changes_nothing_and_stale_copies_need_force() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &[]);
    let before = mtimes(&out);
    let again = split_json(&home, &out, &[]);
    assert_eq!(again["changed"], false);
    assert!(again["profiles"].as_array().unwrap().iter().all(|p| p["status"] == "current" && p["changed"] == false));
    assert_eq!(mtimes(&out), before, "a re-run moved a timestamp");

    // A changed source makes the copies stale: refused without --force.
    std::fs::write(home.join("repository/conf/carbon-extra.txt"), b"new").unwrap();
    split_no_update(&home, &out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("stale").and(predicate::str::contains("--force")));
    assert_eq!(mtimes(&out), before, "a refused run wrote something");
    let forced = split_json(&home, &out, &["--force"]);
    assert_eq!(forced["profiles"][0]["status"], "replaced");
    assert!(out.join("control-plane/wso2am-4.2.0/repository/conf/carbon-extra.txt").exists());
    // No staging or old copy left beside the copies.
    for p in ["control-plane", "gateway-worker", "traffic-manager"] {
        assert_eq!(names_in(&out.join(p)), ["wso2am-4.2.0"]);
    }
}

#[test]
fn refuses_bad_input_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    // Not a home.
    split_no_update(tmp.path(), &out).assert().code(2).stderr(predicate::str::contains("not an API-M home"));
    // Another version.
    std::fs::write(home.join("updates/product.txt"), "wso2am-4.1.0\n").unwrap();
    split_no_update(&home, &out).assert().code(2).stderr(predicate::str::contains("4.1.0"));
    std::fs::write(home.join("updates/product.txt"), "wso2am-4.2.0\n").unwrap();
    // Unknown profile: the nearest name is suggested.
    split_no_update(&home, &out).args(["--profiles", "gateway-workr"]).assert().code(2).stderr(
        predicate::str::contains("unknown profile").and(predicate::str::contains("did you mean `gateway-worker`")),
    );
    // Output inside the home.
    split_no_update(&home, &home.join("copies")).assert().code(2).stderr(predicate::str::contains("inside the home"));
    assert!(!home.join("copies").exists());
    // No update tool in the home and no --no-update.
    bin()
        .arg("split")
        .arg(&home)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--no-update"));
    assert!(!out.exists());
}

#[test]
fn optimize_in_place_is_safe_to_repeat() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let original_toml = read(home.join(TOML));
    let original_axis2 = read(home.join(format!("{T}/repository/conf/axis2/axis2.xml.j2")));
    bin().arg("optimize").arg(&home).args(["--profile", "traffic-manager"]).assert().success();
    assert_eq!(read(home.join(TOML_BACKUP)), original_toml);
    let once = digest(&home);
    // Again: nothing changes, the pristine backups survive.
    let o = bin().arg("optimize").arg(&home).args(["--profile", "traffic-manager", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["changed"], false, "{v}");
    assert_eq!(digest(&home), once);
    // A person edits deployment.toml: a later run keeps the edit and says so.
    std::fs::write(home.join(TOML), b"[server]\nhostname = \"tm.example.com\"\n").unwrap();
    bin()
        .arg("optimize")
        .arg(&home)
        .args(["--profile", "traffic-manager"])
        .assert()
        .success()
        .stdout(predicate::str::contains("kept as it is"));
    assert_eq!(read(home.join(TOML)), b"[server]\nhostname = \"tm.example.com\"\n");
    assert_eq!(read(home.join(TOML_BACKUP)), original_toml);
    assert_eq!(read(home.join(format!("{T}/repository/conf/axis2/axis2.xml.j2.backup"))), original_axis2);
    // Another profile on the same home is refused.
    bin()
        .arg("optimize")
        .arg(&home)
        .args(["--profile", "gateway-worker"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("was optimized for traffic-manager"));
}

#[test]
fn verify_reports_drift_with_exit_4() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker"]);
    let gw = out.join("gateway-worker/wso2am-4.2.0");
    bin().arg("verify").arg(&gw).assert().success();
    std::fs::write(gw.join(WEBAPPS).join("api#am#publisher.war"), b"back").unwrap();
    std::fs::copy(
        home.join(format!("{T}/repository/conf/tomcat/carbon/WEB-INF/web.xml.j2")),
        gw.join(format!("{T}/repository/conf/tomcat/carbon/WEB-INF/web.xml.j2")),
    )
    .unwrap();
    let o = bin().arg("verify").arg(&gw).arg("--json").output().unwrap();
    assert_eq!(o.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let drift = v["profiles"][0]["drift"].to_string();
    assert!(drift.contains("api#am#publisher.war"), "{drift}");
    assert!(drift.contains("web.xml.j2"), "{drift}");
    assert_eq!(v["profiles"][0]["status"], "drifted");
}

#[test]
fn profiles_lists_the_four_4_2_0_profiles() {
    let o = bin().args(["profiles", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["version"] == "4.2.0")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["control-plane", "gateway-worker", "traffic-manager", "api-key-manager-deprecated"]);
}

#[test]
fn archives_hold_the_copy_under_its_home_name_and_reruns_leave_them() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let v = split_json(&home, &out, &["--profiles", "gateway-worker", "--archive", "tar.gz"]);
    let archive = out.join("gateway-worker/wso2am-4.2.0.tar.gz");
    assert_eq!(v["profiles"][0]["archive"], archive.display().to_string());
    let listing = std::process::Command::new("tar").arg("tzf").arg(&archive).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.lines().any(|l| l == "wso2am-4.2.0/repository/conf/deployment.toml"), "{listing}");
    assert!(!listing.contains(".apim-profiles"), "the tool's record is not shipped");
    assert!(!listing.contains("api#am#publisher.war"));
    let before = mtimes(&out);
    let again = split_json(&home, &out, &["--profiles", "gateway-worker", "--archive", "tar.gz"]);
    assert_eq!(again["changed"], false);
    assert_eq!(mtimes(&out), before);
    // A zip as well, for a copy that is already current.
    let z = split_json(&home, &out, &["--profiles", "gateway-worker", "--archive", "zip"]);
    assert_eq!(z["changed"], true);
    assert!(out.join("gateway-worker/wso2am-4.2.0.zip").is_file());
}

#[test]
fn reflink_always_is_refused_where_the_file_system_cannot_clone() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    // Probe the way the tool does: a FICLONE between two files of this directory.
    let can_clone = {
        let a = tmp.path().join("probe-a");
        std::fs::write(&a, b"x").unwrap();
        let st = std::process::Command::new("cp")
            .arg("--reflink=always")
            .arg(&a)
            .arg(tmp.path().join("probe-b"))
            .status()
            .unwrap();
        st.success()
    };
    let o = split_no_update(&home, &out).args(["--reflink", "always", "--json"]).output().unwrap();
    if can_clone {
        assert!(o.status.success());
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["profiles"][0]["files_cloned"], v["profiles"][0]["files_copied"]);
    } else {
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be cloned"));
        assert!(!out.exists());
    }
}
