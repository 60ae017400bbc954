//! After an update: optimize the copy again (an update applies to every
//! profile and can bring back what this one removed), then check that the copy
//! matches its profile.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::engine::inplace::apply_in_place;
use crate::model::plan::{self, Options, Plan};
use crate::model::profile::Profile;
use crate::model::record::Record;
use crate::model::tree::Tree;
use crate::safe_fs::read_file_beneath;
use crate::update::{UpdateResult, UpdateStatus};

/// Re-optimization of an existing copy: the plan computed on the copy, with
/// the options its record holds, carried out in place.
pub fn reoptimize(copy: &Path, profile: &Profile, opts: &Options) -> Result<Plan> {
    let tree = Tree::scan(copy)?;
    let plan = plan::compute(profile, &tree, opts)?;
    apply_in_place(&plan)?;
    Ok(plan)
}

/// Re-optimizes an updated copy and checks it; a copy that still differs from
/// its profile fails the update. Returns the plan of the copy as it is left.
pub fn after_update(
    result: &mut UpdateResult,
    copy: &Path,
    profile: &Profile,
    opts: &Options,
    rec: &mut Record,
    before: &[(PathBuf, Vec<u8>)],
) -> Result<Plan> {
    let o = opts.after_update(rec.deployment_toml_sha256.clone());
    let plan = reoptimize(copy, profile, &o)?;
    // A rewritten file put back as shipped for the tool and rewritten with
    // the same bytes again is not something the update changed.
    let mut same = Vec::new();
    for (p, b) in before {
        if read_file_beneath(copy, p)?.as_deref() == Some(b.as_slice()) {
            same.push(format!("{} ", p.display()));
        }
    }
    result.reoptimized = plan.drift_lines().into_iter().filter(|l| !same.iter().any(|p| l.starts_with(p))).collect();
    result.notes.extend(plan.notes());
    if !result.reoptimized.is_empty() {
        let what = if profile.steps.is_empty() {
            // A pack as shipped has no optimization: only the settings were applied again.
            "the operator's settings applied again after the update"
        } else if profile.facts.update_first {
            "optimized after the update"
        } else {
            "re-optimized after the update"
        };
        result.notes.push(format!("{what}: {} entries fixed", result.reoptimized.len()));
    }
    // What the version's documentation says about updating a profiled node.
    result.notes.extend(profile.update_advice.clone().or_else(|| profile.facts.update_advice.clone()));
    let check = plan::compute(profile, &Tree::scan(copy)?, &o)?;
    let left = check.drift_lines();
    if !left.is_empty() {
        result.status = UpdateStatus::Failed;
        result.message = format!(
            "after the update and re-optimization the copy still differs from its profile: {}",
            left.join("; ")
        );
    }
    if check.written_toml_sha256.is_some() {
        rec.deployment_toml_sha256 = check.written_toml_sha256.clone();
    }
    Ok(check)
}
