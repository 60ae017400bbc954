//! The plan: what one profile's optimization does to one tree, computed on the
//! model of `tree.rs` without writing anything. `--dry-run` prints it, `split`
//! copies its final tree, `optimize` replays its actions in place, and `verify`
//! asks whether it would do anything at all. Every profile decision lives here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::model::config::{self, ConfigEdits};
use crate::model::fingerprint::Difference;
use crate::model::pattern::NamePattern;
use crate::model::profile::{check_relative, Profile, Step};
use crate::model::tree::{self, Entry, Kind, Origin, Tree};
use crate::outcome::Refusal;

/// Inputs that change what a profile's optimization produces.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The product script's `--skipConfigOptimization`.
    pub skip_config_optimization: bool,
    /// Settings carried into, set in or overlaid on the profile's deployment.toml.
    pub config: ConfigEdits,
    /// Hash of the deployment.toml this tool last wrote into the tree (from the
    /// copy's record). A file with that hash may be rewritten; any other content
    /// is a person's edit and is kept.
    pub written_toml_sha256: Option<String>,
    /// Whether `config` comes from this run's command line. When it does not
    /// (`verify`, `update`), a deployment.toml the tool wrote earlier is right
    /// as it is, whatever settings produced it.
    pub config_from_cli: bool,
}

impl Options {
    /// The options of a run that shapes copies from its command line (`split`,
    /// `optimize`).
    pub fn from_command_line(skip_config_optimization: bool, config: ConfigEdits) -> Options {
        Options { skip_config_optimization, config, written_toml_sha256: None, config_from_cli: true }
    }

    /// The options of a run on an existing copy without settings of its own
    /// (`verify`, `update`, re-optimization): the copy's record says what it
    /// was made with and which deployment.toml the tool wrote.
    pub fn of_copy(skip_config_optimization: bool, written_toml_sha256: Option<String>) -> Options {
        Options {
            skip_config_optimization,
            config: ConfigEdits::default(),
            written_toml_sha256,
            config_from_cli: false,
        }
    }

    /// These options for re-optimizing a copy after its update: the
    /// deployment.toml the tool wrote (hash `written`) is right as it is.
    pub fn after_update(&self, written: Option<String>) -> Options {
        Options { written_toml_sha256: written, config_from_cli: false, ..self.clone() }
    }
}

/// One thing the plan does, in the order the product's script does it.
#[derive(Debug, Clone)]
pub enum Action {
    /// An entry (with everything below it) removed.
    Remove { path: PathBuf, step: String, entries: usize, bytes: u64, dir: bool },
    /// An entry renamed to keep the original (`mv target backup`).
    Backup { from: PathBuf, to: PathBuf },
    /// A file's content replaced; `before` and `after` say where each side's
    /// bytes are, for the diff.
    Rewrite { path: PathBuf, step: String, before: Origin, after: Origin },
    /// Nothing done, for a reason the operator should hear.
    Note { message: String },
    /// The profile cannot be applied to this tree as it is, and guessing
    /// would be wrong (a consumed template variant): `verify` reports it as
    /// drift, the other commands as a note.
    Blocked { path: PathBuf, step: String, message: String },
    /// The step cannot do what the profile asks on this tree (its directory
    /// is a link, its template is missing): `split` and `optimize` refuse,
    /// `verify` reports it as a difference.
    Unmet { step: String, message: String },
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub profile: String,
    /// The tree the plan was computed on (the source home, or a copy).
    pub root: PathBuf,
    /// The tree after the optimization; origins point into `root`.
    pub tree: Tree,
    pub actions: Vec<Action>,
    /// Hash of the deployment.toml the plan writes, recorded for later runs.
    pub written_toml_sha256: Option<String>,
}

impl Plan {
    /// The plan that changes nothing: a tree copied as it is.
    pub fn unchanged(tree: Tree) -> Plan {
        Plan { profile: String::new(), root: tree.root.clone(), tree, actions: Vec::new(), written_toml_sha256: None }
    }
    /// Whether carrying out the plan changes anything (what `verify` asks).
    pub fn changes_anything(&self) -> bool {
        self.actions.iter().any(|a| !matches!(a, Action::Note { .. } | Action::Blocked { .. } | Action::Unmet { .. }))
    }
    /// Each way the tree differs from the profile (what `verify` reports and
    /// re-optimization fixes).
    pub fn drift(&self) -> Vec<Difference> {
        let profile = |path: Option<&PathBuf>, message| Difference::Profile {
            path: path.map(|p| p.to_string_lossy().into_owned()),
            message,
        };
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Remove { path, step, dir, .. } => Some(profile(
                    Some(path),
                    format!(
                        "{}{} is present, but the profile removes it ({step})",
                        path.display(),
                        if *dir { "/" } else { "" }
                    ),
                )),
                Action::Rewrite { path, step, .. } => {
                    Some(profile(Some(path), format!("{} is not the profile's ({step})", path.display())))
                }
                Action::Blocked { path, message, step } => Some(profile(Some(path), format!("{message} ({step})"))),
                Action::Unmet { step, message } => Some(profile(None, format!("{message} ({step})"))),
                Action::Backup { .. } | Action::Note { .. } => None,
            })
            .collect()
    }

    /// [`Plan::drift`] in words, one line each.
    pub fn drift_lines(&self) -> Vec<String> {
        self.drift().iter().map(ToString::to_string).collect()
    }

    /// The ways the tree differs from the profile that carrying the plan
    /// out cannot fix (a consumed variant): `optimize` and `verify` both call
    /// such a tree drifted, in the same words ([`Plan::drift`]'s).
    pub fn blocked(&self) -> Vec<Difference> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Blocked { path, message, step } => Some(Difference::Profile {
                    path: Some(path.to_string_lossy().into_owned()),
                    message: format!("{message} ({step})"),
                }),
                _ => None,
            })
            .collect()
    }

    pub fn notes(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Note { message, .. } | Action::Blocked { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Refuses a plan with a step that cannot do what its profile asks.
pub fn check_met(plan: &Plan) -> Result<()> {
    for a in &plan.actions {
        if let Action::Unmet { step, message } = a {
            return Err(Refusal::new(
                format!("profile {}, step {step}: {message}", plan.profile),
                "give a home as the product pack lays it out (real directories, every deployment template), or fix the profile definition",
            )
            .into());
        }
    }
    Ok(())
}

/// Computes the plan of `profile` on `tree` (a scan of `tree.root`).
/// Reads file contents where a decision needs them; writes nothing.
pub fn compute(profile: &Profile, tree: &Tree, opts: &Options) -> Result<Plan> {
    let mut p = Planner {
        root: tree.root.clone(),
        t: tree.clone(),
        actions: Vec::new(),
        written_toml: None,
        settings_placed: false,
    };
    for step in &profile.steps {
        p.step(profile, step, opts)
            .with_context(|| format!("planning `{}` of profile {}", step.label(), profile.name))?;
    }
    if !p.settings_placed && !opts.config.is_empty() {
        // No profile template takes the settings (a pack as shipped, or
        // --skip-config-optimization): they go into the copy's own file.
        p.edit_own_toml(profile, opts).with_context(|| format!("applying the settings of profile {}", profile.name))?;
    }
    p.check_core();
    Ok(Plan {
        profile: profile.name.clone(),
        root: tree.root.clone(),
        tree: p.t,
        actions: p.actions,
        written_toml_sha256: p.written_toml,
    })
}

struct Planner {
    root: PathBuf,
    t: Tree,
    actions: Vec<Action>,
    written_toml: Option<String>,
    /// A replace-deployment-toml step applied the operator's settings.
    settings_placed: bool,
}

/// The deployment.toml a profile without a template of its own is edited in,
/// and where the home's own file is kept then.
pub const OWN_TOML: &str = "repository/conf/deployment.toml";
pub const OWN_TOML_BACKUP: &str = "repository/conf/deployment.toml.backup";
/// The step name the report gives that edit.
pub const SETTINGS_STEP: &str = "apply settings";

fn rel(s: &str) -> PathBuf {
    check_relative(s).expect("profile paths are validated when parsed")
}

/// The directories without which a tree is no product home (every pack,
/// all-in-one or component, has them, and no profile removes them): a copy
/// that lost one (an update that deleted `repository/components`) does not
/// match any profile, however little else differs.
pub const CORE_DIRS: &[&str] = &["bin", "repository/components", "repository/components/plugins", "repository/conf"];

impl Planner {
    /// An unmet step for each core directory missing (or not a real
    /// directory) in the tree the plan leaves.
    fn check_core(&mut self) {
        for d in CORE_DIRS {
            if !self.t.get(Path::new(d)).is_some_and(|e| e.is_dir()) {
                self.actions.push(Action::Unmet {
                    step: "product core".into(),
                    message: format!("{d}/ is missing or not a directory: it is part of every product home"),
                });
            }
        }
    }

    fn step(&mut self, profile: &Profile, step: &Step, opts: &Options) -> Result<()> {
        let label = step.label();
        match step {
            Step::Remove { paths, .. } => {
                for path in paths {
                    self.remove(&rel(path), &label);
                }
            }
            Step::ReplaceTemplate { target, variant, backup, consume_variant } => {
                self.replace_template(rel(target), rel(variant), rel(backup), *consume_variant, label)?;
            }
            Step::ReplaceDeploymentToml { template, target, backup } => {
                if opts.skip_config_optimization {
                    let message = if opts.config.is_empty() {
                        "deployment.toml kept as it is (--skip-config-optimization)".to_string()
                    } else {
                        "the profile's deployment template is not used (--skip-config-optimization): the settings are applied to the home's own deployment.toml".to_string()
                    };
                    self.actions.push(Action::Note { message });
                    return Ok(());
                }
                self.settings_placed = true;
                self.replace_deployment_toml(profile, [rel(template), rel(target), rel(backup)], opts, label)?;
            }
            Step::ClearDir { dir, .. } | Step::PruneWebapps { dir, .. } | Step::RemoveWebapps { dir, .. }
                if !self.real_dir(&rel(dir), &label) => {}
            Step::ClearDir { dir, keep_files, .. } => {
                let dir = rel(dir);
                let keep = patterns(keep_files);
                let doomed: Vec<PathBuf> = self
                    .t
                    .children(&dir)
                    .filter(|(p, e)| e.is_dir() || !keep.iter().any(|k| k.matches(p.file_name().unwrap_or_default())))
                    .map(|(p, _)| p.to_path_buf())
                    .collect();
                for d in doomed {
                    self.remove(&d, &label);
                }
            }
            Step::PruneWebapps { dir, keep } => {
                let keep = patterns(keep);
                self.remove_webapps(&rel(dir), |name| !keep.iter().any(|k| k.matches(name)), &label);
            }
            Step::RemoveWebapps { dir, names } => {
                let names = patterns(names);
                self.remove_webapps(&rel(dir), |name| names.iter().any(|k| k.matches(name)), &label);
            }
            Step::PruneDirs { dir, keep, .. } => {
                let dir = rel(dir);
                let keep = patterns(keep);
                // Real directories only, as `find -type d`: files and links stay.
                let doomed: Vec<PathBuf> = self
                    .t
                    .children(&dir)
                    .filter(|(p, e)| e.is_dir() && !keep.iter().any(|k| k.matches(p.file_name().unwrap_or_default())))
                    .map(|(p, _)| p.to_path_buf())
                    .collect();
                for d in doomed {
                    self.remove(&d, &label);
                }
            }
        }
        Ok(())
    }

    /// `mv target backup; cp variant target` (or `mv variant target` when the
    /// version consumes its variants), completing or keeping what an earlier
    /// run or an update left.
    fn replace_template(
        &mut self,
        target: PathBuf,
        variant: PathBuf,
        backup: PathBuf,
        consume: bool,
        label: String,
    ) -> Result<()> {
        if !self.is_file(&target) {
            return Ok(());
        }
        if !self.is_file(&variant) {
            self.links_stay_inside(&[&target])?;
            return self.check_consumed(&target, &variant, &backup, consume, label);
        }
        self.links_stay_inside(&[&target, &variant])?;
        let placed = |v: Entry| if consume { v } else { fresh_copy(v) };
        if self.t.contains(&backup) {
            let current = self.read(&target)?;
            if current == self.read(&variant)? {
                if consume {
                    self.remove(&variant, &label); // an update brought the consumed variant back
                }
                return Ok(()); // done before, and still right
            }
            if current == self.read(&backup)? {
                // The backup already holds these bytes (an interrupted
                // run, or an update that restored the default): replace.
                let before = self.t.get(&target).expect("checked").origin.clone();
                let after = placed(self.t.get(&variant).cloned().expect("checked"));
                self.actions.push(Action::Rewrite {
                    path: target.clone(),
                    step: label.clone(),
                    before,
                    after: after.origin.clone(),
                });
                self.t.insert(target, after);
                if consume {
                    self.remove(&variant, &label);
                }
                return Ok(());
            }
            // The update changed the variant, or brought the default back.
            // The first backup is the pristine one: keep it, and keep this
            // version too under the next free name.
            let extra = self.free_name(&backup);
            self.backup(&target, &extra);
        } else {
            self.backup(&target, &backup);
        }
        let v = self.t.get(&variant).cloned().expect("checked");
        self.put(&target, placed(v), &label);
        if consume {
            self.remove(&variant, &label);
        }
        Ok(())
    }

    /// A consumed variant is gone after the first run. When the default
    /// template is back in its place (an update restored it), the profile
    /// cannot be applied again from this tree: say so rather than guess.
    fn check_consumed(
        &mut self,
        target: &Path,
        variant: &Path,
        backup: &Path,
        consume: bool,
        label: String,
    ) -> Result<()> {
        if !consume || !self.t.contains(backup) || self.read(target)? != self.read(backup)? {
            return Ok(());
        }
        self.actions.push(Action::Blocked {
            path: target.to_path_buf(),
            step: label,
            message: format!(
                "{} holds the default template again and {} is gone: this version's optimization moved it into place, so it cannot be applied again; restore {} from the pack, or update first and optimize a fresh copy",
                target.display(),
                variant.display(),
                variant.display()
            ),
        });
        Ok(())
    }

    /// The profile's deployment.toml in place of the home's, which is kept as
    /// the backup; a person's later edit is kept.
    fn replace_deployment_toml(
        &mut self,
        profile: &Profile,
        [template, target, backup]: [PathBuf; 3],
        opts: &Options,
        label: String,
    ) -> Result<()> {
        for (p, what) in [(&template, "the profile's deployment template"), (&target, "the file it replaces")] {
            if !self.is_file(p) {
                let message = format!("{what} {} is not in the home (or is not a file)", p.display());
                self.actions.push(Action::Unmet { step: label, message });
                return Ok(());
            }
        }
        self.links_stay_inside(&[&target, &template])?;
        let tpl = self.t.get(&template).cloned().expect("checked");
        let desired = match self.desired_toml(profile, &template, &target, &backup, opts)? {
            Some((bytes, warnings)) => {
                for w in warnings {
                    self.actions.push(Action::Note { message: w });
                }
                Some(bytes)
            }
            None => None,
        };
        let desired_bytes = match &desired {
            Some(b) => b.as_ref().clone(),
            None => self.read(&template)?,
        };
        self.written_toml = Some(tree::sha256_hex(&desired_bytes));
        let new_entry = match desired {
            Some(bytes) => Entry {
                kind: Kind::File { size: bytes.len() as u64 },
                meta: tpl.meta,
                origin: Origin::Generated(bytes),
            },
            None => fresh_copy(tpl),
        };
        if self.t.contains(&backup) {
            let current = self.read(&target)?;
            if current == desired_bytes {
                return Ok(());
            }
            let current_sha = tree::sha256_hex(&current);
            let ours = opts.written_toml_sha256.as_deref() == Some(&current_sha);
            if ours && !opts.config_from_cli {
                self.written_toml = Some(current_sha);
                return Ok(());
            }
            if current == self.read(&backup)? {
                // Moved aside and restored (or an interrupted run): the
                // backup holds these bytes, so nothing is lost by writing.
                let before = self.t.get(&target).expect("checked").origin.clone();
                self.t.insert(target.clone(), new_entry.clone());
                self.actions.push(Action::Rewrite { path: target, step: label, before, after: new_entry.origin });
                return Ok(());
            }
            if !ours {
                self.actions.push(Action::Note {
                    message: format!(
                        "{} was edited since it was optimized (a backup exists and it differs from the profile's): kept as it is",
                        target.display()
                    ),
                });
                return Ok(());
            }
            // Ours, written with other options: rewrite, the backup stays.
            let before = self.t.get(&target).expect("checked").origin.clone();
            self.t.insert(target.clone(), new_entry.clone());
            self.actions.push(Action::Rewrite { path: target, step: label, before, after: new_entry.origin });
            return Ok(());
        }
        if template == target && self.read(&target)? == desired_bytes {
            return Ok(()); // the settings change nothing in the home's own file
        }
        self.backup(&target, &backup);
        self.put(&target, new_entry, &label);
        Ok(())
    }

    /// The deployment.toml the profile wants: the template itself (None), or
    /// the template with the operator's settings applied.
    fn desired_toml(
        &self,
        profile: &Profile,
        template: &Path,
        target: &Path,
        backup: &Path,
        opts: &Options,
    ) -> Result<Option<EditedToml>> {
        let tpl_bytes = self.read(template)?;
        // A template that is not TOML would give a node that cannot start.
        let tpl_text = String::from_utf8(tpl_bytes).map_err(|_| {
            Refusal::new(
                format!("{} is not UTF-8 text", self.root.join(template).display()),
                "restore the profile's deployment template from the product pack",
            )
        })?;
        config::check_toml(&tpl_text, &self.root.join(template))?;
        if opts.config.is_empty() {
            return Ok(None);
        }
        // The operator's own settings: the pristine file if it was moved aside.
        let own = if self.t.contains(backup) { backup } else { target };
        let own_text = String::from_utf8_lossy(&self.read(own)?).into_owned();
        let out = config::apply(&tpl_text, &own_text, &profile.name, &opts.config, &profile.facts)
            .with_context(|| format!("editing {} for {}", target.display(), profile.name))?;
        Ok(Some((Arc::new(out.text.into_bytes()), out.warnings)))
    }

    /// The operator's settings (`--carry`, `--set`, `--overlay`) applied to
    /// the tree's own `deployment.toml`: what a pack as shipped, or a profile
    /// with `--skip-config-optimization`, needs so that no setting is
    /// dropped. The home's own file is the template and is kept as the
    /// backup, as the profiles' optimization keeps it (so an update can be
    /// given the pack's file and the settings applied again after it). A tree
    /// without the file cannot take them: unmet (refused).
    fn edit_own_toml(&mut self, profile: &Profile, opts: &Options) -> Result<()> {
        let (target, backup) = (rel(OWN_TOML), rel(OWN_TOML_BACKUP));
        if !self.is_file(&target) {
            let message = format!(
                "{OWN_TOML} is not in the home (or is not a file), so the --carry/--set/--overlay settings cannot be applied to profile {}",
                profile.name
            );
            self.actions.push(Action::Unmet { step: SETTINGS_STEP.into(), message });
            return Ok(());
        }
        // The pristine file, once it was moved aside.
        let template = if self.is_file(&backup) { backup.clone() } else { target.clone() };
        self.replace_deployment_toml(profile, [template, target, backup], opts, SETTINGS_STEP.into())
    }

    /// Whether `dir` is a directory the step can work in. A link (the step
    /// would work through it) or a file is unmet; an absent directory has
    /// nothing to remove, and the report says so.
    fn real_dir(&mut self, dir: &Path, step: &str) -> bool {
        let message = match self.t.get(dir).map(|e| &e.kind) {
            Some(Kind::Dir) => return true,
            Some(Kind::Symlink { target }) => format!(
                "{} is a link (to {}), not a directory: nothing is removed through it",
                dir.display(),
                target.display()
            ),
            Some(Kind::File { .. }) => format!("{} is a file, not a directory", dir.display()),
            None => {
                let message = format!("{} is not in the home: nothing to remove there", dir.display());
                self.actions.push(Action::Note { message });
                return false;
            }
        };
        self.actions.push(Action::Unmet { step: step.to_string(), message });
        false
    }

    /// A deployment.toml or template that is a link is used only when it
    /// resolves inside the home: one to `/etc/shadow` is refused, never read.
    fn links_stay_inside(&self, paths: &[&Path]) -> Result<()> {
        for p in paths {
            if let Some(Entry {
                kind: Kind::Symlink { .. }, origin: Origin::Source(o) | Origin::SourceFresh(o), ..
            }) = self.t.get(p)
            {
                crate::safe_fs::resolve_inside(&self.root, o)?;
            }
        }
        Ok(())
    }

    fn is_file(&self, p: &Path) -> bool {
        self.t.get(p).is_some_and(|e| !e.is_dir())
    }

    fn read(&self, p: &Path) -> Result<Vec<u8>> {
        self.t.read(&self.root, p).with_context(|| format!("reading {}", self.root.join(p).display()))
    }

    fn remove(&mut self, path: &Path, step: &str) {
        let Some(e) = self.t.get(path) else { return };
        let dir = e.is_dir();
        let (entries, bytes) = self.t.remove(path);
        self.actions.push(Action::Remove { path: path.to_path_buf(), step: step.to_string(), entries, bytes, dir });
    }

    fn backup(&mut self, from: &Path, to: &Path) {
        self.t.rename_file(from, to);
        self.actions.push(Action::Backup { from: from.to_path_buf(), to: to.to_path_buf() });
    }

    /// Places new content at `path` (which the preceding backup freed).
    fn put(&mut self, path: &Path, entry: Entry, step: &str) {
        let before = self
            .actions
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Backup { from, to, .. } if from == path => self.t.get(to).map(|e| e.origin.clone()),
                _ => None,
            })
            .expect("put follows a backup");
        let after = entry.origin.clone();
        self.t.insert(path.to_path_buf(), entry);
        self.actions.push(Action::Rewrite { path: path.to_path_buf(), step: step.to_string(), before, after });
    }

    fn free_name(&self, backup: &Path) -> PathBuf {
        (1..)
            .map(|n| {
                let mut s = backup.as_os_str().to_owned();
                s.push(format!(".{n}"));
                PathBuf::from(s)
            })
            .find(|p| !self.t.contains(p))
            .expect("some name is free")
    }

    /// The webapp rule: remove the chosen entries of `dir`, and for each the
    /// directory named like it without `.war` (its exploded form).
    fn remove_webapps(&mut self, dir: &Path, doomed: impl Fn(&std::ffi::OsStr) -> bool, step: &str) {
        let names: Vec<std::ffi::OsString> =
            self.t.children(dir).map(|(p, _)| p.file_name().unwrap_or_default().to_owned()).collect();
        for name in names.into_iter().filter(|n| doomed(n)) {
            self.remove(&dir.join(&name), step);
            let bytes = name.as_encoded_bytes();
            if let Some(stem) = bytes.strip_suffix(b".war") {
                // `..war` has no exploded form: `rm -r webapps/.` is refused by rm,
                // and the path would name the webapps directory itself.
                if !matches!(stem, b"" | b"." | b"..") {
                    let stem = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(stem);
                    let exploded = dir.join(stem);
                    if self.t.get(&exploded).is_some_and(Entry::is_dir) {
                        self.remove(&exploded, step);
                    }
                }
            }
        }
    }
}

/// An edited deployment.toml and the warnings its settings raised.
type EditedToml = (Arc<Vec<u8>>, Vec<String>);

/// `cp` without `-p`: the variant's bytes and mode, a new modification time.
fn fresh_copy(v: Entry) -> Entry {
    let origin = match v.origin {
        Origin::Source(p) | Origin::SourceFresh(p) => Origin::SourceFresh(p),
        g @ Origin::Generated(_) => g,
    };
    Entry { origin, ..v }
}

fn patterns(pats: &[String]) -> Vec<NamePattern> {
    pats.iter().map(|p| NamePattern::new(p).expect("patterns are validated when parsed")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::profile::parse;

    /// A tree of `files` (path, content) in a temporary directory.
    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let full = dir.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        let t = Tree::scan(dir.path()).unwrap();
        (dir, t)
    }

    fn profile(steps: &str) -> Profile {
        let text = format!("name = \"p\"\nproduct = \"wso2am\"\nversion = \"4.2.0\"\nsummary = \"s\"\n{steps}");
        parse(&text, "test.toml").unwrap()
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.tree.iter().map(|(p, _)| p.display().to_string()).collect()
    }

    #[test]
    fn remove_takes_what_exists_and_notes_nothing_for_what_does_not() {
        let (_d, t) = tree(&[("a/x.txt", "x"), ("b.txt", "b")]);
        let p = profile("[[step]]\nop = \"remove\"\npaths = [\"a\", \"missing\"]\n");
        let plan = compute(&p, &t, &Options::default()).unwrap();
        assert_eq!(names(&plan), ["b.txt"]);
        assert!(matches!(&plan.actions[..], [Action::Remove { entries: 2, dir: true, .. }, ..]), "{:?}", plan.actions);
    }

    #[test]
    fn replace_template_backs_up_once_and_is_current_after() {
        let step =
            "[[step]]\nop = \"replace-template\"\ntarget = \"t.j2\"\nvariant = \"t_GW.j2\"\nbackup = \"t.j2.backup\"\n";
        let (d, t) = tree(&[("t.j2", "default"), ("t_GW.j2", "gateway")]);
        let plan = compute(&profile(step), &t, &Options::default()).unwrap();
        assert_eq!(names(&plan), ["t.j2", "t.j2.backup", "t_GW.j2"]);
        assert_eq!(plan.tree.read(d.path(), Path::new("t.j2")).unwrap(), b"gateway");
        assert_eq!(plan.tree.read(d.path(), Path::new("t.j2.backup")).unwrap(), b"default");
        // Done before: nothing to do.
        let (_d2, done) = tree(&[("t.j2", "gateway"), ("t_GW.j2", "gateway"), ("t.j2.backup", "default")]);
        assert!(!compute(&profile(step), &done, &Options::default()).unwrap().changes_anything());
        // An update changed the variant: the first backup stays, the replaced version is kept too.
        let (_d3, upd) = tree(&[("t.j2", "gateway"), ("t_GW.j2", "gateway v2"), ("t.j2.backup", "default")]);
        let plan = compute(&profile(step), &upd, &Options::default()).unwrap();
        assert!(plan.tree.contains(Path::new("t.j2.backup.1")), "{:?}", names(&plan));
    }

    #[test]
    fn clear_dir_keeps_only_the_named_files() {
        let (_d, t) = tree(&[("s/synapse.xml", "x"), ("s/api/a.xml", "a"), ("s/other.xml", "o")]);
        let p = profile("[[step]]\nop = \"clear-dir\"\ndir = \"s\"\nkeep-files = [\"synapse.xml\"]\n");
        assert_eq!(names(&compute(&p, &t, &Options::default()).unwrap()), ["s", "s/synapse.xml"]);
    }

    #[test]
    fn webapps_go_with_their_exploded_directories() {
        let (_d, t) = tree(&[("w/keep.war", "k"), ("w/drop.war", "d"), ("w/drop/index.html", "i"), ("w/other", "o")]);
        let p = profile("[[step]]\nop = \"prune-webapps\"\ndir = \"w\"\nkeep = [\"keep.war\"]\n");
        let plan = compute(&p, &t, &Options::default()).unwrap();
        assert_eq!(names(&plan), ["w", "w/keep.war"]);
        let p = profile("[[step]]\nop = \"remove-webapps\"\ndir = \"w\"\nnames = [\"drop.war\"]\n");
        assert_eq!(names(&compute(&p, &t, &Options::default()).unwrap()), ["w", "w/keep.war", "w/other"]);
    }

    #[test]
    fn skip_config_optimization_keeps_deployment_toml_with_a_note() {
        let (_d, t) = tree(&[("repository/conf/deployment.toml", "[server]\n"), ("tpl.toml", "[server]\nx = 1\n")]);
        let p = profile("[[step]]\nop = \"replace-deployment-toml\"\ntemplate = \"tpl.toml\"\n");
        let opts = Options::from_command_line(true, ConfigEdits::default());
        let plan = compute(&p, &t, &opts).unwrap();
        assert!(!plan.changes_anything());
        assert_eq!(plan.notes(), ["deployment.toml kept as it is (--skip-config-optimization)"]);
        let plan = compute(&p, &t, &Options::default()).unwrap();
        let drift: Vec<_> = plan.drift_lines().into_iter().filter(|l| !l.ends_with("(product core)")).collect();
        assert_eq!(drift.len(), 1, "{drift:?}");
    }

    #[test]
    fn a_tree_without_the_products_core_directories_is_unmet() {
        let files = [("bin/v.txt", ""), ("repository/components/plugins/a.jar", ""), ("repository/conf/x", "")];
        let (_d, t) = tree(&files);
        let p = profile("[[step]]\nop = \"remove\"\npaths = [\"missing\"]\n");
        assert!(check_met(&compute(&p, &t, &Options::default()).unwrap()).is_ok());
        let (_d, t) = tree(&files[..2]);
        let plan = compute(&p, &t, &Options::default()).unwrap();
        assert_eq!(
            plan.drift_lines(),
            ["repository/conf/ is missing or not a directory: it is part of every product home (product core)"]
        );
        assert!(check_met(&plan).is_err());
    }

    #[test]
    fn patterns_read_like_find_name() {
        let p = NamePattern::new("am#sample#pizzashack#v*.war").unwrap();
        assert!(p.matches("am#sample#pizzashack#v1.war".as_ref()));
        assert!(!p.matches("am#sample#pizzashack#v1".as_ref()));
        assert!(NamePattern::new("*").unwrap().matches(".hidden".as_ref()));
    }
}
