//! `update`: U2 plus re-optimization on copies that already exist.

use std::path::PathBuf;

use anyhow::Result;

use crate::error::refuse;
use crate::report::Report;

pub fn run(_copies: &[PathBuf], _settings: &crate::update::Settings) -> Result<Report> {
    refuse(
        "the update command is not available in this build",
        "use split --no-update for now",
    )
}
