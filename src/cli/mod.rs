//! The command line, on the top floor below `main`: the flags as clap reads
//! them (`args`), the settings file merged into them (`settings`), the help's
//! examples, man pages and completions (`manual`), and here the turn from
//! flags into each command's arguments. Nothing about profiles is decided
//! here; nothing below imports it.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};

use crate::commands::{image, optimize, profiles, split, status, update as update_cmd, verify};
use crate::model::config::ConfigEdits;
use crate::model::plan::Options;
use crate::model::profile::load_catalog;
use crate::outcome::Exit;
use crate::report::{self, json, RunOutcome};
use crate::update;

pub mod args;
pub mod manual;
pub mod settings;

use args::{Cli, Command, ConfigFlags, ImageCmd, OptimizeCmd, SplitCmd, UpdateCmd, UpdateFlags};
use settings::Given;

/// The command line's definition, with what only a run can know: the
/// supported product versions in `--version`, and the examples.
pub fn command() -> clap::Command {
    let versions = crate::model::profile::embedded_versions().join(", ");
    let version = format!("{}\nsupported API-M versions: {versions}", env!("CARGO_PKG_VERSION"));
    manual::with_examples(Cli::command().version(version))
}

/// The process's command line, parsed, with what it gave (for the settings
/// file's merge).
pub fn parse() -> Result<(Cli, Given), clap::Error> {
    let matches = command().try_get_matches()?;
    let cli = Cli::from_arg_matches(&matches)?;
    Ok((cli, Given::of(&matches)))
}

/// Whether `--json` is on a command line that did not parse (before a `--`).
pub fn wants_json() -> bool {
    std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

/// Before anything is written (checks, planning, a whole dry-run) a signal
/// ends the run at once, whatever it is reading: nothing needs cleaning up.
/// A run that writes stops at the next file and cleans up instead. The one
/// exit besides `main`'s, for a run whose main thread cannot be asked.
pub fn stop_at_once_before_writing(json: bool) {
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let Some(sig) = crate::signals::stopped_by() else { continue };
        if crate::signals::writing() {
            return;
        }
        let exit = Exit::of_signal(sig);
        let err = anyhow::anyhow!("interrupted; nothing was written");
        let _ = report::emit_error(json, &err, exit);
        std::process::exit(exit.code().into());
    });
}

impl Command {
    /// Whether the command prints a JSON document (`--json`).
    pub fn json(&self) -> bool {
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

    /// Runs the command (its settings file already merged: [`settings::resolve`]).
    pub fn run(self, quiet: bool) -> anyhow::Result<RunOutcome> {
        match self {
            Command::Split(c) => c.run(quiet),
            Command::Optimize(c) => c.run(),
            Command::Update(c) => c.run(quiet),
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

    /// The plan's options of a command that shapes copies: built here, one
    /// way, for `split` and `optimize`.
    fn options(&self, skip_config_optimization: bool, profile_dir: Option<&Path>) -> anyhow::Result<Options> {
        Ok(Options::from_command_line(skip_config_optimization, self.edits(profile_dir)?))
    }
}

impl UpdateFlags {
    /// The update step's settings.
    fn settings(&self, resume: bool, json: bool, quiet: bool) -> update::Settings {
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
}

impl SplitCmd {
    fn run(self, quiet: bool) -> anyhow::Result<RunOutcome> {
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
            reflink: self.reflink.into(),
            update_once: self.update_once,
            update_each: self.update_each,
            options,
            profile_dir: self.common.profile_dir,
            progress: !json && !quiet && std::io::stderr().is_terminal(),
            archive: self.archive.map(Into::into),
        })
    }
}

impl OptimizeCmd {
    fn run(self) -> anyhow::Result<RunOutcome> {
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
    fn run(self) -> anyhow::Result<RunOutcome> {
        let dir = self.common.profile_dir;
        let options = self.config.options(self.skip_config_optimization, dir.as_deref())?;
        let (home, out, base, profiles, tag) = (self.home, self.out, self.base, self.profiles, self.tag);
        image::run(&image::ImageArgs { home, out, base, profiles, tag, options, profile_dir: dir })
    }
}

impl UpdateCmd {
    fn run(self, quiet: bool) -> anyhow::Result<RunOutcome> {
        split::check_jobs("--update-jobs", Some(self.update.update_jobs))?;
        let mut s = self.update.settings(self.resume, self.common.json, quiet);
        s.revert = self.revert;
        // `update` has no --no-update: its refusals do not offer it.
        update_cmd::run(&self.copies, &s, self.common.profile_dir.as_deref(), self.force)
            .map_err(|e| crate::outcome::without_alternative(e, "--no-update"))
    }
}
