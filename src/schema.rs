//! The JSON documents the tool prints, and their JSON Schemas generated from
//! the same types (schemars). The schemas are committed under `schema/`
//! (`apim-profiles schema <DOC> > schema/<DOC>.json`); a test checks that
//! the committed files equal what this build generates and that real outputs
//! validate against them. `schema_version` in every document changes when a
//! field is removed or changes meaning (adding one does not).

use serde::Serialize;

/// The version of every JSON document's shape.
pub const SCHEMA_VERSION: u32 = 1;

/// The `schema_version` field of every document: always [`SCHEMA_VERSION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct SchemaVersion(u32);

impl Default for SchemaVersion {
    fn default() -> Self {
        SchemaVersion(SCHEMA_VERSION)
    }
}

/// The documents that have a schema: one per command, and the error document
/// every command prints on a refusal or failure.
pub const DOCUMENTS: &[&str] = &["split", "optimize", "update", "verify", "status", "profiles", "error"];

/// `profiles --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ProfilesDoc {
    pub schema_version: SchemaVersion,
    pub changed: bool,
    pub profiles: Vec<crate::profiles_cmd::ProfileInfo>,
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

/// The schema of one document, as committed under `schema/`.
pub fn generate(doc: &str) -> Option<String> {
    let mut schema = match doc {
        "split" | "optimize" | "update" | "verify" => schemars::schema_for!(crate::report::Report),
        "status" => schemars::schema_for!(crate::status::StatusDoc),
        "profiles" => schemars::schema_for!(ProfilesDoc),
        "error" => schemars::schema_for!(ErrorDoc),
        _ => return None,
    };
    let title = match doc {
        "error" => "apim-profiles: the JSON document of a refusal or failure".to_string(),
        d => format!("apim-profiles {d} --json"),
    };
    schema.insert("title".into(), title.into());
    let mut text = serde_json::to_string_pretty(&schema).ok()?;
    text.push('\n');
    Some(text)
}
