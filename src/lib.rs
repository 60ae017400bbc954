//! apim-profiles: split a WSO2 API Manager home into per-profile optimized
//! copies with exact parity to the product's own profile optimization.
//!
//! One plan, many consumers: [`model::plan::compute`] decides what a profile
//! keeps, rewrites and removes; `split`/`optimize` carry it out, `--dry-run`
//! prints it, and `verify` checks a tree against it. The map, arrows pointing
//! down only:
//!
//! ```text
//! main ─▶ commands ─▶ update ─▶ report ─▶ engine ─▶ model ─▶ outcome, sys, hooks, safe_fs
//! ```
//!
//! `safe_fs` is the one place that opens files for a root process in
//! directories others can write: the tool's own files (the model's record,
//! the engine's journal, lock and temporaries) and the home's files it reads.
//!
//! Each command has one entry point in [`commands`] and ends in a
//! [`report::RunOutcome`] (or an error); `main` maps either to the exit code.

#![forbid(unsafe_code)]

pub mod commands;
pub mod engine;
pub mod hooks;
pub mod model;
pub mod outcome;
pub mod report;
pub mod safe_fs;
pub mod sys;
pub mod update;
