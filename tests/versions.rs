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
    let mut v = vec![format!("{IEP}/WebSocketInboundEndpoint.xml"), format!("{IEP}/SecureWebSocketInboundEndpoint.xml")];
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
const WEBXML: (&str, &str, &str) =
    ("tomcat/carbon/WEB-INF/web.xml.j2", "tomcat/carbon/WEB-INF/web_TM_GW.xml.j2", "tomcat/carbon/WEB-INF/web.xml.j2.backup");
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
                    (AXIS, if v == "Publisher" { "axis2/axis2_Publisher.xml.j2" } else { "axis2/axis2_Devportal.xml.j2" }, AXIS_B),
                    (
                        TAXIS,
                        if v == "Publisher" { "axis2/tenant-axis2_Publisher.xml.j2" } else { "axis2/tenant-axis2_Devportal.xml.j2" },
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
            f.kept = vec![format!("{SYN}/synapse.xml"), format!("{SYN}/sequences"), format!("{WEBAPPS}/api#am#gateway#v2.war")];
        }
        "control-plane" => {
            f.toml = Some(profile);
            f.swaps =
                vec![(AXIS, "axis2/axis2_ControlPlane.xml.j2", AXIS_B), (TAXIS, "axis2/tenant-axis2_ControlPlane.xml.j2", TAXIS_B)];
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
        let dirs: Vec<String> = names_in(&copy.join(JAG)).into_iter().filter(|n| copy.join(JAG).join(n).is_dir()).collect();
        assert_eq!(dirs, jag, "{ctx}: jaggery apps kept");
        for n in names_in(&home.join(JAG)) {
            if !home.join(JAG).join(&n).is_dir() || jag.contains(&n) {
                assert_eq!(subtree(home, &format!("{JAG}/{n}")), subtree(copy, &format!("{JAG}/{n}")), "{ctx}: {JAG}/{n}");
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

/// Writes the test homes of every version to `$APIM_TEST_HOMES` (for the
/// parity runs against the product's scripts and the benchmark; see the README).
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
        for pack in [Pack::ControlPlane, Pack::Gateway, Pack::TrafficManager] {
            packs::build(pack, v, &dir).expect("../shared is there");
        }
    }
}
