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

fn number<T: std::str::FromStr>(var: &str) -> Option<T> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}
