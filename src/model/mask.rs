//! Masking of everything the tool prints (dry-run diffs, the settings
//! summary, errors, JSON, the update tool's output), by the policy of
//! `model::secret`: `[secrets]` values, secret-named keys, URL passwords, all
//! TOML string forms, XML elements.
//!
//! Masked values can carry a tag (a hash of the value under a key drawn at
//! random for each run, never printed), so that a diff still shows a secret
//! that changed without any way to recover or test-guess it.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

pub use crate::model::secret::{is_secret_key, mask_urls, MASK};

fn run_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        // A known key would let a reader test guesses against a tagged mask:
        // without randomness the run stops rather than print one.
        crate::sys::random(&mut k).expect("a key for masking secrets in a diff");
        k
    })
}

/// The mask for one value: plain, or tagged by a keyed hash of the value.
fn mask_for(value: &str, tagged: bool) -> String {
    if !tagged || value.is_empty() {
        return MASK.to_string();
    }
    let mut h = Sha256::new();
    h.update(run_key());
    h.update(value.as_bytes());
    let d = h.finalize();
    format!("{MASK}~{:02x}{:02x}{:02x}", d[0], d[1], d[2])
}

/// Masks the secrets of a TOML or XML text, or of a program's output,
/// keeping line endings. Tagged masks differ when the values differ.
pub struct Masker {
    tagged: bool,
    table: String,
    /// Inside a multi-line string: its closing delimiter, and whether its
    /// value is secret.
    multiline: Option<(&'static str, bool)>,
}

impl Masker {
    pub fn new(tagged: bool) -> Masker {
        Masker { tagged, table: String::new(), multiline: None }
    }

    pub fn text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for piece in text.split_inclusive('\n') {
            let (body, nl) = match piece.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (piece, ""),
            };
            out.push_str(&self.line(body));
            out.push_str(nl);
        }
        out
    }

    pub fn line(&mut self, line: &str) -> String {
        if let Some((delim, secret)) = self.multiline {
            let (body, rest) = match line.find(delim) {
                Some(p) => {
                    self.multiline = None;
                    (&line[..p], &line[p..])
                }
                None => (line, ""),
            };
            let body = if secret && !body.trim().is_empty() { mask_for(body, self.tagged) } else { mask_urls(body) };
            return format!("{body}{rest}");
        }
        let t = line.trim();
        if t.starts_with('[') && !t.contains('=') {
            self.table = t.trim_matches(|c| c == '[' || c == ']' || c == ' ').replace(['"', '\'', ' '], "");
            return line.to_string();
        }
        if let Some(masked) = mask_comment(line) {
            return masked;
        }
        let line = self.assignments(line);
        let line = mask_urls(&line);
        mask_xml_elements(&line, self.tagged)
    }

    fn in_secrets_table(&self) -> bool {
        self.table == "secrets" || self.table.starts_with("secrets.")
    }

    /// `key = value` pairs, at the start of a line or inside an inline table.
    /// Commented-out settings are masked too: `#password = "..."` is often a
    /// real value someone disabled.
    fn assignments(&mut self, line: &str) -> String {
        if !line.contains('=') {
            return line.to_string();
        }
        let chars: Vec<char> = line.chars().collect();
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while i < chars.len() {
            let start = i;
            let key = match key_at(&chars, i) {
                KeyAt::Key(key, next) => {
                    i = next;
                    key
                }
                KeyAt::NotAKey => {
                    out.push(chars[i]);
                    i += 1;
                    continue;
                }
                KeyAt::Unclosed => {
                    out.extend(&chars[i..]);
                    break;
                }
            };
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let is_assign = j < chars.len() && chars[j] == '=' && chars.get(j + 1) != Some(&'=');
            if !is_assign {
                out.extend(&chars[start..i]);
                continue;
            }
            let secret = is_secret_key(&key) || self.in_secrets_table();
            let mut k = j + 1;
            while k < chars.len() && chars[k].is_whitespace() {
                k += 1;
            }
            out.extend(&chars[start..k]);
            // A multi-line string that does not close on this line.
            let rest: String = chars[k..].iter().collect();
            for delim in ["\"\"\"", "'''"] {
                if rest.starts_with(delim) && !rest[3..].contains(delim) {
                    self.multiline = Some((delim, secret));
                    let body = &rest[3..];
                    out.push_str(delim);
                    if secret && !body.trim().is_empty() {
                        out.push_str(&mask_for(body, self.tagged));
                    } else {
                        out.push_str(body);
                    }
                    return out;
                }
            }
            let end = value_end(&chars, k);
            let value: String = chars[k..end].iter().collect();
            if !secret {
                out.push_str(&value);
                i = end;
                // Beside a URL with a password, a comment is masked too.
                if mask_urls(&value) != value && mask_comment_after(&chars, end, &mut out) {
                    return out;
                }
                continue;
            }
            out.push_str(&mask_value(&value, self.tagged));
            i = end;
            if mask_comment_after(&chars, end, &mut out) {
                return out;
            }
        }
        out
    }
}

/// A secret value as written (quoted, triple-quoted or bare), masked.
fn mask_value(value: &str, tagged: bool) -> String {
    match value.chars().next().filter(|c| *c == '"' || *c == '\'') {
        Some(q) => {
            let triple = value.starts_with(&format!("{q}{q}{q}"));
            let d = if triple { format!("{q}{q}{q}") } else { q.to_string() };
            let inner = value.trim_start_matches(q).trim_end_matches(q);
            format!("{d}{}{d}", mask_for(inner, tagged))
        }
        None if !value.is_empty() => mask_for(value, tagged),
        None => String::new(),
    }
}

/// A comment beside a secret (`password = "x" # was OldPw`) often holds
/// another one: when a `#` comment follows `end`, it is written masked and
/// the line is done.
fn mask_comment_after(chars: &[char], end: usize, out: &mut String) -> bool {
    let mut c = end;
    while c < chars.len() && chars[c].is_whitespace() {
        c += 1;
    }
    if chars.get(c) != Some(&'#') || chars[c + 1..].iter().all(|ch| ch.is_whitespace()) {
        return false;
    }
    out.extend(&chars[end..=c]);
    out.push(' ');
    out.push_str(MASK);
    true
}

/// A comment that names a secret with a colon (`# password: OldPw`,
/// `<!-- keystore password: x -->`): what follows the colon is masked.
fn mask_comment(line: &str) -> Option<String> {
    let t = line.trim_start();
    let body_at = if t.starts_with('#') || t.starts_with("//") || t.starts_with("<!--") {
        line.len() - t.len()
    } else {
        return None;
    };
    let colon = line[body_at..].find(':')? + body_at;
    let key = line[body_at..colon].trim_end().rsplit(|c: char| !is_key_char(c)).next().unwrap_or("");
    if key.is_empty() || !is_secret_key(key) || line[colon + 1..].trim().is_empty() {
        return None;
    }
    let tail = if line.trim_end().ends_with("-->") { " -->" } else { "" };
    Some(format!("{} {MASK}{tail}", &line[..=colon]))
}

/// What starts at a position of a line: a key (bare or quoted) and the
/// position after it, no key, or a quote that does not close.
enum KeyAt {
    Key(String, usize),
    NotAKey,
    Unclosed,
}

fn key_at(chars: &[char], i: usize) -> KeyAt {
    if chars[i] == '"' || chars[i] == '\'' {
        let q = chars[i];
        let mut j = i + 1;
        while j < chars.len() && chars[j] != q {
            j += 1;
        }
        if j >= chars.len() {
            return KeyAt::Unclosed;
        }
        KeyAt::Key(chars[i + 1..j].iter().collect(), j + 1)
    } else if is_key_char(chars[i]) {
        let mut j = i;
        while j < chars.len() && is_key_char(chars[j]) {
            j += 1;
        }
        KeyAt::Key(chars[i..j].iter().collect(), j)
    } else {
        KeyAt::NotAKey
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// Where a TOML value starting at `k` ends: after its closing quote(s), or
/// before the `,`, `}` or `#` that follows a bare value.
fn value_end(chars: &[char], k: usize) -> usize {
    if k >= chars.len() {
        return k;
    }
    let c = chars[k];
    if c == '"' || c == '\'' {
        let triple = chars.len() >= k + 3 && chars[k + 1] == c && chars[k + 2] == c;
        if triple {
            let mut j = k + 3;
            while j + 2 < chars.len() {
                if chars[j] == c && chars[j + 1] == c && chars[j + 2] == c {
                    return j + 3;
                }
                j += 1;
            }
            return chars.len();
        }
        let mut j = k + 1;
        while j < chars.len() {
            if chars[j] == '\\' && c == '"' {
                j += 2;
                continue;
            }
            if chars[j] == c {
                return j + 1;
            }
            j += 1;
        }
        return chars.len();
    }
    let mut j = k;
    while j < chars.len() && !matches!(chars[j], ',' | '}' | '#') {
        j += 1;
    }
    while j > k && chars[j - 1].is_whitespace() {
        j -= 1;
    }
    j
}

/// `<Password>value</Password>` and `<parameter name="password">value</parameter>`.
fn mask_xml_elements(line: &str, tagged: bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let tag = &after[..close];
        let name = tag.split_whitespace().next().unwrap_or("");
        let secret = !name.starts_with('/')
            && !name.starts_with('!')
            && !name.starts_with('?')
            && !tag.ends_with('/')
            && (is_secret_key(name) || attr_names_secret(tag));
        let body_start = open + 1 + close + 1;
        if secret {
            let end_tag = format!("</{}", name);
            if let Some(end) = rest[body_start..].find(&end_tag) {
                if end > 0 {
                    out.push_str(&rest[..body_start]);
                    out.push_str(&mask_for(&rest[body_start..body_start + end], tagged));
                    rest = &rest[body_start + end..];
                    continue;
                }
            }
        }
        out.push_str(&rest[..body_start]);
        rest = &rest[body_start..];
    }
    out.push_str(rest);
    out
}

fn attr_names_secret(tag: &str) -> bool {
    for quote in ['"', '\''] {
        let pat = format!("name={}", quote);
        if let Some(p) = tag.find(&pat) {
            let v = &tag[p + pat.len()..];
            if let Some(e) = v.find(quote) {
                return is_secret_key(&v[..e]);
            }
        }
    }
    false
}

/// Masks one line that stands alone (a tool's output, an error).
pub fn mask_line(line: &str) -> String {
    Masker::new(false).line(line)
}

/// Masks a whole text with tags, for a diff: a changed secret still differs.
pub fn mask_text_tagged(text: &str) -> String {
    Masker::new(true).text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_form() {
        let text = "[secrets]\nsome_alias = 'plain'\n[db]\nurl = \"jdbc:mysql://h/x?user=u&password=UrlPw&ssl=1\"\n\
                    replica = \"jdbc:postgresql://u:InfoPw@h:5432/x\"\npool = { url = \"mysql://a:InlinePw@h\", max = 5 }\n\
                    password = \"\"\"\nMultiPw\n\"\"\"\ntoken = '''\nMultiTok\n'''\nnote = \"\"\"\nkept text\n\"\"\"\n\
                    keystorePass = \"ksp\"\n<parameter name=\"keystorePass\">xmlpw</parameter>\n";
        let m = Masker::new(false).text(text);
        for s in ["plain", "UrlPw", "InfoPw", "InlinePw", "MultiPw", "MultiTok", "ksp", "xmlpw"] {
            assert!(!m.contains(s), "{s} shown:\n{m}");
        }
        assert!(m.contains("kept text") && m.contains("user=u") && m.contains("max = 5"), "{m}");
        assert_eq!(m.lines().count(), text.lines().count());
    }

    #[test]
    fn tags_tell_changed_secrets_apart() {
        let a = mask_text_tagged("password = \"one\"\n");
        let b = mask_text_tagged("password = \"two\"\n");
        let a2 = mask_text_tagged("password = \"one\"\n");
        assert_ne!(a, b);
        assert_eq!(a, a2);
        assert!(!a.contains("one") && a.contains(MASK));
    }

    #[test]
    fn keeps_plain_lines() {
        assert_eq!(mask_line(r#"username = "admin""#), r#"username = "admin""#);
        assert_eq!(mask_line("<Name>x</Name>"), "<Name>x</Name>");
        assert_eq!(
            mask_line(r#"  key_password = 'wso2carbon' # old: Pw0"#),
            r#"  key_password = '********' # ********"#
        );
        assert_eq!(mask_line("# admin password: OldPw1"), "# admin password: ********");
        assert_eq!(mask_line("# hostname: kept"), "# hostname: kept");
        assert_eq!(mask_line("<!-- keystore password: x -->"), "<!-- keystore password: ******** -->");
        assert_eq!(mask_line("client_secret=abc"), "client_secret=********");
    }
}
