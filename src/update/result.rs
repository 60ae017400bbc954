//! Reading the tool's output: the lists of its `--template` line.

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
