//! Facts of one product version that are not a profile: the tables its
//! `deployment.toml` knows and the settings `--carry-common` carries. They
//! live beside the profile definitions as `profiles/<version>/_version.toml`,
//! so that supporting a new version is a data change.

use serde::Deserialize;

use crate::model::text::line_col;
use crate::outcome::Refusal;

/// The file name of a version's facts inside `profiles/<version>/`.
pub const FACTS_FILE: &str = "_version.toml";

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VersionFacts {
    pub product: String,
    pub version: String,
    #[serde(rename = "deployment-toml", default)]
    pub deployment_toml: DeploymentToml,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeploymentToml {
    /// Tables or dotted keys `--carry-common` carries, where the home sets them.
    #[serde(default)]
    pub carry_common: Vec<String>,
    /// Top-level tables of this version; keys under others get a typo warning.
    /// Empty: no warnings.
    #[serde(default)]
    pub known_tables: Vec<String>,
}

impl VersionFacts {
    /// Parses one `_version.toml`; invalid TOML names file, line and column.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<VersionFacts> {
        toml_edit::de::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let (line, col) = line_col(text, s.start);
                    format!(":{line}:{col}")
                })
                .unwrap_or_default();
            let msg = e.message().lines().next().unwrap_or("invalid").to_string();
            Refusal::new(
                format!("version facts {origin}{at} are not valid: {msg}"),
                "fix the file (the README's \"Version facts\" lists the fields), or drop --profile-dir",
            )
            .into()
        })
    }
}
