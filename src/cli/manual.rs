//! What a person reads about the tool besides the README and docs/: the examples shown
//! in `--help`, the man pages (clap_mangen) and the shell completions
//! (clap_complete), all made from the one command-line definition.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// (what it does, the command line) for each command's help and man page.
pub fn examples(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "split" => &[
            ("Preview the three default profiles (writes nothing)", "apim-profiles split /opt/wso2am-4.2.0 -o /opt/nodes -n --no-update"),
            ("Split, update with U2 and verify", "WSO2_USERNAME=me@example.com WSO2_PASSWORD=... apim-profiles split /opt/wso2am-4.2.0 -o /opt/nodes"),
            ("Take everything from a settings file", "apim-profiles split /opt/wso2am-4.2.0 -o /opt/nodes --settings rollout.toml"),
            ("Two profiles, carried settings, tarballs", "apim-profiles split /opt/wso2am-4.2.0 -o /opt/nodes -p gateway-worker,traffic-manager --carry-common --archive tar.gz --no-update"),
        ],
        "optimize" => &[
            ("Optimize a home in place for the gateway", "apim-profiles optimize /opt/wso2am-4.2.0 --profile gateway-worker"),
            ("See what it would change", "apim-profiles optimize /opt/wso2am-4.2.0 --profile traffic-manager -n"),
        ],
        "update" => &[
            ("Update every copy of an output", "apim-profiles update /opt/nodes/*/wso2am-4.2.0 --credentials-file /root/.wso2-credentials"),
            ("Resume after resolving conflicts (<file>.final beside each)", "apim-profiles update --continue /opt/nodes/gateway-worker/wso2am-4.2.0"),
        ],
        "verify" => &[("Check every copy of an output", "apim-profiles verify /opt/nodes/*/wso2am-4.2.0")],
        "status" => &[
            ("One line per copy of an output", "apim-profiles status /opt/nodes"),
            ("The same for a playbook", "apim-profiles status /opt/nodes --json"),
        ],
        "profiles" => &[("What this build knows", "apim-profiles profiles")],
        "image" => &[
            ("One image per default profile on a JRE base, then push one", "apim-profiles image /opt/wso2am-4.2.0 -o /var/tmp/apim-oci --base /var/tmp/jre:17 && skopeo copy oci:/var/tmp/apim-oci:gateway-worker docker://registry.example.com/wso2am:4.2.0-gateway-worker"),
            ("Reproducible digests, versioned tags", "SOURCE_DATE_EPOCH=1700000000 apim-profiles image /opt/wso2am-4.2.0 -o /var/tmp/apim-oci --base jre.tar --tag 4.2.0-{profile} --carry-common"),
        ],
        "completions" => &[
            ("Bash, for every user", "apim-profiles completions bash > /etc/bash_completion.d/apim-profiles"),
            ("Zsh", "apim-profiles completions zsh > \"${fpath[1]}/_apim-profiles\""),
        ],
        "man" => &[("Install the man pages", "apim-profiles man --out /usr/local/share/man/man1")],
        "schema" => &[("The schema of status --json", "apim-profiles schema status")],
        _ => &[
            ("Preview, then split a home into its profiles", "apim-profiles split /opt/wso2am-4.2.0 -o /opt/nodes -n"),
            ("Where every copy stands", "apim-profiles status /opt/nodes"),
            ("Shell completions", "apim-profiles completions bash > /etc/bash_completion.d/apim-profiles"),
        ],
    }
}

/// The `Examples:` block that ends a command's `--help`.
pub fn examples_help(command: &str) -> String {
    let mut s = String::from("Examples:\n");
    for (what, line) in examples(command) {
        s.push_str(&format!("  # {what}\n  {line}\n"));
    }
    s
}

/// Adds the examples to the help of the command and of each sub-command.
pub fn with_examples(cmd: clap::Command) -> clap::Command {
    let top = examples_help("");
    cmd.after_help(top).mut_subcommands(|sub| {
        let text = examples_help(sub.get_name());
        sub.after_help(text)
    })
}

/// The completion script for a shell.
pub fn completions(cmd: &mut clap::Command, shell: clap_complete::Shell, w: &mut dyn Write) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, cmd, name.clone(), &mut script);
    if shell == clap_complete::Shell::Bash {
        script = bash_labels(&String::from_utf8_lossy(&script), &name).into_bytes();
    }
    if shell == clap_complete::Shell::Fish {
        script.extend(fish_positional_values(cmd).into_bytes());
    }
    w.write_all(&script)
}

/// clap_complete's fish script offers the values of options but not of
/// arguments (`completions <TAB>`, `schema <TAB>` offer files): one line per
/// value of each sub-command's argument that has a fixed set.
fn fish_positional_values(cmd: &clap::Command) -> String {
    let mut s = String::new();
    let helper = format!("__fish_{}_using_subcommand", cmd.get_name().replace('-', "_"));
    for sub in cmd.get_subcommands() {
        for arg in sub.get_positionals() {
            for v in arg.get_possible_values().iter().filter(|v| !v.is_hide_set()) {
                let about =
                    v.get_help().map(|h| format!(" -d '{}'", h.to_string().replace('\\', "\\\\").replace('\'', "\\'")));
                s.push_str(&format!(
                    "complete -c {} -n \"{helper} {}\" -f -a \"{}\"{}\n",
                    cmd.get_name(),
                    sub.get_name(),
                    v.get_name(),
                    about.unwrap_or_default()
                ));
            }
        }
    }
    s
}

/// clap_complete's bash script (up to at least 4.6.11) names a sub-command's
/// state `apim__profiles__subcmd__split` in the loop that reads the words but
/// labels its case `apim__subcmd__profiles__subcmd__split` (every hyphen of
/// the binary's name turned into the separator): no label matches and only
/// the first word completes. The labels are renamed to what the loop builds.
fn bash_labels(script: &str, bin: &str) -> String {
    const SEP: &str = "__subcmd__";
    let wrong = format!("{}{SEP}", bin.replace('-', SEP));
    let right = format!("{}{SEP}", bin.replace('-', "__"));
    if wrong == right {
        return script.to_string();
    }
    script.replace(&wrong, &right)
}

/// Writes `apim-profiles.1` and `apim-profiles-<command>.1` into `dir`.
pub fn write_man_pages(cmd: &clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Every page is written beneath this handle: a link planted at a page's
    // name is replaced, never written through.
    let dir = &crate::safe_fs::Beneath::open(dir, true)?;
    let mut cmd = cmd.clone();
    cmd.build();
    let mut written = vec![write_page(&cmd, cmd.get_name(), "", dir)?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        let sub = sub.clone().name(name.clone()).bin_name(format!("{} {}", cmd.get_name(), sub.get_name()));
        written.push(write_page(&sub, &name, sub.get_name().rsplit('-').next().unwrap_or(""), dir)?);
    }
    Ok(written)
}

fn write_page(cmd: &clap::Command, name: &str, examples_of: &str, dir: &crate::safe_fs::Beneath) -> Result<PathBuf> {
    let short = name.strip_prefix("apim-profiles-").unwrap_or(examples_of);
    let cmd_has_version = cmd.get_version().is_some();
    let cmd = cmd.clone().after_help(None::<&str>).after_long_help(None::<&str>);
    let man = clap_mangen::Man::new(cmd).title(name.to_uppercase()).section("1").manual("apim-profiles");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend(EXIT_STATUS_ROFF.as_bytes());
    page.extend(ENVIRONMENT_ROFF.as_bytes());
    page.extend(examples_roff(if name == "apim-profiles" { "" } else { short }).as_bytes());
    if cmd_has_version {
        man.render_version_section(&mut page)?;
    }
    let file = format!("{name}.1");
    let page = without_empty_sections(&String::from_utf8_lossy(&page));
    dir.write_atomic(std::ffi::OsStr::new(&file), page.as_bytes(), 0o644)?;
    Ok(dir.path().join(file))
}

/// The exit codes of the contract (`outcome::Exit`), for every page.
const EXIT_STATUS_ROFF: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Done, or nothing needed doing.
.TP
\fB1\fR
Failed while working; what was completed is reported.
.TP
\fB2\fR
Refused: bad invocation or bad input; nothing was written.
.TP
\fB3\fR
An update stopped on conflicts that a person must resolve.
.TP
\fB4\fR
A copy no longer matches its profile or what the tool left.
.TP
\fB129\fR, \fB130\fR, \fB143\fR
Stopped by SIGHUP, SIGINT (Ctrl\-C) or SIGTERM; the run's staging is removed.
.PP
With \fB\-\-json\fR the document's \fBexit_code\fR is the exit status.
"#;

/// The variables the tool reads.
const ENVIRONMENT_ROFF: &str = r#".SH ENVIRONMENT
.TP
\fBWSO2_USERNAME\fR, \fBWSO2_PASSWORD\fR
The WSO2 account the U2 update tool signs in with (else \fB\-\-credentials\-file\fR, else a prompt on a terminal). Never printed.
.TP
\fBNO_COLOR\fR
When set, no colour with \fB\-\-color auto\fR.
.TP
\fBCOLUMNS\fR
The width \fBstatus\fR wraps its notes to (else the terminal's, else 80).
"#;

/// The page without a section heading that has nothing under it (clap_mangen
/// writes SUBCOMMANDS for a command that has none).
fn without_empty_sections(page: &str) -> String {
    let lines: Vec<&str> = page.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let next = lines[i + 1..].iter().find(|l| !l.trim().is_empty());
        if line.starts_with(".SH ") && next.is_none_or(|n| n.starts_with(".SH ")) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn examples_roff(command: &str) -> String {
    let mut s = String::from(".SH EXAMPLES\n");
    for (what, line) in examples(command) {
        s.push_str(&format!(".PP\n{}\n.PP\n.RS 4\n\\fB{}\\fR\n.RE\n", roff_text(what), roff_text(line)));
    }
    s
}

/// Text safe in a roff line: backslashes, dashes and a leading dot or quote.
fn roff_text(s: &str) -> String {
    let t = s.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}
