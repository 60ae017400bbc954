//! What an update did to one copy, as data: the report shows it, the copy's
//! record keeps it. Running the tool and reading its output is `crate::update`.

use serde::{Deserialize, Serialize};

use crate::outcome::Status;

/// How one copy's update ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateStatus {
    Updated,
    Conflicts,
    Failed,
    Reverted,
    /// `update --revert`: the tool rolled its last update back, as asked.
    RolledBack,
    TimedOut,
    Interrupted,
}

/// What one copy's update came to (`profiles[].update` in the JSON report,
/// and `update` in the copy's record). The fields are in alphabetical order
/// because that is the order the JSON contract has always listed them in.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UpdateResult {
    pub added: Vec<String>,
    pub conflicts: Vec<String>,
    pub duration_ms: u64,
    /// When the run ended (RFC 3339, UTC): `status` shows it.
    pub finished_at: Option<String>,
    /// The update level the copy is at after the run (the tool's
    /// `current-state`), when the tool says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The level before the run, when the tool said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_before: Option<String>,
    pub logs: String,
    pub message: String,
    pub modified: Vec<String>,
    /// For the report's notes, not part of the result's JSON.
    #[serde(skip, default)]
    pub notes: Vec<String>,
    pub removed: Vec<String>,
    /// What re-optimization did after the update (entries removed again...).
    pub reoptimized: Vec<String>,
    pub runs: u32,
    pub self_updates: u32,
    pub status: UpdateStatus,
    /// The tool's last exit code.
    pub tool_exit_code: Option<i32>,
}

impl UpdateResult {
    /// The status of the copy this result leaves.
    pub fn copy_status(&self) -> Status {
        match self.status {
            UpdateStatus::Updated => Status::Updated,
            UpdateStatus::Conflicts => Status::Conflicts,
            UpdateStatus::RolledBack => Status::Reverted,
            _ => Status::Failed,
        }
    }
    /// A result before the tool ran; `logs` is where the tool writes its logs.
    pub fn new(logs: String) -> UpdateResult {
        UpdateResult {
            status: UpdateStatus::Failed,
            tool_exit_code: None,
            runs: 0,
            self_updates: 0,
            added: vec![],
            modified: vec![],
            removed: vec![],
            conflicts: vec![],
            reoptimized: vec![],
            logs,
            message: String::new(),
            notes: vec![],
            duration_ms: 0,
            finished_at: None,
            level: None,
            level_before: None,
        }
    }
    /// Whether the copy is published (updated, or waiting for a person).
    pub fn keeps_copy(&self) -> bool {
        matches!(self.status, UpdateStatus::Updated | UpdateStatus::Conflicts | UpdateStatus::RolledBack)
    }
    /// The form kept in the copy's record.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field added out of order would change the bytes playbooks see.
    #[test]
    fn fields_serialize_in_the_contract_order() {
        let mut r = UpdateResult::new("logs".into());
        r.notes.push("not in the JSON".into());
        let direct = serde_json::to_string(&r).unwrap();
        let sorted = serde_json::to_string(&r.to_json()).unwrap();
        assert_eq!(direct, sorted);
        assert!(!direct.contains("not in the JSON"));
    }
}
