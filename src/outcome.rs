//! Outcomes that are not plain failures. Everything that is not one of these is
//! a failure while working (exit 1); these carry the contract's other exit codes
//! so that `main` maps them without knowing which command raised them.

use std::fmt;

/// Exit codes of the contract (`shared/reference/contract.md`).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const REFUSED: i32 = 2;
    pub const CONFLICTS: i32 = 3;
    pub const DRIFT: i32 = 4;
}

/// A bad invocation or bad input, found before anything was written.
/// `what` is one line of what is wrong, `hint` one line of what to do.
#[derive(Debug)]
pub struct Refusal {
    pub what: String,
    pub hint: String,
}

impl Refusal {
    pub fn new(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Refusal { what: what.into(), hint: hint.into() }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Refusal {}

/// Shorthand for returning a refusal from a function returning `anyhow::Result`.
pub fn refuse<T>(what: impl Into<String>, hint: impl Into<String>) -> anyhow::Result<T> {
    Err(Refusal::new(what, hint).into())
}

/// The command ran to its end but its result asks for a non-zero exit code
/// (conflicts to resolve, a copy that drifted). The report was already printed.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
}

impl fmt::Display for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "finished with exit code {}", self.code)
    }
}

impl std::error::Error for Finished {}

/// A failure while working that carries a hint for the operator.
#[derive(Debug)]
pub struct Hinted {
    pub hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hint)
    }
}

impl std::error::Error for Hinted {}

/// Picks the exit code for an error chain.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<Refusal>().is_some() {
        exit::REFUSED
    } else if let Some(f) = err.downcast_ref::<Finished>() {
        f.code
    } else if err.chain().any(|c| c.downcast_ref::<Refusal>().is_some()) {
        exit::REFUSED
    } else {
        exit::FAILED
    }
}

/// The hint of an error chain, if any part of it carries one.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    for c in err.chain() {
        if let Some(r) = c.downcast_ref::<Refusal>() {
            return Some(r.hint.clone());
        }
        if let Some(h) = c.downcast_ref::<Hinted>() {
            return Some(h.hint.clone());
        }
    }
    None
}
