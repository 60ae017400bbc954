//! Profile definitions: what the product's optimization does per profile, held
//! as data in `profiles/<version>/*.toml` and embedded in the binary so that the
//! tool runs from any directory. Nothing about a profile is decided in code.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::model::facts::{label, VersionFacts, FACTS_FILE};
use crate::model::pattern::NamePattern;
use crate::outcome::{refuse, Refusal};

/// One operation of the product's optimization, in the vocabulary of the
/// profile files (see docs/reference.md, "Profile file format").
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Delete each path that exists (recursively for a directory).
    Remove {
        #[serde(default)]
        what: Option<String>,
        paths: Vec<String>,
    },
    /// Rename `target` to `backup`, then copy `variant` to `target`; only when
    /// both `target` and `variant` exist. `variant` stays, unless
    /// `consume-variant` (the product moved it, up to 4.0.0).
    ReplaceTemplate {
        target: String,
        variant: String,
        backup: String,
        #[serde(rename = "consume-variant", default)]
        consume_variant: bool,
    },
    /// Move `deployment.toml` aside and copy the profile's template in its
    /// place; skipped with `--skip-config-optimization`.
    ReplaceDeploymentToml {
        template: String,
        #[serde(default = "default_toml")]
        target: String,
        #[serde(default = "default_toml_backup")]
        backup: String,
    },
    /// Remove every sub-directory of `dir`, and every other entry except the
    /// files named in `keep-files`.
    ClearDir {
        #[serde(default)]
        what: Option<String>,
        dir: String,
        #[serde(rename = "keep-files", default)]
        keep_files: Vec<String>,
    },
    /// Remove every entry of `dir` whose name matches none of `keep` (shell
    /// patterns as `find -name` reads them), with its exploded directory.
    PruneWebapps { dir: String, keep: Vec<String> },
    /// Remove the entries of `dir` whose names match `names`, with their
    /// exploded directories.
    RemoveWebapps { dir: String, names: Vec<String> },
    /// Remove every directory directly inside `dir` whose name matches none
    /// of `keep`; files and links stay (the jaggery apps, up to 4.1.0).
    PruneDirs {
        #[serde(default)]
        what: Option<String>,
        dir: String,
        keep: Vec<String>,
    },
}

fn default_toml() -> String {
    "repository/conf/deployment.toml".into()
}
fn default_toml_backup() -> String {
    "repository/conf/deployment.toml.backup".into()
}

impl Step {
    /// Every path the step names, for validation.
    fn paths(&self) -> Vec<&str> {
        match self {
            Step::Remove { paths, .. } => paths.iter().map(String::as_str).collect(),
            Step::ReplaceTemplate { target, variant, backup, .. } => vec![target, variant, backup],
            Step::ReplaceDeploymentToml { template, target, backup } => vec![template, target, backup],
            Step::ClearDir { dir, .. } => vec![dir],
            Step::PruneWebapps { dir, .. } | Step::RemoveWebapps { dir, .. } | Step::PruneDirs { dir, .. } => vec![dir],
        }
    }

    /// A short name for reports.
    pub fn label(&self) -> String {
        match self {
            Step::Remove { what: Some(w), .. } => format!("remove {w}"),
            Step::Remove { .. } => "remove".into(),
            Step::ReplaceTemplate { target, .. } => {
                format!("replace-template {}", file_name(target))
            }
            Step::ReplaceDeploymentToml { .. } => "replace-deployment-toml".into(),
            Step::ClearDir { what: Some(w), .. } => format!("remove {w}"),
            Step::ClearDir { dir, .. } => format!("clear-dir {dir}"),
            Step::PruneWebapps { .. } => "prune-webapps".into(),
            Step::RemoveWebapps { .. } => "remove-webapps".into(),
            Step::PruneDirs { what: Some(w), .. } => format!("prune {w}"),
            Step::PruneDirs { dir, .. } => format!("prune-dirs {dir}"),
        }
    }
}

fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// A profile of one product version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub product: String,
    pub version: String,
    pub summary: String,
    /// Whether `split` makes this profile when `--profiles` is not given.
    #[serde(default = "yes")]
    pub default: bool,
    /// Packs whose presence in a run makes this profile one `split` makes
    /// without `--profiles` although it is not a default on its own (the ACP
    /// pack's key-manager beside an all-in-one pack).
    #[serde(rename = "default-with", default)]
    pub default_with: Vec<String>,
    /// Packs whose presence in a run makes this default profile one `split`
    /// makes only by name (the ACP control plane beside an all-in-one pack,
    /// which is the control plane of that pattern).
    #[serde(rename = "not-default-with", default)]
    pub not_default_with: Vec<String>,
    /// What the update says about this profile, when not as its version's
    /// facts say (`update-advice` there).
    #[serde(rename = "update-advice", default)]
    pub update_advice: Option<String>,
    /// How a copy of this profile is started, when not as its version's
    /// facts say (`start` there).
    #[serde(default)]
    pub start: Option<String>,
    /// No steps: the pack as shipped (the component packs of 4.5.0+).
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
    /// The definition's text, for the copy's record: a change of definition
    /// makes earlier copies stale.
    #[serde(skip)]
    pub source_text: String,
    /// Where the definition came from (embedded, or a file of `--profile-dir`).
    #[serde(skip)]
    pub origin: String,
    /// The facts of the profile's product version (`_version.toml` beside it).
    #[serde(skip)]
    pub facts: Arc<VersionFacts>,
}

impl Profile {
    /// The same profile with no steps: the pack as shipped.
    /// The profile's deployment template and the file it replaces, when it
    /// replaces deployment.toml.
    pub fn deployment_toml(&self) -> Option<(PathBuf, PathBuf)> {
        self.steps.iter().find_map(|s| match s {
            Step::ReplaceDeploymentToml { template, target, .. } => {
                Some((check_relative(template).ok()?, check_relative(target).ok()?))
            }
            _ => None,
        })
    }

    /// The command that starts a copy of this profile, from its home.
    pub fn start_command(&self) -> Option<String> {
        let t = self.start.clone().or_else(|| self.facts.start.clone())?;
        Some(t.replace("{profile}", &self.name))
    }

    /// Whether `split` makes this profile without `--profiles` in a run of
    /// the packs `run` (product ids).
    pub fn default_in(&self, run: &[&str]) -> bool {
        let with = |list: &[String]| list.iter().any(|p| run.contains(&p.as_str()));
        (self.default && !with(&self.not_default_with)) || with(&self.default_with)
    }

    pub fn as_shipped(&self) -> Profile {
        Profile { steps: vec![], ..self.clone() }
    }
}

fn yes() -> bool {
    true
}

/// The definitions compiled into the binary: every `profiles/<dir>/*.toml`
/// (build.rs lists them).
const EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_profiles.rs"));

/// The version facts compiled into the binary (`profiles/<dir>/_version.toml`).
const EMBEDDED_FACTS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_facts.rs"));

/// The set of profile definitions in use: the embedded ones, or those of a
/// directory given with `--profile-dir` (same layout: `<version>/*.toml`).
#[derive(Debug, Clone)]
pub struct Catalog {
    /// In release order; within a pack, the defaults first.
    pub profiles: Vec<Profile>,
    /// The facts of every version known, with or without profiles (a refused
    /// version has only facts).
    pub facts: Vec<Arc<VersionFacts>>,
}

/// The definitions in use: those of `--profile-dir`, else the embedded ones.
pub fn load_catalog(profile_dir: Option<&Path>) -> Result<Catalog> {
    match profile_dir {
        Some(d) => Catalog::from_dir(d),
        None => Catalog::embedded(),
    }
}

/// The product versions the built-in profiles cover, from the names of the
/// directories that hold profiles (`4.2.0`, `wso2am-acp-4.5.0`): cheap enough for every
/// start of the program (`--version`), parsing nothing.
pub fn embedded_versions() -> Vec<String> {
    let mut v: Vec<String> = EMBEDDED
        .iter()
        .filter_map(|(name, _)| name.split('/').next()?.rsplit('-').next().map(str::to_string))
        .collect();
    v.sort_by_key(|s| s.split('.').map(|n| n.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>());
    v.dedup();
    v
}

fn embedded_facts() -> Result<Vec<VersionFacts>> {
    EMBEDDED_FACTS
        .iter()
        .map(|(name, text)| VersionFacts::parse(text, &format!("<embedded>/profiles/{name}")))
        .collect()
}

impl Catalog {
    pub fn embedded() -> Result<Catalog> {
        let mut profiles = Vec::new();
        for (name, text) in EMBEDDED {
            profiles.push(parse(text, &format!("<embedded>/profiles/{name}"))?);
        }
        Catalog::with_facts(profiles, embedded_facts()?)
    }

    /// Gives each profile the facts of its version: from `facts`, else the
    /// embedded ones, else none (no typo warnings, an empty carry-common set).
    fn with_facts(mut profiles: Vec<Profile>, mut facts: Vec<VersionFacts>) -> Result<Catalog> {
        for f in embedded_facts()? {
            if !facts.iter().any(|have| have.version == f.version && have.product == f.product) {
                facts.push(f);
            }
        }
        let facts: Vec<Arc<VersionFacts>> = facts.into_iter().map(Arc::new).collect();
        for p in &mut profiles {
            if let Some(f) = facts.iter().find(|f| f.version == p.version && f.product == p.product) {
                p.facts = Arc::clone(f);
            } else {
                p.facts = Arc::new(VersionFacts {
                    product: p.product.clone(),
                    version: p.version.clone(),
                    ..Default::default()
                });
            }
        }
        profiles.sort_by_key(|p| (version_key(&p.version), p.product.clone(), !p.default));
        Ok(Catalog { profiles, facts })
    }

    /// The facts of one pack's version (empty when this catalog has none).
    pub fn facts(&self, product: &str, version: &str) -> VersionFacts {
        self.version_facts(product, version).cloned().unwrap_or_default()
    }

    pub fn version_facts(&self, product: &str, version: &str) -> Option<&VersionFacts> {
        self.facts.iter().find(|f| f.product == product && f.version == version).map(|f| f.as_ref())
    }

    /// Reads `<dir>/<version>/*.toml`, in file-name order within a version.
    pub fn from_dir(dir: &Path) -> Result<Catalog> {
        let (mut files, mut facts_files) = (Vec::new(), Vec::new());
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                return refuse(
                    format!("--profile-dir {}: {}", dir.display(), unreadable_dir(&e)),
                    "give a directory holding <version>/<profile>.toml files, as profiles/ in the source does",
                )
            }
        };
        for version in rd {
            let version = version.with_context(|| format!("reading profile directory {}", dir.display()))?.path();
            if !version.is_dir() {
                continue;
            }
            let listing = std::fs::read_dir(&version).with_context(|| format!("reading {}", version.display()))?;
            for f in listing {
                let f = f.with_context(|| format!("reading {}", version.display()))?.path();
                if f.file_name().is_some_and(|n| n == FACTS_FILE) {
                    facts_files.push(f);
                } else if f.extension().is_some_and(|e| e == "toml") {
                    files.push(f);
                }
            }
        }
        files.sort();
        if files.is_empty() {
            return refuse(
                format!("no profile definitions in {}", dir.display()),
                "the directory must hold <version>/<profile>.toml files, as profiles/ in the source does",
            );
        }
        let mut profiles = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            profiles.push(parse(&text, &f.display().to_string())?);
        }
        let mut facts = Vec::new();
        for f in facts_files {
            let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            facts.push(VersionFacts::parse(&text, &f.display().to_string())?);
        }
        Catalog::with_facts(profiles, facts)
    }

    pub fn versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self.profiles.iter().map(|p| p.version.clone()).collect();
        v.dedup();
        v
    }

    /// The profiles of every pack of one version.
    pub fn for_version<'a>(&'a self, version: &'a str) -> impl Iterator<Item = &'a Profile> + 'a {
        self.profiles.iter().filter(move |p| p.version == version)
    }

    /// The profiles of one pack (`wso2am`, `wso2am-acp`, ...) of one version.
    pub fn for_pack<'a>(&'a self, product: &'a str, version: &'a str) -> impl Iterator<Item = &'a Profile> + 'a {
        self.profiles.iter().filter(move |p| p.version == version && p.product == product)
    }

    /// Resolves the names a user asked for (or the defaults) for one pack.
    /// An unknown name is refused with the nearest known one.
    pub fn select(&self, product: &str, version: &str, names: Option<&[String]>) -> Result<Vec<Profile>> {
        let known: Vec<&Profile> = self.for_pack(product, version).collect();
        if known.is_empty() {
            return refuse(
                format!("this build has no profiles for {} {version}", label(product)),
                format!("known versions: {}", self.versions().join(", ")),
            );
        }
        let Some(names) = names else {
            return Ok(known.into_iter().filter(|p| p.default).cloned().collect());
        };
        let mut out: Vec<Profile> = Vec::new();
        for n in names {
            let n = n.trim();
            if n.is_empty() {
                return refuse(
                    "--profiles has an empty name",
                    "give a comma-separated list, e.g. --profiles control-plane,gateway-worker",
                );
            }
            match known.iter().find(|p| p.name == n) {
                Some(p) if out.iter().any(|o| o.name == p.name) => {
                    return refuse(format!("profile `{n}` is named twice"), "name each profile once");
                }
                Some(p) => out.push((*p).clone()),
                None => {
                    let all: Vec<&str> = known.iter().map(|p| p.name.as_str()).collect();
                    let guess = nearest(n, &all).map(|g| format!("did you mean `{g}`? ")).unwrap_or_default();
                    return refuse(
                        format!("unknown profile `{n}` for {} {version}", label(product)),
                        format!("{guess}Known profiles: {}", all.join(", ")),
                    );
                }
            }
        }
        Ok(out)
    }
}

/// Parses and validates one definition. Invalid TOML is reported with file,
/// line and column; a path that would leave the home is refused.
pub fn parse(text: &str, origin: &str) -> Result<Profile> {
    let mut p: Profile = match toml_edit::de::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            let at = crate::model::text::at(text, e.span());
            let msg = e.message().lines().next().unwrap_or("invalid").to_string();
            return Err(Refusal::new(
                format!("profile definition {origin}{at} is not valid: {msg}"),
                "fix the file (docs/reference.md, \"Profile file format\", lists the fields), or drop --profile-dir",
            )
            .into());
        }
    };
    for step in &p.steps {
        for path in step.paths() {
            check_relative(path).map_err(|why| {
                Refusal::new(
                    format!("profile definition {origin}: path `{path}` {why}"),
                    "paths in a profile definition are relative to the home and stay inside it",
                )
            })?;
        }
        let patterns: &[String] = match step {
            Step::PruneWebapps { keep, .. } | Step::PruneDirs { keep, .. } => keep,
            Step::RemoveWebapps { names, .. } => names,
            Step::ClearDir { keep_files, .. } => keep_files,
            _ => &[],
        };
        for pat in patterns {
            if pat.contains('/') || pat == ".." || pat == "." {
                return refuse(
                    format!("profile definition {origin}: pattern `{pat}` is not a plain entry name"),
                    "keep/names patterns match names directly inside the directory",
                );
            }
            NamePattern::new(pat).map_err(|e| {
                Refusal::new(
                    format!("profile definition {origin}: pattern `{pat}`: {e}"),
                    "use shell patterns as find -name reads them",
                )
            })?;
        }
    }
    if p.name.is_empty() || p.name.contains('/') || p.name.starts_with('.') {
        return refuse(
            format!("profile definition {origin}: name `{}` is not usable as a directory name", p.name),
            "use a plain name such as gateway-worker",
        );
    }
    p.source_text = text.to_string();
    p.origin = origin.to_string();
    Ok(p)
}

/// Release order: `4.10.0` after `4.9.0`.
pub fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|n| n.parse().unwrap_or(0)).collect()
}

/// Relative, no `..`, not empty: a profile may only touch its own home.
pub fn check_relative(path: &str) -> std::result::Result<PathBuf, &'static str> {
    if path.is_empty() {
        return Err("is empty");
    }
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("leaves the home (`..`)"),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("names the home itself");
    }
    Ok(out)
}

/// Why a directory could not be listed, in words.
fn unreadable_dir(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such directory".into(),
        std::io::ErrorKind::NotADirectory => "not a directory".into(),
        std::io::ErrorKind::PermissionDenied => "cannot be read (permission denied)".into(),
        _ => format!("cannot be read ({e})"),
    }
}

/// The known name closest to a mistyped one, if any is close: a name that
/// holds the typed one whole (`api-key-manager` in
/// `api-key-manager-deprecated`) first, else the fewest edits, at most a
/// third of the typed name's length (two at least); ties go to the name
/// nearer in length.
fn nearest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
    let edits = |k: &str| if k.contains(typed) || typed.contains(k) { 0 } else { strsim::levenshtein(typed, k) };
    let (d, k) = known.iter().map(|k| ((edits(k), k.len().abs_diff(typed.len())), *k)).min()?;
    (d.0 <= (typed.chars().count() / 3).max(2)).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_profiles_parse() {
        let c = Catalog::embedded().unwrap();
        let names: Vec<_> = c.for_pack("wso2am", "4.2.0").map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["control-plane", "gateway-worker", "traffic-manager", "api-key-manager-deprecated"]);
        let defaults: Vec<_> = c.select("wso2am", "4.2.0", None).unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(defaults, ["control-plane", "gateway-worker", "traffic-manager"]);
    }

    #[test]
    fn unknown_profile_suggests_nearest() {
        let c = Catalog::embedded().unwrap();
        let err = c.select("wso2am", "4.2.0", Some(&["gateway-workr".to_string()])).unwrap_err();
        let r = err.downcast_ref::<Refusal>().unwrap();
        assert!(r.what.contains("gateway-workr"));
        assert!(r.hint.contains("`gateway-worker`"), "{}", r.hint);
    }

    #[test]
    fn rejects_escaping_paths_and_bad_toml() {
        let bad = "name='x'\nproduct='wso2am'\nversion='4.2.0'\nsummary='s'\n[[step]]\nop='remove'\npaths=['../etc']\n";
        let e = parse(bad, "t.toml").unwrap_err().downcast::<Refusal>().unwrap();
        assert!(e.what.contains("leaves the home"), "{}", e.what);
        let abs = bad.replace("../etc", "/etc");
        assert!(parse(&abs, "t.toml").unwrap_err().to_string().contains("absolute"));
        let e = parse("name = \n", "t.toml").unwrap_err().downcast::<Refusal>().unwrap();
        assert!(e.what.contains("t.toml:1:"), "{}", e.what);
    }
}
