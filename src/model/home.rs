//! Finding out what a directory is before touching anything: an API-M home of a
//! version this build knows, not running. The three identity files must agree;
//! whatever was found is named in the refusal so the operator can see why.

use std::path::{Path, PathBuf};

use anyhow::Result;
use quick_xml::events::Event;

use crate::outcome::refuse;
use crate::sys;

/// A validated product home.
#[derive(Debug, Clone)]
pub struct Home {
    /// Absolute, canonical path.
    pub path: PathBuf,
    /// The home's own directory name (`wso2am-4.2.0`), kept for every copy.
    pub dir_name: String,
    /// `wso2am`
    pub product: String,
    /// `4.2.0`
    pub version: String,
}

const PRODUCT_TXT: &str = "updates/product.txt";
const CARBON_XML: &str = "repository/conf/carbon.xml";
const VERSION_TXT: &str = "bin/version.txt";

/// Reads the identity of `path` and refuses anything that is not an API-M home.
pub fn detect(path: &Path) -> Result<Home> {
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
    let path = std::fs::canonicalize(path)?;
    let found = identity_files(&path);
    if found.is_empty() {
        return refuse(
            format!("{shown} is not an API-M home: none of {PRODUCT_TXT}, {CARBON_XML}, {VERSION_TXT} is there"),
            "give the directory that holds bin/, repository/ and updates/ of an unzipped wso2am pack",
        );
    }
    let describe = |f: &[(String, String, String)]| {
        f.iter().map(|(s, p, v)| format!("{s} says {p} {v}").trim_end().to_string()).collect::<Vec<_>>().join(", ")
    };
    if found.iter().all(|(_, p, _)| p != "wso2am") {
        return refuse(
            format!("{shown} is not WSO2 API Manager: {}", describe(&found)),
            "apim-profiles splits API-M homes only (product wso2am)",
        );
    }
    let (_, product, version) = found[0].clone();
    if found.iter().any(|(_, p, v)| p != &product || v != &version) {
        return refuse(
            format!("{shown} has conflicting identity files: {}", describe(&found)),
            "the home looks partly overwritten; start from a freshly unzipped pack",
        );
    }
    if product != "wso2am" {
        return refuse(
            format!("{shown} is not WSO2 API Manager: {}", describe(&found)),
            "apim-profiles splits API-M homes only (product wso2am)",
        );
    }
    if version.is_empty() {
        return refuse(
            format!("{shown}: no product version found ({})", describe(&found)),
            "check updates/product.txt, which should read e.g. wso2am-4.2.0",
        );
    }
    let dir_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "wso2am".into());
    Ok(Home { path, dir_name, product, version })
}

/// What each identity file says: (file, product, version).
fn identity_files(path: &Path) -> Vec<(String, String, String)> {
    let mut found: Vec<(String, String, String)> = Vec::new();

    if let Some(text) = read_small(&path.join(PRODUCT_TXT)) {
        let t = text.trim();
        // `wso2am-4.2.0`: product, dash, version.
        match t.rsplit_once('-') {
            Some((prod, ver)) if !prod.is_empty() && ver.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
                found.push((PRODUCT_TXT.into(), prod.to_string(), ver.to_string()))
            }
            _ => found.push((PRODUCT_TXT.into(), t.to_string(), String::new())),
        }
    }
    if let Some(text) = read_small(&path.join(CARBON_XML)) {
        if let Some((name, ver)) = carbon_identity(&text) {
            let prod = if name.to_ascii_lowercase().contains("api manager") { "wso2am".to_string() } else { name };
            found.push((CARBON_XML.into(), prod, ver));
        }
    }
    if let Some(text) = read_small(&path.join(VERSION_TXT)) {
        let t = text.lines().next().unwrap_or("").trim().to_string();
        // `WSO2 API Manager v4.2.0`
        let (name, ver) = match t.rsplit_once(" v") {
            Some((n, v)) => (n.to_string(), v.trim().to_string()),
            None => (t.clone(), String::new()),
        };
        let prod = if name.to_ascii_lowercase().contains("api manager") { "wso2am".to_string() } else { name };
        found.push((VERSION_TXT.into(), prod, ver));
    }
    found
}

/// Refuses a home a server is running from: copying it would copy half-written
/// H2 databases. A pid file naming a dead process is only stale and is ignored.
pub fn check_not_running(home: &Path) -> Result<()> {
    let pid_file = home.join("wso2carbon.pid");
    let Some(text) = read_small(&pid_file) else {
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

fn read_small(p: &Path) -> Option<String> {
    let meta = std::fs::metadata(p).ok()?;
    if !meta.is_file() || meta.len() > 4 << 20 {
        return None;
    }
    std::fs::read_to_string(p).ok()
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
