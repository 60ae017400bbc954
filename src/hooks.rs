//! Fault injection for the test suite, read from the environment in this one
//! place: the integration tests drive the real binary, so a hook cannot be a
//! function argument. Each hook is inert unless its variable is set.

/// `APIM_PROFILES_FAIL_AFTER_FILES=N`: copying fails after N files.
pub fn fail_after_files() -> Option<u64> {
    number("APIM_PROFILES_FAIL_AFTER_FILES")
}

/// `APIM_PROFILES_FAIL_AFTER_ACTIONS=N`: an in-place run stops after N actions,
/// as a crash would.
pub fn fail_after_actions() -> Option<usize> {
    number("APIM_PROFILES_FAIL_AFTER_ACTIONS")
}

/// `APIM_PROFILES_PRETEND_FREE_BYTES=N`: the free space to believe, to test the
/// refusal without filling a disk.
pub fn pretend_free_bytes() -> Option<u64> {
    number("APIM_PROFILES_PRETEND_FREE_BYTES")
}

/// `APIM_PROFILES_BEFORE_OPEN=<rel>=<command>`: the first time the tool is
/// about to open `<rel>` below a directory it works in (after choosing the
/// name, before the open), `sh -c <command>` runs and is waited for. Tests
/// swap a directory for a link there, at exactly the moment a path-based
/// tool would be fooled.
pub fn before_open(rel: &std::path::Path) {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Some(spec) = std::env::var_os("APIM_PROFILES_BEFORE_OPEN") else { return };
    let spec = spec.to_string_lossy().into_owned();
    let Some((at, command)) = spec.split_once('=') else { return };
    if std::path::Path::new(at) != rel || DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let _ = std::process::Command::new("sh").arg("-c").arg(command).status();
}

fn number<T: std::str::FromStr>(var: &str) -> Option<T> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}
