//! Reading the tool's output: the conflicts it lists, and where its logs are.

use std::path::Path;

use anyhow::{Context, Result};

pub use crate::model::update_result::{UpdateResult, UpdateStatus};

/// The copy now lives at `to` (published, or kept after a failure): every
/// path the result names follows it, and `logs` names what exists there.
pub fn relocate(res: &mut UpdateResult, from: &Path, to: &Path) {
    let (f, t) = (from.display().to_string(), to.display().to_string());
    res.message = res.message.replace(&f, &t);
    res.logs = logs_of(to);
    for n in &mut res.notes {
        *n = n.replace(&f, &t);
    }
}

/// The tool's own output (password masked), kept in each copy it ran in.
pub const OUTPUT_LOG: &str = ".apim-profiles-update.log";

/// Where a copy's update logs are: the tool's `updates/logs/` when it wrote
/// them, else the tool's output this tool kept.
pub fn logs_of(copy: &Path) -> String {
    let tool_logs = copy.join("updates/logs");
    if tool_logs.is_dir() {
        tool_logs.display().to_string()
    } else {
        copy.join(OUTPUT_LOG).display().to_string()
    }
}

/// Keeps the tool's (masked) output in the copy, never through a link.
pub fn keep_output(copy: &Path, lines: &[String]) -> Result<()> {
    use std::io::Write;
    let p = copy.join(OUTPUT_LOG);
    let mut f = crate::sys::open_append_nofollow(&p).with_context(|| format!("writing {}", p.display()))?;
    for l in lines {
        writeln!(f, "{l}").with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// The `--template` of a plain update run (WSO2 lists `--template` for it,
/// not for `apply-update`): the conflicts, on a line of their own.
pub const TEMPLATE: &str = "APIM-PROFILES-RESULT Conflicts: {{.Conflicts}}";

/// The `[a b c]` list after `Conflicts: ` on a line of the tool's output: our
/// `--template` line, or the summary line a run without one prints.
pub fn parse_conflicts(line: &str) -> Option<Vec<String>> {
    let start = line.find("Conflicts: ")? + "Conflicts: ".len();
    let tail = &line[start..];
    let open = tail.find('[')?;
    if tail[..open].trim() != "" {
        return None;
    }
    let close = tail[open..].find(']')? + open;
    Some(tail[open + 1..close].split_whitespace().map(str::to_string).collect())
}

/// Takes in the conflicts one run's output lists (the last such line).
pub fn take_conflicts(result: &mut UpdateResult, lines: &[String]) {
    if let Some(c) = lines.iter().rev().find_map(|l| parse_conflicts(l)) {
        result.conflicts = c;
    }
}

/// One word for how the tool's run ended, for the progress line.
pub fn outcome_word(r: &UpdateResult) -> String {
    let mut w = serde_json::to_value(&r.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    if let Some(l) = &r.level {
        w.push_str(&format!(" (level {l})"));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conflict_lists() {
        let l = "APIM-PROFILES-RESULT Conflicts: [repository/conf/deployment.toml a/b.j2]";
        assert_eq!(parse_conflicts(l).unwrap(), ["repository/conf/deployment.toml", "a/b.j2"]);
        let d = "Added: [x] Modified: [] Removed: [] Conflicts: []";
        assert!(parse_conflicts(d).unwrap().is_empty());
        assert!(parse_conflicts("Conflicts: none [x]").is_none());
    }
}
