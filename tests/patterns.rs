//! The distributed patterns WSO2 documents for 4.5.0–4.7.0, on homes built
//! from each release's real configuration files (`tests/common/packs.rs`):
//! each pattern splits from the packs it names in one command, the
//! operator's settings reach every copy (and are refused where one cannot
//! apply), `--update-once` runs each pack's tool once, version detection
//! needs two facts and a layout that agrees, and `optimize` and `verify` give
//! the same verdict on the same copy.

mod common;
#[path = "common/packs.rs"]
mod packs;

use std::path::{Path, PathBuf};

use common::*;
use packs::Pack;

/// A pattern: its name, its packs, the profiles it makes, the profiles asked for.
type Case<'a> = (&'a str, Vec<&'a PathBuf>, &'a [&'a str], &'a [&'a str]);
fn json_of(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

fn split(homes: &[&PathBuf], out: &Path, extra: &[&str]) -> std::process::Output {
    let mut c = bin();
    c.arg("split").args(homes).arg("--out").arg(out).args(["--no-update", "--json"]).args(extra);
    c.output().unwrap()
}

fn made(report: &serde_json::Value) -> Vec<String> {
    report["profiles"].as_array().unwrap().iter().map(|p| p["profile"].as_str().unwrap().to_string()).collect()
}

/// The four packs of one version, or None without `../shared`.
struct Packs {
    aio: PathBuf,
    acp: PathBuf,
    gw: PathBuf,
    tm: PathBuf,
}

fn packs_of(version: &str, dir: &Path) -> Option<Packs> {
    Some(Packs {
        aio: packs::build(Pack::AllInOne, version, dir)?,
        acp: packs::build(Pack::ControlPlane, version, dir)?,
        gw: packs::build(Pack::Gateway, version, dir)?,
        tm: packs::build(Pack::TrafficManager, version, dir)?,
    })
}

fn copy_of(out: &Path, profile: &str, home: &Path) -> PathBuf {
    out.join(profile).join(home.file_name().unwrap())
}

fn verify_ok(copy: &Path) {
    let o = bin().arg("verify").arg(copy).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}: {}", copy.display(), String::from_utf8_lossy(&o.stdout));
}

/// Pattern 2 (all-in-one + gateway), its Key Manager variant (+ ACP),
/// pattern 3 (ACP + TM + gateway) and pattern 4 (+ the ACP key manager), for
/// every version: one command each, every copy from its own pack, the packs
/// taken as shipped equal to their packs, every copy verified.
#[test]
fn each_documented_pattern_splits_from_its_packs() {
    let tmp = tempfile::tempdir().unwrap();
    for v in packs::COMPONENTS {
        let Some(p) = packs_of(v, &tmp.path().join(v).join("src")) else { return };
        let km_args = ["--profiles", "control-plane,key-manager,gateway-worker,traffic-manager"];
        let cases: [Case<'_>; 4] = [
            ("p2", vec![&p.aio, &p.gw], &[], &["all-in-one", "gateway-worker"]),
            ("p5", vec![&p.aio, &p.gw, &p.acp], &[], &["all-in-one", "gateway-worker", "key-manager"]),
            ("p3", vec![&p.acp, &p.gw, &p.tm], &[], &["control-plane", "gateway-worker", "traffic-manager"]),
            (
                "p4",
                vec![&p.acp, &p.gw, &p.tm],
                &km_args,
                &["control-plane", "key-manager", "gateway-worker", "traffic-manager"],
            ),
        ];
        for (name, homes, extra, want) in cases {
            let out = tmp.path().join(v).join(name);
            let o = split(&homes, &out, extra);
            assert!(o.status.success(), "{v} {name}: {}", String::from_utf8_lossy(&o.stderr));
            let report = json_of(&o);
            assert_eq!(made(&report), want, "{v} {name}");
            for pr in report["profiles"].as_array().unwrap() {
                let profile = pr["profile"].as_str().unwrap();
                let home = match profile {
                    "all-in-one" => &p.aio,
                    "gateway-worker" => &p.gw,
                    "traffic-manager" => &p.tm,
                    _ => &p.acp,
                };
                let copy = copy_of(&out, profile, home);
                assert_eq!(pr["path"].as_str().unwrap(), copy.to_str().unwrap());
                if profile == "key-manager" {
                    assert!(
                        !copy.join(WEBAPPS).join("api#am#publisher.war").exists(),
                        "{v}: the key manager is optimized"
                    );
                } else {
                    assert_eq!(digest(&copy), digest(home), "{v} {name}: {profile} is its pack as shipped");
                }
                verify_ok(&copy);
            }
        }
    }
}

/// `--set`, `--overlay` and `--carry` reach every copy of pattern 4 and of
/// pattern 2: the packs taken as shipped in their own deployment.toml, the
/// key manager in its template; the report names the file rewritten, the
/// copies verify, a re-run is current.
#[test]
fn settings_reach_every_copy_of_a_pattern() {
    let tmp = tempfile::tempdir().unwrap();
    for v in packs::COMPONENTS {
        let Some(p) = packs_of(v, &tmp.path().join(v).join("src")) else { return };
        let ov = tmp.path().join(v).join("tm.toml");
        std::fs::write(
            &ov,
            "[apim.event_hub]\nenable = true\nservice_url = \"https://cp.example.com:9443/services/\"\n",
        )
        .unwrap();
        let settings = [
            "--set".to_string(),
            "apim.throttling.service_url=\"https://tm.example.com:9443/services/\"".to_string(),
            "--set".to_string(),
            "gateway-worker:apim.key_manager.service_url=\"https://km.example.com:9443/services/\"".to_string(),
            "--overlay".to_string(),
            format!("traffic-manager={}", ov.display()),
            "--carry".to_string(),
            "super_admin".to_string(),
        ];
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        let mut args = vec!["--profiles", "control-plane,key-manager,gateway-worker,traffic-manager"];
        args.extend(&settings);
        let out = tmp.path().join(v).join("p4");
        let o = split(&[&p.acp, &p.gw, &p.tm], &out, &args);
        assert!(o.status.success(), "{v}: {}", String::from_utf8_lossy(&o.stderr));
        let report = json_of(&o);
        for pr in report["profiles"].as_array().unwrap() {
            let profile = pr["profile"].as_str().unwrap();
            assert!(
                pr["rewritten"].as_array().unwrap().iter().any(|r| r == TOML),
                "{v} {profile}: deployment.toml not reported rewritten: {pr}"
            );
            let home = match profile {
                "gateway-worker" => &p.gw,
                "traffic-manager" => &p.tm,
                _ => &p.acp,
            };
            let copy = copy_of(&out, profile, home);
            let doc = toml_doc(&copy.join(TOML));
            assert_eq!(
                value(&doc, &["apim", "throttling", "service_url"]),
                Some("\"https://tm.example.com:9443/services/\"".into()),
                "{v} {profile}: the --set for every profile"
            );
            let km = value(&doc, &["apim", "key_manager", "service_url"]);
            let hub = value(&doc, &["apim", "event_hub", "service_url"]);
            if profile == "gateway-worker" {
                assert_eq!(km, Some("\"https://km.example.com:9443/services/\"".into()), "{v}: gateway-worker's --set");
            } else {
                assert_ne!(
                    km,
                    Some("\"https://km.example.com:9443/services/\"".into()),
                    "{v} {profile}: not its setting"
                );
            }
            assert_eq!(
                hub == Some("\"https://cp.example.com:9443/services/\"".into()),
                profile == "traffic-manager",
                "{v} {profile}: the overlay is the traffic manager's only"
            );
            // The carried table is the pack's own, in the key manager's template too.
            let own = toml_doc(&home.join(TOML));
            assert_eq!(
                doc["super_admin"].to_string().trim(),
                own["super_admin"].to_string().trim(),
                "{v} {profile}: --carry super_admin"
            );
            verify_ok(&copy);
        }
        // The same command again: every copy current, nothing written.
        let o = split(&[&p.acp, &p.gw, &p.tm], &out, &args);
        assert!(o.status.success(), "{v}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(json_of(&o)["profiles"].as_array().unwrap().iter().all(|p| p["status"] == "current"), "{v}");

        // Pattern 2: the all-in-one node takes its own setting.
        let out2 = tmp.path().join(v).join("p2");
        let o = split(&[&p.aio, &p.gw], &out2, &["--set", "all-in-one:server.hostname=\"aio.example.com\""]);
        assert!(o.status.success(), "{v}: {}", String::from_utf8_lossy(&o.stderr));
        let aio = toml_doc(&copy_of(&out2, "all-in-one", &p.aio).join(TOML));
        assert_eq!(value(&aio, &["server", "hostname"]), Some("\"aio.example.com\"".into()), "{v}");
        let gw = toml_doc(&copy_of(&out2, "gateway-worker", &p.gw).join(TOML));
        assert_ne!(value(&gw, &["server", "hostname"]), Some("\"aio.example.com\"".into()), "{v}");
    }
}

fn toml_doc(p: &Path) -> toml_edit::DocumentMut {
    String::from_utf8(read(p)).unwrap().parse().unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn value(doc: &toml_edit::DocumentMut, path: &[&str]) -> Option<String> {
    let mut item = doc.as_item();
    for k in path {
        item = item.get(k)?;
    }
    Some(item.as_value()?.clone().decorated("", "").to_string())
}

fn assert_refused(o: &std::process::Output, out: &Path, expect: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.lines().any(|l| l.starts_with("hint: ")), "{err}");
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in: {err}");
    }
    assert!(!out.exists(), "nothing written: {err}");
}

/// A setting that cannot apply to one copy is refused, never dropped; an
/// all-in-one pack of 4.5.0+ is refused on its own and without a gateway.
#[test]
fn a_setting_that_cannot_apply_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let Some(p) = packs_of("4.6.0", &t.join("src")) else { return };
    // The gateway pack's deployment.toml has no database.apim_db.
    let o = split(&[&p.acp, &p.gw, &p.tm], &t.join("o1"), &["--carry", "database.apim_db"]);
    assert_refused(&o, &t.join("o1"), &["--carry database.apim_db", "does not set"]);
    // A setting for a profile this run does not make.
    let o = split(&[&p.acp, &p.gw, &p.tm], &t.join("o2"), &["--set", "key-manager:server.offset=1"]);
    assert_refused(&o, &t.join("o2"), &["key-manager", "not in this run"]);
    // A pack without its deployment.toml cannot take a setting.
    let gw2 = packs::build(Pack::Gateway, "4.6.0", &t.join("bare")).unwrap();
    std::fs::remove_file(gw2.join(TOML)).unwrap();
    let o = split(&[&p.acp, &gw2, &p.tm], &t.join("o3"), &["--set", "server.offset=1"]);
    assert_refused(&o, &t.join("o3"), &["deployment.toml is not in the home", "gateway-worker"]);
    // Without settings the same packs split (the refusal was the setting's).
    let o = split(&[&p.acp, &gw2, &p.tm], &t.join("o4"), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The all-in-one pack alone, or without a gateway.
    let o = split(&[&p.aio], &t.join("o5"), &[]);
    assert_refused(&o, &t.join("o5"), &["no profile optimization", "AIO_HOME GW_HOME", "ACP_HOME GW_HOME TM_HOME"]);
    let o = split(&[&p.aio, &p.tm], &t.join("o6"), &[]);
    assert_refused(&o, &t.join("o6"), &["no Universal Gateway pack"]);
    let o = bin().args(["optimize", "--profile", "all-in-one"]).arg(&p.aio).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    // --skip-config-optimization on 4.2.0: the settings reach each copy's own file.
    let home = home_in(&t.join("h42"));
    let o = split(
        &[&home],
        &t.join("o7"),
        &[
            "--skip-config-optimization",
            "--set",
            "gateway-worker:apim.key_manager.service_url=\"https://km:9443/services/\"",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let gw = toml_doc(&t.join("o7/gateway-worker/wso2am-4.2.0").join(TOML));
    assert_eq!(value(&gw, &["apim", "key_manager", "service_url"]), Some("\"https://km:9443/services/\"".into()));
    for pr in json_of(&o)["profiles"].as_array().unwrap() {
        let rewritten = pr["rewritten"].as_array().unwrap().iter().any(|r| r == TOML);
        assert_eq!(rewritten, pr["profile"] == "gateway-worker", "{pr}");
    }
}

/// `--update-once` with several packs: each pack's tool runs once, however
/// many copies it serves (the control plane and the key manager from one ACP
/// pack: one run, not two), and the copies are those of the per-copy order.
#[test]
fn update_once_runs_each_packs_tool_once() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let Some(p) = packs_of("4.6.0", &t.join("src")) else { return };
    let profiles = ["--profiles", "control-plane,key-manager,gateway-worker"];
    let run = |out: &Path, calls: &Path, order: &str| {
        let mut c = bin();
        c.arg("split").arg(&p.acp).arg(&p.gw).arg(&p.tm).arg("--out").arg(out).args(profiles).args(["--json", order]);
        // A setting for every copy: the update must neither conflict on it nor lose it.
        c.args(["--set", SET]);
        c.arg("--update-tool").arg(double()).env("APIM_DOUBLE_CALLS", calls);
        c.env("WSO2_USERNAME", "ops@example.com").env("WSO2_PASSWORD", "Patterns-Test-Pw1");
        let o = c.env("APIM_DOUBLE_SCENARIO", "success").output().unwrap();
        assert!(o.status.success(), "{order}: {}", String::from_utf8_lossy(&o.stderr));
        json_of(&o)
    };
    let runs = |calls: &Path, home: &str| {
        let log = std::fs::read_to_string(calls).unwrap();
        let tree = |l: &str| l.split(" home=").nth(1).and_then(|r| r.split(' ').next()).unwrap_or("").to_string();
        log.lines().filter(|l| l.contains("--backup") && tree(l).contains(home)).count()
    };
    let acp_before = digest(&p.acp);
    let (once, each) = (t.join("once"), t.join("each"));
    let (calls_once, calls_each) = (t.join("once.log"), t.join("each.log"));
    let r_once = run(&once, &calls_once, "--update-once");
    let r_each = run(&each, &calls_each, "--update-each");
    assert_eq!(runs(&calls_once, "wso2am-acp-4.6.0"), 1, "{}", std::fs::read_to_string(&calls_once).unwrap());
    assert_eq!(runs(&calls_once, "wso2am-universal-gw-4.6.0"), 1);
    assert_eq!(runs(&calls_each, "wso2am-acp-4.6.0"), 2, "one per copy in the per-copy order");
    for (profile, home) in [("control-plane", &p.acp), ("key-manager", &p.acp), ("gateway-worker", &p.gw)] {
        let (a, b) = (copy_of(&once, profile, home), copy_of(&each, profile, home));
        let cfg = String::from_utf8(read(b.join("updates/config.json"))).unwrap();
        assert!(cfg.contains("\"4.6.0.5\""), "{profile}: updated: {cfg}");
        let strip = |m: std::collections::BTreeMap<String, Item>| {
            m.into_iter().filter(|(k, _)| !k.starts_with("updates")).collect::<Vec<_>>()
        };
        assert_eq!(strip(digest(&a)), strip(digest(&b)), "{profile}: the orders' copies differ");
        let doc = toml_doc(&b.join(TOML));
        assert_eq!(value(&doc, &["apim", "throttling", "service_url"]).as_deref(), Some(SET_VALUE), "{profile}");
        verify_ok(&a);
        verify_ok(&b);
    }
    assert_eq!(digest(&p.acp), acp_before, "the ACP home is never written");
    // Notes that are true: the key manager was re-optimized, the control plane has none.
    let notes = |r: &serde_json::Value, profile: &str| {
        r["profiles"].as_array().unwrap().iter().find(|p| p["profile"] == profile).unwrap()["notes"].to_string()
    };
    let km = notes(&r_each, "key-manager");
    assert!(!km.contains("documents no re-optimization"), "{km}");
    assert!(km.contains("was run again in the copy") && km.contains("bin/key-manager.sh"), "{km}");
    let cp = notes(&r_each, "control-plane");
    assert!(cp.contains("documents no re-optimization") && !cp.contains("key-manager.sh"), "{cp}");
    let km_once = notes(&r_once, "key-manager");
    assert!(km_once.contains("updated once, in the copies' base"), "{km_once}");
    // Each pack keeps its own base.
    assert!(once.join(".apim-profiles-base/wso2am-acp-4.6.0.json").is_file());
    assert!(once.join(".apim-profiles-base/wso2am-universal-gw-4.6.0.json").is_file());

    // Copies made without the update and rolled forward with `update`: the
    // pack's file goes to the tool, the settings come back after it.
    let later = t.join("later");
    let o = split(&[&p.acp, &p.gw], &later, &["--profiles", "control-plane,gateway-worker", "--set", SET]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let copies = [copy_of(&later, "control-plane", &p.acp), copy_of(&later, "gateway-worker", &p.gw)];
    let mut c = bin();
    c.arg("update").args(&copies).arg("--json").arg("--update-tool").arg(double());
    c.env("WSO2_USERNAME", "ops@example.com").env("WSO2_PASSWORD", "Patterns-Test-Pw1");
    let o = c.env("APIM_DOUBLE_SCENARIO", "success").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let report = json_of(&o).to_string();
    assert!(!report.contains("re-optimized"), "a pack as shipped is not re-optimized: {report}");
    for copy in &copies {
        let doc = toml_doc(&copy.join(TOML));
        assert_eq!(value(&doc, &["apim", "throttling", "service_url"]).as_deref(), Some(SET_VALUE));
        assert!(String::from_utf8(read(copy.join("updates/config.json"))).unwrap().contains("4.6.0.5"));
        verify_ok(copy);
    }
}

const SET: &str = "apim.throttling.service_url=\"https://tm.example.com:9443/services/\"";
const SET_VALUE: &str = "\"https://tm.example.com:9443/services/\"";

/// Detection needs two independent facts and a layout that agrees.
#[test]
fn detection_needs_two_facts_and_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The fixture without product.txt and version.txt: carbon.xml alone.
    let h = home_in(&t.join("a"));
    std::fs::remove_file(h.join("updates/product.txt")).unwrap();
    std::fs::remove_file(h.join("bin/version.txt")).unwrap();
    let o = split(&[&h], &t.join("o1"), &[]);
    assert_refused(&o, &t.join("o1"), &["only repository/conf/carbon.xml says wso2am 4.2.0", "two independent facts"]);
    // A 4.2.0 home with jaggery apps.
    let h = home_in(&t.join("b"));
    std::fs::create_dir_all(h.join("repository/deployment/server/jaggeryapps/publisher")).unwrap();
    let o = split(&[&h], &t.join("o2"), &[]);
    assert_refused(&o, &t.join("o2"), &["say wso2am 4.2.0", "jaggeryapps is there"]);
    let Some(gw) = packs::build(Pack::Gateway, "4.6.0", &t.join("c")) else { return };
    // carbon.xml and the kernel jar are two facts: accepted.
    std::fs::remove_file(gw.join("updates/product.txt")).unwrap();
    std::fs::remove_file(gw.join("bin/version.txt")).unwrap();
    bin().args(["split", "--no-update", "-n"]).arg(&gw).arg("--out").arg(t.join("o3")).assert().success();
    // A gateway pack without its launcher is not laid out as one.
    std::fs::remove_file(gw.join("bin/gateway.sh")).unwrap();
    let o = split(&[&gw], &t.join("o4"), &[]);
    assert_refused(&o, &t.join("o4"), &["the kernel jar (carbon.core 4.9.33)", "bin/gateway.sh is missing"]);
    // Without the kernel jar only carbon.xml is left.
    let plugins = gw.join("repository/components/plugins");
    std::fs::remove_file(plugins.join("org.wso2.carbon.core_4.9.33.jar")).unwrap();
    let o = split(&[&gw], &t.join("o5"), &[]);
    assert_refused(&o, &t.join("o5"), &["only repository/conf/carbon.xml says wso2am-universal-gw 4.6.0"]);
}

/// A 3.1.0 copy whose default axis2.xml.j2 came back (what an update that
/// restores the stock template does): `optimize` and `verify` both call it
/// drifted, exit 4, and optimizing changes nothing.
#[test]
fn optimize_and_verify_agree_on_a_copy_they_cannot_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(home) = packs::build(Pack::AllInOne, "3.1.0", &tmp.path().join("src")) else { return };
    let out = tmp.path().join("out");
    let o = split(&[&home], &out, &["--profiles", "traffic-manager"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let copy = out.join("traffic-manager/wso2am-3.1.0");
    let axis = format!("{T}/repository/conf/axis2/axis2.xml.j2");
    std::fs::copy(home.join(&axis), copy.join(&axis)).unwrap();
    let v = bin().args(["verify", "--json"]).arg(&copy).output().unwrap();
    let before = digest(&copy);
    let opt = bin().args(["optimize", "--profile", "traffic-manager", "--json"]).arg(&copy).output().unwrap();
    assert_eq!(digest(&copy), before, "nothing to do that would be right");
    assert_eq!(v.status.code(), Some(4), "verify");
    assert_eq!(opt.status.code(), Some(4), "optimize");
    let (v, opt) = (json_of(&v), json_of(&opt));
    assert_eq!(v["profiles"][0]["status"], "drifted", "{v}");
    assert_eq!(opt["profiles"][0]["status"], "drifted", "{opt}");
    let drift = opt["profiles"][0]["drift"].to_string();
    assert!(drift.contains("cannot be applied again") && drift.contains("axis2_TM.xml.j2"), "{drift}");
}
