//! The U2 update step. (Interface first; the tool runner follows.)

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::refuse;
use crate::plan::Options;
use crate::profile::Profile;
use crate::record::Record;

#[derive(Debug, Clone, Default)]
pub struct Settings {}

pub fn preflight(_s: &Settings, _home: &Path) -> Result<()> {
    refuse(
        "the U2 update step is not available in this build",
        "pass --no-update to split without updating",
    )
}

pub struct UpdateResult {
    pub message: String,
    pub notes: Vec<String>,
}

impl UpdateResult {
    pub fn exit_code(&self) -> i32 {
        0
    }
    pub fn keeps_copy(&self) -> bool {
        true
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

pub fn update_and_reoptimize(
    _s: &Settings,
    _staged: &Path,
    _final_path: &Path,
    _profile: &Profile,
    _opts: &Options,
    _rec: &mut Record,
) -> Result<UpdateResult> {
    unreachable!("preflight refuses")
}

pub fn keep_failed(staged: &Path, _final_path: &Path) -> Result<PathBuf> {
    Ok(staged.to_path_buf())
}

pub fn exit_advice(_code: i32) -> String {
    String::new()
}
