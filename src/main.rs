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
//!
//! This file is the command line: parse, call the modules, map the outcome
//! to the contract's exit codes. Nothing about profiles is decided here. The
//! modules are declared here, not behind a library, so that the compiler
//! reports an item nothing uses.

#![forbid(unsafe_code)]

mod commands;
mod engine;
mod hooks;
mod model;
mod outcome;
mod report;
mod safe_fs;
mod sys;
mod update;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands::{image, optimize, profiles, split, status, update as update_cmd, verify};
use crate::engine::archive;
use crate::engine::copy::Reflink;
use crate::model::config::ConfigEdits;
use crate::model::plan::Options;
use crate::model::profile::load_catalog;
use crate::model::settings::{self, Settings, UpdateSettings};
use crate::outcome::{exit_of, Exit};
use crate::report::style::{self, ColorChoice};
use crate::report::{json, manual, RunOutcome};

#[derive(Parser)]
#[command(name = "apim-profiles", about = "Split a WSO2 API Manager home into optimized per-profile copies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    look: Look,
}

/// How output looks to a person (any command).
#[derive(Args)]
#[command(next_help_heading = "Output")]
struct Look {
    /// Colour the diff, statuses and errors: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,
    /// Only what needs attention: no progress, no warnings, no report of a copy that is fine (errors still show).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Make one optimized copy of HOME per profile under DIR/<profile>/<home name>.
    Split(SplitCmd),
    /// Optimize one home in place for one profile (safe to run again).
    Optimize(OptimizeCmd),
    /// Run the U2 update in existing copies, then optimize them again.
    Update(UpdateCmd),
    /// Check that copies still match their profiles (exit 4 when one drifted).
    Verify(VerifyCmd),
    /// One line per copy: profile, version, U2 level, last update, current/stale/drifted/conflicts, size.
    Status(StatusCmd),
    /// List the profiles and product versions this build knows.
    Profiles(ProfilesCmd),
    /// Write one OCI image per profile into an image layout DIR (no daemon, no root).
    Image(ImageCmd),
    /// Print the completion script for a shell.
    Completions(CompletionsCmd),
    /// Write the man pages.
    Man(ManCmd),
    /// Print the JSON Schema of a command's --json document.
    Schema(SchemaCmd),
}

#[derive(Args)]
struct StatusCmd {
    /// An output directory of split, or copies.
    #[arg(required = true, value_name = "OUT | COPY")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct CompletionsCmd {
    /// bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Args)]
struct ManCmd {
    /// Directory to write apim-profiles.1 and apim-profiles-<command>.1 into.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: PathBuf,
}

#[derive(Args)]
struct SchemaCmd {
    /// split, optimize, update, verify, status, profiles or error.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(json::DOCUMENTS))]
    document: String,
}

#[derive(Args)]
struct Common {
    /// Print one JSON document on stdout (messages go to stderr).
    #[arg(long, help_heading = "Output")]
    json: bool,
    /// Use profile definitions from DIR/<version>/*.toml instead of the built-in ones.
    #[arg(long, value_name = "DIR", help_heading = "Configuration")]
    profile_dir: Option<PathBuf>,
}

/// `--no-update`: split only, contradicting every update option (named in
/// the refusal).
#[derive(Args)]
#[command(next_help_heading = "Update")]
struct NoUpdate {
    /// Do not run the U2 update in the copies.
    #[arg(long, conflicts_with_all = ["update_tool", "update_zip", "update_level", "credentials_file", "update_timeout", "update_jobs", "update_input_timeout", "update_trial_subscription"])]
    no_update: bool,
}

#[derive(Args)]
#[command(next_help_heading = "Update")]
struct UpdateFlags {
    /// An update tool to place in each copy's bin/ when the home has none.
    #[arg(long, value_name = "PATH")]
    update_tool: Option<PathBuf>,
    /// Apply this update archive (the tool's apply-update) instead of downloading.
    #[arg(long, value_name = "ZIP")]
    update_zip: Option<PathBuf>,
    /// Update to this level (e.g. 4.2.0.5) instead of the latest.
    #[arg(long, value_name = "L")]
    update_level: Option<String>,
    /// A file with `username=` and `password=` lines (mode 600); `-` reads them from standard input.
    #[arg(long, value_name = "FILE")]
    credentials_file: Option<PathBuf>,
    /// Seconds one update run may take before it is stopped (at least 1).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    update_timeout: u64,
    /// How many update runs at once (they share ~/.wso2-updates).
    #[arg(long, value_name = "N", default_value_t = 1)]
    update_jobs: usize,
    /// Seconds the tool may wait, silent, for an answer apim-profiles does not give before it is stopped.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    update_input_timeout: u64,
    /// Accept a trial subscription when the tool offers one (the account has no active subscription).
    #[arg(long)]
    update_trial_subscription: bool,
}

/// The operator's settings for each profile's deployment.toml.
#[derive(Args)]
#[command(next_help_heading = "Configuration")]
struct ConfigFlags {
    /// Read profiles, carry, set, overlay and update options from a TOML file (flags win).
    #[arg(long, value_name = "FILE.toml")]
    settings: Option<PathBuf>,
    /// Take these tables or keys (dotted) from the home's deployment.toml into every profile's.
    #[arg(long, value_delimiter = ',', value_name = "KEY,...")]
    carry: Vec<String>,
    /// Carry the settings every profile shares: super_admin, user_store, database.shared_db, keystore.tls, truststore.
    #[arg(long)]
    carry_common: bool,
    /// Set a key: [PROFILE:]dotted.key=VALUE, VALUE in TOML syntax (repeatable).
    #[arg(long = "set", value_name = "[PROFILE:]KEY=VALUE")]
    sets: Vec<String>,
    /// Merge a TOML file key by key: [PROFILE=]FILE.toml (repeatable).
    #[arg(long = "overlay", value_name = "[PROFILE=]FILE")]
    overlays: Vec<String>,
}

impl ConfigFlags {
    fn edits(&self, profile_dir: Option<&Path>) -> anyhow::Result<ConfigEdits> {
        let catalog = load_catalog(profile_dir)?;
        let names: Vec<&str> = catalog.profiles.iter().map(|p| p.name.as_str()).collect();
        Ok(ConfigEdits {
            carry: self.carry.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect(),
            carry_common: self.carry_common,
            sets: self.sets.iter().map(|a| ConfigEdits::parse_set(a, &names)).collect::<anyhow::Result<_>>()?,
            overlays: self
                .overlays
                .iter()
                .map(|a| ConfigEdits::parse_overlay(a, &names))
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

#[derive(Args)]
struct SplitCmd {
    /// The unzipped API-M home (never modified); from 4.5.0, the packs of one
    /// deployment (wso2am-acp, wso2am-universal-gw, wso2am-tm; or the all-in-one
    /// pack with wso2am-universal-gw, and wso2am-acp for a key manager).
    #[arg(required = true, num_args = 1.., value_name = "HOME")]
    homes: Vec<PathBuf>,
    /// Where the copies go: DIR/<profile>/<home name>.
    #[arg(help_heading = "What to make", long, short = 'o', value_name = "DIR")]
    out: PathBuf,
    /// Comma-separated profiles (default: control-plane,gateway-worker,traffic-manager).
    #[arg(help_heading = "What to make", long, short = 'p', value_delimiter = ',', value_name = "P1,P2")]
    profiles: Option<Vec<String>>,
    /// Print what would change (diffs, removals, summary) and write nothing.
    #[arg(help_heading = "What to make", long, short = 'n')]
    dry_run: bool,
    /// With --dry-run: per profile the files rewritten and removed and the settings replaced or dropped, no diffs.
    #[arg(help_heading = "What to make", long, requires = "dry_run")]
    summary: bool,
    /// Keep the home's own deployment.toml (the product's --skipConfigOptimization).
    #[arg(help_heading = "What to make", long)]
    skip_config_optimization: bool,
    /// Replace copies that are stale (made from other inputs).
    #[arg(help_heading = "What to make", long)]
    force: bool,
    /// Threads for copying (default: four per core; copying waits on the disk more than it computes).
    #[arg(help_heading = "What to make", long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Also write <DIR>/<profile>/<home>.zip (or .tar.gz) of each copy, for distribution.
    #[arg(help_heading = "What to make", long, value_enum, value_name = "FORMAT")]
    archive: Option<archive::Format>,
    /// Clone file extents instead of copying bytes: auto, always or never.
    #[arg(help_heading = "What to make", long, value_enum, default_value_t = Reflink::Auto)]
    reflink: Reflink,
    #[command(flatten)]
    config: ConfigFlags,
    #[command(flatten)]
    no_update: NoUpdate,
    #[command(flatten)]
    update: UpdateFlags,
    /// Run the update once, in a staging copy of the home, and make the copies from it
    /// (one download and one tool run for all profiles; HOME is not changed). The default with one home;
    /// with several packs, each pack's tool runs once for that pack's copies.
    #[arg(help_heading = "Update", long, conflicts_with_all = ["no_update", "update_each"])]
    update_once: bool,
    /// Make each copy, then run the update in it (one tool run per copy; conflicts resolved per copy).
    #[arg(help_heading = "Update", long, conflicts_with = "no_update")]
    update_each: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct OptimizeCmd {
    /// The home to optimize in place.
    home: PathBuf,
    /// The profile to optimize for.
    #[arg(help_heading = "What to make", long, short = 'p')]
    profile: String,
    /// Print what would change and write nothing.
    #[arg(help_heading = "What to make", long, short = 'n')]
    dry_run: bool,
    /// Keep the home's own deployment.toml.
    #[arg(help_heading = "What to make", long)]
    skip_config_optimization: bool,
    #[command(flatten)]
    config: ConfigFlags,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct UpdateCmd {
    /// Copies made by split.
    #[arg(required = true)]
    copies: Vec<PathBuf>,
    /// Resume after conflicts were resolved (`<file>.final` beside each).
    #[arg(long = "continue")]
    resume: bool,
    /// Roll back the copy's last update (the tool's apply-update --revert), then optimize it again.
    #[arg(long, conflicts_with_all = ["resume", "update_zip", "update_level"])]
    revert: bool,
    /// Update copies that changed since apim-profiles left them; edited files are left for the tool.
    #[arg(long)]
    force: bool,
    /// Read the update options from a TOML settings file (flags win).
    #[arg(long, value_name = "FILE.toml", help_heading = "Configuration")]
    settings: Option<PathBuf>,
    #[command(flatten)]
    update: UpdateFlags,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct VerifyCmd {
    /// Copies made by split (<DIR>/<profile>/<home>).
    #[arg(required = true)]
    copies: Vec<PathBuf>,
    /// Also read every file of each copy and compare it with the digest taken
    /// when the copy was made (a copy recorded without digests: exit 2).
    #[arg(long)]
    content: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct ImageCmd {
    /// The unzipped API-M home (never modified).
    home: PathBuf,
    /// The OCI image layout to write (made when missing; an existing one keeps its other tags).
    #[arg(help_heading = "What to make", long, short = 'o', value_name = "DIR")]
    out: PathBuf,
    /// The base image: an OCI image layout directory or a `docker save` archive.
    #[arg(help_heading = "What to make", long, value_name = "PATH[:TAG]")]
    base: String,
    /// Comma-separated profiles (default: the version's default profiles).
    #[arg(help_heading = "What to make", long, short = 'p', value_delimiter = ',', value_name = "P1,P2")]
    profiles: Option<Vec<String>>,
    /// Each image's tag in the layout; {profile} is the profile's name.
    #[arg(help_heading = "What to make", long, value_name = "TAG", default_value = "{profile}")]
    tag: String,
    /// Keep the home's own deployment.toml.
    #[arg(help_heading = "What to make", long)]
    skip_config_optimization: bool,
    #[command(flatten)]
    config: ConfigFlags,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct ProfilesCmd {
    #[command(flatten)]
    common: Common,
}

impl ConfigFlags {
    /// The plan's options of a command that shapes copies: built here, one
    /// way, for `split` and `optimize`.
    fn options(&self, skip_config_optimization: bool, profile_dir: Option<&Path>) -> anyhow::Result<Options> {
        Ok(Options::from_command_line(skip_config_optimization, self.edits(profile_dir)?))
    }

    /// The file's lists first: the command line's sets and overlays apply later, so they win.
    fn merge(&mut self, s: &Settings) {
        let join = |file: Vec<String>, cli: &mut Vec<String>| file.into_iter().chain(cli.drain(..)).collect();
        self.carry = join(s.carry.clone(), &mut self.carry);
        self.carry_common |= s.carry_common;
        self.sets = join(s.sets.iter().map(|x| x.arg.clone()).collect(), &mut self.sets);
        self.overlays = join(s.overlays.iter().map(|x| x.arg.clone()).collect(), &mut self.overlays);
    }
}

/// Whether a flag was given on the command line (it then wins over the file).
type Given<'a> = &'a dyn Fn(&str) -> bool;

/// The settings file, read and checked against the profiles this build knows.
fn load_settings(path: Option<&Path>, profile_dir: Option<&Path>) -> anyhow::Result<Option<Settings>> {
    let Some(path) = path else { return Ok(None) };
    let catalog = load_catalog(profile_dir)?;
    let names: Vec<&str> = catalog.profiles.iter().map(|p| p.name.as_str()).collect();
    settings::load(path, &names).map(Some)
}

impl UpdateFlags {
    /// The update step's settings.
    fn settings(&self, resume: bool, json: bool, quiet: bool) -> update::Settings {
        use std::io::IsTerminal;
        update::Settings {
            input_timeout: std::time::Duration::from_secs(self.update_input_timeout),
            trial_subscription: self.update_trial_subscription,
            revert: false,
            progress: !json && !quiet && std::io::stderr().is_terminal(),
            tool: self.update_tool.clone(),
            zip: self.update_zip.clone(),
            level: self.update_level.clone(),
            credentials_file: self.credentials_file.clone(),
            timeout: std::time::Duration::from_secs(self.update_timeout),
            jobs: self.update_jobs.max(1),
            resume,
            echo: !json && !quiet,
            ready: None,
            preview: false,
        }
    }

    /// The settings file's `[update]` where the command line gave none.
    fn merge(&mut self, s: &UpdateSettings, given: Given) {
        self.update_tool = self.update_tool.take().or_else(|| s.tool.clone());
        self.update_zip = self.update_zip.take().or_else(|| s.zip.clone());
        self.update_level = self.update_level.take().or_else(|| s.level.clone());
        self.credentials_file = self.credentials_file.take().or_else(|| s.credentials_file.clone());
        if let (false, Some(t)) = (given("update_timeout"), s.timeout) {
            self.update_timeout = t;
        }
        if let (false, Some(j)) = (given("update_jobs"), s.jobs) {
            self.update_jobs = j;
        }
    }
}

/// The command line's definition, with what only a run can know: the
/// supported product versions in `--version`, and the examples.
fn command() -> clap::Command {
    let versions = crate::model::profile::embedded_versions().join(", ");
    let version = format!("{}\nsupported API-M versions: {versions}", env!("CARGO_PKG_VERSION"));
    manual::with_examples(Cli::command().version(version))
}

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
    crate::engine::catch_signals();
    stop_at_once_before_writing(wants_json());
    let parsed = command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
        Ok(p) => p,
        Err(e) => return report::emit_parse_error(&e, wants_json()),
    };
    style::init(cli.look.color);
    let sub = matches.subcommand().map(|(_, m)| m.clone()).unwrap_or_default();
    let given = |id: &str| sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    let json = cli.command.json();
    let quiet = cli.look.quiet;
    let summary = matches!(&cli.command, Command::Split(c) if c.summary);
    // The one place an outcome becomes an exit code. A signal decides the
    // code of a run it stopped, before the report is printed, so that the
    // JSON's `exit_code` is the code the process exits with.
    let result = cli.command.run(&given, quiet);
    let signalled = crate::engine::stopped_by().map(Exit::of_signal);
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

/// Whether `--json` is on a command line that did not parse (before a `--`).
fn wants_json() -> bool {
    std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

/// Before anything is written (checks, planning, a whole dry-run) a signal
/// ends the run at once, whatever it is reading: nothing needs cleaning up.
/// A run that writes stops at the next file and cleans up instead.
fn stop_at_once_before_writing(json: bool) {
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let Some(sig) = crate::engine::stopped_by() else { continue };
        if crate::engine::writing() {
            return;
        }
        let exit = Exit::of_signal(sig);
        let err = anyhow::anyhow!("interrupted; nothing was written");
        let _ = report::emit_error(json, &err, exit);
        std::process::exit(exit.code().into());
    });
}

impl Command {
    fn json(&self) -> bool {
        match self {
            Command::Split(c) => c.common.json,
            Command::Optimize(c) => c.common.json,
            Command::Update(c) => c.common.json,
            Command::Verify(c) => c.common.json,
            Command::Status(c) => c.common.json,
            Command::Profiles(c) => c.common.json,
            Command::Image(c) => c.common.json,
            Command::Completions(_) | Command::Man(_) | Command::Schema(_) => false,
        }
    }

    fn run(self, given: Given, quiet: bool) -> anyhow::Result<RunOutcome> {
        match self {
            Command::Split(c) => c.run(given, quiet),
            Command::Optimize(c) => c.run(),
            Command::Update(c) => c.run(given, quiet),
            Command::Verify(c) => verify::run(&c.copies, c.common.profile_dir.as_deref(), c.content),
            Command::Status(c) => status::run(&c.paths, c.common.profile_dir.as_deref()),
            Command::Profiles(c) => profiles::run(c.common.profile_dir.as_deref()),
            Command::Image(c) => c.run(),
            Command::Completions(c) => {
                // A closed pipe (`... | head`) ends the script quietly, as every report does.
                manual::completions(&mut command(), c.shell, &mut std::io::stdout().lock())
                    .or_else(|e| if e.kind() == std::io::ErrorKind::BrokenPipe { Ok(()) } else { Err(e) })
                    .context("writing the completion script to stdout")
                    .map(|()| RunOutcome::paths(Vec::new()))
            }
            Command::Man(c) => manual::write_man_pages(&command(), &c.out).map(RunOutcome::paths),
            Command::Schema(c) => {
                print!("{}", json::schema(&c.document).unwrap_or_default());
                Ok(RunOutcome::paths(Vec::new()))
            }
        }
    }
}

impl SplitCmd {
    /// The settings file's values where the command line gave none.
    fn merge(&mut self, s: &Settings, given: Given) {
        if !given("profiles") && s.profiles.is_some() {
            self.profiles = s.profiles.clone();
        }
        let mut s = s.clone();
        if let Some(p) = &self.profiles {
            s.only_for(p);
        }
        let s = &s;
        self.skip_config_optimization |= s.skip_config_optimization;
        self.force |= s.force;
        self.jobs = self.jobs.or(s.jobs);
        if let (false, Some(r)) = (given("reflink"), &s.reflink) {
            self.reflink = clap::ValueEnum::from_str(r, false).unwrap_or(self.reflink);
        }
        if let (None, Some(a)) = (self.archive, &s.archive) {
            self.archive = clap::ValueEnum::from_str(a, false).ok();
        }
        self.config.merge(s);
        // `enabled = false` is --no-update, unless the command line asks for an update.
        let cli_update = ["update_tool", "update_zip", "update_level", "credentials_file"].iter().any(|id| given(id));
        if s.update.enabled == Some(false) && !cli_update {
            self.no_update.no_update = true;
        }
        if !self.no_update.no_update {
            self.update.merge(&s.update, given);
        }
    }

    fn run(mut self, given: Given, quiet: bool) -> anyhow::Result<RunOutcome> {
        if let Some(s) = load_settings(self.config.settings.as_deref(), self.common.profile_dir.as_deref())? {
            self.merge(&s, given);
        }
        let json = self.common.json;
        split::check_jobs("--jobs", self.jobs)?;
        split::check_jobs("--update-jobs", Some(self.update.update_jobs))?;
        let options = self.config.options(self.skip_config_optimization, self.common.profile_dir.as_deref())?;
        split::run(&split::SplitArgs {
            update: (!self.no_update.no_update).then(|| self.update.settings(false, json, quiet)),
            homes: self.homes,
            out: self.out,
            profiles: self.profiles,
            dry_run: self.dry_run,
            force: self.force,
            jobs: self.jobs,
            reflink: self.reflink,
            update_once: self.update_once,
            update_each: self.update_each,
            options,
            profile_dir: self.common.profile_dir,
            progress: !json && !quiet && std::io::stderr().is_terminal(),
            archive: self.archive,
        })
    }
}

impl OptimizeCmd {
    fn run(mut self) -> anyhow::Result<RunOutcome> {
        if let Some(mut s) = load_settings(self.config.settings.as_deref(), self.common.profile_dir.as_deref())? {
            s.only_for(std::slice::from_ref(&self.profile));
            self.skip_config_optimization |= s.skip_config_optimization;
            self.config.merge(&s);
        }
        let options = self.config.options(self.skip_config_optimization, self.common.profile_dir.as_deref())?;
        optimize::run(&optimize::OptimizeArgs {
            home: self.home,
            profile: self.profile,
            dry_run: self.dry_run,
            options,
            profile_dir: self.common.profile_dir,
        })
    }
}

impl ImageCmd {
    fn run(mut self) -> anyhow::Result<RunOutcome> {
        let dir = self.common.profile_dir.clone();
        if let Some(mut s) = load_settings(self.config.settings.as_deref(), dir.as_deref())? {
            self.profiles = self.profiles.or(s.profiles.clone());
            if let Some(p) = &self.profiles {
                s.only_for(p);
            }
            self.skip_config_optimization |= s.skip_config_optimization;
            self.config.merge(&s);
        }
        let options = self.config.options(self.skip_config_optimization, dir.as_deref())?;
        let (home, out, base, profiles, tag) = (self.home, self.out, self.base, self.profiles, self.tag);
        image::run(&image::ImageArgs { home, out, base, profiles, tag, options, profile_dir: dir })
    }
}

impl UpdateCmd {
    fn run(mut self, given: Given, quiet: bool) -> anyhow::Result<RunOutcome> {
        if let Some(s) = load_settings(self.settings.as_deref(), self.common.profile_dir.as_deref())? {
            self.update.merge(&s.update, given);
        }
        split::check_jobs("--update-jobs", Some(self.update.update_jobs))?;
        let mut s = self.update.settings(self.resume, self.common.json, quiet);
        s.revert = self.revert;
        // `update` has no --no-update: its refusals do not offer it.
        update_cmd::run(&self.copies, &s, self.common.profile_dir.as_deref(), self.force)
            .map_err(|e| crate::outcome::without_alternative(e, "--no-update"))
    }
}
