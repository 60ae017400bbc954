//! What a run reports: one JSON document for scripts (`--json`, `json`), the
//! same facts as text for people (`human`), the dry-run's diff (`diff`), all
//! masked (`model::mask`). The JSON schema is documented in docs/reference.md. A command
//! ends in a [`RunOutcome`]: what to print and the exit code it asks for.

use std::io::Write;

use serde::Serialize;

use crate::engine::copy::CopyStats;
use crate::model::fingerprint::Difference;
use crate::model::plan::{Action, Plan};
use crate::model::standing::{CopyState, DRIFT_SHOWN};
use crate::model::update_result::{RecordedUpdate, UpdateResult};
use crate::outcome::{fold, Exit, Status};

pub mod diff;
pub mod human;
pub mod image;
pub mod json;
pub mod progress;
pub mod schema;
pub mod status;
pub mod style;
pub mod wrap;

/// The command a report is of (`command` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CommandName {
    Split,
    Optimize,
    Update,
    Verify,
    Status,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: schema::SchemaVersion,
    pub command: CommandName,
    /// False when the run changed nothing on disk.
    pub changed: bool,
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Every home of a run over several component packs (empty for one home).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub homes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    pub profiles: Vec<ProfileReport>,
    pub warnings: Vec<String>,
    pub duration_ms: u64,
}

impl Report {
    /// The report of `command`, before anything is known.
    pub fn new(command: CommandName) -> Report {
        Report {
            schema_version: Default::default(),
            command,
            changed: false,
            dry_run: false,
            home: None,
            homes: Vec::new(),
            product: None,
            version: None,
            out: None,
            profiles: Vec::new(),
            warnings: Vec::new(),
            duration_ms: 0,
        }
    }
}

#[derive(Debug, Serialize, Clone, schemars::JsonSchema)]
pub struct ProfileReport {
    pub profile: String,
    pub path: String,
    /// The exact bytes of a path that is not UTF-8, as lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    pub status: Status,
    pub changed: bool,
    /// Entries of the copy: the plan's before it is made (dry-run), the
    /// copy's as it was left after it is (its root and the tool's own
    /// files not counted; the count `status` and `verify` give).
    pub entries_kept: usize,
    /// The copy's size, counted with `entries_kept`: the apparent bytes of
    /// its regular files (the `bytes` of `status`).
    pub bytes: u64,
    pub entries_removed: usize,
    pub removed: Vec<Removed>,
    pub rewritten: Vec<String>,
    pub backups: Vec<BackupMade>,
    pub notes: Vec<String>,
    pub files_copied: u64,
    pub bytes_copied: u64,
    pub files_cloned: u64,
    /// A copy rolled forward: files taken as they were from the copy's
    /// earlier self (same inode and times), not counted in `files_copied`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub files_kept: u64,
    /// Their bytes, not counted in `bytes_copied`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub bytes_kept: u64,
    pub bytes_to_copy: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateResult>,
    /// How the copy differs from what it should be, the first 20 (the same
    /// shape as `status`'s `drift`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Difference>,
    /// How many differences there are in all.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drift_total: usize,
    /// `would-replace`, `drifted`, `conflicts` of a copy already there: why
    /// it is not current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Absolute links into the home, made relative in the copy so that they
    /// lead into the copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links_rewritten: Vec<String>,
    /// `--archive`: the archive of the copy, written or already there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// How to start the copy, from its home, as the product documents it
    /// (`bin/api-manager.sh -Dprofile=gateway-worker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Dry-run: deployment.toml keys added (+), changed (~) and removed (-)
    /// relative to the home's own file, secrets masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// Unified diff of every file whose content changes, secrets masked (dry-run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// `verify --content`: what reading every file of the copy found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<crate::model::content::ContentCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Serialize, Clone, schemars::JsonSchema)]
pub struct Removed {
    pub path: String,
    /// The exact bytes of a path that is not UTF-8 (`path` then shows U+FFFD
    /// for each bad byte), as lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    pub step: String,
    pub dir: bool,
    pub entries: usize,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Clone, schemars::JsonSchema)]
pub struct BackupMade {
    pub from: String,
    pub to: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ProfileReport {
    /// The report of a copy this run leaves as it is because of where it
    /// stands, for `split` and `update` alike: drifted (nothing touched, the
    /// differences listed, and how to go on) or waiting on conflicts (its
    /// recorded update, and the files named). `self` is the copy's report
    /// before; any other standing leaves it as it is.
    pub fn held_back(
        mut self,
        by: CommandName,
        standing: &CopyState,
        recorded: Option<&RecordedUpdate>,
    ) -> ProfileReport {
        let path = self.path.clone();
        match standing {
            CopyState::Drifted { differences } => {
                self.status = Status::Drifted;
                self.set_drift(differences);
                if by == CommandName::Update {
                    self.notes.push(format!(
                        "{path} changed since apim-profiles left it; the update did not run. To update it keeping the edits (the tool stops on a conflict where the update changes an edited file) run: apim-profiles update --force {path}"
                    ));
                } else {
                    self.reason = standing.why().map(|why| format!("drifted: {why}"));
                    self.notes.push(format!(
                        "{path} changed since apim-profiles made it; nothing was touched. To rebuild it from the source run the same command with --force"
                    ));
                }
            }
            CopyState::Conflicts { files } => {
                self.status = Status::Conflicts;
                self.update = recorded.and_then(RecordedUpdate::result).cloned();
                self.error = if by == CommandName::Update {
                    Some(format!(
                        "the last update of {path} stopped on conflicts and was not continued: {}",
                        files.join(", ")
                    ))
                } else {
                    standing.why()
                };
            }
            _ => {}
        }
        self
    }

    /// Lists `differences`: the first [`DRIFT_SHOWN`] and their count.
    pub fn set_drift(&mut self, differences: &[Difference]) {
        self.drift = differences.iter().take(DRIFT_SHOWN).cloned().collect();
        self.drift_total = differences.len();
    }

    /// The plan's facts with a status; copy figures are added by the command.
    pub fn from_plan(plan: &Plan, path: &std::path::Path, status: Status) -> ProfileReport {
        let mut r = ProfileReport {
            profile: plan.profile.clone(),
            path: path.display().to_string(),
            path_hex: hex_if_not_utf8(path),
            status,
            changed: false,
            entries_kept: plan.tree.len(),
            bytes: plan.tree.total_bytes(),
            entries_removed: 0,
            removed: Vec::new(),
            rewritten: Vec::new(),
            backups: Vec::new(),
            notes: Vec::new(),
            files_copied: 0,
            bytes_copied: 0,
            files_cloned: 0,
            files_kept: 0,
            bytes_kept: 0,
            bytes_to_copy: plan.tree.total_bytes(),
            update: None,
            drift: Vec::new(),
            drift_total: 0,
            reason: None,
            links_rewritten: Vec::new(),
            archive: None,
            start: None,
            settings: Vec::new(),
            diff: None,
            content: None,
            error: None,
            duration_ms: 0,
        };
        for a in &plan.actions {
            match a {
                Action::Remove { path, step, entries, bytes, dir } => {
                    r.entries_removed += entries;
                    r.removed.push(Removed {
                        path: path.display().to_string(),
                        path_hex: hex_if_not_utf8(path),
                        step: step.clone(),
                        dir: *dir,
                        entries: *entries,
                        bytes: *bytes,
                    });
                }
                Action::Backup { from, to, .. } => {
                    r.backups.push(BackupMade { from: from.display().to_string(), to: to.display().to_string() })
                }
                Action::Rewrite { path, .. } => r.rewritten.push(path.display().to_string()),
                Action::Note { message, .. } | Action::Blocked { message, .. } | Action::Unmet { message, .. } => {
                    r.notes.push(message.clone())
                }
            }
        }
        r
    }

    /// The copy's entries and bytes as its record's fingerprint lists them
    /// (taken last, after the update and the tool's writes).
    /// The copy's entries and bytes (`Fingerprint::size`, `Copy::size`).
    pub fn set_size(&mut self, size: Option<(usize, u64)>) {
        if let Some(s) = size {
            (self.entries_kept, self.bytes) = s;
        }
    }

    pub fn add_copy(&mut self, s: &CopyStats) {
        self.files_copied += s.files - s.reused;
        self.bytes_copied += s.bytes - s.reused_bytes;
        self.files_cloned += s.cloned;
        self.files_kept += s.reused;
        self.bytes_kept += s.reused_bytes;
    }
}

/// The bytes of a path that is not valid UTF-8, in lowercase hex: the JSON's
/// lossless spelling of such a name (docs/reference.md, JSON output).
pub fn hex_if_not_utf8(p: &std::path::Path) -> Option<String> {
    use std::fmt::Write;
    use std::os::unix::ffi::OsStrExt;
    if p.to_str().is_some() {
        return None;
    }
    let mut out = String::new();
    for b in p.as_os_str().as_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    Some(out)
}

/// What `profiles` lists: the profiles and versions this build knows.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProfileInfo {
    pub name: String,
    /// The pack it is made from: `wso2am`, `wso2am-acp`, ...
    pub product: String,
    pub version: String,
    pub summary: String,
    pub default: bool,
    pub steps: Vec<String>,
    pub origin: String,
}

/// What a command prints.
#[derive(Debug)]
pub enum Output {
    Report(Report),
    Profiles(Vec<ProfileInfo>),
    Status(status::StatusDoc),
    /// `image`: the images written.
    Image(Box<image::ImageDoc>),
    /// Files written (the man pages).
    Paths(Vec<std::path::PathBuf>),
}

/// How a command that ran to its end ended: what it prints and the exit code
/// it asks for. Errors (a refusal, a failure before the report) are the
/// other way a command ends; `main` maps both to an exit code.
#[derive(Debug)]
pub struct RunOutcome {
    pub output: Output,
    pub exit: Exit,
}

impl RunOutcome {
    /// A report's outcome: the worst status of its copies decides the exit
    /// code; a non-zero one adds the advice of what to do next.
    pub fn of_report(mut report: Report) -> RunOutcome {
        report.changed = report.changed || report.profiles.iter().any(|p| p.changed);
        let exit = fold(report.profiles.iter().map(|p| p.status));
        let advice = advice(exit, &report);
        report.warnings.extend(advice);
        RunOutcome { output: Output::Report(report), exit }
    }

    pub fn profiles(list: Vec<ProfileInfo>) -> RunOutcome {
        RunOutcome { output: Output::Profiles(list), exit: Exit::Ok }
    }

    /// `status` only looks: it ends well whenever it could look.
    pub fn status(doc: status::StatusDoc) -> RunOutcome {
        RunOutcome { output: Output::Status(doc), exit: Exit::Ok }
    }

    pub fn paths(paths: Vec<std::path::PathBuf>) -> RunOutcome {
        RunOutcome { output: Output::Paths(paths), exit: Exit::Ok }
    }
}

/// The advice printed for a run that ended with conflicts, failures or
/// drift: for conflicts, how to resume each copy that waits on them.
fn advice(exit: Exit, report: &Report) -> Vec<String> {
    let waiting = report.profiles.iter().filter(|p| p.status == Status::Conflicts);
    match exit {
        Exit::Conflicts => waiting
            .map(|p| format!("hint: to resume {0}: resolve each conflict listed, save the resolved file beside it as <file>.final, then run: apim-profiles update --continue {0}", p.path))
            .collect(),
        Exit::Failed => vec!["hint: a profile's update failed; read the logs named above (updates/logs/ in the copy kept for inspection)".into()],
        Exit::Drift if report.command != CommandName::Verify => vec!["hint: a copy changed since apim-profiles left it and was not touched; see what changed above, then rebuild it with split --force (or keep the change and re-apply the profile with apim-profiles optimize)".into()],
        _ => vec![],
    }
}

/// Prints an outcome: the report on stdout (JSON or text), warnings on stderr
/// (not with `--quiet`, unless the run asks for attention).
/// The result is whether the report reached stdout ([`after_printing`]).
pub fn emit(json: bool, quiet: bool, summary: bool, outcome: &RunOutcome) -> std::io::Result<()> {
    match &outcome.output {
        Output::Report(r) => {
            let common = summary.then(|| carry_common_keys(r));
            let printed = if json { json::print_report(r) } else { human::print_report(r, quiet, common.as_deref()) };
            let mut err = std::io::stderr().lock();
            let warning = style::Paint::stderr().paint(style::BOLD_YELLOW, "warning:");
            for w in &r.warnings {
                // A run that asks for attention ends with its advice, as given.
                if outcome.exit != Exit::Ok {
                    let _ = writeln!(err, "{}", human::escape(w));
                } else if !json && !quiet {
                    let _ = writeln!(err, "{warning} {}", human::escape(w));
                }
            }
            printed
        }
        Output::Profiles(list) if json => json::print_profiles(list),
        Output::Profiles(list) => human::print_profiles(list),
        Output::Status(doc) if json => json::print_status(doc),
        Output::Status(doc) => human::print_text(&status::render(doc, style::Paint::stdout(), wrap::terminal_width())),
        Output::Image(doc) => {
            let printed = if json { json::print_image(doc) } else { human::print_text(&image::render(doc)) };
            for w in doc.warnings.iter().filter(|_| !quiet) {
                let _ = writeln!(std::io::stderr(), "warning: {}", human::escape(w));
            }
            printed
        }
        Output::Paths(paths) => {
            let text: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
            human::print_text(&text)
        }
    }
}

/// The keys `--carry-common` carries for the report's product version (none
/// when this build has no facts of it, or when the run already carried them).
fn carry_common_keys(r: &Report) -> Vec<String> {
    let (Some(product), Some(version)) = (&r.product, &r.version) else { return Vec::new() };
    let Ok(catalog) = crate::model::profile::Catalog::embedded() else { return Vec::new() };
    catalog.facts(product, version).deployment_toml.carry_common
}

/// Prints an error: what failed, the cause chain and the hint, on stderr, and
/// with `--json` the same as one JSON document on stdout.
pub fn emit_error(json: bool, err: &anyhow::Error, exit: Exit) -> std::io::Result<()> {
    let e = human::ErrorLines::of(err);
    let printed = if json { json::print_error(&e, exit) } else { Ok(()) };
    human::print_error(&e);
    printed
}

/// A command line that did not parse: clap's own message on stderr, and with
/// `--json` the refusal as the JSON document every outcome prints. Help and
/// version requests are printed as they are.
pub fn emit_parse_error(e: &clap::Error, json: bool) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    let _ = e.print();
    let asked = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if json && !asked {
        let text = e.render().to_string();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let what = lines.next().unwrap_or("the command line does not parse");
        let lines = human::ErrorLines {
            what: what.strip_prefix("error: ").unwrap_or(what).to_string(),
            causes: Vec::new(),
            hint: Some(lines.collect::<Vec<_>>().join(" ")),
        };
        let printed = json::print_error(&lines, Exit::Refused);
        return std::process::ExitCode::from(after_printing(printed, Exit::Refused).code());
    }
    std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// The exit code once the report was printed: a closed pipe on stdout ends
/// the run quietly with the code it had (as `rg ... | head` does); any other
/// write error means the report was lost, which is a failure (exit 1).
pub fn after_printing(printed: std::io::Result<()>, exit: Exit) -> Exit {
    match printed {
        Ok(()) => exit,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write the report to stdout: {e}");
            exit.worse(Exit::Failed)
        }
    }
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}
