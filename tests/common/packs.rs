//! Test homes of every API-M version this build knows, made at test time: the
//! version's real configuration files from `../shared/apim-<V>-conf` (or
//! `apim-acp-<V>-conf`), which stay outside the repository, plus synthetic
//! jars, webapps, jaggery apps, start scripts and identity files laid out as
//! that version's pack (from `profile-optimization-<V>.md` and
//! `profile-optimization-webapps.md`). Nothing here is product content: every
//! synthetic file holds a placeholder written for these tests.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The four kinds of pack WSO2 ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pack {
    /// `wso2am-<V>`, the all-in-one pack.
    AllInOne,
    /// `wso2am-acp-<V>`, the API Control Plane (4.5.0+).
    ControlPlane,
    /// `wso2am-universal-gw-<V>` (4.5.0+).
    Gateway,
    /// `wso2am-tm-<V>` (4.5.0+).
    TrafficManager,
}

impl Pack {
    pub fn id(self) -> &'static str {
        match self {
            Pack::AllInOne => "wso2am",
            Pack::ControlPlane => "wso2am-acp",
            Pack::Gateway => "wso2am-universal-gw",
            Pack::TrafficManager => "wso2am-tm",
        }
    }
    /// `product.name` of the pack's filter.properties, as version.txt and carbon.xml carry it.
    pub fn product_name(self) -> &'static str {
        match self {
            Pack::AllInOne => "WSO2 API Manager",
            Pack::ControlPlane => "WSO2 API Control Plane",
            Pack::Gateway => "WSO2 Universal Gateway",
            Pack::TrafficManager => "WSO2 Traffic Manager",
        }
    }
    pub fn dir_name(self, version: &str) -> String {
        format!("{}-{version}", self.id())
    }
}

/// Versions with real configuration files in `../shared`, in release order.
pub const ALL_IN_ONE: &[&str] = &["3.1.0", "3.2.0", "4.0.0", "4.1.0", "4.2.0", "4.3.0", "4.4.0"];
pub const COMPONENTS: &[&str] = &["4.5.0", "4.6.0", "4.7.0"];

/// `../shared` beside the clone (as CI has it), `$APIM_SHARED_DIR` when set,
/// or `../../shared` for a git worktree one level further down.
pub fn shared() -> PathBuf {
    if let Some(d) = std::env::var_os("APIM_SHARED_DIR") {
        return PathBuf::from(d);
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let beside = here.join("../shared");
    if beside.is_dir() {
        return beside;
    }
    here.join("../../shared")
}

/// The real configuration of a version, when `../shared` is there.
pub fn conf_dir(pack: Pack, version: &str) -> Option<PathBuf> {
    let name = match pack {
        Pack::ControlPlane => format!("apim-acp-{version}-conf"),
        Pack::Gateway => format!("apim-universal-gw-{version}-conf"),
        Pack::TrafficManager => format!("apim-tm-{version}-conf"),
        Pack::AllInOne => format!("apim-{version}-conf"),
    };
    let p = shared().join(name);
    p.is_dir().then_some(p)
}

/// Kernel (carbon.core) version of each release.
fn kernel(version: &str) -> &'static str {
    match version {
        "3.0.0" => "4.5.1",
        "3.1.0" | "3.2.0" => "4.6.0",
        "4.0.0" => "4.6.2",
        "4.1.0" => "4.6.3",
        "4.2.0" => "4.8.1",
        "4.3.0" => "4.9.26",
        "4.4.0" => "4.9.27",
        "4.5.0" => "4.9.28",
        "4.6.0" => "4.9.33",
        "4.7.0" => "4.11.18",
        _ => "4.0.0",
    }
}

/// Webapps of a fresh pack (directories end in `/`).
pub fn fresh_webapps(pack: Pack, version: &str) -> Vec<&'static str> {
    let v31 = [
        "accountrecoveryendpoint/",
        "authenticationendpoint/",
        "am#sample#calculator#v1.war",
        "am#sample#pizzashack#v1.war",
        "api#am#admin#v0.16.war",
        "api#am#publisher#v0.16.war",
        "api#am#publisher.war",
        "api#am#store#v0.16.war",
        "api#am#store.war",
        "api#identity#consent-mgt#v1.0.war",
        "api#identity#oauth2#dcr#v1.1.war",
        "api#identity#recovery#v0.9.war",
        "api#identity#user#v1.0.war",
        "client-registration#v0.16.war",
        "oauth2.war",
        "throttle#data#v1.war",
    ];
    let v32 = [
        "accountrecoveryendpoint/",
        "authenticationendpoint/",
        "am#sample#calculator#v1.war",
        "am#sample#pizzashack#v1.war",
        "api#am#admin#v0.17.war",
        "api#am#admin.war",
        "api#am#gateway.war",
        "api#am#publisher.war",
        "api#am#store.war",
        "api#identity#consent-mgt#v1.0.war",
        "api#identity#oauth2#dcr#v1.1.war",
        "api#identity#oauth2#v1.0.war",
        "api#identity#recovery#v0.9.war",
        "api#identity#user#v1.0.war",
        "client-registration#v0.17.war",
        "internal#data#v1.war",
        "keymanager-operations.war",
        "oauth2.war",
    ];
    // 4.0.0; later versions add to it.
    let v40 = vec![
        "accountrecoveryendpoint/",
        "authenticationendpoint/",
        "am#sample#calculator#v1.war",
        "am#sample#pizzashack#v1.war",
        "api#am#admin.war",
        "api#am#devportal.war",
        "api#am#gateway#v2.war",
        "api#am#publisher.war",
        "api#identity#consent-mgt#v1.0.war",
        "api#identity#oauth2#dcr#v1.1.war",
        "api#identity#oauth2#v1.0.war",
        "api#identity#recovery#v0.9.war",
        "api#identity#user#v1.0.war",
        "client-registration#v0.17.war",
        "internal#data#v1.war",
        "keymanager-operations.war",
        "oauth2.war",
    ];
    let mut v = match (pack, version) {
        (Pack::Gateway, _) => return vec!["api#am#gateway#v2.war"],
        (Pack::TrafficManager, _) => return vec!["internal#data#v1.war"],
        (Pack::AllInOne, "3.1.0") => return v31.to_vec(),
        (Pack::AllInOne, "3.2.0") => return v32.to_vec(),
        (Pack::AllInOne, "4.0.0") => {
            let mut v = v40;
            v.push("api#am#service-catalog#v0.war");
            return v;
        }
        _ => v40,
    };
    v.extend(["api#am#service-catalog#v1.war", "api#am#devops#v0.war"]);
    if version == "4.1.0" {
        return v;
    }
    v.extend(["admin/", "devportal/", "publisher/", "lerna.json", "package.json"]);
    if version == "4.2.0" {
        return v;
    }
    v.push("api#identity#auth#v1.1.war");
    if pack == Pack::ControlPlane {
        v.retain(|w| !matches!(*w, "api#am#gateway#v2.war" | "am#sample#calculator#v1.war"));
        v.push("api#am#governance.war");
        if version == "4.7.0" {
            v.push("internal#gateway.war");
        }
    }
    v
}

/// Jaggery-app directories of a fresh pack (3.x–4.1.0).
pub fn fresh_jaggeryapps(version: &str) -> Vec<&'static str> {
    match version {
        "3.1.0" | "4.1.0" => vec!["admin", "publisher", "devportal"],
        "3.2.0" | "4.0.0" => vec!["admin", "admin-old", "publisher", "devportal"],
        _ => vec![],
    }
}

fn start_scripts(pack: Pack, version: &str) -> Vec<&'static str> {
    match pack {
        Pack::AllInOne if version.starts_with('3') => vec!["wso2server.sh", "profileSetup.sh"],
        Pack::AllInOne if version < "4.5.0" => vec!["api-manager.sh", "profileSetup.sh"],
        Pack::AllInOne => vec!["api-manager.sh"],
        Pack::ControlPlane => vec!["api-cp.sh", "key-manager.sh", "profileSetup.sh"],
        Pack::Gateway => vec!["gateway.sh"],
        Pack::TrafficManager => vec!["traffic-manager.sh"],
    }
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Writes `path` unless the real configuration already has it.
fn write_new(path: &Path, content: &[u8]) {
    if std::fs::symlink_metadata(path).is_err() {
        write(path, content);
    }
}

fn placeholder(what: &str) -> Vec<u8> {
    format!("placeholder for {what}, written by the apim-profiles tests\n").into_bytes()
}

/// Builds `<parent>/<pack>-<version>` and returns its path, or None when the
/// version's configuration files are not beside the project. The Universal
/// Gateway and Traffic Manager packs use their real configuration files too
/// (`apim-universal-gw-<V>-conf`, `apim-tm-<V>-conf`), else a synthetic one.
pub fn build(pack: Pack, version: &str, parent: &Path) -> Option<PathBuf> {
    let home = parent.join(pack.dir_name(version));
    std::fs::create_dir_all(parent).unwrap();
    match (pack, conf_dir(pack, version)) {
        (_, Some(conf)) => {
            let st = Command::new("cp").arg("-a").arg(&conf).arg(&home).status().unwrap();
            assert!(st.success());
        }
        (Pack::AllInOne | Pack::ControlPlane, None) => return None,
        // Without the real configuration of these packs: a small synthetic one.
        (Pack::Gateway | Pack::TrafficManager, None) => {
            conf_dir(Pack::ControlPlane, version)?;
            synthetic_conf(pack, version, &home)
        }
    }
    // The identity files the real configuration has are kept as they are.
    write_new(&home.join("updates/product.txt"), format!("{}-{version}\n", pack.id()).as_bytes());
    write_new(&home.join("bin/version.txt"), format!("{} v{version}\n", pack.product_name()).as_bytes());
    let carbon = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!-- test placeholder -->\n<Server xmlns=\"http://wso2.org/projects/carbon/carbon.xml\">\n    <Name>{}</Name>\n    <ServerKey>AM</ServerKey>\n    <Version>{version}</Version>\n</Server>\n",
        pack.product_name()
    );
    write_new(&home.join("repository/conf/carbon.xml"), carbon.as_bytes());
    for s in start_scripts(pack, version) {
        let p = home.join("bin").join(s);
        write_new(&p, format!("#!/bin/sh\n# placeholder for bin/{s}\nexit 0\n").as_bytes());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let k = kernel(version);
    let plugins = home.join("repository/components/plugins");
    write(&plugins.join(format!("org.wso2.carbon.core_{k}.jar")), &placeholder("the kernel jar"));
    write(&plugins.join("org.wso2.carbon.apimgt.fixture_1.0.0.jar"), &placeholder("a bundle"));
    write(&home.join("repository/components/lib/fixture-driver.jar"), &placeholder("a driver"));
    write(
        &home.join("repository/components/default/configuration/org.eclipse.equinox.simpleconfigurator/bundles.info"),
        b"org.wso2.carbon.core,1.0.0,../plugins/org.wso2.carbon.core.jar,4,true\n",
    );
    write(&home.join("repository/database/WSO2AM_DB.mv.db"), &placeholder("an H2 database"));
    std::fs::create_dir_all(home.join("repository/logs")).unwrap();
    webapps(pack, version, &home);
    jaggeryapps(version, &home);
    web_templates(pack, version, &home);
    ship(&home);
    Some(home)
}

fn webapps(pack: Pack, version: &str, home: &Path) {
    let dir = home.join("repository/deployment/server/webapps");
    for w in fresh_webapps(pack, version) {
        if let Some(d) = w.strip_suffix('/') {
            write(&dir.join(d).join("WEB-INF/web.xml"), &placeholder(&format!("webapps/{d}")));
            if matches!(d, "admin" | "publisher" | "devportal") {
                write(&dir.join(d).join("site/public/conf/settings.json"), b"{}\n");
            }
        } else if !dir.join(w).exists() {
            write(&dir.join(w), &placeholder(&format!("webapps/{w}")));
        }
    }
    // Exploded forms the server leaves beside a war: the product removes them
    // with their war, and also the exploded form of a war it keeps.
    for war in ["api#am#gateway#v2.war", "api#am#gateway.war", "client-registration#v0.17.war", "oauth2.war"] {
        if dir.join(war).exists() {
            let d = war.trim_end_matches(".war");
            write(&dir.join(d).join("WEB-INF/web.xml"), &placeholder(&format!("exploded {war}")));
        }
    }
}

fn jaggeryapps(version: &str, home: &Path) {
    let dir = home.join("repository/deployment/server/jaggeryapps");
    for d in fresh_jaggeryapps(version) {
        write(&dir.join(d).join("site/public/conf/site.json"), &placeholder(&format!("jaggeryapps/{d}")));
        write(&dir.join(d).join("jaggery.conf"), b"{}\n");
    }
}

/// The login and recovery `web.xml.j2` templates come from p2 features, not
/// from the product repository: add them where a version's script names them.
fn web_templates(pack: Pack, version: &str, home: &Path) {
    if pack != Pack::AllInOne && pack != Pack::ControlPlane {
        return;
    }
    let t = home.join("repository/resources/conf/templates/repository/deployment/server/webapps");
    for app in ["authenticationendpoint", "accountrecoveryendpoint"] {
        let p = t.join(app).join("WEB-INF/web.xml.j2");
        if !p.exists() && version >= "4.1.0" {
            write(&p, &placeholder(&format!("the {app} web.xml template")));
        }
    }
}

/// A Universal Gateway or Traffic Manager pack: a deployment.toml, synapse
/// configs for the gateway, and the stale deployment templates the TM pack
/// still carries.
fn synthetic_conf(pack: Pack, version: &str, home: &Path) {
    let role = if pack == Pack::Gateway { "gateway-worker" } else { "traffic-manager" };
    let toml = format!(
        "[server]\nhostname = \"localhost\"\nserver_role = \"{role}\"\n\n[super_admin]\nusername = \"admin\"\npassword = \"Pack-{version}-Admin-Pw\"\ncreate_admin_account = true\n\n[database.shared_db]\ntype = \"h2\"\nurl = \"jdbc:h2:./repository/database/WSO2SHARED_DB\"\nusername = \"wso2carbon\"\npassword = \"Pack-{version}-Db-Pw\"\n"
    );
    write(&home.join("repository/conf/deployment.toml"), toml.as_bytes());
    if pack == Pack::Gateway {
        let syn = home.join("repository/deployment/server/synapse-configs/default");
        write(&syn.join("synapse.xml"), &placeholder("synapse.xml"));
        write(&syn.join("sequences/main.xml"), &placeholder("the main sequence"));
        write(&syn.join("inbound-endpoints/WebSocketInboundEndpoint.xml"), &placeholder("an inbound endpoint"));
    } else {
        let dtpl = home.join("repository/resources/conf/deployment-templates");
        for t in ["control-plane", "gateway-worker", "traffic-manager", "api-key-manager-node"] {
            write(&dtpl.join(format!("{t}.toml")), format!("[server]\nserver_role = \"{t}\"\n").as_bytes());
        }
    }
}

/// Records `home` as shipped for the update double (its manifest of the
/// pack's files: it conflicts on any file that differs from it, as WSO2's
/// tool does).
pub fn ship(home: &Path) {
    let ship = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/update-tool/ship");
    let st = Command::new(ship).arg(home).status().unwrap();
    assert!(st.success(), "shipping {}", home.display());
}
