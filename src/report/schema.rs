//! The JSON documents the tool prints besides the reports, and the version
//! all of them carry. Their JSON Schemas are generated from these types
//! (schemars, in `json::schema`) and committed under `schema/`
//! (`apim-profiles schema <DOC> > schema/<DOC>.json`); a test checks that
//! the committed files equal what this build generates and that real outputs
//! validate against them. `schema_version` in every document changes when a
//! field is removed or changes meaning (adding one does not).

use serde::Serialize;

/// The version of every JSON document's shape.
pub const SCHEMA_VERSION: u32 = 2;

/// The `schema_version` field of every document: always [`SCHEMA_VERSION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct SchemaVersion(u32);

impl Default for SchemaVersion {
    fn default() -> Self {
        SchemaVersion(SCHEMA_VERSION)
    }
}

/// `profiles --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ProfilesDoc {
    pub schema_version: SchemaVersion,
    pub changed: bool,
    pub profiles: Vec<crate::report::ProfileInfo>,
}

/// What any command prints with `--json` when it is refused or fails.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorDoc {
    pub schema_version: SchemaVersion,
    pub changed: bool,
    /// One line of what is wrong.
    pub error: String,
    /// Where it was found, and the causes.
    pub causes: Vec<String>,
    /// One line of what to do.
    pub hint: Option<String>,
    /// The exit code the run ends with.
    pub exit_code: i32,
}
