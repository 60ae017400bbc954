//! Finding out what a directory is before touching anything: an API-M home of a
//! version this build knows, not running. The version is taken only when at
//! least two independent facts name it (the three version files, the kernel
//! jar) and none says otherwise (the layout of the version's facts among
//! them); whatever was found is named in the refusal so the operator can see
//! why.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use quick_xml::events::Event;

use crate::model::facts::{Products, VersionFacts};
use crate::model::profile::Catalog;
use crate::outcome::refuse;
use crate::sys;

/// A validated product home.
#[derive(Debug, Clone)]
pub struct Home {
    /// Absolute, canonical path.
    pub path: PathBuf,
    /// The home's own directory name (`wso2am-4.2.0`), kept for every copy.
    pub dir_name: std::ffi::OsString,
    /// The pack, as `updates/product.txt` names it: `wso2am`, `wso2am-acp`, ...
    pub product: String,
    /// `4.2.0`
    pub version: String,
}

const PRODUCT_TXT: &str = "updates/product.txt";
const CARBON_XML: &str = "repository/conf/carbon.xml";
const VERSION_TXT: &str = "bin/version.txt";

/// Reads the identity of `path` and refuses anything that is not a home of
/// an API-M pack (all-in-one or component), that mixes two identities, or
/// whose version the catalog's facts refuse.
pub fn detect(path: &Path, catalog: &Catalog) -> Result<Home> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => {
            return refuse(
                format!("{shown} does not exist"),
                "give the path of an unzipped API-M home (the directory that holds bin/ and repository/)",
            )
        }
    };
    if !meta.is_dir() {
        return refuse(
            format!("{shown} is not a directory"),
            "give the path of an unzipped API-M home, not the zip or a file in it",
        );
    }
    let path = std::fs::canonicalize(path).with_context(|| format!("resolving {shown}"))?;
    let (product, version, files) = agreed_identity(&path, &Products::embedded())?;
    check_version(&path, &product, &version, &files, catalog)?;
    let dir_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "wso2am".into());
    Ok(Home { path, dir_name, product, version })
}

/// The pack and version the identity files agree on, and the files that say it.
fn agreed_identity(path: &Path, products: &Products) -> Result<(String, String, Vec<String>)> {
    let shown = path.display();
    let found = identity_files(path, products);
    if found.is_empty() {
        return refuse(
            format!("{shown} is not an API-M home: none of {PRODUCT_TXT}, {CARBON_XML}, {VERSION_TXT} is there"),
            "give the directory that holds bin/, repository/ and updates/ of an unzipped wso2am pack",
        );
    }
    let describe = |f: &[(String, String, String)]| {
        f.iter().map(|(s, p, v)| format!("{s} says {p} {v}").trim_end().to_string()).collect::<Vec<_>>().join(", ")
    };
    let known = |p: &str| products.by_id(p).is_some();
    if !found.iter().any(|(_, p, _)| known(p)) {
        return refuse(
            format!("{shown} is not WSO2 API Manager: {}", describe(&found)),
            "apim-profiles splits API-M homes: all-in-one (wso2am) or the component packs (wso2am-acp, wso2am-universal-gw, wso2am-tm)",
        );
    }
    let (_, product, version) = found[0].clone();
    if found.iter().any(|(_, p, v)| p != &product || v != &version) || !known(&product) {
        return refuse(
            format!("{shown} has conflicting identity files: {}", describe(&found)),
            "the home looks partly overwritten; start from a freshly unzipped pack",
        );
    }
    if version.is_empty() {
        return refuse(
            format!("{shown}: no product version found ({})", describe(&found)),
            "check updates/product.txt, which should read e.g. wso2am-4.2.0",
        );
    }
    Ok((product, version, found.into_iter().map(|(f, _, _)| f).collect()))
}

/// The version's facts: its kernel must be the home's, two facts must name
/// it, its layout must be the home's, and a refused version is refused with
/// the facts' reason and hint.
fn check_version(path: &Path, product: &str, version: &str, files: &[String], catalog: &Catalog) -> Result<()> {
    let Some(facts) = catalog.version_facts(product, version) else {
        return Ok(());
    };
    let mut agreeing: Vec<String> = files.to_vec();
    if let Some(kernel) = facts.kernel.as_deref() {
        let jars = kernel_versions(path);
        let ours = |k: &String| {
            k == kernel || k.strip_prefix(kernel).is_some_and(|r| !r.starts_with(|c: char| c.is_ascii_digit()))
        };
        if !jars.is_empty() && !jars.iter().any(ours) {
            return refuse(
                format!(
                    "{} says {product} {version}, whose kernel is {kernel}, but its repository/components/plugins holds carbon.core {}",
                    path.display(),
                    jars.join(", ")
                ),
                "the home mixes files of two releases; start from a freshly unzipped pack",
            );
        }
        if !jars.is_empty() {
            agreeing.push(format!("the kernel jar (carbon.core {kernel})"));
        }
    }
    if agreeing.len() < 2 {
        return refuse(
            format!(
                "{}: only {} says {product} {version}; the version is taken only when two independent facts agree",
                path.display(),
                agreeing.join(", ")
            ),
            format!(
                "restore the pack's version files ({PRODUCT_TXT}, {VERSION_TXT}, {CARBON_XML}) and kernel jar, or start from a freshly unzipped pack"
            ),
        );
    }
    check_layout(path, product, version, &agreeing, facts)?;
    if let Some(why) = &facts.refuse {
        return refuse(format!("{}: {why}", path.display()), facts.hint.clone().unwrap_or_default());
    }
    Ok(())
}

/// Refuses a home whose layout is not its version's (a 4.2.0 home with
/// jaggery apps, a gateway pack without its launcher), naming what says the
/// version and what the layout says instead.
fn check_layout(path: &Path, product: &str, version: &str, agreeing: &[String], facts: &VersionFacts) -> Result<()> {
    let exists = |p: &str| std::fs::symlink_metadata(path.join(p)).is_ok();
    let mut wrong: Vec<String> = Vec::new();
    wrong.extend(facts.layout.absent.iter().filter(|p| exists(p)).map(|p| format!("{p} is there")));
    wrong.extend(facts.layout.present.iter().filter(|p| !exists(p)).map(|p| format!("{p} is missing")));
    if wrong.is_empty() {
        return Ok(());
    }
    refuse(
        format!(
            "{}: {} say {product} {version}, but its layout is not that version's: {}",
            path.display(),
            agreeing.join(", "),
            wrong.join(", ")
        ),
        "the home mixes files of two releases or was rearranged; start from a freshly unzipped pack",
    )
}

/// Versions of the kernel jars (`org.wso2.carbon.core_<v>.jar`) in the home.
fn kernel_versions(home: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(home.join("repository/components/plugins")) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("org.wso2.carbon.core_")?.strip_suffix(".jar").map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

/// What each identity file says: (file, product id, version).
fn identity_files(path: &Path, products: &Products) -> Vec<(String, String, String)> {
    let mut found: Vec<(String, String, String)> = Vec::new();
    if let Some(text) = read_small(path, PRODUCT_TXT) {
        let t = text.trim();
        // `wso2am-acp-4.6.0`: a known product id, dash, version.
        let (prod, ver) = match products.parse_product_line(t) {
            Some((p, v)) => (p.id.clone(), v.to_string()),
            None => match t.rsplit_once('-') {
                Some((p, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => (p.to_string(), v.to_string()),
                _ => (t.to_string(), String::new()),
            },
        };
        found.push((PRODUCT_TXT.into(), prod, ver));
    }
    let id_of = |name: String| products.by_name(&name).map_or(name, |p| p.id.clone());
    if let Some(text) = read_small(path, CARBON_XML) {
        if let Some((name, ver)) = carbon_identity(&text) {
            found.push((CARBON_XML.into(), id_of(name), ver));
        }
    }
    if let Some(text) = read_small(path, VERSION_TXT) {
        let t = text.lines().next().unwrap_or("").trim().to_string();
        // `WSO2 API Manager v4.2.0`
        let (name, ver) = match t.rsplit_once(" v") {
            Some((n, v)) => (n.to_string(), v.trim().to_string()),
            None => (t.clone(), String::new()),
        };
        found.push((VERSION_TXT.into(), id_of(name), ver));
    }
    found
}

/// Refuses a home a server is running from: copying it would copy half-written
/// H2 databases. A pid file naming a dead process is only stale and is ignored.
pub fn check_not_running(home: &Path) -> Result<()> {
    let Some(text) = read_small(home, "wso2carbon.pid") else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return Ok(());
    };
    if pid > 0 && sys::process_alive(pid) {
        return refuse(
            format!("a server is running from {} (wso2carbon.pid names live process {pid})", home.display()),
            "stop it first (bin/api-manager.sh stop): a running server's databases are half-written",
        );
    }
    Ok(())
}

/// A small identity file of the home: only a regular file, only through
/// links that stay inside the home (a link to `/etc/shadow` is not read, so
/// its lines cannot show in a refusal).
fn read_small(home: &Path, rel: &str) -> Option<String> {
    let resolved = crate::safe_fs::resolve_inside(home, Path::new(rel)).ok()?;
    let f = crate::safe_fs::open_regular(&resolved, "file").ok()?;
    if f.metadata().ok()?.len() > 4 << 20 {
        return None;
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut &f, &mut s).ok()?;
    Some(s)
}

/// `<Server><Name>..</Name><Version>..</Version>` from carbon.xml, read with a
/// real XML parser: the file is large and commented, a regex would misread it.
fn carbon_identity(xml: &str) -> Option<(String, String)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let (mut name, mut version) = (None, None);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => stack.push(e.local_name().as_ref().to_vec()),
            Ok(Event::End(_)) => {
                stack.pop();
            }
            Ok(Event::Text(t)) if stack.len() == 2 && stack[0] == b"Server" => {
                let text = t.unescape().ok()?.trim().to_string();
                match stack[1].as_slice() {
                    b"Name" if name.is_none() => name = Some(text),
                    b"Version" if version.is_none() => version = Some(text),
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Err(_) => return None,
            _ => {}
        }
        if name.is_some() && version.is_some() {
            break;
        }
    }
    Some((name.unwrap_or_default(), version?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_carbon_xml() {
        let xml = r#"<?xml version="1.0"?><!-- c --><Server xmlns="http://wso2.org/projects/carbon/carbon.xml">
            <Name>WSO2 API Manager</Name><ServerKey>AM</ServerKey><Version>4.2.0</Version></Server>"#;
        assert_eq!(carbon_identity(xml), Some(("WSO2 API Manager".into(), "4.2.0".into())));
    }
}
