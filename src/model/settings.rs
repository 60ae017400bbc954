//! `--settings FILE.toml`: what would otherwise be many flags — profiles,
//! carry, carry-common, per-profile `set` and `overlay`, copy and update
//! options — in one file an operator keeps with the rest of a rollout.
//! Validated before anything runs, each error naming file, line and column.
//! The password never goes here (refused), and flags given on the command
//! line win over the file (the merge is done by the command line layer).
//!
//! ```toml
//! profiles = ["control-plane", "gateway-worker", "traffic-manager"]
//! carry = ["super_admin", "database.shared_db"]
//! [set]                                   # every profile; TOML values
//! "server.offset" = 0
//! [update]
//! level = "4.2.0.5"
//! [profile.gateway-worker.set]
//! "apim.key_manager.service_url" = "https://cp.example.com:9443/services/"
//! [profile.traffic-manager]
//! overlay = ["tm.toml"]                   # relative to the settings file
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::de::IgnoredAny;
use serde::Deserialize;
use toml_edit::{ImDocument, Item};

use crate::outcome::Refusal;

/// What a settings file (`--settings FILE.toml`) holds, resolved (not
/// `update::Settings`, the update step's own settings for one run): `sets` and `overlays` are in the
/// command line's own spelling (`[PROFILE:]key=VALUE`, `[PROFILE=]FILE`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsFile {
    pub path: PathBuf,
    pub profiles: Option<Vec<String>>,
    pub carry: Vec<String>,
    pub carry_common: bool,
    pub skip_config_optimization: bool,
    pub force: bool,
    pub jobs: Option<usize>,
    pub reflink: Option<String>,
    pub archive: Option<String>,
    pub sets: Vec<Scoped>,
    pub overlays: Vec<Scoped>,
    pub update: UpdateSettings,
}

/// A `set` or `overlay` of the file: for one profile, or for all (None).
#[derive(Debug, Clone, PartialEq)]
pub struct Scoped {
    pub profile: Option<String>,
    /// The command line's spelling (`[PROFILE:]key=VALUE`, `[PROFILE=]FILE`).
    pub arg: String,
}

impl Scoped {
    fn all(arg: String) -> Scoped {
        Scoped { profile: None, arg }
    }
    fn of(profile: &str, arg: String) -> Scoped {
        Scoped { profile: Some(profile.to_string()), arg }
    }
}

impl SettingsFile {
    /// Drops what the file says for profiles this run does not make: the file
    /// describes the whole fleet, a run may make part of it.
    pub fn only_for(&mut self, profiles: &[String]) {
        let keep = |s: &Scoped| s.profile.as_ref().is_none_or(|p| profiles.contains(p));
        self.sets.retain(keep);
        self.overlays.retain(keep);
    }
}

/// The `[update]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UpdateSettings {
    /// `false` is `--no-update`.
    pub enabled: Option<bool>,
    pub tool: Option<PathBuf>,
    pub zip: Option<PathBuf>,
    pub level: Option<String>,
    pub credentials_file: Option<PathBuf>,
    pub timeout: Option<u64>,
    pub jobs: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    profiles: Option<Vec<String>>,
    #[serde(default)]
    carry: Vec<String>,
    #[serde(default)]
    carry_common: bool,
    #[serde(default)]
    skip_config_optimization: bool,
    #[serde(default)]
    force: bool,
    jobs: Option<usize>,
    reflink: Option<String>,
    archive: Option<String>,
    #[allow(dead_code)]
    set: Option<IgnoredAny>,
    #[serde(default)]
    overlay: Vec<PathBuf>,
    #[serde(default)]
    update: UpdateSettings,
    #[serde(default)]
    profile: BTreeMap<String, RawProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[allow(dead_code)]
    set: Option<IgnoredAny>,
    #[serde(default)]
    overlay: Vec<PathBuf>,
}

const TOP_KEYS: &[&str] = &[
    "profiles",
    "carry",
    "carry-common",
    "skip-config-optimization",
    "force",
    "jobs",
    "reflink",
    "archive",
    "set",
    "overlay",
    "update",
    "profile",
];
const UPDATE_KEYS: &[&str] = &["enabled", "tool", "zip", "level", "credentials-file", "timeout", "jobs"];
const HINT: &str = "fix the line named; docs/guide.md, \"Settings file\", lists every key";

/// Reads and validates a settings file. `known` are the profile names of
/// the build (for `[profile.NAME]` tables).
pub fn load(path: &Path, known: &[&str]) -> Result<SettingsFile> {
    // A regular file of bounded size: a FIFO or /dev/zero is refused at
    // once instead of hanging the run.
    let bytes = crate::safe_fs::read_regular(path, "--settings")?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Refusal::new(
            format!("--settings {}: it is not UTF-8 text", path.display()),
            "give the path of a TOML settings file",
        )
    })?;
    parse(&text, path, known)
}

/// Parses the text of a settings file read from `path`.
pub fn parse(text: &str, path: &Path, known: &[&str]) -> Result<SettingsFile> {
    let doc = ImDocument::parse(text).map_err(|e| at(path, text, e.span().map(|s| s.start), e.message()))?;
    refuse_password(&doc, text, path)?;
    let raw: Raw = toml_edit::de::from_str(text).map_err(|e| {
        let msg = with_nearest(e.message());
        at(path, text, e.span().map(|s| s.start), &msg)
    })?;
    for (key, allowed) in [("reflink", &["auto", "always", "never"][..]), ("archive", &["zip", "tar.gz"][..])] {
        let value = doc.get(key).and_then(Item::as_value);
        if let Some(v) = value.filter(|v| !v.as_str().is_some_and(|x| allowed.contains(&x))) {
            let offset = v.span().map(|s| s.start);
            return Err(at(path, text, offset, &format!("{key} must be one of: {}", allowed.join(", "))));
        }
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut s = SettingsFile {
        path: path.to_path_buf(),
        profiles: raw.profiles,
        carry: raw.carry,
        carry_common: raw.carry_common,
        skip_config_optimization: raw.skip_config_optimization,
        force: raw.force,
        jobs: raw.jobs,
        reflink: raw.reflink,
        archive: raw.archive,
        update: raw.update,
        ..Default::default()
    };
    for (key, value) in flatten_sets(doc.get("set")) {
        s.sets.push(Scoped::all(format!("{key}={value}")));
    }
    s.overlays.extend(raw.overlay.iter().map(|f| Scoped::all(dir.join(f).display().to_string())));
    let profiles = doc.get("profile").and_then(Item::as_table_like);
    for (name, p) in &raw.profile {
        if !known.contains(&name.as_str()) {
            let offset = profiles.and_then(|t| t.key(name)).and_then(|k| k.span()).map(|s| s.start);
            let near = nearest(name, known);
            return Err(at(path, text, offset, &format!("unknown profile `{name}`{near}")));
        }
        let item = profiles.and_then(|t| t.get(name)).and_then(|t| t.as_table_like()).and_then(|t| t.get("set"));
        for (key, value) in flatten_sets(item) {
            s.sets.push(Scoped::of(name, format!("{name}:{key}={value}")));
        }
        s.overlays.extend(p.overlay.iter().map(|f| Scoped::of(name, format!("{name}={}", dir.join(f).display()))));
    }
    resolve_update_paths(&mut s.update, &dir);
    Ok(s)
}

fn resolve_update_paths(u: &mut UpdateSettings, dir: &Path) {
    for p in [&mut u.tool, &mut u.zip, &mut u.credentials_file] {
        if let Some(v) = p.take() {
            *p = Some(dir.join(v));
        }
    }
}

/// `key=value` pairs of a `set` table, nested tables read as dotted keys.
fn flatten_sets(item: Option<&Item>) -> Vec<(String, String)> {
    fn walk(prefix: &str, item: &Item, out: &mut Vec<(String, String)>) {
        if let Some(t) = item.as_table_like() {
            for (k, v) in t.iter() {
                let key = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
                walk(&key, v, out);
            }
        } else if let Some(v) = item.as_value() {
            out.push((prefix.to_string(), v.clone().decorated("", "").to_string()));
        }
    }
    let mut out = Vec::new();
    if let Some(i) = item {
        walk("", i, &mut out);
    }
    out
}

/// The password is never taken from a file the tool reads as settings.
fn refuse_password(doc: &ImDocument<&str>, text: &str, path: &Path) -> Result<()> {
    let tables = [Some(doc.as_table() as &dyn toml_edit::TableLike), doc.get("update").and_then(Item::as_table_like)];
    for t in tables.into_iter().flatten() {
        if let Some(k) = t.key("password") {
            return Err(Refusal::new(
                format!("{}: `password` does not belong in a settings file", place(path, text, k.span().map(|s| s.start))),
                "remove it; give the WSO2 password in WSO2_PASSWORD, in --credentials-file FILE (mode 600), or at the prompt",
            )
            .into());
        }
    }
    Ok(())
}

fn place(path: &Path, text: &str, offset: Option<usize>) -> String {
    match offset {
        Some(o) => {
            let (line, col) = crate::model::text::line_col(text, o);
            format!("{}:{line}:{col}", path.display())
        }
        None => path.display().to_string(),
    }
}

fn at(path: &Path, text: &str, offset: Option<usize>, msg: &str) -> anyhow::Error {
    let msg = msg.lines().next().unwrap_or("invalid settings").trim_end_matches('.');
    Refusal::new(format!("{}: {msg}", place(path, text, offset)), HINT).into()
}

/// serde's "unknown field `x`, expected one of ..." with the nearest key.
fn with_nearest(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg);
    let Some(rest) = first.strip_prefix("unknown field `") else {
        return first.to_string();
    };
    let name = rest.split('`').next().unwrap_or("");
    let keys = if first.contains("`enabled`") { UPDATE_KEYS } else { TOP_KEYS };
    let near = nearest(name, keys);
    format!("unknown key `{name}`{near}")
}

/// ", did you mean `x`?" when one of `known` is close to `name`.
fn nearest(name: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(", did you mean `{k}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["control-plane", "gateway-worker", "traffic-manager"];

    fn err(text: &str) -> String {
        let e = parse(text, Path::new("/etc/s.toml"), KNOWN).unwrap_err();
        let r = e.downcast_ref::<Refusal>().expect("a refusal");
        format!("{} | {}", r.what, r.hint)
    }

    #[test]
    fn reads_every_key() {
        let text = r#"
profiles = ["gateway-worker"]
carry = ["super_admin"]
carry-common = true
jobs = 2
archive = "zip"
overlay = ["all.toml"]
[set]
"server.offset" = 1
[set.apim.key_manager]
service_url = "https://cp:9443/services/"
[update]
level = "4.2.0.5"
credentials-file = "creds"
timeout = 60
[profile.gateway-worker]
set = { "server.hostname" = "gw1", "a.b" = [1, 2] }
overlay = ["/abs/gw.toml"]
"#;
        let s = parse(text, Path::new("/etc/apim/s.toml"), KNOWN).unwrap();
        assert_eq!(s.profiles, Some(vec!["gateway-worker".to_string()]));
        assert!(s.carry_common);
        assert_eq!(s.jobs, Some(2));
        let args = |v: &[Scoped]| v.iter().map(|s| s.arg.clone()).collect::<Vec<_>>();
        assert_eq!(
            args(&s.sets),
            [
                "server.offset=1",
                "apim.key_manager.service_url=\"https://cp:9443/services/\"",
                "gateway-worker:server.hostname=\"gw1\"",
                "gateway-worker:a.b=[1, 2]",
            ]
        );
        assert_eq!(args(&s.overlays), ["/etc/apim/all.toml", "gateway-worker=/abs/gw.toml"]);
        let mut only = s.clone();
        only.only_for(&["traffic-manager".to_string()]);
        assert_eq!(args(&only.sets), ["server.offset=1", "apim.key_manager.service_url=\"https://cp:9443/services/\""]);
        assert_eq!(args(&only.overlays), ["/etc/apim/all.toml"]);
        assert_eq!(s.update.credentials_file, Some(PathBuf::from("/etc/apim/creds")));
        assert_eq!(s.update.timeout, Some(60));
    }

    #[test]
    fn errors_point_at_the_place() {
        let e = err("carry = []\ncary = [\"x\"]\n");
        assert!(e.starts_with("/etc/s.toml:2:1: unknown key `cary`, did you mean `carry`?"), "{e}");
        let e = err("[update]\ntimeout = \"soon\"\n");
        assert!(e.starts_with("/etc/s.toml:2:11: "), "{e}");
        let e = err("[update]\nlevle = \"4\"\n");
        assert!(e.contains("did you mean `level`?"), "{e}");
        let e = err("profiles = [\n");
        assert!(e.starts_with("/etc/s.toml:"), "{e}");
        let e = err("reflink = \"sometimes\"\n");
        assert!(e.starts_with("/etc/s.toml:1:11: reflink must be one of: auto, always, never"), "{e}");
        let e = err("[profile.gateway-workr]\n");
        assert!(
            e.starts_with("/etc/s.toml:1:10: unknown profile `gateway-workr`, did you mean `gateway-worker`?"),
            "{e}"
        );
    }

    #[test]
    fn the_password_is_refused_without_being_shown() {
        for text in ["password = \"Hunter2x\"\n", "[update]\npassword = \"Hunter2x\"\n"] {
            let e = err(text);
            assert!(e.contains("`password` does not belong") && !e.contains("Hunter2x"), "{e}");
        }
        // A deployment.toml password set through the file is a setting, not the WSO2 account's.
        let s = parse("[set]\n\"super_admin.password\" = \"x\"\n", Path::new("s.toml"), KNOWN).unwrap();
        assert_eq!(s.sets, [Scoped::all("super_admin.password=\"x\"".into())]);
    }
}
