//! `profiles`: what this build knows, so that a playbook can check before use.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProfileInfo {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub default: bool,
    pub steps: Vec<String>,
    pub origin: String,
}

pub fn run(profile_dir: Option<&Path>) -> Result<Vec<ProfileInfo>> {
    let catalog = crate::split::load_catalog(profile_dir)?;
    Ok(catalog
        .profiles
        .iter()
        .map(|p| ProfileInfo {
            name: p.name.clone(),
            version: p.version.clone(),
            summary: p.summary.clone(),
            default: p.default,
            steps: p.steps.iter().map(|s| s.label()).collect(),
            origin: p.origin.clone(),
        })
        .collect())
}
