//! What an update did to one copy, as data: the report shows it, the copy's
//! record keeps it. Running the tool and reading its output is `crate::update`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

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

impl fmt::Display for UpdateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(v.as_str().unwrap_or_default())
    }
}

/// What one copy's update came to (`profiles[].update` in the JSON report,
/// and `update` in the copy's record). The fields are in alphabetical order
/// because that is the order the JSON contract has always listed them in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
}

/// The last update as a copy's record keeps it (`update` in
/// `.apim-profiles.json`): the result as this version writes it, or the JSON
/// of an earlier version's result, kept exactly as read (the record's seal
/// covers it), of which the status, level and conflicts are read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RecordedUpdate {
    Result(Box<UpdateResult>),
    Earlier(serde_json::Value),
}

impl<'de> Deserialize<'de> for RecordedUpdate {
    /// A result that reads as this version's and writes back to the same
    /// JSON is typed; any other (a field missing, added or renamed by another
    /// version) is kept as it was, so that writing the record back does not
    /// change it.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match serde_json::from_value::<UpdateResult>(v.clone()) {
            Ok(r) if serde_json::to_value(&r).is_ok_and(|back| back == v) => Ok(RecordedUpdate::Result(Box::new(r))),
            _ => Ok(RecordedUpdate::Earlier(v)),
        }
    }
}

impl RecordedUpdate {
    /// The result as the record keeps it (its notes are the report's).
    pub fn of(r: &UpdateResult) -> RecordedUpdate {
        RecordedUpdate::Result(Box::new(UpdateResult { notes: Vec::new(), ..r.clone() }))
    }

    /// How the update ended. An earlier result whose status does not read
    /// counts as failed: such a copy is never taken as current.
    pub fn status(&self) -> UpdateStatus {
        match self {
            RecordedUpdate::Result(r) => r.status.clone(),
            RecordedUpdate::Earlier(v) => {
                v.get("status").and_then(|s| serde_json::from_value(s.clone()).ok()).unwrap_or(UpdateStatus::Failed)
            }
        }
    }

    /// The update level the copy reached, when the tool said.
    pub fn level(&self) -> Option<String> {
        match self {
            RecordedUpdate::Result(r) => r.level.clone(),
            RecordedUpdate::Earlier(v) => earlier_text(v, "level"),
        }
    }

    /// The files the update stopped on.
    pub fn conflicts(&self) -> Vec<String> {
        match self {
            RecordedUpdate::Result(r) => r.conflicts.clone(),
            RecordedUpdate::Earlier(v) => v
                .get("conflicts")
                .and_then(|c| c.as_array())
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        }
    }

    /// When the run ended (RFC 3339, UTC).
    pub fn finished_at(&self) -> Option<String> {
        match self {
            RecordedUpdate::Result(r) => r.finished_at.clone(),
            RecordedUpdate::Earlier(v) => earlier_text(v, "finished_at"),
        }
    }

    pub fn message(&self) -> String {
        match self {
            RecordedUpdate::Result(r) => r.message.clone(),
            RecordedUpdate::Earlier(v) => earlier_text(v, "message").unwrap_or_default(),
        }
    }

    /// The whole result, when this version wrote it.
    pub fn result(&self) -> Option<&UpdateResult> {
        match self {
            RecordedUpdate::Result(r) => Some(r),
            RecordedUpdate::Earlier(_) => None,
        }
    }
}

fn earlier_text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|l| l.as_str()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field added out of order would change the bytes playbooks see, and
    /// the seal of records written when the result was kept as a JSON value
    /// (its keys sorted).
    #[test]
    fn fields_serialize_in_the_contract_order() {
        let mut r = UpdateResult::new("logs".into());
        r.notes.push("not in the JSON".into());
        let direct = serde_json::to_string(&r).unwrap();
        let sorted = serde_json::to_string(&serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(direct, sorted);
        assert!(!direct.contains("not in the JSON"));
    }
}
