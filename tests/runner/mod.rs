//! A small test runner for the test files whose checks need something this
//! machine may lack (a shell, XFS, root). The standard harness can only mark a
//! test ignored at compile time, and a check that returns early would be
//! counted `ok`. Here a test returns [`Outcome::Skipped`] with the reason, and
//! the run prints it the way the standard harness prints an ignored test:
//!
//! ```text
//! test zsh_completes_every_subcommand_flag_and_value ... ignored, skipped: zsh is not installed
//! test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.41s
//! ```
//!
//! It understands what `cargo test` passes on: name filters, `--exact`,
//! `--skip NAME`, `--list`; other flags (`--nocapture`, `--test-threads N`)
//! are accepted and change nothing (tests run one after another, output
//! is not captured).
#![allow(dead_code)]

use std::process::ExitCode;
use std::time::Instant;

/// What a test found out, when it did not fail (a failure is a panic).
pub enum Outcome {
    Passed,
    Skipped(String),
}

/// Ends a test that cannot run here, saying why.
pub fn skip(why: impl Into<String>) -> Outcome {
    Outcome::Skipped(why.into())
}

pub type Test = (&'static str, fn() -> Outcome);

struct Args {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    ignored_only: bool,
}

fn args() -> Args {
    let mut a = Args { filters: Vec::new(), skips: Vec::new(), exact: false, list: false, ignored_only: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--exact" => a.exact = true,
            "--list" => a.list = true,
            "--ignored" => a.ignored_only = true,
            "--skip" => a.skips.extend(it.next()),
            // Flags of the standard harness that take a value.
            "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" => {
                it.next();
            }
            s if s.starts_with('-') => {}
            s => a.filters.push(s.to_string()),
        }
    }
    a
}

impl Args {
    fn selects(&self, name: &str) -> bool {
        let hit = |f: &String| if self.exact { name == f } else { name.contains(f.as_str()) };
        (self.filters.is_empty() || self.filters.iter().any(hit)) && !self.skips.iter().any(hit)
    }
}

/// Runs the selected tests and prints the standard harness's summary line.
pub fn run(tests: &[Test]) -> ExitCode {
    let args = args();
    let chosen: Vec<&Test> = tests.iter().filter(|(name, _)| args.selects(name)).collect();
    if args.list {
        for (name, _) in &chosen {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    // No test here is ignored before it runs: `--ignored` selects none.
    let chosen = if args.ignored_only { Vec::new() } else { chosen };
    let started = Instant::now();
    println!("\nrunning {} tests", chosen.len());
    let (mut passed, mut skipped, mut failed) = (0, 0, Vec::new());
    for (name, test) in &chosen {
        match std::panic::catch_unwind(test) {
            Ok(Outcome::Passed) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Ok(Outcome::Skipped(why)) => {
                skipped += 1;
                println!("test {name} ... ignored, skipped: {why}");
            }
            Err(_) => {
                failed.push(*name);
                println!("test {name} ... FAILED");
            }
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:\n    {}", failed.join("\n    "));
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; {skipped} ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        tests.len() - chosen.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}
