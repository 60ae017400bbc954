//! The command line as clap reads it: every command's flags, their help and
//! their defaults. Nothing here decides anything; `settings` merges the
//! settings file into these, `cli` turns them into each command's arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::archive;
use crate::engine::copy::Reflink;
use crate::report::json;
use crate::report::style::ColorChoice;

#[derive(Parser)]
#[command(name = "apim-profiles", about = "Split a WSO2 API Manager home into optimized per-profile copies")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub look: Look,
}

/// How output looks to a person (any command).
#[derive(Args)]
#[command(next_help_heading = "Output")]
pub struct Look {
    /// Colour the diff, statuses and errors: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// Only what needs attention: no progress, no warnings, no report of a copy that is fine (errors still show).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum Command {
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
pub struct StatusCmd {
    /// An output directory of split, or copies.
    #[arg(required = true, value_name = "OUT | COPY")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct CompletionsCmd {
    /// bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args)]
pub struct ManCmd {
    /// Directory to write apim-profiles.1 and apim-profiles-<command>.1 into.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct SchemaCmd {
    /// split, optimize, update, verify, status, profiles or error.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(json::DOCUMENTS))]
    pub document: String,
}

#[derive(Args)]
pub struct Common {
    /// Print one JSON document on stdout (messages go to stderr).
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Use profile definitions from DIR/<version>/*.toml instead of the built-in ones.
    #[arg(long, value_name = "DIR", help_heading = "Configuration")]
    pub profile_dir: Option<PathBuf>,
}

/// `--no-update`: split only, contradicting every update option (named in
/// the refusal).
#[derive(Args)]
#[command(next_help_heading = "Update")]
pub struct NoUpdate {
    /// Do not run the U2 update in the copies.
    #[arg(long, conflicts_with_all = ["update_tool", "update_zip", "update_level", "credentials_file", "update_timeout", "update_jobs", "update_input_timeout", "update_trial_subscription"])]
    pub no_update: bool,
}

#[derive(Args)]
#[command(next_help_heading = "Update")]
pub struct UpdateFlags {
    /// An update tool to place in each copy's bin/ when the home has none.
    #[arg(long, value_name = "PATH")]
    pub update_tool: Option<PathBuf>,
    /// Apply this update archive (the tool's apply-update) instead of downloading.
    #[arg(long, value_name = "ZIP")]
    pub update_zip: Option<PathBuf>,
    /// Update to this level (e.g. 4.2.0.5) instead of the latest.
    #[arg(long, value_name = "L")]
    pub update_level: Option<String>,
    /// A file with `username=` and `password=` lines (mode 600); `-` reads them from standard input.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Seconds one update run may take before it is stopped (at least 1).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub update_timeout: u64,
    /// How many update runs at once (they share ~/.wso2-updates).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub update_jobs: usize,
    /// Seconds the tool may wait, silent, for an answer apim-profiles does not give before it is stopped.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    pub update_input_timeout: u64,
    /// Accept a trial subscription when the tool offers one (the account has no active subscription).
    #[arg(long)]
    pub update_trial_subscription: bool,
}

/// The operator's settings for each profile's deployment.toml.
#[derive(Args)]
#[command(next_help_heading = "Configuration")]
pub struct ConfigFlags {
    /// Read profiles, carry, set, overlay and update options from a TOML file (flags win).
    #[arg(long, value_name = "FILE.toml")]
    pub settings: Option<PathBuf>,
    /// Take these tables or keys (dotted) from the home's deployment.toml into every profile's.
    #[arg(long, value_delimiter = ',', value_name = "KEY,...")]
    pub carry: Vec<String>,
    /// Carry the settings every profile shares: super_admin, user_store, database.shared_db, keystore.tls, truststore.
    #[arg(long)]
    pub carry_common: bool,
    /// Set a key: [PROFILE:]dotted.key=VALUE, VALUE in TOML syntax (repeatable).
    #[arg(long = "set", value_name = "[PROFILE:]KEY=VALUE")]
    pub sets: Vec<String>,
    /// Merge a TOML file key by key: [PROFILE=]FILE.toml (repeatable).
    #[arg(long = "overlay", value_name = "[PROFILE=]FILE")]
    pub overlays: Vec<String>,
}

#[derive(Args)]
pub struct SplitCmd {
    /// The unzipped API-M home (never modified); from 4.5.0, the packs of one
    /// deployment (wso2am-acp, wso2am-universal-gw, wso2am-tm; or the all-in-one
    /// pack with wso2am-universal-gw, and wso2am-acp for a key manager).
    #[arg(required = true, num_args = 1.., value_name = "HOME")]
    pub homes: Vec<PathBuf>,
    /// Where the copies go: DIR/<profile>/<home name>.
    #[arg(help_heading = "What to make", long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Comma-separated profiles (default: control-plane,gateway-worker,traffic-manager).
    #[arg(help_heading = "What to make", long, short = 'p', value_delimiter = ',', value_name = "P1,P2")]
    pub profiles: Option<Vec<String>>,
    /// Print what would change (diffs, removals, summary) and write nothing.
    #[arg(help_heading = "What to make", long, short = 'n')]
    pub dry_run: bool,
    /// With --dry-run: per profile the files rewritten and removed and the settings replaced or dropped, no diffs.
    #[arg(help_heading = "What to make", long, requires = "dry_run")]
    pub summary: bool,
    /// Keep the home's own deployment.toml (the product's --skipConfigOptimization).
    #[arg(help_heading = "What to make", long)]
    pub skip_config_optimization: bool,
    /// Replace copies that are stale (made from other inputs).
    #[arg(help_heading = "What to make", long)]
    pub force: bool,
    /// Threads for copying (default: four per core; copying waits on the disk more than it computes).
    #[arg(help_heading = "What to make", long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Also write <DIR>/<profile>/<home>.zip (or .tar.gz) of each copy, for distribution.
    #[arg(help_heading = "What to make", long, value_enum, value_name = "FORMAT")]
    pub archive: Option<ArchiveArg>,
    /// Clone file extents instead of copying bytes: auto, always or never.
    #[arg(help_heading = "What to make", long, value_enum, default_value_t = ReflinkArg::Auto)]
    pub reflink: ReflinkArg,
    #[command(flatten)]
    pub config: ConfigFlags,
    #[command(flatten)]
    pub no_update: NoUpdate,
    #[command(flatten)]
    pub update: UpdateFlags,
    /// Run the update once, in a staging copy of the home, and make the copies from it
    /// (one download and one tool run for all profiles; HOME is not changed). The default with one home;
    /// with several packs, each pack's tool runs once for that pack's copies.
    #[arg(help_heading = "Update", long, conflicts_with_all = ["no_update", "update_each"])]
    pub update_once: bool,
    /// Make each copy, then run the update in it (one tool run per copy; conflicts resolved per copy).
    #[arg(help_heading = "Update", long, conflicts_with = "no_update")]
    pub update_each: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct OptimizeCmd {
    /// The home to optimize in place.
    pub home: PathBuf,
    /// The profile to optimize for.
    #[arg(help_heading = "What to make", long, short = 'p')]
    pub profile: String,
    /// Print what would change and write nothing.
    #[arg(help_heading = "What to make", long, short = 'n')]
    pub dry_run: bool,
    /// Keep the home's own deployment.toml.
    #[arg(help_heading = "What to make", long)]
    pub skip_config_optimization: bool,
    #[command(flatten)]
    pub config: ConfigFlags,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct UpdateCmd {
    /// Copies made by split.
    #[arg(required = true)]
    pub copies: Vec<PathBuf>,
    /// Resume after conflicts were resolved (`<file>.final` beside each).
    #[arg(long = "continue")]
    pub resume: bool,
    /// Roll back the copy's last update (the tool's apply-update --revert), then optimize it again.
    #[arg(long, conflicts_with_all = ["resume", "update_zip", "update_level"])]
    pub revert: bool,
    /// Update copies that changed since apim-profiles left them; edited files are left for the tool.
    #[arg(long)]
    pub force: bool,
    /// Read the update options from a TOML settings file (flags win).
    #[arg(long, value_name = "FILE.toml", help_heading = "Configuration")]
    pub settings: Option<PathBuf>,
    #[command(flatten)]
    pub update: UpdateFlags,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct VerifyCmd {
    /// Copies made by split (<DIR>/<profile>/<home>).
    #[arg(required = true)]
    pub copies: Vec<PathBuf>,
    /// Also read every file of each copy and compare it with the digest taken
    /// when the copy was made (a copy recorded without digests: exit 2).
    #[arg(long)]
    pub content: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct ImageCmd {
    /// The unzipped API-M home (never modified).
    pub home: PathBuf,
    /// The OCI image layout to write (made when missing; an existing one keeps its other tags).
    #[arg(help_heading = "What to make", long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// The base image: an OCI image layout directory or a `docker save` archive.
    #[arg(help_heading = "What to make", long, value_name = "PATH[:TAG]")]
    pub base: String,
    /// Comma-separated profiles (default: the version's default profiles).
    #[arg(help_heading = "What to make", long, short = 'p', value_delimiter = ',', value_name = "P1,P2")]
    pub profiles: Option<Vec<String>>,
    /// Each image's tag in the layout; {profile} is the profile's name.
    #[arg(help_heading = "What to make", long, value_name = "TAG", default_value = "{profile}")]
    pub tag: String,
    /// Keep the home's own deployment.toml.
    #[arg(help_heading = "What to make", long)]
    pub skip_config_optimization: bool,
    #[command(flatten)]
    pub config: ConfigFlags,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct ProfilesCmd {
    #[command(flatten)]
    pub common: Common,
}

/// `--reflink`, as the command line spells it (the engine's [`Reflink`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReflinkArg {
    /// Clone where the file system can, copy elsewhere.
    Auto,
    /// Clone or fail: for operators who count on no extra disk use.
    Always,
    /// Always copy bytes (RHEL 8/9 `cp` behaviour).
    Never,
}

impl From<ReflinkArg> for Reflink {
    fn from(r: ReflinkArg) -> Reflink {
        match r {
            ReflinkArg::Auto => Reflink::Auto,
            ReflinkArg::Always => Reflink::Always,
            ReflinkArg::Never => Reflink::Never,
        }
    }
}

/// `--archive`, as the command line spells it (the engine's [`archive::Format`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchiveArg {
    #[value(name = "zip")]
    Zip,
    #[value(name = "tar.gz")]
    TarGz,
}

impl From<ArchiveArg> for archive::Format {
    fn from(a: ArchiveArg) -> archive::Format {
        match a {
            ArchiveArg::Zip => archive::Format::Zip,
            ArchiveArg::TarGz => archive::Format::TarGz,
        }
    }
}
