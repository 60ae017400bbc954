//! Entry-name patterns of the profile definitions.

use std::path::Path;

/// A shell pattern as `find -name` reads it (`*`, `?`, `[..]`; `#` is plain).
#[derive(Debug, Clone)]
pub struct NamePattern(globset::GlobMatcher);

impl NamePattern {
    pub fn new(pat: &str) -> Result<NamePattern, globset::Error> {
        let g = globset::GlobBuilder::new(pat).literal_separator(true).backslash_escape(true).build()?;
        Ok(NamePattern(g.compile_matcher()))
    }
    pub fn matches(&self, name: &std::ffi::OsStr) -> bool {
        self.0.is_match(Path::new(name))
    }
}
