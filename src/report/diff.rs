//! The unified diff a dry-run prints: every file whose content the plan
//! changes, old content against new, secrets masked line by line before the
//! diff is made so that no hunk can show a password.

use anyhow::Result;

use crate::model::config::semantic_diff;
use crate::model::mask::mask_text_tagged;
use crate::model::plan::{Action, Plan};
use crate::model::tree::Origin;

fn read_origin(plan: &Plan, o: &Origin) -> Result<Vec<u8>> {
    Ok(match o {
        Origin::Generated(b) => b.as_ref().clone(),
        Origin::Source(p) | Origin::SourceFresh(p) => crate::safe_fs::read_inside(&plan.root, p)?,
    })
}

/// The diff of all rewritten files of a plan, paths as `a/<rel>` and `b/<rel>`.
pub fn diff(plan: &Plan) -> Result<String> {
    let mut out = String::new();
    for a in &plan.actions {
        let Action::Rewrite { path, before, after, .. } = a else {
            continue;
        };
        let old = read_origin(plan, before)?;
        let new = read_origin(plan, after)?;
        let name = path.display().to_string();
        match (std::str::from_utf8(&old), std::str::from_utf8(&new)) {
            (Ok(o), Ok(n)) => {
                // Tagged masks: a secret that changed still shows as a changed line.
                let (o, n) = (mask_text_tagged(o), mask_text_tagged(n));
                let d = similar::TextDiff::from_lines(&o, &n);
                let text =
                    d.unified_diff().context_radius(3).header(&format!("a/{name}"), &format!("b/{name}")).to_string();
                if text.is_empty() {
                    continue;
                }
                out.push_str(&text);
                if !text.ends_with('\n') {
                    out.push('\n');
                }
            }
            _ => out.push_str(&format!("Binary files a/{name} and b/{name} differ\n")),
        }
    }
    Ok(out)
}

/// The settings summary of a plan's deployment.toml: keys added, changed and
/// removed relative to the file it replaces (the home's own), secrets masked.
pub fn settings_summary(plan: &Plan) -> Result<Vec<String>> {
    for a in &plan.actions {
        let Action::Rewrite { path, before, after, .. } = a else { continue };
        if path.extension().is_some_and(|e| e == "toml") {
            let old = String::from_utf8_lossy(&read_origin(plan, before)?).into_owned();
            let new = String::from_utf8_lossy(&read_origin(plan, after)?).into_owned();
            return Ok(semantic_diff(&old, &new));
        }
    }
    Ok(Vec::new())
}
