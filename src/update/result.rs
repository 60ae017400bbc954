//! Reading the tool's output: the lists of its `--template` line.

pub use crate::model::update_result::{UpdateResult, UpdateStatus};

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
