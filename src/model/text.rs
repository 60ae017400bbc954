//! Positions in text, for messages that point into a file (`file:line:col`).

/// 1-based line and column of a byte offset, for messages that point into a file.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// `:line:col` of where a parse error starts, for `file:line:col` messages
/// (empty when the parser gave no place).
pub fn at(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|s| {
        let (line, col) = line_col(text, s.start);
        format!(":{line}:{col}")
    })
    .unwrap_or_default()
}
