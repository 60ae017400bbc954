//! The engine: what writes. Copying a plan's tree (`copy`), the output
//! directory with its lock, staging guard and publishing rename (`output`),
//! carrying out a plan in place (`inplace`) and archives (`archive`). It
//! imports the model and nothing above it.

use std::sync::atomic::{AtomicBool, Ordering};

pub mod archive;
pub mod copy;
pub mod inplace;
pub mod output;

/// Set by the Ctrl-C/SIGTERM handler; long loops check it between files.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Called from the signal handler: stop at the next file.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether the run was asked to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
