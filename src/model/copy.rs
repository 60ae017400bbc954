//! A copy: one directory the tool made of a home for one profile (by `split`,
//! at `<DIR>/<profile>/<home name>`, or a home `optimize` changed in place),
//! as a run finds it: its path, its record and where it stands. `split`,
//! `status`, `verify`, `optimize` and `update` all speak of a copy in this
//! type; how its standing is judged is `model::standing`'s.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::model::home::{self, Home};
use crate::model::plan::Options;
use crate::model::profile::{Catalog, Profile};
use crate::model::record::{self, Record};
use crate::model::seal::{self, SealKey, Unsealed};
use crate::model::standing::{self, CopyState};
use crate::outcome::refuse;

/// A copy: its path, its record (None: nothing there, or a copy made
/// without one), and its standing. `S` is [`CopyState`] once judged; a
/// command that has not judged it (and need not: `verify` checks a copy
/// against its plan instead) holds a `Copy<()>`.
#[derive(Debug, Clone)]
pub struct Copy<S = CopyState> {
    pub path: PathBuf,
    pub record: Option<Record>,
    pub standing: S,
    /// Its entries and bytes as its record lists them (docs/reference.md,
    /// "Sizes and counts"): counted as the record was read, which a record
    /// read in one pass (`model::record_stream`) no longer holds.
    pub size: Option<(usize, u64)>,
}

impl Copy<()> {
    /// A copy as found, not judged yet.
    pub fn found(path: PathBuf, record: Option<Record>) -> Copy<()> {
        let size = record.as_ref().and_then(|r| r.copy_fingerprint.as_deref()).map(|f| f.size());
        Copy { path, record, standing: (), size }
    }

    /// A copy as `standing::examine` found it at `path`.
    pub fn examined(path: PathBuf, e: standing::Examined) -> Copy {
        let mut c = Copy::found(path, e.record).judged(e.standing);
        c.size = e.size.or(c.size);
        c
    }

    /// The copy with where it stands.
    pub fn judged(self, standing: CopyState) -> Copy {
        Copy { path: self.path, record: self.record, standing, size: self.size }
    }
}

/// A copy made from a home, with what it was made for: its home as detected,
/// its profile and the options it was made with (from its record); with the
/// key that proves its record, or why the record is not sealed by the copy's
/// output.
pub struct Identified {
    pub copy: Copy<()>,
    pub home: Home,
    pub profile: Profile,
    pub options: Options,
    pub sealed: std::result::Result<Option<SealKey>, Unsealed>,
}

/// The profile and options a copy was made with: from its record, or, for a
/// copy without one, from its place in the layout (`<DIR>/<profile>/<home>`).
pub fn identify(path: &Path, catalog: &Catalog) -> Result<Identified> {
    let h = home::detect(path, catalog)?;
    let rec = checked_record(&h, catalog)?;
    let name = match &rec {
        Some(r) => r.profile.clone(),
        None => profile_from_layout(&h, catalog)?,
    };
    let sealed = match &rec {
        Some(r) => record::sealed_by_output(&h.path, r).map(Some),
        None => no_record(&h.path, &name),
    };
    let profile = catalog.select(&h.product, &h.version, Some(&[name]))?.remove(0);
    let options = Options::of_copy(
        rec.as_ref().is_some_and(|r| r.skip_config_optimization),
        rec.as_ref().and_then(|r| r.deployment_toml_sha256.clone()),
    );
    Ok(Identified { copy: Copy::found(h.path.clone(), rec), home: h, profile, options, sealed })
}

/// A copy without a record is checked against its profile alone, unless its
/// output seals its copies' records: then the record was removed.
fn no_record(copy: &Path, profile: &str) -> std::result::Result<Option<SealKey>, Unsealed> {
    match seal::key_of_copy(copy, profile) {
        Ok(k) => Err(Unsealed {
            why: format!(
                "it has no {} record, though its output seals every copy's record with {}: the record was removed",
                record::RECORD_FILE,
                k.path.display()
            ),
            hint: seal::RESEAL_HINT.into(),
        }),
        Err(_) => Ok(None),
    }
}

/// The copy's record when it has one, refused when it is not as the tool
/// wrote it (see `model::standing`); whether its output's key seals it is
/// asked apart ([`record::sealed_by_output`]).
pub fn checked_record(h: &Home, catalog: &Catalog) -> Result<Option<Record>> {
    if std::fs::symlink_metadata(h.path.join(record::RECORD_FILE)).is_err() {
        return Ok(None);
    }
    let names = catalog.for_version(&h.version).map(|p| p.name.as_str());
    let layout = standing::layout_profile(&h.path, names);
    Ok(Some(standing::read_checked(&h.path, layout.as_deref())?))
}

fn profile_from_layout(h: &Home, catalog: &Catalog) -> Result<String> {
    let name = h
        .path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| catalog.for_pack(&h.product, &h.version).any(|p| &p.name == n));
    match name {
        Some(n) => Ok(n),
        None => refuse(
            format!(
                "{} has no {} record and is not inside a <profile>/ directory",
                h.path.display(),
                record::RECORD_FILE
            ),
            "verify copies made by apim-profiles split, or optimize the home first",
        ),
    }
}
