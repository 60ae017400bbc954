//! What counts as a secret, as a policy rather than a list of key names (the
//! model needs it so that no message echoes a password; `model::mask`
//! masks everything printed with it):
//!
//! - every value under the `[secrets]` table (API-M's cipher tool aliases);
//! - any key with one of the words password, passwd, pwd, pass, passphrase,
//!   secret, token, key, credential(s) in its name, split at `_`, `-`, `.` and
//!   camelCase (`api_key`, `access_key`, `keystorePass`, `secretKey`);
//! - passwords inside URLs (`scheme://user:pw@host`, `password=` parameters),
//!   under any key;
//! - all TOML string forms: basic, literal, and multi-line `"""`/`'''`.

pub const MASK: &str = "********";

const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "key",
    "apikey",
    "credential",
    "credentials",
    "privatekey",
];

/// The words of a key name: split at `_`, `-`, `.`, spaces and camelCase.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether a configuration key names a secret. `key` may be dotted; a key
/// under the `secrets` table is always one. Deliberately broad: masking a
/// harmless value costs nothing, printing a password costs a rotation.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.trim().trim_matches(|c| c == '"' || c == '\'');
    let first = k.split('.').next().unwrap_or("").trim().trim_matches(|c| c == '"' || c == '\'');
    if first.eq_ignore_ascii_case("secrets") && k.contains('.') {
        return true;
    }
    let last = k.rsplit('.').next().unwrap_or(k).trim().trim_matches(|c| c == '"' || c == '\'');
    let lower = last.to_ascii_lowercase();
    if ["password", "secret", "passphrase", "credential"].iter().any(|w| lower.contains(w)) {
        return true;
    }
    words(last).iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
}

const URL_SECRET_PARAMS: &[&str] =
    &["password", "passwd", "pwd", "pass", "secret", "token", "apikey", "api_key", "access_token", "client_secret"];

/// Passwords in URLs, wherever they stand: `scheme://user:pw@host` and
/// `password=` (and similar) parameters after `?`, `&` or `;`.
pub fn mask_urls(s: &str) -> String {
    let mut out = mask_userinfo(&mask_oracle(s));
    let lower = out.to_ascii_lowercase();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for p in URL_SECRET_PARAMS {
        let pat = format!("{p}=");
        let mut from = 0;
        while let Some(pos) = lower[from..].find(&pat) {
            let at = from + pos;
            from = at + pat.len();
            let before = lower[..at].chars().last();
            if !matches!(before, Some('?' | '&' | ';')) {
                continue;
            }
            let vstart = at + pat.len();
            let vend = lower[vstart..]
                .find(|c: char| matches!(c, '&' | ';' | '"' | '\'' | '#' | ' ' | '<' | ')') || c.is_whitespace())
                .map_or(lower.len(), |e| vstart + e);
            if vend > vstart {
                cuts.push((vstart, vend));
            }
        }
    }
    cuts.sort();
    for (a, b) in cuts.into_iter().rev() {
        out.replace_range(a..b, MASK);
    }
    out
}

/// Oracle's `user/password@host` form (`jdbc:oracle:thin:apim/pw@db:1521/x`,
/// `jdbc:oracle:oci:apim/pw@tns`): the password between the first `/` after
/// the driver's name and the last `@` of the connect string.
fn mask_oracle(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    while let Some(p) = lower[from..].find("jdbc:oracle:") {
        let driver = from + p + "jdbc:oracle:".len();
        let Some(colon) = lower[driver..].find(':').map(|c| driver + c + 1) else { break };
        let end = s[colon..]
            .find(|c: char| matches!(c, '"' | '\'' | '<' | '>' | '`') || c.is_whitespace())
            .map_or(s.len(), |e| colon + e);
        let conn = &s[colon..end];
        out.push_str(&s[from..colon]);
        match (conn.find('/'), conn.rfind('@')) {
            (Some(slash), Some(at)) if slash < at => {
                out.push_str(&conn[..=slash]);
                out.push_str(MASK);
                out.push_str(&conn[at..]);
            }
            _ => out.push_str(conn),
        }
        from = end;
    }
    out.push_str(&s[from..]);
    out
}

fn mask_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("://") {
        let (head, tail) = rest.split_at(p + 3);
        out.push_str(head);
        let auth_end =
            tail.find(|c: char| matches!(c, '/' | '"' | '\'' | '?' | '#') || c.is_whitespace()).unwrap_or(tail.len());
        let auth = &tail[..auth_end];
        match (auth.rfind('@'), auth.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&auth[..colon + 1]);
                out.push_str(MASK);
                out.push_str(&auth[at..]);
            }
            _ => out.push_str(auth),
        }
        rest = &tail[auth_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_by_policy() {
        for k in [
            "password",
            "key_password",
            "secret",
            "client_secret",
            "DB.Password",
            "token",
            "access_token",
            "api_key",
            "access_key",
            "secret_key",
            "keystorePass",
            "secretKey",
            "api-token",
            "aws_credential",
            "secrets.anything",
            "privateKey",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["username", "tokens_url", "file_name", "alias", "keystore", "service_url", "passive", "type"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn oracle_user_password_at_host() {
        for (url, shown) in [
            (
                "jdbc:oracle:thin:apim/OraPw1@db.example:1521/ORCL",
                "jdbc:oracle:thin:apim/********@db.example:1521/ORCL",
            ),
            (
                "url = \"jdbc:oracle:thin:apim/Ora/Pw2@//db:1521/svc\"",
                "url = \"jdbc:oracle:thin:apim/********@//db:1521/svc\"",
            ),
            (
                "JDBC:ORACLE:OCI:u/p@tns and jdbc:oracle:thin:@db:1521:x",
                "JDBC:ORACLE:OCI:u/********@tns and jdbc:oracle:thin:@db:1521:x",
            ),
        ] {
            assert_eq!(mask_urls(url), shown);
        }
    }

    #[test]
    fn url_passwords() {
        assert_eq!(
            mask_urls("jdbc:mysql://h/x?user=u&password=pw&ssl=1"),
            "jdbc:mysql://h/x?user=u&password=********&ssl=1"
        );
        assert_eq!(mask_urls("jdbc:postgresql://u:pw@h:5432/x"), "jdbc:postgresql://u:********@h:5432/x");
        assert_eq!(mask_urls("https://km.example.com:9443/services/"), "https://km.example.com:9443/services/");
    }
}
