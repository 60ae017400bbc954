//! The record a copy keeps of what produced it (`.apim-profiles.json` at its
//! root): a re-run compares it with its own inputs to know whether the copy is
//! current, `verify` and `update` read the profile and options from it. Values
//! that could be secret are never written: options are kept as a hash.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::fingerprint::Fingerprint;
use crate::model::home::Home;
use crate::model::plan::{Options, Plan};
use crate::model::profile::Profile;
use crate::model::tree;

pub const RECORD_FILE: &str = ".apim-profiles.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub tool: String,
    pub tool_version: String,
    pub profile: String,
    pub product: String,
    pub version: String,
    /// Hash of the profile definition's text.
    pub profile_sha256: String,
    /// Options that shape the copy, non-secret summary.
    pub skip_config_optimization: bool,
    /// Hash over every option that shapes the copy (settings included).
    pub options_sha256: String,
    /// The keys `--carry` named (names only, never values): an update
    /// carries them again from the updated home's file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carry: Vec<String>,
    /// Whether `--carry-common` was given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carry_common: bool,
    /// The source home and its fingerprint (paths, sizes, modes, times).
    pub source: Option<String>,
    pub source_fingerprint: Option<String>,
    /// Hash of the deployment.toml the tool wrote, to tell its own file from a
    /// person's edit later.
    pub deployment_toml_sha256: Option<String>,
    /// Result of the last update run in this copy, if any.
    #[serde(default)]
    pub update: Option<serde_json::Value>,
    /// The source's entries (metadata only), to name what changed in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_entries: Option<std::sync::Arc<Fingerprint>>,
    /// The copy as the tool left it (metadata only), to see what changed in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_fingerprint: Option<std::sync::Arc<Fingerprint>>,
    /// The SHA-256 of each file of the copy as the tool left it, computed
    /// while copying: one lowercase hex string, 64 characters a file, in the
    /// order of the copy fingerprint's file lines (see `model::content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<std::sync::Arc<String>>,
    /// A hash of everything above: a record edited by hand no longer matches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

impl Record {
    /// The seal of this record's content (the seal itself left out).
    fn compute_seal(&self) -> String {
        // The fingerprints are shared, not copied, and the text is hashed as
        // it is made: a record of a 50,000-file home is megabytes.
        use sha2::Digest;
        struct Hashing(sha2::Sha256);
        impl std::io::Write for Hashing {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.update(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let unsealed = Record { seal: None, ..self.clone() };
        let mut h = Hashing(sha2::Sha256::new());
        let _ = serde_json::to_writer(&mut h, &unsealed);
        tree::hex(&h.0.finalize())
    }

    /// Whether the record is as the tool wrote it. A record without a seal
    /// is from an earlier version: it holds no copy fingerprint, and such a
    /// copy is never current.
    pub fn seal_holds(&self) -> bool {
        match &self.seal {
            Some(s) => *s == self.compute_seal(),
            None => self.copy_fingerprint.is_none(),
        }
    }

    /// The record without its seal, to compare content.
    pub fn unsealed(&self) -> Record {
        Record { seal: None, ..self.clone() }
    }
}

/// Writes the record atomically: a new file under an unguessable name
/// (`O_EXCL`), renamed over the record, so a link planted at any name is
/// replaced, never written through.
pub fn write(copy: &Path, r: &Record) -> Result<()> {
    let sealed = Record { seal: Some(r.compute_seal()), ..r.clone() };
    crate::safe_fs::write_atomic_with(copy, RECORD_FILE, 0o644, |w| {
        serde_json::to_writer_pretty(&mut *w, &sealed)?;
        w.write_all(b"\n")
    })
}

/// The record a copy made from these inputs carries.
pub fn record_for(profile: &Profile, home: &Home, opts: &Options, fingerprint: Option<String>, plan: &Plan) -> Record {
    Record {
        tool: "apim-profiles".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        profile: profile.name.clone(),
        product: home.product.clone(),
        version: home.version.clone(),
        profile_sha256: tree::sha256_hex(profile.source_text.as_bytes()),
        skip_config_optimization: opts.skip_config_optimization,
        options_sha256: options_hash(opts),
        carry: opts.config.carry.clone(),
        carry_common: opts.config.carry_common,
        source: fingerprint.as_ref().map(|_| home.path.display().to_string()),
        source_fingerprint: fingerprint,
        deployment_toml_sha256: plan.written_toml_sha256.clone(),
        update: None,
        source_entries: None,
        copy_fingerprint: None,
        content_sha256: None,
        seal: None,
    }
}

/// A hash of every option that shapes a copy. Settings may hold secrets, so
/// only their hash is kept.
pub fn options_hash(opts: &Options) -> String {
    let text = format!("skip={};config={}", opts.skip_config_optimization, opts.config.canonical());
    tree::sha256_hex(text.as_bytes())
}
