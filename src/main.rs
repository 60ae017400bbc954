//! The command line: parse, call the library, map the outcome to the
//! contract's exit codes. Nothing about profiles is decided here.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use apim_profiles::config::ConfigEdits;
use apim_profiles::copy::Reflink;
use apim_profiles::error::{exit, exit_code, hint};
use apim_profiles::plan::Options;
use apim_profiles::report::{print_profile, Report};
use apim_profiles::split::ReportCarrier;
use apim_profiles::{optimize, profiles_cmd, split, update, update_cmd, verify};

#[derive(Parser)]
#[command(name = "apim-profiles", version, about = "Split a WSO2 API Manager home into optimized per-profile copies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// List the profiles and product versions this build knows.
    Profiles(ProfilesCmd),
}

#[derive(Args)]
struct Common {
    /// Print one JSON document on stdout (messages go to stderr).
    #[arg(long)]
    json: bool,
    /// Use profile definitions from DIR/<version>/*.toml instead of the built-in ones.
    #[arg(long, value_name = "DIR")]
    profile_dir: Option<PathBuf>,
}

#[derive(Args)]
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
struct ConfigFlags {
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
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Comma-separated profiles (default: control-plane,gateway-worker,traffic-manager).
    #[arg(long, value_delimiter = ',', value_name = "P1,P2")]
    profiles: Option<Vec<String>>,
    /// Print what would change (diffs, removals, summary) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep the home's own deployment.toml (the product's --skipConfigOptimization).
    #[arg(long)]
    skip_config_optimization: bool,
    /// Replace copies that are stale (made from other inputs).
    #[arg(long)]
    force: bool,
    /// Threads for copying (default: one per core).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Also write <DIR>/<profile>/<home>.zip (or .tar.gz) of each copy, for distribution.
    #[arg(long, value_enum, value_name = "FORMAT")]
    archive: Option<apim_profiles::archive::Format>,
    /// Clone file extents instead of copying bytes: auto, always or never.
    #[arg(long, value_enum, default_value_t = Reflink::Auto)]
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
    #[arg(long)]
    profile: String,
    /// Print what would change and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep the home's own deployment.toml.
    #[arg(long)]
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

fn update_settings(f: &UpdateFlags, resume: bool, json: bool) -> Option<update::Settings> {
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
        echo: !json,
        ready: None,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_out = match &cli.command {
        Command::Split(c) => c.common.json,
        Command::Optimize(c) => c.common.json,
        Command::Update(c) => c.common.json,
        Command::Verify(c) => c.common.json,
        Command::Profiles(c) => c.common.json,
    };
    let _ = ctrlc::set_handler(move || {
        use std::sync::atomic::Ordering;
        apim_profiles::copy::INTERRUPTED.store(true, Ordering::SeqCst);
        if !apim_profiles::copy::WRITING.load(Ordering::SeqCst) {
            // Nothing written yet: stop now, whatever is being read.
            // Raw writes: the main thread may hold the stdout/stderr locks.
            let raw = |fd: i32, text: String| {
                // SAFETY: writing a valid buffer to an open descriptor.
                unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
            };
            if json_out {
                let doc = serde_json::json!({ "changed": false, "error": "interrupted", "causes": [], "hint": null, "exit_code": 130 });
                raw(1, format!("{doc}\n"));
            }
            raw(2, "error: interrupted; nothing was written\n".into());
            // SAFETY: ends the process without running cleanup that could wait on a lock.
            unsafe { libc::_exit(130) };
        }
    });
    let (json, result) = match cli.command {
        Command::Split(c) => {
            let json = c.common.json;
            let update = update_settings(&c.update, false, json);
            let bounds = split::check_jobs("--jobs", c.jobs)
                .and_then(|_| split::check_jobs("--update-jobs", Some(c.update.update_jobs)));
            let r = bounds.and_then(|_| c.config.edits(c.common.profile_dir.as_deref())).and_then(|config| {
                split::run(&split::SplitArgs {
                    home: c.home,
                    out: c.out,
                    profiles: c.profiles,
                    dry_run: c.dry_run,
                    force: c.force,
                    jobs: c.jobs,
                    reflink: c.reflink,
                    options: Options {
                        skip_config_optimization: c.skip_config_optimization,
                        config,
                        ..Default::default()
                    },
                    profile_dir: c.common.profile_dir.clone(),
                    update,
                    progress: !json && std::io::stderr().is_terminal(),
                    archive: c.archive,
                })
            });
            (json, r.map(Output::Report))
        }
        Command::Optimize(c) => {
            let json = c.common.json;
            let r = c.config.edits(c.common.profile_dir.as_deref()).and_then(|config| {
                optimize::run(&optimize::OptimizeArgs {
                    home: c.home,
                    profile: c.profile,
                    dry_run: c.dry_run,
                    options: Options {
                        skip_config_optimization: c.skip_config_optimization,
                        config,
                        ..Default::default()
                    },
                    profile_dir: c.common.profile_dir.clone(),
                })
            });
            (json, r.map(Output::Report))
        }
        Command::Update(c) => {
            let json = c.common.json;
            let r = match split::check_jobs("--update-jobs", Some(c.update.update_jobs))
                .and_then(|_| update_settings(&c.update, c.resume, json).ok_or_else(no_update_refusal))
            {
                Ok(s) => update_cmd::run(&c.copies, &s, c.common.profile_dir.as_deref()),
                Err(e) => Err(e),
            };
            (json, r.map(Output::Report))
        }
        Command::Verify(c) => {
            let json = c.common.json;
            (json, verify::run(&c.copies, c.common.profile_dir.as_deref()).map(Output::Report))
        }
        Command::Profiles(c) => {
            let json = c.common.json;
            (json, profiles_cmd::run(c.common.profile_dir.as_deref()).map(Output::Profiles))
        }
    };
    match result {
        Ok(out) => {
            emit(json, &out);
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

fn no_update_refusal() -> anyhow::Error {
    apim_profiles::error::Refusal::new(
        "update --no-update has nothing to do",
        "drop --no-update; to only re-check a copy use apim-profiles verify",
    )
    .into()
}

enum Output {
    Report(Report),
    Profiles(Vec<profiles_cmd::ProfileInfo>),
}

fn emit(json: bool, out: &Output) {
    match out {
        Output::Report(r) => {
            emit_report(json, r);
            if !json {
                for w in &r.warnings {
                    eprintln!("warning: {w}");
                }
            }
        }
        Output::Profiles(list) => {
            if json {
                println!("{}", serde_json::json!({ "changed": false, "profiles": list }));
            } else {
                for p in list {
                    let d = if p.default { " (default)" } else { "" };
                    println!("{:<28} API-M {}  {}{d}", p.name, p.version, p.summary);
                }
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
    for p in &r.profiles {
        let _ = write!(stdout, "{}", print_profile(p, r.dry_run));
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
        let doc = serde_json::json!({
            "changed": false,
            "error": what,
            "causes": causes,
            "hint": hint,
            "exit_code": code,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    eprintln!("error: {what}");
    for c in &causes {
        if c.starts_with("while ") {
            eprintln!("  {c}");
        } else {
            eprintln!("  caused by: {c}");
        }
    }
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
}
