//! Credentials for the WSO2 update servers: from `--credentials-file`, the
//! environment or a prompt, asked once per run. Debug never shows the password.

use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

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

/// From `--credentials-file`, else `WSO2_USERNAME`/`WSO2_PASSWORD`, else a
/// prompt on the terminal; refused when none of these can be had.
pub fn credentials(file: Option<&Path>) -> Result<Credentials> {
    if let Some(f) = file {
        let md = match std::fs::metadata(f) {
            Ok(m) => m,
            Err(_) => {
                return refuse(
                    format!("--credentials-file {} cannot be read", f.display()),
                    "give a file with username= and password= lines",
                )
            }
        };
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
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
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
                Ok(Credentials { username, password })
            }
            _ => refuse(
                format!("--credentials-file {} has no username= and password= lines", f.display()),
                "write `username=<WSO2 account>` and `password=<password>` on two lines",
            ),
        };
    }
    if let (Ok(username), Ok(password)) = (std::env::var("WSO2_USERNAME"), std::env::var("WSO2_PASSWORD")) {
        if !username.is_empty() && !password.is_empty() {
            return Ok(Credentials { username, password });
        }
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!("WSO2 account (email): ");
        let mut username = String::new();
        std::io::stdin().read_line(&mut username)?;
        let password = rpassword::prompt_password("Password: ")?;
        let username = username.trim().to_string();
        if !username.is_empty() && !password.is_empty() {
            return Ok(Credentials { username, password });
        }
    }
    refuse(
        "no WSO2 credentials for the update: WSO2_USERNAME/WSO2_PASSWORD are not set, no --credentials-file, and no terminal to ask on",
        "set WSO2_USERNAME and WSO2_PASSWORD, or pass --credentials-file FILE (mode 600), or --no-update",
    )
}
