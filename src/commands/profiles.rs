//! `profiles`: what this build knows, so that a playbook can check before use.

use std::path::Path;

use anyhow::Result;

use crate::model::profile::load_catalog;
use crate::report::{ProfileInfo, RunOutcome};

pub fn run(profile_dir: Option<&Path>) -> Result<RunOutcome> {
    let catalog = load_catalog(profile_dir)?;
    Ok(RunOutcome::profiles(
        catalog
            .profiles
            .iter()
            .map(|p| ProfileInfo {
                name: p.name.clone(),
                product: p.product.clone(),
                version: p.version.clone(),
                summary: p.summary.clone(),
                default: p.default,
                steps: p.steps.iter().map(|s| s.label()).collect(),
                origin: p.origin.clone(),
            })
            .collect(),
    ))
}
