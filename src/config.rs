//! The seam between the plan and the operator's deployment.toml settings.
//! The plan asks two things: is this template TOML at all, and what does the
//! profile's deployment.toml look like with the operator's settings applied.

use std::path::Path;

use anyhow::Result;

use crate::error::Refusal;

/// Settings carried into, set in or overlaid on each profile's deployment.toml.
#[derive(Debug, Clone, Default)]
pub struct ConfigEdits {}

impl ConfigEdits {
    pub fn is_empty(&self) -> bool {
        true
    }
    /// A stable text of the edits, for the options hash.
    pub fn canonical(&self) -> String {
        String::new()
    }
}

/// Applies `edits` to the profile's template.
pub fn apply(
    _template: &str,
    _home_toml: &str,
    _profile: &str,
    _edits: &ConfigEdits,
) -> Result<String> {
    anyhow::bail!("configuration edits are not supported by this build")
}

/// Refuses a deployment template that is not valid TOML, naming file, line and
/// column: the node would not start with it.
pub fn check_toml(text: &str, path: &Path) -> Result<()> {
    if let Err(e) = text.parse::<toml_edit::DocumentMut>() {
        let at = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before
                    .rsplit('\n')
                    .next()
                    .map(|l| l.chars().count())
                    .unwrap_or(0)
                    + 1;
                format!(":{line}:{col}")
            })
            .unwrap_or_default();
        let msg = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string();
        return Err(Refusal::new(
            format!("{}{at} is not valid TOML: {msg}", path.display()),
            "restore that file from the product pack (or fix the line named), then run again",
        )
        .into());
    }
    Ok(())
}
