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
use crate::model::seal::{self, SealKey, Unsealed, RESEAL_HINT};
use crate::model::tree;
use crate::model::update_result::RecordedUpdate;

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
    pub update: Option<RecordedUpdate>,
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
    /// The identity of the kept base the copy was derived from
    /// (`engine::base`): a roll forward reuses the copy's files that no
    /// update changed only when the base it updates is that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// An HMAC-SHA256 of everything above under the output's key
    /// (`hmac-sha256:<hex>`; an earlier version's is a bare SHA-256): a
    /// record edited or written anew by anyone without the key no longer matches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

/// What the seal is taken over: the unsealed record's compact JSON under the
/// output's key, written into it as it is made (`model::record_stream` feeds
/// it a record read piece by piece).
pub(crate) struct Sealing(hmac::Hmac<sha2::Sha256>);

impl Sealing {
    pub(crate) fn new(key: &SealKey) -> Sealing {
        use hmac::Mac;
        let mut m = key.mac();
        m.update(b"apim-profiles record\0");
        Sealing(m)
    }

    /// The seal, as the record carries it.
    pub(crate) fn finish(self) -> String {
        use hmac::Mac;
        format!("{SEAL_PREFIX}{}", tree::hex(&self.0.finalize().into_bytes()))
    }

    /// Whether `seal` is this text's seal (compared in constant time).
    pub(crate) fn holds(self, seal: &str) -> bool {
        use hmac::Mac;
        let bytes = seal.strip_prefix(SEAL_PREFIX).and_then(unhex).unwrap_or_default();
        self.0.verify_slice(&bytes).is_ok()
    }
}

impl std::io::Write for Sealing {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        use hmac::Mac;
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a keyed seal starts; a seal without it is the unkeyed SHA-256 of an
/// earlier version.
const SEAL_PREFIX: &str = "hmac-sha256:";

impl Record {
    /// The seal of this record's content (the seal itself left out) under
    /// its output's key.
    fn mac(&self, key: &SealKey) -> Sealing {
        // The fingerprints are shared, not copied, and the text is hashed as
        // it is made: a record of a 50,000-file home is megabytes.
        let unsealed = Record { seal: None, ..self.clone() };
        let mut h = Sealing::new(key);
        let _ = serde_json::to_writer(&mut h, &unsealed);
        h
    }

    fn seal_with(&self, key: &SealKey) -> String {
        self.mac(key).finish()
    }

    /// Whether the record is as the tool wrote it into this output: its
    /// seal holds under the output's key (compared in constant time).
    pub fn seal_check(&self, key: &SealKey) -> std::result::Result<(), Unsealed> {
        let old = |why: &str| Unsealed { why: why.to_string(), hint: RESEAL_HINT.into() };
        let Some(seal) = &self.seal else {
            return Err(old("it has no seal (it was made by an earlier apim-profiles)"));
        };
        if !seal.starts_with(SEAL_PREFIX) {
            return Err(old(
                "it carries the unkeyed seal of an earlier apim-profiles, which anyone who can write the copy can make",
            ));
        }
        self.mac(key).holds(seal).then_some(()).ok_or_else(|| Unsealed {
            why: format!(
                "its seal does not hold under the output's key {}: the record was written or edited by someone else, or comes from another output",
                key.path.display()
            ),
            hint: format!("the copy cannot be trusted; {RESEAL_HINT}"),
        })
    }

    /// The record without its seal, to compare content.
    pub fn unsealed(&self) -> Record {
        Record { seal: None, ..self.clone() }
    }
}

/// The bytes of a lowercase hex string.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Whether the record of the copy at `copy` is sealed by the copy's output
/// (see `model::seal`): the key that proves it, or why it is not.
pub fn sealed_by_output(copy: &Path, rec: &Record) -> std::result::Result<SealKey, Unsealed> {
    let key = seal::key_of_copy(copy, &rec.profile)?;
    rec.seal_check(&key)?;
    Ok(key)
}

/// Writes the record atomically: a new file under an unguessable name
/// (`O_EXCL`), renamed over the record, so a link planted at any name is
/// replaced, never written through. It is sealed under `key`, its output's.
pub fn write(copy: &Path, r: &Record, key: &SealKey) -> Result<()> {
    let sealed = Record { seal: Some(r.seal_with(key)), ..r.clone() };
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
        base: None,
        seal: None,
    }
}

/// A hash of every option that shapes a copy. Settings may hold secrets, so
/// only their hash is kept.
pub fn options_hash(opts: &Options) -> String {
    let text = format!("skip={};config={}", opts.skip_config_optimization, opts.config.canonical());
    tree::sha256_hex(text.as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::update_result::{UpdateResult, UpdateStatus};

    /// A record of the fixture's gateway copy, as the tests build on it.
    pub(crate) fn record(update: Option<RecordedUpdate>) -> Record {
        Record {
            tool: "apim-profiles".into(),
            tool_version: "0.1.0".into(),
            profile: "gateway-worker".into(),
            product: "wso2am".into(),
            version: "4.2.0".into(),
            profile_sha256: "p".into(),
            skip_config_optimization: false,
            options_sha256: "o".into(),
            carry: vec![],
            carry_common: false,
            source: None,
            source_fingerprint: None,
            deployment_toml_sha256: None,
            update,
            source_entries: None,
            copy_fingerprint: None,
            content_sha256: None,
            base: None,
            seal: None,
        }
    }

    fn key() -> SealKey {
        SealKey::for_test(7)
    }

    /// The text `write` puts on disk.
    fn written(r: &Record) -> String {
        let sealed = Record { seal: Some(r.seal_with(&key())), ..r.clone() };
        serde_json::to_string_pretty(&sealed).unwrap()
    }

    fn conflicted() -> UpdateResult {
        let mut u = UpdateResult::new("updates/logs".into());
        u.status = UpdateStatus::Conflicts;
        u.conflicts = vec!["repository/conf/a.xml".into()];
        u.level = Some("42".into());
        u.finished_at = Some("2026-12-01T10:00:00Z".into());
        u
    }

    /// Until the update was typed, a record kept it as a JSON value: such a
    /// record reads typed, and its seal still holds.
    #[test]
    fn a_record_that_kept_the_update_as_json_reads_typed_and_its_seal_holds() {
        let as_value = serde_json::to_value(conflicted()).unwrap();
        let old = written(&record(Some(RecordedUpdate::Earlier(as_value))));
        let back: Record = serde_json::from_str(&old).unwrap();
        assert_eq!(back.seal_check(&key()), Ok(()));
        let u = back.update.as_ref().unwrap();
        assert!(u.result().is_some(), "{u:?}");
        assert_eq!(u.status(), UpdateStatus::Conflicts);
        assert_eq!(u.conflicts(), ["repository/conf/a.xml"]);
        assert_eq!(written(&back), old);
    }

    /// A result of another shape (a field missing, one added, a status this
    /// version lacks) is kept as it was read: the seal holds, the status and
    /// level still read, and an unknown status counts as failed.
    #[test]
    fn an_update_of_another_shape_is_kept_as_read() {
        let mut v = serde_json::to_value(conflicted()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("self_updates");
        o.insert("from_the_future".into(), serde_json::json!(1));
        let old = written(&record(Some(RecordedUpdate::Earlier(v.clone()))));
        let back: Record = serde_json::from_str(&old).unwrap();
        assert_eq!(back.seal_check(&key()), Ok(()));
        let u = back.update.as_ref().unwrap();
        assert!(u.result().is_none());
        assert_eq!((u.status(), u.level()), (UpdateStatus::Conflicts, Some("42".into())));
        assert_eq!(written(&back), old);

        v["status"] = "paused".into();
        let odd: RecordedUpdate = serde_json::from_value(v).unwrap();
        assert_eq!(odd.status(), UpdateStatus::Failed);
    }

    /// What this version writes reads back as it was, notes left out.
    #[test]
    fn a_written_update_reads_back_the_same() {
        let mut u = conflicted();
        u.notes.push("for the report only".into());
        let r = record(Some(RecordedUpdate::of(&u)));
        let back: Record = serde_json::from_str(&written(&r)).unwrap();
        assert_eq!(back.seal_check(&key()), Ok(()));
        assert_eq!(back.unsealed(), r);
        assert!(!written(&r).contains("for the report only"));
    }

    /// The seal holds under the key it was made with only: another key, an
    /// edit, the unkeyed SHA-256 of earlier versions and no seal all fail.
    #[test]
    fn the_seal_holds_under_its_own_key_only() {
        let r = record(None);
        let back: Record = serde_json::from_str(&written(&r)).unwrap();
        assert_eq!(back.seal_check(&key()), Ok(()));
        let other = back.seal_check(&SealKey::for_test(8)).unwrap_err();
        assert!(other.line().contains("does not hold"), "{other:?}");
        let edited = Record { profile: "control-plane".into(), ..back.clone() };
        assert!(edited.seal_check(&key()).is_err());
        use sha2::Digest;
        let plain = tree::hex(&sha2::Sha256::digest(serde_json::to_vec(&r.unsealed()).unwrap()));
        let old = Record { seal: Some(plain), ..r.clone() };
        assert!(old.seal_check(&key()).unwrap_err().why.contains("unkeyed seal"));
        assert!(r.seal_check(&key()).unwrap_err().why.contains("no seal"));
        let odd = Record { seal: Some(format!("{SEAL_PREFIX}zz")), ..r.clone() };
        assert!(odd.seal_check(&key()).is_err());
    }
}
