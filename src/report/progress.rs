//! Progress for a person at a terminal, per phase: the plan (reading the home
//! and planning each profile), the copy (bytes, bytes/s and ETA), and the
//! update, whose tool lines are shown per profile by the update step. Shown
//! only when stderr is a terminal, never with `--json` or `--quiet`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// A spinner for a phase whose length is not known in advance.
pub fn phase(enabled: bool, what: &str) -> Option<ProgressBar> {
    enabled.then(|| {
        let s = ProgressBar::new_spinner();
        s.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        s.set_message(what.to_string());
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        s
    })
}

/// Ends a phase, leaving one line that says what it found.
pub fn done(bar: Option<ProgressBar>, summary: String) {
    if let Some(b) = bar {
        b.finish_and_clear();
        eprintln!("{summary}");
    }
}

/// One copy's line while its update tool runs: its name and elapsed time.
pub fn update_line(enabled: bool, label: &str) -> Option<ProgressBar> {
    phase(enabled, &format!("[{label}] update running"))
}

/// The copies' bar: what is done (`what`), bytes done of the total, speed
/// and time left.
pub fn copy_bar(enabled: bool, what: &str, total: u64) -> Option<CopyBar> {
    enabled.then(|| {
        let b = ProgressBar::new(total);
        // Sizes in the one format of every report (`human_bytes`), not
        // indicatif's binary units: the plan's "2.4 GB" stays 2.4 GB here.
        let size = |n: u64| crate::report::human::human_bytes(n);
        b.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {what} {{done}}/{{total}} {{speed}} ETA {{eta}} {{wide_bar}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("done", move |s: &ProgressState, w: &mut dyn Write| {
                let _ = w.write_str(&size(s.pos()));
            })
            .with_key("total", move |s: &ProgressState, w: &mut dyn Write| {
                let _ = w.write_str(&size(s.len().unwrap_or(0)));
            })
            .with_key("speed", move |s: &ProgressState, w: &mut dyn Write| {
                let _ = write!(w, "{}/s", size(s.per_sec() as u64));
            }),
        );
        CopyBar { bar: b, pending: AtomicU64::new(0), files: AtomicU64::new(0) }
    })
}

/// The copy's bar. The engine reports every file done, from every copy
/// thread; the bar (a lock and a draw check) is moved every 64 files or 8 MB,
/// whichever comes first: 200,000 small files are not 200,000 turns at its lock.
pub struct CopyBar {
    bar: ProgressBar,
    pending: AtomicU64,
    files: AtomicU64,
}

const BAR_EVERY_FILES: u64 = 64;
const BAR_EVERY_BYTES: u64 = 8_000_000;

impl CopyBar {
    /// Clears the bar, with what was pending counted.
    pub fn finish(self) {
        self.bar.inc(self.pending.swap(0, Ordering::Relaxed));
        self.bar.finish_and_clear();
    }
}

impl crate::engine::copy::Progress for CopyBar {
    fn advance(&self, bytes: u64) {
        let pending = self.pending.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let files = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        if files.is_multiple_of(BAR_EVERY_FILES) || pending >= BAR_EVERY_BYTES {
            self.bar.inc(self.pending.swap(0, Ordering::Relaxed));
        }
    }
}
