//! Which configuration keys hold secrets. A fact the model needs (so that
//! `--set` messages never echo a password) and the masking of everything
//! printed builds on (`report::mask`).

pub const MASK: &str = "********";

/// Whether a configuration key names a secret. Deliberately broad: masking a
/// harmless value costs nothing, printing a password costs a rotation.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.trim().trim_matches(|c| c == '"' || c == '\'').to_ascii_lowercase();
    let last = k.rsplit('.').next().unwrap_or(&k);
    last.ends_with("password")
        || last.ends_with("secret")
        || last.ends_with("passphrase")
        || last == "token"
        || last.ends_with("_token")
        || last.ends_with("-token")
        || last.ends_with("private_key")
        || last == "key_password"
        || last == "credential"
        || last == "credentials"
}
