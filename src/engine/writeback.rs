//! Scheduling, writeback and durability of the copies. The copy engine
//! (`copy`) decides what a file is; this module decides in which order files are written, how many at once, when
//! their bytes go to disk and how they are made durable before publishing.
//!
//! Measured on the benchmark machine (docs/benchmarks.md): a copy's time is
//! mostly per-file system calls that wait (create, open), not bytes, so more
//! threads than cores help; a page cache full of dirty copies written back
//! only at the end adds a third to the time to durable, so writeback starts
//! as each file completes and large files are flushed on their thread; and an
//! `fsync` per small file, clone or directory costs a journal commit each, so
//! those are left to one `syncfs` before publishing.

use std::fs::File;
use std::io;
use std::path::Path;

use anyhow::{Context, Result};

use crate::sys;

/// Copy threads per core when `--jobs` is not given: the work waits on the
/// file system far more than it computes (see the design notes for the
/// measurements of 2, 8 and 16 threads on 2 cores).
const THREADS_PER_CORE: usize = 4;

/// The number of copy threads: `--jobs N`, else a few per core.
pub fn copy_threads(jobs: Option<usize>) -> usize {
    match jobs {
        Some(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(2, |n| n.get()) * THREADS_PER_CORE,
    }
}

/// Orders the files to write, largest first: the long copies start at once
/// and the end of the pass is small files spread over all threads, instead of
/// one thread finishing a big war alone. Ties keep the plan's order.
pub fn schedule<T>(work: &mut [T], size: impl Fn(&T) -> u64) {
    work.sort_by_key(|w| std::cmp::Reverse(size(w)));
}

/// Called when a file's bytes are written: starts their writeback now, while
/// the next files are copied, instead of leaving them dirty until the final
/// flush. Best effort: the flush before publishing is what guarantees.
pub fn file_written(f: &File) {
    let _ = sys::start_writeback(f);
}

/// Files this large are `fsync`ed on their copying thread when complete.
/// Smaller ones, clones and directories are left to the one `syncfs` before
/// publishing: an `fsync` costs a journal commit whatever the file's size,
/// and 15k of them (mostly small files, or clones on XFS, which have no data
/// to wait for) cost more than the bytes (benchmark: split took 4.2x the time
/// of `cp --reflink=always` x3 on XFS with an `fsync` per file and directory).
pub const FSYNC_MIN_BYTES: u64 = 1 << 20;

/// When a written file is flushed to disk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flush {
    /// Never: a scratch copy removed after the run (the home staged for
    /// `--update-once`); its pages stay cached for the copies made from it.
    Never,
    /// Large files as they complete, the rest by the `syncfs` before the
    /// publishing rename: a copy to publish.
    Large,
    /// Every file as it completes: a file that replaces another by a rename
    /// right after (in-place optimization), where no `syncfs` comes between.
    Each,
}

/// Called when a written file is complete (bytes, owner, mode, times): a
/// large one is `fsync`ed now, on the copying thread, so that with several
/// threads the wait for the disk overlaps the copying of other files; its
/// writeback began with [`file_written`].
pub fn file_done(f: &File, size: u64, cloned: bool, flush: Flush) -> io::Result<()> {
    let now = match flush {
        Flush::Never => false,
        Flush::Large => !cloned && size >= FSYNC_MIN_BYTES,
        Flush::Each => true,
    };
    if now {
        f.sync_all()?;
    }
    Ok(())
}

/// Makes everything written under `dir` durable before the rename that
/// publishes it, including what was changed after the copy (the update, the
/// record) and the small files, clones and directories no `fsync` was spent
/// on: one `syncfs` of its file system, which reports a writeback error of any
/// file.
pub fn make_durable(dir: &Path) -> Result<()> {
    sys::sync_file_system(dir).with_context(|| format!("flushing {} to disk before publishing it", dir.display()))
}

/// Runs `f` on every item in the order given, on every thread of the current
/// rayon pool: each thread takes the next item when it is done with one
/// (`par_iter` would split the list into halves and lose the order). Each
/// thread folds into its own `A`; the first error stops the others at their
/// next item.
pub fn in_order<T, A, F>(items: &[T], f: F) -> Result<Vec<A>>
where
    T: Sync,
    A: Default + Send,
    F: Fn(&mut A, &T) -> Result<()> + Sync,
{
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let per_thread: Vec<Result<A>> = rayon::broadcast(|_| {
        let mut acc = A::default();
        while !failed.load(Relaxed) {
            let Some(item) = items.get(next.fetch_add(1, Relaxed)) else {
                break;
            };
            if let Err(e) = f(&mut acc, item) {
                failed.store(true, Relaxed);
                return Err(e);
            }
        }
        Ok(acc)
    });
    per_thread.into_iter().collect()
}
