//! What one copy's update came to: the tool's exit code read as the
//! documented outcomes, and the lists of its `--template` output.

use serde::Serialize;

use crate::outcome::Status;

/// How one copy's update ended.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateStatus {
    Updated,
    Conflicts,
    Failed,
    Reverted,
    TimedOut,
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateResult {
    pub status: UpdateStatus,
    /// The tool's last exit code.
    pub tool_exit_code: Option<i32>,
    pub runs: u32,
    pub self_updates: u32,
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    pub conflicts: Vec<String>,
    /// What re-optimization did after the update (entries removed again...).
    pub reoptimized: Vec<String>,
    pub logs: String,
    pub message: String,
    #[serde(skip)]
    pub notes: Vec<String>,
    pub duration_ms: u64,
}

impl UpdateResult {
    /// The status of the copy this result leaves.
    pub fn copy_status(&self) -> Status {
        match self.status {
            UpdateStatus::Updated => Status::Updated,
            UpdateStatus::Conflicts => Status::Conflicts,
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
        }
    }
    /// Whether the copy is published (updated, or waiting for a person).
    pub fn keeps_copy(&self) -> bool {
        matches!(self.status, UpdateStatus::Updated | UpdateStatus::Conflicts)
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

pub const TEMPLATE: &str =
    "APIM-PROFILES-RESULT Added: {{.Added}} | Modified: {{.Modified}} | Removed: {{.Removed}} | Conflicts: {{.Conflicts}}";

/// `[a b c]` lists from the tool's `--template` output.
pub fn parse_result_line(line: &str) -> Option<[Vec<String>; 4]> {
    let rest = line.trim().strip_prefix("APIM-PROFILES-RESULT ")?;
    let mut out: [Vec<String>; 4] = Default::default();
    for (i, field) in ["Added: ", "Modified: ", "Removed: ", "Conflicts: "].iter().enumerate() {
        let start = rest.find(field)? + field.len();
        let tail = &rest[start..];
        let open = tail.find('[')?;
        let close = tail[open..].find(']')? + open;
        out[i] = tail[open + 1..close].split_whitespace().map(str::to_string).collect();
    }
    Some(out)
}

/// Takes in the `--template` lists of one run's output.
pub fn take_lists(result: &mut UpdateResult, lines: &[String]) {
    if let Some([a, m, r, c]) = lines.iter().rev().find_map(|l| parse_result_line(l)) {
        result.added.extend(a);
        result.modified.extend(m);
        result.removed.extend(r);
        result.conflicts = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_template_output() {
        let l = "APIM-PROFILES-RESULT Added: [a/b c] | Modified: [] | Removed: [x] | Conflicts: [repository/conf/deployment.toml]";
        let [a, m, r, c] = parse_result_line(l).unwrap();
        assert_eq!(a, ["a/b", "c"]);
        assert!(m.is_empty());
        assert_eq!(r, ["x"]);
        assert_eq!(c, ["repository/conf/deployment.toml"]);
    }
}
