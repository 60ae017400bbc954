//! The run's signal state, on the bottom floor: which signal asked the run
//! to stop, and whether the command has started writing. The handlers are
//! installed by `main`; the engine and the update step check [`interrupted`]
//! between files, `main` reads [`stopped_by`] to pick the exit code. It
//! imports nothing of the crate.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The signal that asked the run to stop (0: none). Set by the handlers that
/// [`catch`] installs; long loops check it between files.
static SIGNAL: AtomicUsize = AtomicUsize::new(0);

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP stop the run at the next file instead
/// of killing it, so that staging is removed; which one came decides the exit
/// code (128 + its number, as a shell reports a process it killed).
pub fn catch() {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        // A handler that cannot be installed leaves the default: the run
        // dies at once, and the next run removes its staging.
        let _ = signal_hook::flag::register_usize(sig, &SIGNAL, sig as usize);
    }
}

/// Set once a command starts writing. Before that (checks, planning, a whole
/// dry-run) Ctrl-C ends the process at once with exit 130: nothing needs
/// cleaning up, and a long read-only phase must not ignore the operator.
static WRITING: AtomicBool = AtomicBool::new(false);

/// Called before a command's first write.
pub fn start_writing() {
    WRITING.store(true, Ordering::SeqCst);
}

/// Whether the command has started writing (see [`start_writing`]).
pub fn writing() -> bool {
    WRITING.load(Ordering::SeqCst)
}

/// Whether the run was asked to stop.
pub fn interrupted() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// The signal that asked the run to stop, if one did.
pub fn stopped_by() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => i32::try_from(n).ok(),
    }
}
