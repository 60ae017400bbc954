//! The files a profile rewrote, around an update.
//!
//! Before the tool runs in a copy they are put back as the pack shipped them
//! (from the backups the optimization kept), so the tool finds the pack's own
//! files and raises no conflict the optimization caused: the copy is then the
//! pack less what the profile removed, and what the update does to it is what
//! it does to the pack. A file edited since apim-profiles wrote it is left as
//! it is; the tool may conflict on it, and that conflict is the operator's.
//!
//! After the tool, a rewritten file that the update changed (or a person
//! resolved) is the updated pack's file: its old backup goes, so that the
//! optimization run next backs up the updated file and applies the profile to
//! it, as WSO2's procedure (update the pack, then optimize) does.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::model::plan::{Options, OWN_TOML, OWN_TOML_BACKUP};
use crate::model::profile::{check_relative, Profile, Step};
use crate::model::tree;
use crate::safe_fs::{read_file_beneath, remove_file_beneath, rename_beneath};

/// What [`before_update`] did.
#[derive(Debug, Default)]
pub struct Restored {
    /// Rewritten files put back as shipped.
    pub restored: Vec<PathBuf>,
    /// Rewritten files edited since apim-profiles wrote them: left as they are.
    pub edited: Vec<PathBuf>,
    /// What each restored file held before (the profile's version).
    pub before: Vec<(PathBuf, Vec<u8>)>,
}

/// One file a profile step rewrites: where it is, its backup, and what the
/// profile puts there (a variant template), if a file.
struct Rewritten {
    target: PathBuf,
    backup: PathBuf,
    variant: Option<PathBuf>,
    consumed: bool,
}

fn rel(s: &str) -> PathBuf {
    check_relative(s).expect("profile paths are validated when parsed")
}

/// The files the profile's steps rewrite, in step order; and the home's own
/// deployment.toml where the operator's settings were applied to it (a
/// profile without a template of its own, or `--skip-config-optimization`:
/// its backup is there only then).
fn rewritten(profile: &Profile, opts: &Options) -> Vec<Rewritten> {
    let mut out = steps_rewritten(profile, opts);
    if profile.deployment_toml().is_none() || opts.skip_config_optimization {
        out.push(Rewritten { target: rel(OWN_TOML), backup: rel(OWN_TOML_BACKUP), variant: None, consumed: false });
    }
    out
}

fn steps_rewritten(profile: &Profile, opts: &Options) -> Vec<Rewritten> {
    profile
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::ReplaceDeploymentToml { target, backup, .. } if !opts.skip_config_optimization => {
                Some(Rewritten { target: rel(target), backup: rel(backup), variant: None, consumed: false })
            }
            Step::ReplaceTemplate { target, variant, backup, consume_variant } => Some(Rewritten {
                target: rel(target),
                backup: rel(backup),
                variant: Some(rel(variant)),
                consumed: *consume_variant,
            }),
            _ => None,
        })
        .collect()
}

/// Puts every file the profile rewrote back as the pack shipped it, where
/// the copy still holds what the profile wrote there. `opts` carries the
/// hash of the deployment.toml apim-profiles wrote (from the copy's record).
pub fn before_update(copy: &Path, profile: &Profile, opts: &Options) -> Result<Restored> {
    let mut out = Restored::default();
    for r in rewritten(profile, opts) {
        if read_file_beneath(copy, &r.backup)?.is_none() {
            continue; // never rewritten here (or its step did not apply)
        }
        let Some(current) = read_file_beneath(copy, &r.target)? else {
            rename_beneath(copy, &r.backup, &r.target)?;
            out.restored.push(r.target);
            continue;
        };
        if !is_ours(copy, &r, &current, opts)? {
            out.edited.push(r.target);
            continue;
        }
        if r.consumed && read_file_beneath(copy, r.variant.as_deref().expect("templates have a variant"))?.is_none() {
            // `mv variant target` undone: the variant goes back where the pack has it.
            rename_beneath(copy, &r.target, r.variant.as_deref().expect("checked"))?;
        }
        rename_beneath(copy, &r.backup, &r.target)?;
        out.before.push((r.target.clone(), current));
        out.restored.push(r.target);
    }
    Ok(out)
}

/// Whether `current` (the content of `r.target`) is what the profile put
/// there: the variant's bytes, or the deployment.toml apim-profiles wrote.
fn is_ours(copy: &Path, r: &Rewritten, current: &[u8], opts: &Options) -> Result<bool> {
    let Some(variant) = &r.variant else {
        return Ok(opts.written_toml_sha256.as_deref() == Some(tree::sha256_hex(current).as_str()));
    };
    if r.consumed {
        // The variant was moved into place: nothing to compare with but itself.
        return Ok(match read_file_beneath(copy, variant)? {
            Some(v) => v == current,
            None => true,
        });
    }
    Ok(read_file_beneath(copy, variant)?.is_some_and(|v| v == current))
}

/// After the tool: every rewritten file the update changed or a person
/// resolved (`touched`) is the updated pack's file now, so its old backup is
/// removed and the optimization backs up the updated file instead. Returns
/// the files so taken.
pub fn take_updated(copy: &Path, profile: &Profile, opts: &Options, touched: &[String]) -> Result<Vec<PathBuf>> {
    let mut taken = Vec::new();
    for r in rewritten(profile, opts) {
        let hit = touched.iter().any(|t| Path::new(t) == r.target);
        if hit && read_file_beneath(copy, &r.backup)?.is_some() && read_file_beneath(copy, &r.target)?.is_some() {
            remove_file_beneath(copy, &r.backup)?;
            taken.push(r.target);
        }
    }
    Ok(taken)
}
