//! How things end, as types: the status of one copy, the refusal of bad input,
//! and the exit code a whole run asks for. Every status string of the JSON
//! contract is spelled here and nowhere else; `main` turns an [`Exit`] into the
//! process's exit code in one place.

use std::fmt;

use serde::Serialize;

/// The exit codes of the contract (docs/reference.md). When a run has several
/// outcomes, [`Exit::precedence`] decides which one it exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exit {
    /// 0: done, or nothing needed doing.
    #[default]
    Ok,
    /// 4: `verify` found a copy that no longer matches its profile.
    Drift,
    /// 3: an update stopped on conflicts a person must resolve.
    Conflicts,
    /// 1: failed while working; what was completed is reported.
    Failed,
    /// 2: bad invocation or bad input, nothing written.
    Refused,
    /// 130: stopped by Ctrl-C (SIGINT).
    Interrupted,
    /// 143: stopped by SIGTERM.
    Terminated,
    /// 129: stopped by SIGHUP (the terminal went away).
    HungUp,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Refused => 2,
            Exit::Conflicts => 3,
            Exit::Drift => 4,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
            Exit::HungUp => 129,
        }
    }

    /// Which exit wins when a run has several, highest first: a signal
    /// (the operator stopped the run: their answer, whatever the copies
    /// did), then a refusal, a failure, conflicts waiting on a person, drift,
    /// and success. A table, not the order the variants are declared in.
    pub fn precedence(self) -> u8 {
        match self {
            Exit::HungUp => 7,
            Exit::Terminated => 6,
            Exit::Interrupted => 5,
            Exit::Refused => 4,
            Exit::Failed => 3,
            Exit::Conflicts => 2,
            Exit::Drift => 1,
            Exit::Ok => 0,
        }
    }

    /// The one of the two exits that takes precedence.
    pub fn worse(self, other: Exit) -> Exit {
        if other.precedence() > self.precedence() {
            other
        } else {
            self
        }
    }

    /// A run stopped by a signal exits 128 + its number, as a shell reports
    /// a process the signal killed.
    pub fn of_signal(sig: i32) -> Exit {
        match sig {
            1 => Exit::HungUp,
            15 => Exit::Terminated,
            _ => Exit::Interrupted,
        }
    }
}

/// What one copy (or home) is after a run, serialized as the JSON contract's
/// `profiles[].status` strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Made by this run.
    Created,
    /// A stale copy rebuilt by this run (`--force`).
    Replaced,
    /// Already what this run would make; nothing done.
    Current,
    /// Made by this tool from other inputs (a re-run decides what to do).
    Stale,
    /// Published, but the update stopped on conflicts for a person.
    Conflicts,
    /// This copy's work failed; the report says why.
    Failed,
    /// Dry-run: a copy would be made.
    WouldCreate,
    /// Dry-run: a stale copy would be replaced.
    WouldReplace,
    /// `optimize` changed the home.
    Optimized,
    /// Dry-run of `optimize`: the home would change.
    WouldOptimize,
    /// `verify`: the copy matches its profile.
    Verified,
    /// `verify`: the copy differs from its profile.
    Drifted,
    /// `verify`: nothing differs as far as it can tell, but its record lacks
    /// what the check needs (change times, or content digests with
    /// `--content`), so the copy is not proven: exit 2, as for input the
    /// check cannot use; the reason says what to do.
    Unverifiable,
    /// `update`: the update ran and the copy was re-optimized.
    Updated,
    /// `update --revert`: the last update was rolled back and the copy
    /// re-optimized.
    Reverted,
}

impl Status {
    /// The exit code this status asks of the run, on its own.
    pub fn exit(self) -> Exit {
        match self {
            Status::Failed => Exit::Failed,
            Status::Conflicts => Exit::Conflicts,
            Status::Drifted => Exit::Drift,
            Status::Unverifiable => Exit::Refused,
            _ => Exit::Ok,
        }
    }

    /// Whether this is `verify`'s answer.
    pub fn is_verdict(self) -> bool {
        matches!(self, Status::Verified | Status::Drifted | Status::Unverifiable)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(v.as_str().unwrap_or_default())
    }
}

/// The exit code of a run whose copies ended in `statuses`: a failure before
/// conflicts before drift (see [`Exit::precedence`]).
pub fn fold<I: IntoIterator<Item = Status>>(statuses: I) -> Exit {
    statuses.into_iter().map(Status::exit).fold(Exit::Ok, Exit::worse)
}

/// A bad invocation or bad input, found before anything was written (exit 2).
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

/// The error with one alternative taken out of its refusal's hint: the hints
/// of a step shared by commands name the options of the command that has the
/// most (`split`), and a command that rejects `option` must not suggest it.
/// The alternatives are the hint's `, or ` parts; the contexts are kept.
pub fn without_alternative(err: anyhow::Error, option: &str) -> anyhow::Error {
    let Some(r) = refusal_of(&err) else { return err };
    let parts: Vec<&str> = r.hint.split(", or ").collect();
    if !parts.iter().skip(1).any(|p| p.starts_with(option)) {
        return err;
    }
    let hint = parts.iter().enumerate().filter(|(i, p)| *i == 0 || !p.starts_with(option)).map(|(_, p)| *p);
    let refusal = Refusal::new(r.what.clone(), hint.collect::<Vec<_>>().join(", or "));
    let contexts: Vec<String> =
        err.chain().filter(|c| c.downcast_ref::<Refusal>().is_none()).map(|c| c.to_string()).collect();
    contexts.into_iter().rev().fold(anyhow::Error::new(refusal), |e, c| e.context(c))
}

/// The exit code of an error chain: a refusal anywhere in it is exit 2, any
/// other error a failure while working.
pub fn exit_of(err: &anyhow::Error) -> Exit {
    if refusal_of(err).is_some() {
        Exit::Refused
    } else {
        Exit::Failed
    }
}

/// The refusal in an error chain, if any.
pub fn refusal_of(err: &anyhow::Error) -> Option<&Refusal> {
    err.chain().find_map(|c| c.downcast_ref::<Refusal>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_contract_strings() {
        assert_eq!(Status::WouldCreate.to_string(), "would-create");
        assert_eq!(Status::Drifted.to_string(), "drifted");
        assert_eq!(serde_json::to_string(&Status::Current).unwrap(), "\"current\"");
    }

    #[test]
    fn the_worst_status_decides_the_exit() {
        assert_eq!(fold([Status::Created, Status::Conflicts, Status::Failed]), Exit::Failed);
        assert_eq!(fold([Status::Verified, Status::Drifted]), Exit::Drift);
        assert_eq!(fold([Status::Conflicts, Status::Current]), Exit::Conflicts);
        assert_eq!(fold([]), Exit::Ok);
        assert_eq!(Exit::Conflicts.code(), 3);
    }

    /// The contract's order, whatever order the variants are declared in.
    #[test]
    fn exit_precedence_is_the_contracts() {
        let order = [
            Exit::HungUp,
            Exit::Terminated,
            Exit::Interrupted,
            Exit::Refused,
            Exit::Failed,
            Exit::Conflicts,
            Exit::Drift,
            Exit::Ok,
        ];
        for (i, a) in order.iter().enumerate() {
            for b in &order[i..] {
                assert_eq!(a.worse(*b), *a, "{a:?} over {b:?}");
                assert_eq!(b.worse(*a), *a, "{a:?} over {b:?} either way round");
            }
        }
        let codes: Vec<u8> = order.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [129, 143, 130, 2, 1, 3, 4, 0]);
    }
}
