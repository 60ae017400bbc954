//! Credentials for the WSO2 update servers: from `--credentials-file` (`-`:
//! standard input), the environment or a prompt, asked once per run. Debug
//! never shows the password.

use std::io::{IsTerminal, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Result;

use crate::outcome::refuse;

/// Credentials for the WSO2 update servers. Debug never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ username: {:?}, password: \"********\" }}", self.username)
    }
}

/// The text of `--credentials-file`, or a refusal saying what is wrong with
/// it: missing or unreadable, a directory, open to others, not UTF-8. Its
/// content never appears in a message.
fn read_file(f: &Path) -> Result<String> {
    let hint = "give a file with username= and password= lines, mode 600, readable by this user";
    let md = match std::fs::metadata(f) {
        Ok(m) => m,
        Err(e) => return refuse(format!("--credentials-file {} cannot be read ({e})", f.display()), hint),
    };
    if md.is_dir() {
        return refuse(format!("--credentials-file {} is a directory", f.display()), hint);
    }
    if md.permissions().mode() & 0o077 != 0 {
        return refuse(
            format!(
                "--credentials-file {} is readable by others (mode {:o})",
                f.display(),
                md.permissions().mode() & 0o777
            ),
            format!("restrict it first: chmod 600 {}", f.display()),
        );
    }
    // Refused when not a regular file: a FIFO would block the read.
    let bytes = crate::safe_fs::read_regular(f, "--credentials-file")?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => refuse(
            format!("--credentials-file {} is not UTF-8 text", f.display()),
            "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8), with username= and password= lines",
        ),
    }
}

/// The text of `--credentials-file -`: standard input, read to its end (at
/// most 64 KiB), so that a caller can hand the password over a pipe and
/// nothing holding it is ever written to a file (the Ansible module does).
/// A terminal is refused: leave the option out to be asked there.
fn read_stdin() -> Result<String> {
    let hint = "pipe the username= and password= lines in (... | apim-profiles ... --credentials-file -)";
    if std::io::stdin().is_terminal() {
        return refuse("--credentials-file - reads standard input, which is a terminal", hint);
    }
    let mut bytes = Vec::new();
    let mut input = std::io::stdin().lock().take(64 << 10);
    if let Err(e) = input.read_to_end(&mut bytes) {
        return refuse(format!("--credentials-file -: standard input cannot be read ({e})"), hint);
    }
    String::from_utf8(bytes).or_else(|_| refuse("--credentials-file -: standard input is not UTF-8 text", hint))
}

/// From `--credentials-file`, else `WSO2_USERNAME`/`WSO2_PASSWORD`, else a
/// prompt on the terminal; refused when none of these can be had. With where
/// they come from, in words. A `preview` (dry-run) asks nothing: a prompt is
/// only named.
pub fn credentials(file: Option<&Path>, preview: bool) -> Result<(Option<Credentials>, String)> {
    if let Some(f) = file {
        let text = if f == Path::new("-") { read_stdin()? } else { read_file(f)? };
        let (mut user, mut pass) = (None, None);
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "username" | "wso2_username" => user = Some(v),
                "password" | "wso2_password" => pass = Some(v),
                _ => {}
            }
        }
        return match (user, pass) {
            (Some(username), Some(password)) if !username.is_empty() && !password.is_empty() => {
                Ok((Some(Credentials { username, password }), format!("--credentials-file {}", shown(f))))
            }
            _ => refuse(
                format!("--credentials-file {} has no username= and password= lines", shown(f)),
                "write `username=<WSO2 account>` and `password=<password>` on two lines",
            ),
        };
    }
    if let (Ok(username), Ok(password)) = (std::env::var("WSO2_USERNAME"), std::env::var("WSO2_PASSWORD")) {
        if !username.is_empty() && !password.is_empty() {
            return Ok((Some(Credentials { username, password }), "WSO2_USERNAME/WSO2_PASSWORD".into()));
        }
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        if preview {
            return Ok((None, "a prompt on the terminal (asked by the real run)".into()));
        }
        eprint!("WSO2 account (email): ");
        let mut username = String::new();
        std::io::stdin().read_line(&mut username)?;
        let password = rpassword::prompt_password("Password: ")?;
        let username = username.trim().to_string();
        if !username.is_empty() && !password.is_empty() {
            return Ok((Some(Credentials { username, password }), "a prompt on the terminal".into()));
        }
    }
    refuse(
        "no WSO2 credentials for the update: WSO2_USERNAME/WSO2_PASSWORD are not set, no --credentials-file, and no terminal to ask on",
        "set WSO2_USERNAME and WSO2_PASSWORD, or pass --credentials-file FILE (mode 600), or --no-update",
    )
}

/// How a credentials file is named in messages (`-` is standard input).
fn shown(f: &Path) -> String {
    if f == Path::new("-") {
        "- (standard input)".into()
    } else {
        f.display().to_string()
    }
}
