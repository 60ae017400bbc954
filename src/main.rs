//! The command line: parse, call the library, map the outcome to the
//! contract's exit codes. Nothing about profiles is decided here.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use apim_profiles::config::ConfigEdits;
use apim_profiles::copy::Reflink;
use apim_profiles::error::{exit, exit_code, hint};
use apim_profiles::plan::Options;
use apim_profiles::report::{print_profile, Report};
use apim_profiles::settings::{Settings, UpdateSettings};
use apim_profiles::split::ReportCarrier;
use apim_profiles::style::{self, ColorChoice, Paint};
use apim_profiles::{manual, optimize, profiles_cmd, schema, settings, split, status, update, update_cmd, verify};

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
    /// No progress and no warnings on stderr (errors still show).
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
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(apim_profiles::schema::DOCUMENTS))]
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

#[derive(Args)]
#[command(next_help_heading = "Update")]
struct UpdateFlags {
    /// Do not run the U2 update in the copies.
    #[arg(long, conflicts_with = "update_tool")]
    no_update: bool,
    /// An update tool to place in each copy's bin/ when the home has none.
    #[arg(long, value_name = "PATH")]
    update_tool: Option<PathBuf>,
    /// Apply this update archive (the tool's apply-update) instead of downloading.
    #[arg(long, value_name = "ZIP")]
    update_zip: Option<PathBuf>,
    /// Update to this level (e.g. 4.2.0.5) instead of the latest.
    #[arg(long, value_name = "L")]
    update_level: Option<String>,
    /// A file with `username=` and `password=` lines (mode 600).
    #[arg(long, value_name = "FILE")]
    credentials_file: Option<PathBuf>,
    /// Seconds one update run may take before it is stopped.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    update_timeout: u64,
    /// How many update runs at once (they share ~/.wso2-updates).
    #[arg(long, value_name = "N", default_value_t = 1)]
    update_jobs: usize,
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
    fn edits(&self, profile_dir: Option<&std::path::Path>) -> anyhow::Result<ConfigEdits> {
        let catalog = split::load_catalog(profile_dir)?;
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
    /// The unzipped API-M home (never modified).
    home: PathBuf,
    /// Where the copies go: DIR/<profile>/<home name>.
    #[arg(help_heading = "What to make", long, short = 'o', value_name = "DIR")]
    out: PathBuf,
    /// Comma-separated profiles (default: control-plane,gateway-worker,traffic-manager).
    #[arg(help_heading = "What to make", long, short = 'p', value_delimiter = ',', value_name = "P1,P2")]
    profiles: Option<Vec<String>>,
    /// Print what would change (diffs, removals, summary) and write nothing.
    #[arg(help_heading = "What to make", long, short = 'n')]
    dry_run: bool,
    /// Keep the home's own deployment.toml (the product's --skipConfigOptimization).
    #[arg(help_heading = "What to make", long)]
    skip_config_optimization: bool,
    /// Replace copies that are stale (made from other inputs).
    #[arg(help_heading = "What to make", long)]
    force: bool,
    /// Threads for copying (default: one per core).
    #[arg(help_heading = "What to make", long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Also write <DIR>/<profile>/<home>.zip (or .tar.gz) of each copy, for distribution.
    #[arg(help_heading = "What to make", long, value_enum, value_name = "FORMAT")]
    archive: Option<apim_profiles::archive::Format>,
    /// Clone file extents instead of copying bytes: auto, always or never.
    #[arg(help_heading = "What to make", long, value_enum, default_value_t = Reflink::Auto)]
    reflink: Reflink,
    #[command(flatten)]
    config: ConfigFlags,
    #[command(flatten)]
    update: UpdateFlags,
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
    #[arg(required = true)]
    copies: Vec<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct ProfilesCmd {
    #[command(flatten)]
    common: Common,
}

fn update_settings(f: &UpdateFlags, resume: bool, json: bool, quiet: bool) -> Option<update::Settings> {
    if f.no_update {
        return None;
    }
    Some(update::Settings {
        tool: f.update_tool.clone(),
        zip: f.update_zip.clone(),
        level: f.update_level.clone(),
        credentials_file: f.credentials_file.clone(),
        timeout: std::time::Duration::from_secs(f.update_timeout),
        jobs: f.update_jobs.max(1),
        resume,
        echo: !json && !quiet,
        ready: None,
    })
}

/// Whether a flag was given on the command line (it then wins over the file).
type Given<'a> = &'a dyn Fn(&str) -> bool;

fn load_settings(path: Option<&Path>, profile_dir: Option<&Path>) -> anyhow::Result<Option<Settings>> {
    let Some(path) = path else { return Ok(None) };
    let catalog = split::load_catalog(profile_dir)?;
    let names: Vec<&str> = catalog.profiles.iter().map(|p| p.name.as_str()).collect();
    settings::load(path, &names).map(Some)
}

impl ConfigFlags {
    /// The file's lists first: the command line's sets and overlays apply later, so they win.
    fn merge(&mut self, s: &Settings) {
        let join = |file: &[String], cli: &mut Vec<String>| file.iter().cloned().chain(cli.drain(..)).collect();
        self.carry = join(&s.carry, &mut self.carry);
        self.carry_common |= s.carry_common;
        self.sets = join(&s.sets, &mut self.sets);
        self.overlays = join(&s.overlays, &mut self.overlays);
    }
}

impl UpdateFlags {
    fn merge(&mut self, s: &UpdateSettings, given: Given) {
        let cli_update = ["update_tool", "update_zip", "update_level", "credentials_file"].iter().any(|id| given(id));
        if s.enabled == Some(false) && !cli_update {
            self.no_update = true;
        }
        if !self.no_update {
            self.update_tool = self.update_tool.take().or_else(|| s.tool.clone());
        }
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

impl SplitCmd {
    fn merge(&mut self, s: &Settings, given: Given) {
        if !given("profiles") && s.profiles.is_some() {
            self.profiles = s.profiles.clone();
        }
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
        self.update.merge(&s.update, given);
    }

    fn run(mut self, given: Given, quiet: bool) -> anyhow::Result<Report> {
        let profile_dir = self.common.profile_dir.clone();
        if let Some(s) = load_settings(self.config.settings.as_deref(), profile_dir.as_deref())? {
            self.merge(&s, given);
        }
        let json = self.common.json;
        let update = update_settings(&self.update, false, json, quiet);
        let config = self.config.edits(profile_dir.as_deref())?;
        split::run(&split::SplitArgs {
            home: self.home,
            out: self.out,
            profiles: self.profiles,
            dry_run: self.dry_run,
            force: self.force,
            jobs: self.jobs,
            reflink: self.reflink,
            options: Options { skip_config_optimization: self.skip_config_optimization, config, ..Default::default() },
            profile_dir,
            update,
            progress: !json && !quiet && std::io::stderr().is_terminal(),
            archive: self.archive,
        })
    }
}

impl OptimizeCmd {
    fn run(mut self) -> anyhow::Result<Report> {
        let profile_dir = self.common.profile_dir.clone();
        if let Some(s) = load_settings(self.config.settings.as_deref(), profile_dir.as_deref())? {
            self.skip_config_optimization |= s.skip_config_optimization;
            self.config.merge(&s);
        }
        let config = self.config.edits(profile_dir.as_deref())?;
        optimize::run(&optimize::OptimizeArgs {
            home: self.home,
            profile: self.profile,
            dry_run: self.dry_run,
            options: Options { skip_config_optimization: self.skip_config_optimization, config, ..Default::default() },
            profile_dir,
        })
    }
}

impl UpdateCmd {
    fn run(mut self, given: Given, quiet: bool) -> anyhow::Result<Report> {
        if let Some(s) = load_settings(self.settings.as_deref(), self.common.profile_dir.as_deref())? {
            self.update.merge(&s.update, given);
        }
        match update_settings(&self.update, self.resume, self.common.json, quiet) {
            Some(s) => update_cmd::run(&self.copies, &s, self.common.profile_dir.as_deref()),
            None => Err(apim_profiles::error::Refusal::new(
                "update --no-update has nothing to do",
                "drop --no-update; to only re-check a copy use apim-profiles verify",
            )
            .into()),
        }
    }
}

/// The command line's definition, with what only a run can know: the
/// supported product versions in `--version`, and the examples.
fn command() -> clap::Command {
    let versions = split::load_catalog(None).map(|c| c.versions().join(", ")).unwrap_or_default();
    let version = format!("{}\nsupported API-M versions: {versions}", env!("CARGO_PKG_VERSION"));
    manual::with_examples(Cli::command().version(version))
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    style::init(cli.look.color);
    let quiet = cli.look.quiet;
    let sub = matches.subcommand().map(|(_, m)| m.clone()).unwrap_or_default();
    let given = |id: &str| sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    let _ = ctrlc::set_handler(|| {
        apim_profiles::copy::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let (json, result) = match cli.command {
        Command::Split(c) => (c.common.json, c.run(&given, quiet).map(Output::Report)),
        Command::Optimize(c) => (c.common.json, c.run().map(Output::Report)),
        Command::Update(c) => (c.common.json, c.run(&given, quiet).map(Output::Report)),
        Command::Verify(c) => {
            (c.common.json, verify::run(&c.copies, c.common.profile_dir.as_deref()).map(Output::Report))
        }
        Command::Status(c) => {
            let no_drift = |_: &Path, _: &apim_profiles::record::Record| None;
            (c.common.json, status::run(&c.paths, c.common.profile_dir.as_deref(), &no_drift).map(Output::Status))
        }
        Command::Profiles(c) => {
            (c.common.json, profiles_cmd::run(c.common.profile_dir.as_deref()).map(Output::Profiles))
        }
        Command::Completions(c) => {
            manual::completions(&mut command(), c.shell, &mut std::io::stdout().lock());
            return ExitCode::SUCCESS;
        }
        Command::Man(c) => (false, manual::write_man_pages(&command(), &c.out).map(Output::Paths)),
        Command::Schema(c) => {
            print!("{}", schema::generate(&c.document).unwrap_or_default());
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(out) => {
            emit(json, quiet, &out);
            ExitCode::from(exit::OK as u8)
        }
        Err(err) => {
            let code = exit_code(&err);
            if let Some(ReportCarrier(report)) = err.downcast_ref::<ReportCarrier>() {
                // The command finished; its report says what needs attention.
                emit_report(json, report);
                for w in &report.warnings {
                    eprintln!("{w}");
                }
                return ExitCode::from(code as u8);
            }
            print_error(json, &err, code);
            ExitCode::from(code as u8)
        }
    }
}

enum Output {
    Report(Report),
    Profiles(Vec<profiles_cmd::ProfileInfo>),
    Status(status::StatusDoc),
    Paths(Vec<PathBuf>),
}

fn emit(json: bool, quiet: bool, out: &Output) {
    match out {
        Output::Report(r) => {
            emit_report(json, r);
            if !json && !quiet {
                let paint = Paint::stderr();
                for w in &r.warnings {
                    eprintln!("{} {w}", paint.paint(style::BOLD_YELLOW, "warning:"));
                }
            }
        }
        Output::Profiles(list) => {
            if json {
                let doc =
                    schema::ProfilesDoc { schema_version: Default::default(), changed: false, profiles: list.clone() };
                println!("{}", serde_json::to_string(&doc).unwrap_or_default());
            } else {
                for p in list {
                    let d = if p.default { " (default)" } else { "" };
                    println!("{:<28} API-M {}  {}{d}", p.name, p.version, p.summary);
                }
            }
        }
        Output::Status(doc) => {
            if json {
                println!("{}", serde_json::to_string_pretty(doc).unwrap_or_default());
            } else {
                print!("{}", status::render(doc, Paint::stdout()));
            }
        }
        Output::Paths(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
        }
    }
}

fn emit_report(json: bool, r: &Report) {
    let mut stdout = std::io::stdout().lock();
    if json {
        let _ = writeln!(stdout, "{}", serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
    let paint = Paint::stdout();
    for p in &r.profiles {
        let _ = write!(stdout, "{}", paint.report(&print_profile(p, r.dry_run)));
    }
    if r.dry_run {
        let _ = writeln!(stdout, "dry run: nothing was written");
    }
}

fn print_error(json: bool, err: &anyhow::Error, code: i32) {
    // A refusal is the one line of what is wrong; the contexts around it say
    // where it was found.
    let refusal = err.chain().find_map(|c| c.downcast_ref::<apim_profiles::error::Refusal>());
    let (what, causes): (String, Vec<String>) = match refusal {
        Some(r) => (
            r.what.clone(),
            err.chain()
                .filter(|c| c.downcast_ref::<apim_profiles::error::Refusal>().is_none())
                .map(|c| format!("while {c}"))
                .collect(),
        ),
        None => (err.to_string(), err.chain().skip(1).map(|c| c.to_string()).collect()),
    };
    let hint = hint(err);
    if json {
        let doc = schema::ErrorDoc {
            schema_version: Default::default(),
            changed: false,
            error: what.clone(),
            causes: causes.clone(),
            hint: hint.clone(),
            exit_code: code,
        };
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    let paint = Paint::stderr();
    eprintln!("{} {what}", paint.paint(style::BOLD_RED, "error:"));
    for c in &causes {
        if c.starts_with("while ") {
            eprintln!("  {c}");
        } else {
            eprintln!("  caused by: {c}");
        }
    }
    if let Some(h) = hint {
        eprintln!("{} {h}", paint.paint(style::BOLD_CYAN, "hint:"));
    }
}
