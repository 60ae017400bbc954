//! The key an output seals its copies' records with (`<OUT>/.apim-profiles-key`):
//! 32 random bytes, readable by the account running the tool alone, kept
//! outside the copies. A record's seal is an HMAC-SHA256 under it, so the
//! account that owns a copy (the home's owner, as with `cp -a`) can edit the
//! copy and its record but cannot seal the record again: `verify` and
//! `status` then say "record not sealed by this output".
//!
//! The key of a copy is found from the copy's place: `<OUT>/<profile>/<home>`
//! (the profile the record names is the name of the directory the copy sits
//! in) has its output's key; a home optimized in place elsewhere has the key
//! of the directory that holds it.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::outcome::Refusal;

/// The key's name in its output.
pub const KEY_FILE: &str = ".apim-profiles-key";
const KEY_LEN: usize = 32;

/// An output's key, and where it was read.
#[derive(Clone)]
pub struct SealKey {
    bytes: [u8; KEY_LEN],
    pub path: PathBuf,
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealKey({})", self.path.display())
    }
}

/// Why a record is not proven by its output's key, in words, with what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsealed {
    pub why: String,
    pub hint: String,
}

/// What `split --force` does for a copy whose record cannot be trusted.
pub const RESEAL_HINT: &str = "to trust it again, rebuild it: apim-profiles split <home> --out <output> --force \
     makes the copy anew and seals its record with the output's key";

impl Unsealed {
    /// The one line `verify`, `status` and refusals say.
    pub fn line(&self) -> String {
        format!("record not sealed by this output: {}", self.why)
    }

    /// The line and what to do, as one reason.
    pub fn reason(&self) -> String {
        format!("{}; {}", self.line(), self.hint)
    }

    /// A refusal of the copy at `copy` (a command that would act on its record).
    pub fn refusal(&self, copy: &Path) -> Refusal {
        Refusal::new(format!("{}: {}", copy.display(), self.line()), self.hint.clone())
    }
}

impl SealKey {
    /// The key of the output `out`; None when it has none yet. A file there
    /// that is not one this account made for itself (a link, another
    /// account's, readable or writable by group or others, not 32 bytes) is
    /// refused, never used.
    pub fn load(out: &Path) -> std::result::Result<Option<SealKey>, Unsealed> {
        let path = out.join(KEY_FILE);
        if std::fs::symlink_metadata(out).is_err() {
            return Ok(None);
        }
        match crate::safe_fs::read_private(out, KEY_FILE, KEY_LEN) {
            Ok(None) => Ok(None),
            Ok(Some(b)) => {
                let mut bytes = [0u8; KEY_LEN];
                bytes.copy_from_slice(&b);
                Ok(Some(SealKey { bytes, path }))
            }
            Err(why) => Err(Unsealed {
                why: format!("its output's key {} is refused: {why}", path.display()),
                hint: format!(
                    "someone else may have put it there: inspect and remove it; then {}",
                    RESEAL_HINT.trim_start_matches("to trust it again, ")
                ),
            }),
        }
    }

    /// The key of `out`, made when it has none (32 bytes from getrandom,
    /// mode 0600, created `O_EXCL`); a key refused by [`SealKey::load`] is
    /// refused here too (exit 2, nothing written).
    pub fn load_or_create(out: &Path) -> Result<SealKey> {
        Self::check(out)?;
        let refused = |u: Unsealed| Refusal::new(u.why, u.hint);
        if let Some(k) = Self::load(out).map_err(refused)? {
            return Ok(k);
        }
        let mut bytes = [0u8; KEY_LEN];
        crate::sys::random(&mut bytes)?;
        // Another run may have made it first: then its key is the one.
        crate::safe_fs::create_private(out, KEY_FILE, &bytes)?;
        Self::load(out).map_err(refused)?.ok_or_else(|| anyhow::anyhow!("{} vanished as it was made", out.display()))
    }

    /// Refuses (exit 2) an output whose key is there but not one this
    /// account made for itself; before anything is written.
    pub fn check(out: &Path) -> Result<()> {
        match Self::load(out) {
            Ok(_) => Ok(()),
            Err(u) => Err(Refusal::new(
                u.why.replacen("its output's key", "the output's key", 1),
                "someone else may have put it there: inspect and remove it, then run again (a new key is made; \
                 copies sealed with the old one are then rebuilt with --force)",
            )
            .into()),
        }
    }

    /// A MAC under this key.
    pub fn mac(&self) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.bytes).expect("HMAC takes a key of any length")
    }

    /// A key that is not on disk (unit tests).
    #[cfg(test)]
    pub fn for_test(byte: u8) -> SealKey {
        SealKey { bytes: [byte; KEY_LEN], path: PathBuf::from("test") }
    }
}

/// The output whose key seals the record of the copy at `copy` made for
/// `profile`: `<OUT>` for `<OUT>/<profile>/<home>`, else the directory that
/// holds the copy (a home optimized in place).
pub fn output_of(copy: &Path, profile: &str) -> PathBuf {
    let parent = copy.parent().unwrap_or(copy);
    if parent.file_name().is_some_and(|n| n == profile) {
        parent.parent().unwrap_or(parent).to_path_buf()
    } else {
        parent.to_path_buf()
    }
}

/// The key of the copy at `copy` (see [`output_of`]); why there is none.
pub fn key_of_copy(copy: &Path, profile: &str) -> std::result::Result<SealKey, Unsealed> {
    let out = output_of(copy, profile);
    match SealKey::load(&out)? {
        Some(k) => Ok(k),
        None => Err(Unsealed {
            why: format!(
                "there is no key {} (the key stays in the output the copy was split into; it never travels with a copy)",
                out.join(KEY_FILE).display()
            ),
            hint: "to check it, verify the copy in the output it was split into (a copy sent to another host is proven \
                   by comparing it with that one, not by its own record); if this is that output, its key was removed: "
                .to_string()
                + RESEAL_HINT.trim_start_matches("to trust it again, "),
        }),
    }
}
