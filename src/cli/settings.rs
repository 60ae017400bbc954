//! Settings resolution: the settings file (`--settings FILE.toml`) merged
//! into the command line, by one policy. A flag the command line gave wins;
//! a list (carry, set, overlay) is the file's entries then the command
//! line's, so that the command line's apply later and win; a switch is on
//! when either turns it on. Which flags the command line gave is asked by
//! [`Flag`], not by a string.

use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, ValueEnum};

use crate::cli::args::{ArchiveArg, Command, ConfigFlags, ReflinkArg, SplitCmd, UpdateFlags};
use crate::model::profile::load_catalog;
use crate::model::settings::{self, SettingsFile, UpdateSettings};

/// A flag whose value the settings file may give: the file's value counts
/// only when the command line did not give the flag (its default is not a
/// choice the operator made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Profiles,
    Reflink,
    UpdateTool,
    UpdateZip,
    UpdateLevel,
    CredentialsFile,
    UpdateTimeout,
    UpdateJobs,
}

impl Flag {
    /// The flags that name an update to run (`--update-tool`, `--update-zip`,
    /// `--update-level`, `--credentials-file`).
    const ASKS_FOR_UPDATE: [Flag; 4] = [Flag::UpdateTool, Flag::UpdateZip, Flag::UpdateLevel, Flag::CredentialsFile];

    /// The clap id of the flag: its field's name in `cli::args`.
    fn id(self) -> &'static str {
        match self {
            Flag::Profiles => "profiles",
            Flag::Reflink => "reflink",
            Flag::UpdateTool => "update_tool",
            Flag::UpdateZip => "update_zip",
            Flag::UpdateLevel => "update_level",
            Flag::CredentialsFile => "credentials_file",
            Flag::UpdateTimeout => "update_timeout",
            Flag::UpdateJobs => "update_jobs",
        }
    }
}

/// What the command line gave: the sub-command's parsed arguments.
pub struct Given(ArgMatches);

impl Given {
    /// From the whole command line's matches.
    pub fn of(matches: &ArgMatches) -> Given {
        Given(matches.subcommand().map(|(_, m)| m.clone()).unwrap_or_default())
    }

    /// Whether the command line gave `flag` (it then wins over the file).
    pub fn gave(&self, flag: Flag) -> bool {
        self.0.value_source(flag.id()) == Some(ValueSource::CommandLine)
    }
}

/// The command with its settings file merged in (commands without
/// `--settings` unchanged).
pub fn resolve(mut command: Command, given: &Given) -> anyhow::Result<Command> {
    match &mut command {
        Command::Split(c) => {
            if let Some(s) = load(c.config.settings.as_deref(), c.common.profile_dir.as_deref())? {
                merge_split(c, &s, given);
            }
        }
        Command::Optimize(c) => {
            if let Some(mut s) = load(c.config.settings.as_deref(), c.common.profile_dir.as_deref())? {
                s.only_for(std::slice::from_ref(&c.profile));
                c.skip_config_optimization |= s.skip_config_optimization;
                merge_config(&mut c.config, &s);
            }
        }
        Command::Image(c) => {
            if let Some(mut s) = load(c.config.settings.as_deref(), c.common.profile_dir.as_deref())? {
                c.profiles = c.profiles.take().or(s.profiles.clone());
                if let Some(p) = &c.profiles {
                    s.only_for(p);
                }
                c.skip_config_optimization |= s.skip_config_optimization;
                merge_config(&mut c.config, &s);
            }
        }
        Command::Update(c) => {
            if let Some(s) = load(c.settings.as_deref(), c.common.profile_dir.as_deref())? {
                merge_update(&mut c.update, &s.update, given);
            }
        }
        _ => {}
    }
    Ok(command)
}

/// The settings file, read and checked against the profiles this build knows.
fn load(path: Option<&Path>, profile_dir: Option<&Path>) -> anyhow::Result<Option<SettingsFile>> {
    let Some(path) = path else { return Ok(None) };
    let catalog = load_catalog(profile_dir)?;
    let names: Vec<&str> = catalog.profiles.iter().map(|p| p.name.as_str()).collect();
    settings::load(path, &names).map(Some)
}

/// The settings file's values where split's command line gave none.
fn merge_split(c: &mut SplitCmd, s: &SettingsFile, given: &Given) {
    if !given.gave(Flag::Profiles) && s.profiles.is_some() {
        c.profiles = s.profiles.clone();
    }
    let mut s = s.clone();
    if let Some(p) = &c.profiles {
        s.only_for(p);
    }
    let s = &s;
    c.skip_config_optimization |= s.skip_config_optimization;
    c.force |= s.force;
    c.jobs = c.jobs.or(s.jobs);
    if let (false, Some(r)) = (given.gave(Flag::Reflink), &s.reflink) {
        c.reflink = ReflinkArg::from_str(r, false).unwrap_or(c.reflink);
    }
    if let (None, Some(a)) = (c.archive, &s.archive) {
        c.archive = ArchiveArg::from_str(a, false).ok();
    }
    merge_config(&mut c.config, s);
    // `enabled = false` is --no-update, unless the command line asks for an update.
    let cli_update = Flag::ASKS_FOR_UPDATE.iter().any(|&f| given.gave(f));
    if s.update.enabled == Some(false) && !cli_update {
        c.no_update.no_update = true;
    }
    if !c.no_update.no_update {
        merge_update(&mut c.update, &s.update, given);
    }
}

/// The file's lists first: the command line's sets and overlays apply later, so they win.
fn merge_config(c: &mut ConfigFlags, s: &SettingsFile) {
    let join = |file: Vec<String>, cli: &mut Vec<String>| file.into_iter().chain(cli.drain(..)).collect();
    c.carry = join(s.carry.clone(), &mut c.carry);
    c.carry_common |= s.carry_common;
    c.sets = join(s.sets.iter().map(|x| x.arg.clone()).collect(), &mut c.sets);
    c.overlays = join(s.overlays.iter().map(|x| x.arg.clone()).collect(), &mut c.overlays);
}

/// The settings file's `[update]` where the command line gave none.
fn merge_update(u: &mut UpdateFlags, s: &UpdateSettings, given: &Given) {
    u.update_tool = u.update_tool.take().or_else(|| s.tool.clone());
    u.update_zip = u.update_zip.take().or_else(|| s.zip.clone());
    u.update_level = u.update_level.take().or_else(|| s.level.clone());
    u.credentials_file = u.credentials_file.take().or_else(|| s.credentials_file.clone());
    if let (false, Some(t)) = (given.gave(Flag::UpdateTimeout), s.timeout) {
        u.update_timeout = t;
    }
    if let (false, Some(j)) = (given.gave(Flag::UpdateJobs), s.jobs) {
        u.update_jobs = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag the merge asks about is an argument of the commands that
    /// ask: a renamed field would otherwise make the file win silently.
    #[test]
    fn every_flag_names_an_argument_of_its_commands() {
        let all = [
            Flag::Profiles,
            Flag::Reflink,
            Flag::UpdateTool,
            Flag::UpdateZip,
            Flag::UpdateLevel,
            Flag::CredentialsFile,
            Flag::UpdateTimeout,
            Flag::UpdateJobs,
        ];
        let update = [&Flag::ASKS_FOR_UPDATE[..], &[Flag::UpdateTimeout, Flag::UpdateJobs]].concat();
        let cmd = crate::cli::command();
        for (sub, flags) in [("split", &all[..]), ("update", &update[..])] {
            let sub = cmd.find_subcommand(sub).expect("the sub-command");
            for f in flags {
                assert!(sub.get_arguments().any(|a| a.get_id() == f.id()), "{f:?} in {}", sub.get_name());
            }
        }
    }

    /// A flag given on the command line is told apart from its default.
    #[test]
    fn given_tells_the_command_line_from_a_default() {
        let m = crate::cli::command()
            .try_get_matches_from(["apim-profiles", "update", "c", "--update-jobs", "2"])
            .expect("parses");
        let given = Given::of(&m);
        assert!(given.gave(Flag::UpdateJobs));
        assert!(!given.gave(Flag::UpdateTimeout));
    }
}
