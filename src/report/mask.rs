//! Secret masking for everything the tool prints. Dry-runs end up in CI logs and
//! Ansible output, so a value under a secret-looking key is never shown, in
//! TOML (`password = "x"`, inline tables) or XML (`<Password>x</Password>`).

pub use crate::model::secret::{is_secret_key, MASK};

/// Masks secret values in one line of TOML or XML text. Lines without secrets
/// are returned unchanged.
pub fn mask_line(line: &str) -> String {
    let line = mask_toml_assignments(line);
    mask_xml_elements(&line)
}

/// Masks every line of a text, keeping line endings.
pub fn mask_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive('\n') {
        let (body, nl) = match piece.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (piece, ""),
        };
        out.push_str(&mask_line(body));
        out.push_str(nl);
    }
    out
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// `key = value` pairs, at the start of a line or inside an inline table.
fn mask_toml_assignments(line: &str) -> String {
    // Commented-out settings are masked too: `#password = "..."` is often a
    // real value someone disabled.
    if !line.contains('=') {
        return line.to_string();
    }
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        // A key: bare, or quoted.
        let start = i;
        let key: String;
        if chars[i] == '"' || chars[i] == '\'' {
            let q = chars[i];
            let mut j = i + 1;
            while j < chars.len() && chars[j] != q {
                j += 1;
            }
            if j >= chars.len() {
                out.extend(&chars[i..]);
                break;
            }
            key = chars[i + 1..j].iter().collect();
            i = j + 1;
        } else if is_key_char(chars[i]) {
            let mut j = i;
            while j < chars.len() && is_key_char(chars[j]) {
                j += 1;
            }
            key = chars[i..j].iter().collect();
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let is_assign = j < chars.len() && chars[j] == '=' && chars.get(j + 1) != Some(&'=');
        if !(is_assign && is_secret_key(&key)) {
            out.extend(&chars[start..i]);
            continue;
        }
        // Keep `key = ` as written, replace the value.
        let mut k = j + 1;
        while k < chars.len() && chars[k].is_whitespace() {
            k += 1;
        }
        out.extend(&chars[start..k]);
        let end = value_end(&chars, k);
        let quoted = k < chars.len() && (chars[k] == '"' || chars[k] == '\'');
        if quoted {
            out.push(chars[k]);
            out.push_str(MASK);
            out.push(chars[k]);
        } else if end > k {
            out.push_str(MASK);
        }
        i = end;
    }
    out
}

/// Where a TOML value starting at `k` ends: after its closing quote, or before
/// the `,`, `}` or `#` that follows a bare value.
fn value_end(chars: &[char], k: usize) -> usize {
    if k >= chars.len() {
        return k;
    }
    let c = chars[k];
    if c == '"' || c == '\'' {
        let triple = chars.len() >= k + 3 && chars[k + 1] == c && chars[k + 2] == c;
        if triple {
            // A multi-line string: mask the rest of the line.
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
    // Keep the spaces before a comma or brace.
    while j > k && chars[j - 1].is_whitespace() {
        j -= 1;
    }
    j
}

/// `<Password>value</Password>` and `<parameter name="password">value</parameter>`.
fn mask_xml_elements(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let tag = &after[..close];
        let name = tag.split_whitespace().next().unwrap_or("");
        let secret = !name.starts_with('/') && !tag.ends_with('/') && (is_secret_key(name) || attr_names_secret(tag));
        let body_start = open + 1 + close + 1;
        if secret {
            let end_tag = format!("</{}", name);
            if let Some(end) = rest[body_start..].find(&end_tag) {
                if end > 0 {
                    out.push_str(&rest[..body_start]);
                    out.push_str(MASK);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_toml_values() {
        assert_eq!(mask_line(r#"password = "admin""#), r#"password = "********""#);
        assert_eq!(mask_line(r#"  key_password = 'wso2carbon' # c"#), r#"  key_password = '********' # c"#);
        assert_eq!(mask_line("client_secret=abc"), "client_secret=********");
        assert_eq!(
            mask_line(r#"tls = { file_name = "a.jks", password = "p", alias = "x" }"#),
            r#"tls = { file_name = "a.jks", password = "********", alias = "x" }"#
        );
        assert_eq!(mask_line(r#"username = "admin""#), r#"username = "admin""#);
        assert_eq!(mask_line("#password = \"x\""), "#password = \"********\"");
        assert_eq!(mask_line(r#"+password = "a\"b""#), r#"+password = "********""#);
    }

    #[test]
    fn masks_xml_values() {
        assert_eq!(mask_line("<Password>admin</Password>"), "<Password>********</Password>");
        assert_eq!(
            mask_line(r#"<parameter name="keystorePassword">wso2</parameter>"#),
            r#"<parameter name="keystorePassword">********</parameter>"#
        );
        assert_eq!(mask_line("<Name>x</Name>"), "<Name>x</Name>");
    }

    #[test]
    fn secret_keys() {
        for k in ["password", "key_password", "secret", "client_secret", "DB.Password", "token", "access_token"] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["username", "tokens_url", "file_name", "alias"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
