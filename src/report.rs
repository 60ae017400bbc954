//! What a run reports: one JSON document for scripts (`--json`), the same facts
//! as text for people. The JSON schema is documented in the README.

use serde::Serialize;

use crate::copy::CopyStats;
use crate::plan::{Action, Plan};

#[derive(Debug, Serialize, Default, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: crate::schema::SchemaVersion,
    pub command: String,
    /// False when the run changed nothing on disk.
    pub changed: bool,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    pub profiles: Vec<ProfileReport>,
    pub warnings: Vec<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Serialize, Default, Clone, schemars::JsonSchema)]
pub struct ProfileReport {
    pub profile: String,
    pub path: String,
    /// created | replaced | current | optimized | would-create | would-replace |
    /// would-optimize | stale | verified | drifted | updated | conflicts | failed
    pub status: String,
    pub changed: bool,
    pub entries_kept: usize,
    pub entries_removed: usize,
    pub removed: Vec<Removed>,
    pub rewritten: Vec<String>,
    pub backups: Vec<BackupMade>,
    pub notes: Vec<String>,
    pub files_copied: u64,
    pub bytes_copied: u64,
    pub files_cloned: u64,
    pub bytes_to_copy: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// `--archive`: the archive of the copy, written or already there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// Dry-run: deployment.toml keys added (+), changed (~) and removed (-)
    /// relative to the home's own file, secrets masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// Unified diff of every file whose content changes, secrets masked (dry-run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Serialize, Clone, schemars::JsonSchema)]
pub struct Removed {
    pub path: String,
    pub step: String,
    pub dir: bool,
    pub entries: usize,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Clone, schemars::JsonSchema)]
pub struct BackupMade {
    pub from: String,
    pub to: String,
}

impl ProfileReport {
    /// The plan's facts; status and copy figures are filled in by the command.
    pub fn from_plan(plan: &Plan, path: &str) -> ProfileReport {
        let mut r = ProfileReport {
            profile: plan.profile.clone(),
            path: path.to_string(),
            entries_kept: plan.tree.entries.len(),
            bytes_to_copy: plan.tree.total_bytes(),
            ..Default::default()
        };
        for a in &plan.actions {
            match a {
                Action::Remove { path, step, entries, bytes, dir } => {
                    r.entries_removed += entries;
                    r.removed.push(Removed {
                        path: path.display().to_string(),
                        step: step.clone(),
                        dir: *dir,
                        entries: *entries,
                        bytes: *bytes,
                    });
                }
                Action::Backup { from, to, .. } => {
                    r.backups.push(BackupMade { from: from.display().to_string(), to: to.display().to_string() })
                }
                Action::Rewrite { path, .. } => r.rewritten.push(path.display().to_string()),
                Action::Note { message, .. } => r.notes.push(message.clone()),
            }
        }
        r
    }

    pub fn add_copy(&mut self, s: &CopyStats) {
        self.files_copied += s.files;
        self.bytes_copied += s.bytes;
        self.files_cloned += s.cloned;
    }
}

/// `1.2 MB`, for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The text form of a profile's result, for people.
pub fn print_profile(r: &ProfileReport, dry_run: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!("== {} ({}): {}\n", r.profile, r.status, r.path));
    if dry_run {
        if let Some(d) = &r.diff {
            s.push_str(d);
        }
        if !r.settings.is_empty() {
            s.push_str("deployment.toml settings, relative to the home's own:\n");
            for l in &r.settings {
                s.push_str(&format!("  {l}\n"));
            }
        }
        if !r.removed.is_empty() {
            s.push_str(&format!(
                "removed ({} entries, {}):\n",
                r.entries_removed,
                human_bytes(r.removed.iter().map(|x| x.bytes).sum())
            ));
            let mut last_step = "";
            for x in &r.removed {
                if x.step != last_step {
                    s.push_str(&format!("  [{}]\n", x.step));
                    last_step = &x.step;
                }
                let slash = if x.dir { "/" } else { "" };
                let more = if x.entries > 1 { format!("  ({} entries)", x.entries) } else { String::new() };
                s.push_str(&format!("    - {}{slash}{more}\n", x.path));
            }
        }
        for b in &r.backups {
            s.push_str(&format!("backup: {} -> {}\n", b.from, b.to));
        }
    }
    for n in &r.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    for d in &r.drift {
        s.push_str(&format!("drift: {d}\n"));
    }
    if let Some(a) = &r.archive {
        s.push_str(&format!("archive: {a}\n"));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("error: {e}\n"));
    }
    if r.status == "verified" || r.status == "drifted" {
        let verdict = if r.drift.is_empty() {
            "matches its profile".to_string()
        } else {
            format!("{} differences from its profile", r.drift.len())
        };
        s.push_str(&format!("summary: {} entries, {verdict}\n", r.entries_kept));
        return s;
    }
    let copied = if dry_run {
        format!("{} to copy", human_bytes(r.bytes_to_copy))
    } else if r.files_copied > 0 {
        format!("{} files copied ({}; {} cloned)", r.files_copied, human_bytes(r.bytes_copied), r.files_cloned)
    } else {
        "nothing copied".to_string()
    };
    s.push_str(&format!(
        "summary: {} entries kept, {} removed, {} rewritten, {} backups, {copied}\n",
        r.entries_kept,
        r.entries_removed,
        r.rewritten.len(),
        r.backups.len()
    ));
    s
}
