//! apim-profiles: split a WSO2 API Manager home into per-profile optimized
//! copies with exact parity to the product's own profile optimization.
//!
//! One plan, many consumers: [`model::plan::compute`] decides what a profile
//! keeps, rewrites and removes; `split`/`optimize` carry it out, `--dry-run`
//! prints it, and `verify` checks a tree against it. The map, arrows pointing
//! down only:
//!
//! ```text
//! main ─▶ cli ─▶ commands ─▶ update ─▶ report ─▶ engine ─▶ model ─▶ outcome, sys, hooks, safe_fs, signals
//! ```
//!
//! The words, each with one meaning in the code and the docs:
//!
//! - **home**: an unzipped API-M pack, the input, never modified by `split`
//!   ([`model::home::Home`]: its path, product and version).
//! - **profile**: what one node of a deployment runs (control-plane,
//!   gateway-worker, ...), defined as data in `profiles/<version>/*.toml`
//!   ([`model::profile::Profile`]).
//! - **tree**: the entries of a directory as scanned, metadata only
//!   ([`model::tree::Tree`]).
//! - **plan**: what a profile keeps, rewrites, backs up and removes on a tree
//!   ([`model::plan::Plan`]); every command that writes carries one out.
//! - **copy**: a directory the tool made of a home for one profile, at
//!   `<DIR>/<profile>/<home name>` (or a home optimized in place): its path,
//!   its record and its standing ([`model::copy::Copy`]).
//! - **record**: `.apim-profiles.json` at a copy's root, what made the copy
//!   and how the tool left it, sealed ([`model::record::Record`]).
//! - **fingerprint**: a tree's metadata listing, one line per entry
//!   ([`model::fingerprint::Fingerprint`]), compared entry by entry to say
//!   what changed; the record's `source_fingerprint` is a digest of the
//!   source's listing ([`model::tree::metadata_digest`]), compared whole.
//! - **standing**: where a copy already there stands against what this run
//!   would make: absent, current, conflicts, failed, drifted, stale
//!   ([`model::standing::CopyState`], decided by [`model::standing::judge`]).
//! - **status**: the word a report gives each copy (`created`, `current`,
//!   `drifted`, ...: [`outcome::Status`]), from its standing and what the run
//!   did; `status` is also the command that reports standings
//!   ([`report::status::CopyStatus`] is one copy's line of it).
//! - **exit**: the process's exit code: of the run's outcomes, the one that
//!   takes precedence ([`outcome::Exit`]), mapped to the code in `main`.
//!
//! `safe_fs` is the one place that opens files for a root process in
//! directories others can write: the tool's own files (the model's record,
//! the engine's journal, lock and temporaries) and the home's files it reads.
//!
//! Each command has one entry point in [`commands`] and ends in a
//! [`report::RunOutcome`] (or an error); `main` maps either to the exit code.
//!
//! This file parses the command line, resolves it with the settings file,
//! runs the command and maps the outcome to the contract's exit code, in one
//! place; the command line itself is [`cli`]. The modules are declared here,
//! not behind a library, so that the compiler reports an item nothing uses.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod engine;
mod hooks;
mod model;
mod outcome;
mod report;
mod safe_fs;
mod signals;
mod sys;
mod update;

use std::process::ExitCode;

use crate::cli::args::Command;
use crate::outcome::{exit_of, Exit};
use crate::report::style;

fn main() -> ExitCode {
    // The launcher of the update tool (a session and a controlling terminal
    // for it, then exec): not a command of its own.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == update::process::LAUNCH_ARG) {
        let e = update::process::launch(&argv[2..]);
        eprintln!("error: starting the update tool: {e}");
        return ExitCode::from(127);
    }
    // Signals first: before anything is written a signal ends the run at
    // once, and reading the command line is already part of the run.
    signals::catch();
    cli::stop_at_once_before_writing(cli::wants_json());
    let (cli, given) = match cli::parse() {
        Ok(p) => p,
        Err(e) => return report::emit_parse_error(&e, cli::wants_json()),
    };
    style::init(cli.look.color);
    let json = cli.command.json();
    let quiet = cli.look.quiet;
    let summary = matches!(&cli.command, Command::Split(c) if c.summary);
    let result = cli::settings::resolve(cli.command, &given).and_then(|c| c.run(quiet));
    // The one place an outcome becomes an exit code. A signal decides the
    // code of a run it stopped, before the report is printed, so that the
    // JSON's `exit_code` is the code the process exits with.
    let signalled = signals::stopped_by().map(Exit::of_signal);
    let (exit, printed) = match result {
        Ok(mut outcome) => {
            outcome.exit = signalled.unwrap_or(outcome.exit);
            (outcome.exit, report::emit(json, quiet, summary, &outcome))
        }
        Err(err) => {
            let exit = signalled.unwrap_or_else(|| exit_of(&err));
            (exit, report::emit_error(json, &err, exit))
        }
    };
    ExitCode::from(report::after_printing(printed, exit).code())
}
