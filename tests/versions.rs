//! Every API-M version with profile optimization, through the real binary on
//! homes built at test time from each version's real configuration files
//! (`../shared/apim-<V>-conf`, never copied into the project) and a synthetic
//! pack layout. Each profile is checked against the facts of
//! `profile-optimization-<V>.md`: what is removed, what is replaced and how
//! (copied or moved), the backups, the webapps and jaggery apps kept, and that
//! nothing else changes.

mod common;
#[path = "common/packs.rs"]
mod packs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use packs::Pack;

const TC: &str = "repository/resources/conf/templates/repository/conf";
const JAG: &str = "repository/deployment/server/jaggeryapps";
const BC: &str = "repository/conf/axis2/axis2_blocking_client.xml";
const BCT: &str = "repository/resources/conf/templates/repository/conf/axis2/axis2_blocking_client.xml.j2";
const IEP: &str = "repository/deployment/server/synapse-configs/default/inbound-endpoints";
const IEPT: &str =
    "repository/resources/conf/templates/repository/deployment/server/synapse-configs/default/inbound-endpoints";
const AUTHWEB: &str =
    "repository/resources/conf/templates/repository/deployment/server/webapps/authenticationendpoint/WEB-INF/web.xml.j2";
const RECWEB: &str =
    "repository/resources/conf/templates/repository/deployment/server/webapps/accountrecoveryendpoint/WEB-INF/web.xml.j2";

include!("common/kept.rs");

/// What the product's script does for one version and profile.
#[derive(Debug, Default)]
struct Facts {
    /// Deployment template copied over deployment.toml (backup `.backup`).
    toml: Option<&'static str>,
    /// Template swaps: (target, variant, backup), relative to TC.
    swaps: Vec<(&'static str, &'static str, &'static str)>,
    /// Whether the variant is moved (consumed) rather than copied.
    consumed: bool,
    /// Paths the profile removes.
    removed: Vec<String>,
    /// Paths a careless reading would remove, that this version keeps.
    kept: Vec<String>,
    /// Whether synapse-configs/default is emptied but for synapse.xml.
    synapse_cleared: bool,
}

fn ws(version: &str) -> Vec<String> {
    let mut v =
        vec![format!("{IEP}/WebSocketInboundEndpoint.xml"), format!("{IEP}/SecureWebSocketInboundEndpoint.xml")];
    if version != "3.1.0" {
        v.push(format!("{IEPT}/WebSocketInboundEndpoint.xml.j2"));
        v.push(format!("{IEPT}/SecureWebSocketInboundEndpoint.xml.j2"));
    }
    v
}

const AXIS: &str = "axis2/axis2.xml.j2";
const AXIS_B: &str = "axis2/axis2.xml.j2.backup";
const TAXIS: &str = "axis2/tenant-axis2.xml.j2";
const TAXIS_B: &str = "axis2/tenant-axis2.xml.j2.backup";
const WEBXML: (&str, &str, &str) = (
    "tomcat/carbon/WEB-INF/web.xml.j2",
    "tomcat/carbon/WEB-INF/web_TM_GW.xml.j2",
    "tomcat/carbon/WEB-INF/web.xml.j2.backup",
);
const REG: (&str, &str, &str) = ("registry.xml.j2", "registry_TM.xml.j2", "registry.backup");

/// The facts of `profile-optimization-<V>.md`, per version and profile.
fn facts(version: &str, profile: &'static str) -> Facts {
    let consumed = matches!(version, "3.1.0" | "3.2.0" | "4.0.0");
    let web_swap = version >= "4.1.0"; // web_TM_GW for TM and GW
    let web_templates = version >= "4.2.0"; // AUTHWEB/RECWEB removed by TM and GW
    let mut f = Facts { consumed, ..Facts::default() };
    let role = match profile {
        "api-key-manager" | "api-key-manager-deprecated" | "api-key-manager-node" | "key-manager" => "km",
        "api-publisher" | "api-publisher-deprecated" => "pub",
        "api-devportal" | "api-devportal-deprecated" => "dev",
        other => other,
    };
    match role {
        "km" => {
            f.toml = Some(profile);
            f.swaps = vec![(AXIS, "axis2/axis2_KM.xml.j2", AXIS_B), (TAXIS, "axis2/tenant-axis2_KM.xml.j2", TAXIS_B)];
            f.removed = [vec![BC.to_string(), BCT.to_string()], ws(version)].concat();
            f.synapse_cleared = profile != "key-manager";
        }
        "pub" | "dev" => {
            f.toml = Some(profile);
            let v = if role == "pub" { "Publisher" } else { "Devportal" };
            if version != "3.1.0" {
                f.swaps = vec![
                    (
                        AXIS,
                        if v == "Publisher" { "axis2/axis2_Publisher.xml.j2" } else { "axis2/axis2_Devportal.xml.j2" },
                        AXIS_B,
                    ),
                    (
                        TAXIS,
                        if v == "Publisher" {
                            "axis2/tenant-axis2_Publisher.xml.j2"
                        } else {
                            "axis2/tenant-axis2_Devportal.xml.j2"
                        },
                        TAXIS_B,
                    ),
                ];
            }
            f.removed = ws(version);
        }
        "traffic-manager" => {
            f.toml = Some(profile);
            f.swaps = vec![(AXIS, "axis2/axis2_TM.xml.j2", AXIS_B), REG];
            if web_swap {
                f.swaps.push(WEBXML);
            }
            f.removed = ws(version);
            if web_templates {
                f.removed.extend([AUTHWEB.to_string(), RECWEB.to_string()]);
            }
            f.synapse_cleared = true;
        }
        "gateway-worker" => {
            f.toml = Some(profile);
            if web_swap {
                f.swaps.push(WEBXML);
            }
            if web_templates {
                f.removed.extend([AUTHWEB.to_string(), RECWEB.to_string()]);
            }
            // The gateway serves the synapse configs and websocket endpoints.
            f.kept = ws(version);
        }
        "control-plane" if version == "4.0.0" => {
            f.toml = Some(profile);
            f.removed = ws(version);
            f.kept = vec![
                format!("{SYN}/synapse.xml"),
                format!("{SYN}/sequences"),
                format!("{WEBAPPS}/api#am#gateway#v2.war"),
            ];
        }
        "control-plane" => {
            f.toml = Some(profile);
            f.swaps = vec![
                (AXIS, "axis2/axis2_ControlPlane.xml.j2", AXIS_B),
                (TAXIS, "axis2/tenant-axis2_ControlPlane.xml.j2", TAXIS_B),
            ];
            f.removed = ws(version);
            f.synapse_cleared = true;
        }
        other => panic!("no facts for {version} {other}"),
    }
    if version == "3.1.0" {
        // wso2/product-apim#8039: 3.1.0 leaves the endpoint templates.
        f.kept.push(format!("{IEPT}/SecureWebSocketInboundEndpoint.xml.j2"));
    }
    if version == "4.1.0" && matches!(profile, "traffic-manager" | "gateway-worker") {
        f.kept.extend([AUTHWEB.to_string(), RECWEB.to_string()]);
    }
    f
}

fn kept_of(version: &str, profile: &str) -> (Vec<String>, Option<Vec<String>>) {
    let (_, _, w, j) = KEPT
        .iter()
        .find(|(v, p, _, _)| *v == version && *p == profile)
        .unwrap_or_else(|| panic!("no webapp facts for {version} {profile}"));
    let mut w: Vec<String> = w.iter().map(|s| s.to_string()).collect();
    w.sort();
    let j = j.map(|j| {
        let mut j: Vec<String> = j.iter().map(|s| s.to_string()).collect();
        j.sort();
        j
    });
    (w, j)
}

fn under(p: &str, prefix: &str) -> bool {
    p == prefix || p.starts_with(&format!("{prefix}/"))
}

/// Checks one optimized copy against the facts. `skip` = made with
/// `--skip-config-optimization`.
fn check_copy(version: &str, profile: &'static str, home: &Path, copy: &Path, skip: bool) {
    let f = facts(version, profile);
    let ctx = format!("{version} {profile}{}", if skip { " (skip config)" } else { "" });
    // deployment.toml
    match (f.toml, skip) {
        (Some(t), false) => {
            assert_eq!(read(copy.join(TOML)), read(home.join(format!("{DTPL}/{t}.toml"))), "{ctx}: deployment.toml");
            assert_eq!(read(copy.join(TOML_BACKUP)), read(home.join(TOML)), "{ctx}: deployment.toml.backup");
        }
        _ => {
            assert_eq!(read(copy.join(TOML)), read(home.join(TOML)), "{ctx}: deployment.toml kept");
            assert!(!copy.join(TOML_BACKUP).exists(), "{ctx}: no backup");
        }
    }
    // template swaps
    let mut touched: Vec<String> = vec![TOML.into(), TOML_BACKUP.into(), WEBAPPS.into(), JAG.into()];
    for (t, v, b) in &f.swaps {
        let (t, v, b) = (format!("{TC}/{t}"), format!("{TC}/{v}"), format!("{TC}/{b}"));
        assert_eq!(read(copy.join(&t)), read(home.join(&v)), "{ctx}: {t} is the variant");
        assert_eq!(read(copy.join(&b)), read(home.join(&t)), "{ctx}: {b} holds the original");
        if f.consumed {
            assert!(!copy.join(&v).exists(), "{ctx}: the variant {v} is moved, not copied");
        } else {
            assert_eq!(read(copy.join(&v)), read(home.join(&v)), "{ctx}: the variant {v} stays");
        }
        touched.extend([t, v, b]);
    }
    for r in &f.removed {
        assert!(!copy.join(r).exists(), "{ctx}: {r} removed");
        touched.push(r.clone());
    }
    for k in &f.kept {
        assert_eq!(copy.join(k).exists(), home.join(k).exists(), "{ctx}: {k} kept");
    }
    if f.synapse_cleared {
        let left = names_in(&copy.join(SYN));
        assert!(left.iter().all(|n| n == "synapse.xml"), "{ctx}: synapse configs left: {left:?}");
        touched.push(SYN.into());
    }
    // webapps and jaggery apps
    let (mut webapps, jag) = kept_of(version, profile);
    if profile == "control-plane" {
        // It removes named webapps only: the exploded forms of the others stay.
        for w in webapps.clone() {
            let d = w.trim_end_matches(".war");
            if w.ends_with(".war") && home.join(WEBAPPS).join(d).is_dir() {
                webapps.push(d.to_string());
            }
        }
        webapps.sort();
    }
    assert_eq!(names_in(&copy.join(WEBAPPS)), webapps, "{ctx}: webapps kept");
    for w in &webapps {
        assert_eq!(subtree(home, &format!("{WEBAPPS}/{w}")), subtree(copy, &format!("{WEBAPPS}/{w}")), "{ctx}: {w}");
    }
    if let Some(jag) = jag {
        let dirs: Vec<String> =
            names_in(&copy.join(JAG)).into_iter().filter(|n| copy.join(JAG).join(n).is_dir()).collect();
        assert_eq!(dirs, jag, "{ctx}: jaggery apps kept");
        for n in names_in(&home.join(JAG)) {
            if !home.join(JAG).join(&n).is_dir() || jag.contains(&n) {
                assert_eq!(
                    subtree(home, &format!("{JAG}/{n}")),
                    subtree(copy, &format!("{JAG}/{n}")),
                    "{ctx}: {JAG}/{n}"
                );
            }
        }
    }
    // everything else: identical
    let (src, dst) = (digest(home), digest(copy));
    let rest = |m: &BTreeMap<String, Item>| -> BTreeMap<String, Item> {
        m.iter().filter(|(p, _)| !touched.iter().any(|t| under(p, t))).map(|(p, i)| (p.clone(), i.clone())).collect()
    };
    let (a, b) = (rest(&src), rest(&dst));
    for (p, i) in &a {
        assert_eq!(b.get(p), Some(i), "{ctx}: {p} copied unchanged");
    }
    for p in b.keys() {
        assert!(a.contains_key(p), "{ctx}: unexpected {p}");
    }
}

fn subtree(root: &Path, rel: &str) -> BTreeMap<String, Item> {
    let p = root.join(rel);
    if !p.exists() {
        return BTreeMap::new();
    }
    if !p.is_dir() {
        return digest(p.parent().unwrap()).into_iter().filter(|(k, _)| k.as_str() == p.file_name().unwrap()).collect();
    }
    digest(&p)
}

fn profiles_of(version: &str) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = KEPT.iter().filter(|(ver, ..)| *ver == version).map(|(_, p, ..)| *p).collect();
    v.sort();
    v
}

/// Splits a version's home into every profile its script accepts, with and
/// without `--skip-config-optimization`, and checks each copy.
fn check_version(pack: Pack, version: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(home) = packs::build(pack, version, &tmp.path().join("src")) else {
        eprintln!("skipped: ../shared has no configuration files of {version}");
        return;
    };
    let profiles = profiles_of(version);
    let list = profiles.join(",");
    let before = digest(&home);
    for skip in [false, true] {
        let out = tmp.path().join(if skip { "out-skip" } else { "out" });
        let mut args = vec!["--profiles", list.as_str()];
        if skip {
            args.push("--skip-config-optimization");
        }
        let report = split_json(&home, &out, &args);
        let statuses: Vec<&str> =
            report["profiles"].as_array().unwrap().iter().map(|p| p["status"].as_str().unwrap_or("")).collect();
        assert_eq!(statuses.len(), profiles.len(), "{report}");
        for p in &profiles {
            check_copy(version, p, &home, &out.join(p).join(pack.dir_name(version)), skip);
        }
    }
    assert_eq!(digest(&home), before, "the source home is never modified");
}

#[test]
fn v3_1_0_every_profile_matches_the_facts() {
    check_version(Pack::AllInOne, "3.1.0");
}
#[test]
fn v3_2_0_every_profile_matches_the_facts() {
    check_version(Pack::AllInOne, "3.2.0");
}
#[test]
fn v4_0_0_every_profile_matches_the_facts() {
    check_version(Pack::AllInOne, "4.0.0");
}
#[test]
fn v4_1_0_every_profile_matches_the_facts() {
    check_version(Pack::AllInOne, "4.1.0");
}
#[test]
fn v4_2_0_real_configuration_matches_the_facts() {
    check_version(Pack::AllInOne, "4.2.0");
}
#[test]
fn v4_3_0_every_profile_matches_the_facts() {
    check_version(Pack::AllInOne, "4.3.0");
}
#[test]
fn v4_4_0_every_profile_matches_the_facts() {
    check_version(Pack::AllInOne, "4.4.0");
}
#[test]
fn acp_key_manager_matches_the_facts() {
    for v in packs::COMPONENTS {
        check_version(Pack::ControlPlane, v);
    }
}

fn with_update(c: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    c.arg("--update-tool")
        .arg(double())
        .env("WSO2_USERNAME", "ops@example.com")
        .env("WSO2_PASSWORD", "Versions-Test-Pw1")
        .env("APIM_DOUBLE_SCENARIO", "success")
}

fn json_of(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

/// The three component packs of one version are split together: the control
/// plane, gateway and traffic manager copies are the packs as shipped (WSO2
/// ships no optimization for them), the key manager is made from the ACP pack;
/// each is updated with its own pack's update and verified.
#[test]
fn component_packs_split_together_update_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let Some(acp) = packs::build(Pack::ControlPlane, "4.6.0", &src) else { return };
    let gw = packs::build(Pack::Gateway, "4.6.0", &src).unwrap();
    let tm = packs::build(Pack::TrafficManager, "4.6.0", &src).unwrap();
    let out = tmp.path().join("out");
    let o = split_no_update(&acp, &out).arg(&gw).arg(&tm).arg("--json").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = json_of(&o);
    assert_eq!(report["homes"].as_array().map(Vec::len), Some(3), "{report}");
    let made: Vec<&str> =
        report["profiles"].as_array().unwrap().iter().map(|p| p["profile"].as_str().unwrap()).collect();
    assert_eq!(made, ["control-plane", "gateway-worker", "traffic-manager"], "the 4.6.0 docs deploy these three");
    for (profile, home) in [("control-plane", &acp), ("gateway-worker", &gw), ("traffic-manager", &tm)] {
        let copy = out.join(profile).join(home.file_name().unwrap());
        assert_eq!(digest(&copy), digest(home), "{profile} is its pack as shipped");
        bin().arg("verify").arg(&copy).assert().success();
    }
    // The key manager by name, with an update: each copy runs its own pack's update.
    let out2 = tmp.path().join("out2");
    let mut c = bin();
    c.arg("split").arg(&acp).arg(&gw).arg(&tm).arg("--out").arg(&out2);
    c.args(["--profiles", "key-manager,gateway-worker", "--json"]);
    let o = with_update(&mut c).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = json_of(&o);
    let km = out2.join("key-manager/wso2am-acp-4.6.0");
    let gwc = out2.join("gateway-worker/wso2am-universal-gw-4.6.0");
    for (copy, product) in [(&km, "wso2am-acp"), (&gwc, "wso2am-universal-gw")] {
        let cfg = std::fs::read_to_string(copy.join("updates/config.json")).unwrap();
        assert!(cfg.contains("\"4.6.0.5\""), "{product} updated to its own level: {cfg}");
        bin().arg("verify").arg(copy).assert().success();
    }
    let notes = report.to_string();
    assert!(notes.contains("wso2am-acp 4.6.0 is updated with its own U2 product"), "{notes}");
    assert!(notes.contains("bin/key-manager.sh and no -Dprofile"), "{notes}");
    // The update brought back webapps; the key manager's re-optimization removed them.
    assert!(!km.join(WEBAPPS).join("api#am#publisher.war").exists());
    assert!(!out2.join("traffic-manager").exists(), "only the named profiles are made");
}

fn relabel(home: &Path, version: &str, kernel: &str) -> PathBuf {
    let product = std::fs::read_to_string(home.join("updates/product.txt")).unwrap();
    let old = product.trim().rsplit_once('-').unwrap().1.to_string();
    for f in ["updates/product.txt", "bin/version.txt", "repository/conf/carbon.xml"] {
        let t = std::fs::read_to_string(home.join(f)).unwrap().replace(&old, version);
        std::fs::write(home.join(f), t).unwrap();
    }
    let plugins = home.join("repository/components/plugins");
    for n in names_in(&plugins).into_iter().filter(|n| n.starts_with("org.wso2.carbon.core_")) {
        std::fs::rename(plugins.join(&n), plugins.join(format!("org.wso2.carbon.core_{kernel}.jar"))).unwrap();
    }
    let to = home.with_file_name(home.file_name().unwrap().to_string_lossy().replace(&old, version));
    std::fs::rename(home, &to).unwrap();
    to
}

fn assert_refused(args: &[&Path], out: &Path, expect: &[&str]) {
    let mut c = bin();
    c.arg("split").args(args).arg("--out").arg(out).arg("--no-update");
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines.iter().any(|l| l.starts_with("hint: ")), "{err}");
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in: {err}");
    }
    assert!(!out.exists(), "nothing written");
}

/// 3.0.0 and the all-in-one packs of 4.5.0+ are refused with what to do;
/// several homes must be the component packs of one version, each once; a
/// home whose kernel is not its version's is refused.
#[test]
fn refusals_name_the_reason_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let Some(h31) = packs::build(Pack::AllInOne, "3.1.0", &t.join("a")) else { return };
    let h30 = relabel(&h31, "3.0.0", "4.5.1");
    assert_refused(&[&h30], &t.join("o1"), &["3.0.0 is not supported", "xmllint", "3.2.0 or later"]);
    let h44 = packs::build(Pack::AllInOne, "4.4.0", &t.join("b")).unwrap();
    let h45 = relabel(&h44, "4.5.0", "4.9.28");
    assert_refused(
        &[&h45],
        &t.join("o2"),
        &["no profile optimization", "wso2am-acp", "split ACP_HOME GW_HOME TM_HOME"],
    );
    let acp = packs::build(Pack::ControlPlane, "4.5.0", &t.join("c")).unwrap();
    let gw6 = packs::build(Pack::Gateway, "4.6.0", &t.join("c")).unwrap();
    assert_refused(&[&acp, &gw6], &t.join("o3"), &["wso2am-universal-gw 4.6.0", "wso2am-acp 4.5.0", "one version"]);
    let acp2 = packs::build(Pack::ControlPlane, "4.5.0", &t.join("d")).unwrap();
    assert_refused(&[&acp, &acp2], &t.join("o4"), &["are both wso2am-acp homes"]);
    let h42 = packs::build(Pack::AllInOne, "4.2.0", &t.join("e")).unwrap();
    let gw5 = packs::build(Pack::Gateway, "4.5.0", &t.join("e")).unwrap();
    assert_refused(&[&h42, &gw5], &t.join("o5"), &["all-in-one", "component packs"]);
    // Identity cross-check: product.txt, version.txt and carbon.xml say 4.3.0,
    // the kernel jar is 4.2.0's.
    let h43 = packs::build(Pack::AllInOne, "4.3.0", &t.join("f")).unwrap();
    let plugins = h43.join("repository/components/plugins");
    std::fs::rename(plugins.join("org.wso2.carbon.core_4.9.26.jar"), plugins.join("org.wso2.carbon.core_4.8.1.jar"))
        .unwrap();
    assert_refused(&[&h43], &t.join("o6"), &["whose kernel is 4.9.26", "4.8.1"]);
    // A profile of another version is refused with the ones this version has.
    let mut c = split_no_update(&h42, &t.join("o7"));
    let o = c.args(["--profiles", "api-key-manager-node"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("api-key-manager-deprecated"));
}

/// Up to 4.0.0 the optimization moves its variants into place. When an update
/// brings the default template back, the variant is gone: re-optimization
/// says it cannot apply it again, and verify reports the copy as drifted.
#[test]
fn a_consumed_variant_is_reported_not_guessed() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(home) = packs::build(Pack::AllInOne, "3.2.0", &tmp.path().join("src")) else { return };
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "traffic-manager"]);
    let copy = out.join("traffic-manager/wso2am-3.2.0");
    let axis = format!("{TC}/axis2/axis2.xml.j2");
    bin().arg("verify").arg(&copy).assert().success();
    // What an update that restores the stock template does.
    std::fs::copy(home.join(&axis), copy.join(&axis)).unwrap();
    let o = bin().arg("verify").arg(&copy).output().unwrap();
    assert_eq!(o.status.code(), Some(4));
    let shown = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(shown.contains("cannot be applied again") && shown.contains("axis2_TM.xml.j2"), "{shown}");
    // Optimizing again changes nothing and says why.
    let before = digest(&copy);
    let o = bin().args(["optimize", "--profile", "traffic-manager", "--json"]).arg(&copy).output().unwrap();
    assert_eq!(o.status.code(), Some(4), "optimize calls it drifted, as verify does");
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("cannot be applied again"), "{shown}");
    assert_eq!(digest(&copy), before);
}

/// A version whose optimization consumes its variants is updated first, as
/// its documentation asks: the copy holds the updated variant, and what the
/// update brought back is removed.
#[test]
fn update_first_versions_are_updated_then_optimized() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(home) = packs::build(Pack::AllInOne, "3.2.0", &tmp.path().join("src")) else { return };
    let out = tmp.path().join("out");
    let mut c = bin();
    // The each order: the copy starts as the pack, is updated, then optimized
    // (tests/update_contract.rs holds both orders to the same result).
    c.arg("split").arg(&home).arg("--out").arg(&out).args(["--profiles", "traffic-manager", "--json", "--update-each"]);
    let o = with_update(&mut c).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let copy = out.join("traffic-manager/wso2am-3.2.0");
    let axis = copy.join(format!("{TC}/axis2/axis2.xml.j2"));
    let variant = read(home.join(format!("{TC}/axis2/axis2_TM.xml.j2")));
    let placed = read(&axis);
    assert!(placed.starts_with(&variant) && placed.len() > variant.len(), "the updated variant is in place");
    assert!(String::from_utf8_lossy(&placed).contains("wso2 update level 5"));
    assert!(!copy.join(format!("{TC}/axis2/axis2_TM.xml.j2")).exists(), "consumed");
    // The backup is the updated pack's default template.
    let backup = read(copy.join(format!("{TC}/axis2/axis2.xml.j2.backup")));
    let shipped = read(home.join(format!("{TC}/axis2/axis2.xml.j2")));
    assert!(backup.starts_with(&shipped) && backup != shipped);
    assert!(!copy.join(WEBAPPS).join("api#am#publisher.war").exists());
    let report = json_of(&o).to_string();
    assert!(report.contains("update the pack before the profile optimization"), "{report}");
    bin().arg("verify").arg(&copy).assert().success();
}

/// Jaggery-app pruning removes directories only, as `find -type d` does:
/// files and links in jaggeryapps stay.
#[test]
fn jaggery_pruning_keeps_files_and_links() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(home) = packs::build(Pack::AllInOne, "4.1.0", &tmp.path().join("src")) else { return };
    std::os::unix::fs::symlink("admin", home.join(JAG).join("admin-link")).unwrap();
    std::fs::write(home.join(JAG).join("notes.txt"), b"kept\n").unwrap();
    let out = tmp.path().join("out");
    split_json(&home, &out, &["--profiles", "gateway-worker,api-publisher-deprecated"]);
    let gw = out.join("gateway-worker/wso2am-4.1.0").join(JAG);
    assert_eq!(names_in(&gw), ["admin-link", "lerna.json", "notes.txt", "package.json"]);
    let publ = out.join("api-publisher-deprecated/wso2am-4.1.0").join(JAG);
    assert_eq!(names_in(&publ), ["admin", "admin-link", "lerna.json", "notes.txt", "package.json", "publisher"]);
}

/// `profiles` lists every version and pack, with the default set each
/// version's documentation deploys.
#[test]
fn profiles_lists_every_version_with_its_default_set() {
    let o = bin().args(["profiles", "--json"]).output().unwrap();
    assert!(o.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = doc["profiles"].as_array().unwrap();
    let defaults = |product: &str, version: &str| -> Vec<String> {
        let mut v: Vec<String> = list
            .iter()
            .filter(|p| p["product"] == product && p["version"] == version && p["default"] == true)
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    for v in ["3.1.0", "3.2.0"] {
        assert_eq!(
            defaults("wso2am", v),
            ["api-devportal", "api-key-manager", "api-publisher", "gateway-worker", "traffic-manager"]
        );
    }
    for v in ["4.0.0", "4.1.0", "4.2.0", "4.3.0", "4.4.0"] {
        assert_eq!(defaults("wso2am", v), ["control-plane", "gateway-worker", "traffic-manager"], "{v}");
    }
    for v in ["4.5.0", "4.6.0", "4.7.0"] {
        assert_eq!(defaults("wso2am-acp", v), ["control-plane"]);
        assert_eq!(defaults("wso2am-universal-gw", v), ["gateway-worker"]);
        assert_eq!(defaults("wso2am-tm", v), ["traffic-manager"]);
        assert!(list.iter().any(|p| p["product"] == "wso2am-acp" && p["version"] == v && p["name"] == "key-manager"));
        assert_eq!(defaults("wso2am", v), ["all-in-one"], "from 4.5.0 the all-in-one pack is one node, as shipped");
    }
    for (v, p) in [
        ("4.0.0", "api-publisher-deprecated"),
        ("4.3.0", "api-key-manager-node"),
        ("4.2.0", "api-key-manager-deprecated"),
    ] {
        assert!(list.iter().any(|x| x["version"] == v && x["name"] == p && x["default"] == false), "{v} {p}");
    }
}

/// Writes the test homes of every version to `$APIM_TEST_HOMES` (for the
/// parity runs against the product's scripts and the benchmark; see docs/guide.md).
#[test]
#[ignore]
fn write_test_homes() {
    let Some(dir) = std::env::var_os("APIM_TEST_HOMES") else {
        panic!("set APIM_TEST_HOMES to the directory to write the homes into");
    };
    let dir = PathBuf::from(dir);
    for v in packs::ALL_IN_ONE {
        packs::build(Pack::AllInOne, v, &dir).expect("../shared is there");
    }
    for v in packs::COMPONENTS {
        for pack in [Pack::AllInOne, Pack::ControlPlane, Pack::Gateway, Pack::TrafficManager] {
            packs::build(pack, v, &dir).expect("../shared is there");
        }
    }
}
