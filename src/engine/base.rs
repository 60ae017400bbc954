//! The kept base: beside the copies, `<DIR>/.apim-profiles-base/<home>` is the
//! home as the update tool last left it (the pack, updated; never optimized,
//! never deployed), with its record at `<DIR>/.apim-profiles-base/<home>.json`
//! (one base per pack of a 4.5.0+ deployment).
//! A new update level is applied to it once; every copy is then derived from
//! it again (WSO2's update FAQ: update the pack, then distribute it and run
//! each profile). It is used only while its record says it is whole, it was
//! made from the home as the home is now, and nothing in it changed since the
//! tool left it; otherwise it is made again from the home.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::home::Home;
use crate::model::tree::{self, Tree};

/// The directory of the kept base in an output.
pub const BASE_DIR: &str = ".apim-profiles-base";

/// Where the base's last operation left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseState {
    /// Whole: the tool finished with it at `level`.
    Ready,
    /// The tool was running on it: a run that did not finish leaves this, and
    /// the base is made again from the home.
    Updating,
    /// The update left it failing the product's own checks (a core
    /// directory gone): never derived from; made again from the home.
    Broken,
}

/// `record.json` of the kept base.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseRecord {
    pub tool_version: String,
    pub product: String,
    pub version: String,
    /// The home it was made from, and that home's fingerprint then.
    pub source: String,
    pub source_fingerprint: String,
    pub state: BaseState,
    /// The update level the tool reported.
    pub level: Option<String>,
    /// [`tree::identity`] of the base as the tool left it.
    pub identity: String,
}

/// The kept base of an output, as found.
pub struct KeptBase {
    pub dir: PathBuf,
    pub path: PathBuf,
    /// `<home>.json` beside it.
    record_name: String,
    pub record: Option<BaseRecord>,
}

impl KeptBase {
    /// The base of `out` for `home` (nothing is read yet but the record).
    pub fn of(out: &Path, home: &Home) -> KeptBase {
        let dir = out.join(BASE_DIR);
        let path = dir.join(&home.dir_name);
        let record_name = format!("{}.json", home.dir_name.to_string_lossy());
        let record = crate::safe_fs::read_own_bounded(&dir.join(&record_name), 1 << 20)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok());
        KeptBase { dir, path, record_name, record }
    }

    /// The record as it is on disk now (after this run wrote it).
    pub fn record_now(&self) -> Result<Option<BaseRecord>> {
        Ok(crate::safe_fs::read_own_bounded(&self.dir.join(&self.record_name), 1 << 20)?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Whether the base can be updated and derived from, with its tree; the
    /// reason when it cannot (it is then made again from the home).
    pub fn usable(&self, home: &Home, home_fingerprint: &str) -> Result<Usable> {
        let Some(rec) = &self.record else {
            return Ok(Usable::No("there is none yet".into()));
        };
        let why = if rec.state == BaseState::Broken {
            "its last update left it failing verification"
        } else if rec.state != BaseState::Ready {
            "an update of it did not finish"
        } else if rec.source_fingerprint != home_fingerprint
            || rec.product != home.product
            || rec.version != home.version
        {
            "the home changed since it was made"
        } else if !std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.is_dir()) {
            "it is gone"
        } else {
            ""
        };
        if !why.is_empty() {
            return Ok(Usable::No(why.into()));
        }
        let tree = Tree::scan(&self.path)?;
        if tree::identity(&tree) != rec.identity {
            return Ok(Usable::No("it changed since the update tool left it".into()));
        }
        Ok(Usable::Yes(tree))
    }

    /// Writes the base's record (atomically, readable by its owner only).
    pub fn write_record(&self, rec: &BaseRecord) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(rec)?;
        crate::safe_fs::write_atomic(&self.dir, &self.record_name, &bytes, 0o600)
            .with_context(|| format!("writing the record of the kept base in {}", self.dir.display()))
    }

    /// The record of the base left by the tool at `level`, made from `home`.
    pub fn record_for(
        home: &Home,
        home_fingerprint: &str,
        state: BaseState,
        level: Option<String>,
        tree: &Tree,
    ) -> BaseRecord {
        BaseRecord {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            product: home.product.clone(),
            version: home.version.clone(),
            source: home.path.display().to_string(),
            source_fingerprint: home_fingerprint.to_string(),
            state,
            level,
            identity: tree::identity(tree),
        }
    }
}

/// What [`KeptBase::usable`] found.
pub enum Usable {
    Yes(Tree),
    No(String),
}
