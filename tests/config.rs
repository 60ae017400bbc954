//! Keeping the operator's configuration: carried keys, per-profile sets and
//! overlays, through the real binary on the fixture.

mod common;

use common::*;
use predicates::prelude::*;

const URL: &str = "https://cp.prod.example.com:9443/services/";

fn carry_args() -> Vec<String> {
    vec![
        "--carry".into(),
        "super_admin,keystore.tls,database.shared_db".into(),
        "--set".into(),
        format!("gateway-worker:apim.key_manager.service_url=\"{URL}\""),
    ]
}

#[test]
fn carried_keys_and_set_url_land_in_the_gateway_toml_with_its_comments() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let args = carry_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    split_json(&home, &out, &[&["--profiles", "gateway-worker,traffic-manager"], &args[..]].concat());
    let gw = std::fs::read_to_string(out.join("gateway-worker/wso2am-4.2.0").join(TOML)).unwrap();
    let doc: toml_edit::DocumentMut = gw.parse().expect("the result parses");
    let tpl = std::fs::read_to_string(home.join(format!("{DTPL}/gateway-worker.toml"))).unwrap();
    for line in tpl.lines().filter(|l| l.starts_with('#')) {
        assert!(gw.contains(line), "comment {line:?} lost");
    }
    assert_eq!(doc["server"]["server_role"].as_str(), Some("gateway-worker"));
    assert_eq!(doc["super_admin"]["username"].as_str(), Some("opsadmin"));
    assert_eq!(doc["super_admin"]["password"].as_str(), Some("Fixture-Admin-Pw1"));
    assert_eq!(doc["keystore"]["tls"]["file_name"].as_str(), Some("example-tls.jks"));
    assert_eq!(
        doc["database"]["shared_db"]["url"].as_str(),
        Some("jdbc:mysql://db.example.internal:3306/shared_db?useSSL=true")
    );
    assert_eq!(doc["apim"]["key_manager"]["service_url"].as_str(), Some(URL));
    // The set was for the gateway only.
    let tm = std::fs::read_to_string(out.join("traffic-manager/wso2am-4.2.0").join(TOML)).unwrap();
    assert!(!tm.contains(URL));
    assert!(tm.contains("opsadmin"), "carried into every profile");
    // The original is still moved aside untouched, and the copies verify.
    assert_eq!(read(out.join("gateway-worker/wso2am-4.2.0").join(TOML_BACKUP)), read(home.join(TOML)));
    bin().arg("verify").arg(out.join("gateway-worker/wso2am-4.2.0")).assert().success();
    // Same options again: current. Other options: stale.
    let again = split_json(&home, &out, &[&["--profiles", "gateway-worker,traffic-manager"], &args[..]].concat());
    assert_eq!(again["changed"], false);
    split_no_update(&home, &out)
        .args(["--profiles", "gateway-worker"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("other options"));
}

#[test]
fn dry_run_shows_settings_with_secrets_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let o = split_no_update(&home, &out)
        .args(["--dry-run", "--profiles", "gateway-worker"])
        .args(carry_args())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("+service_url = \"{URL}\"")), "{text}");
    assert!(text.contains("deployment.toml settings, relative to the home's own:"));
    assert!(text.contains("~ server.server_role: \"default\" -> \"gateway-worker\""), "{text}");
    for s in fixture_secrets() {
        assert!(!text.contains(&s), "secret {s:?} printed");
    }
    assert!(!out.exists());
}

#[test]
fn overlays_by_profile_and_bad_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    let out = tmp.path().join("out");
    let overlay = tmp.path().join("tm.toml");
    std::fs::write(&overlay, "[[apim.throttling.url_group]]\ntraffic_manager_urls = [\"tcp://tm.prod:9611\"]\n\n[server]\nhostname = \"tm1.prod\"\n").unwrap();
    let arg = format!("traffic-manager={}", overlay.display());
    split_json(&home, &out, &["--profiles", "gateway-worker,traffic-manager", "--overlay", &arg]);
    let tm = std::fs::read_to_string(out.join("traffic-manager/wso2am-4.2.0").join(TOML)).unwrap();
    assert!(
        tm.contains("tcp://tm.prod:9611") && !tm.contains("tcp://tm1.local:9611"),
        "array of tables replaced whole:\n{tm}"
    );
    assert!(tm.contains("hostname = \"tm1.prod\"") && tm.contains("server_role = \"traffic-manager\""), "{tm}");
    let gw = std::fs::read_to_string(out.join("gateway-worker/wso2am-4.2.0").join(TOML)).unwrap();
    assert!(!gw.contains("tm.prod"));

    let out2 = tmp.path().join("out2");
    // A value that is not TOML, with a secret key: refused, value not echoed.
    split_no_update(&home, &out2)
        .args(["--set", "super_admin.password=hunter22"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not TOML").and(predicate::str::contains("hunter22").not()));
    // A key the home does not set.
    split_no_update(&home, &out2)
        .args(["--carry", "keystore.primary"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not set `keystore.primary`"));
    // An overlay that is not TOML: file, line and column.
    std::fs::write(&overlay, "[server\nhostname = 1\n").unwrap();
    split_no_update(&home, &out2)
        .args(["--overlay"])
        .arg(&overlay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tm.toml:1:"));
    // A typo is kept but reported.
    let v = split_json(&home, &out2, &["--profiles", "gateway-worker", "--set", "super_admn.username=\"x\""]);
    assert!(v["profiles"][0]["notes"].to_string().contains("did you mean `super_admin`"), "{v}");
}

#[test]
fn optimize_takes_the_same_settings_and_keeps_them_on_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    bin().arg("optimize").arg(&home).args(["--profile", "gateway-worker", "--carry-common"]).assert().success();
    let once = read(home.join(TOML));
    assert!(String::from_utf8_lossy(&once).contains("opsadmin"));
    bin().arg("optimize").arg(&home).args(["--profile", "gateway-worker", "--carry-common"]).assert().success();
    assert_eq!(read(home.join(TOML)), once);
    bin().arg("verify").arg(&home).assert().success();
}
