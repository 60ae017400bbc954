//! The JSON form of a run, for playbooks: one document on stdout whatever the
//! outcome (the schema is in docs/reference.md).

use std::io::Write;

use crate::outcome::Exit;
use crate::report::human::ErrorLines;
use crate::report::image::ImageDoc;
use crate::report::schema::{ErrorDoc, ProfilesDoc};
use crate::report::status::StatusDoc;
use crate::report::{ProfileInfo, Report};

pub fn print_report(r: &Report) -> std::io::Result<()> {
    print(&serde_json::to_string_pretty(r).unwrap_or_default())
}

pub fn print_profiles(list: &[ProfileInfo]) -> std::io::Result<()> {
    let doc = ProfilesDoc { schema_version: Default::default(), changed: false, profiles: list.to_vec() };
    print(&serde_json::to_string(&doc).unwrap_or_default())
}

pub fn print_status(doc: &StatusDoc) -> std::io::Result<()> {
    print(&serde_json::to_string_pretty(doc).unwrap_or_default())
}

pub fn print_image(doc: &ImageDoc) -> std::io::Result<()> {
    print(&serde_json::to_string_pretty(doc).unwrap_or_default())
}

/// One document on stdout, flushed: a report that did not arrive is an error.
fn print(doc: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{doc}")?;
    stdout.flush()
}

pub fn print_error(e: &ErrorLines, exit: Exit) -> std::io::Result<()> {
    let doc = ErrorDoc {
        schema_version: Default::default(),
        changed: false,
        error: e.what.clone(),
        causes: e.causes.clone(),
        hint: e.hint.clone(),
        exit_code: exit.code().into(),
    };
    print(&serde_json::to_string_pretty(&doc).unwrap_or_default())
}

/// The documents that have a schema: one per command, and the error document
/// every command prints on a refusal or failure.
pub const DOCUMENTS: &[&str] = &["split", "optimize", "update", "verify", "status", "profiles", "image", "error"];

/// The schema of one document, as committed under `schema/`.
pub fn schema(doc: &str) -> Option<String> {
    let mut schema = match doc {
        "split" | "optimize" | "update" | "verify" => schemars::schema_for!(Report),
        "status" => schemars::schema_for!(StatusDoc),
        "profiles" => schemars::schema_for!(ProfilesDoc),
        "image" => schemars::schema_for!(ImageDoc),
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
