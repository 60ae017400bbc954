//! The completion scripts, sourced in their own shells: bash (calling the
//! function the script registers, as readline would), zsh (a real interactive
//! shell on a pseudo-terminal, `zsh/zpty`, pressing Tab) and fish
//! (`complete -C`). Each must complete every sub-command, its flags and their
//! values. A shell that is not installed is reported skipped (see
//! tests/runner), never `ok`; .ci/run installs all three.

mod runner;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use runner::{skip, Outcome};

const BIN: &str = env!("CARGO_BIN_EXE_apim-profiles");

/// What is typed after `apim-profiles `, and what completing it must offer
/// (a word ending in a space completes the next word).
const CASES: &[(&str, &[&str])] = &[
    ("split --re", &["--reflink"]),
    ("split --reflink ", &["auto", "always", "never"]),
    ("spl", &["split"]),
    ("completions ", &["bash", "elvish", "fish", "powershell", "zsh"]),
    ("split --archive ", &["zip", "tar.gz"]),
    ("split --color ", &["auto", "always", "never"]),
    ("split --carry-", &["--carry-common"]),
    ("optimize --pro", &["--profile", "--profile-dir"]),
    ("update --cont", &["--continue"]),
    ("update --update-t", &["--update-timeout", "--update-tool"]),
    ("verify --js", &["--json"]),
    ("status --profile-", &["--profile-dir"]),
    ("status --qu", &["--quiet"]),
    ("profiles --js", &["--json"]),
    ("man --o", &["--out"]),
    ("schema ", &["split", "optimize", "update", "verify", "status", "profiles", "error"]),
];

/// The script `apim-profiles completions <shell>` prints, in a temporary
/// directory (zsh finds it on `fpath` as `_apim-profiles`).
fn script(shell: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN).args(["completions", shell]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let path =
        dir.path().join(if shell == "zsh" { "_apim-profiles".to_string() } else { format!("apim-profiles.{shell}") });
    std::fs::write(&path, &o.stdout).unwrap();
    (dir, path)
}

fn installed(shell: &str) -> bool {
    Command::new(shell).args(["-c", "exit 0"]).output().is_ok_and(|o| o.status.success())
}

/// Checks every case with `complete` (the words offered for what is typed).
fn check_all(shell: &str, complete: &dyn Fn(&str) -> BTreeSet<String>) -> Outcome {
    if !installed(shell) {
        return skip(format!("{shell} is not installed (apt-get install {shell})"));
    }
    for (typed, want) in CASES {
        let got = complete(typed);
        let missing: Vec<_> = want.iter().filter(|w| !got.contains(**w)).collect();
        assert!(missing.is_empty(), "{shell}: `apim-profiles {typed}<Tab>` offers {got:?}, lacking {missing:?}");
        println!("{shell}: apim-profiles {typed}<Tab> -> {}", got.into_iter().collect::<Vec<_>>().join(" "));
    }
    // A value's completion offers the values and nothing else.
    let values = complete("split --reflink ");
    assert_eq!(values, ["always", "auto", "never"].map(String::from).into(), "{shell}");
    Outcome::Passed
}

fn words(typed: &str) -> Vec<String> {
    let mut w: Vec<String> =
        std::iter::once("apim-profiles").chain(typed.split_whitespace()).map(String::from).collect();
    if typed.ends_with(' ') {
        w.push(String::new());
    }
    w
}

fn lines(out: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Bash: the function `complete -p` names, called with the words as
/// readline sets them.
const BASH: &str = r#"source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
spec=$(complete -p apim-profiles) || exit 3
fn=${spec#*-F }; fn=${fn%% *}
"$fn" apim-profiles "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}""#;

fn bash_completes_every_subcommand_flag_and_value() -> Outcome {
    check_all("bash", &|typed| {
        let (_dir, file) = script("bash");
        let o = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", BASH, "bash"])
            .arg(&file)
            .args(words(typed))
            .output()
            .unwrap();
        assert!(o.status.success(), "bash: {}", String::from_utf8_lossy(&o.stderr));
        lines(&o.stdout)
    })
}

/// Zsh: an interactive `zsh -f` on a pseudo-terminal, with compinit and the
/// script on fpath; `compadd` is wrapped to write every word it adds to a
/// file, then the line is typed and Tab pressed (never Enter).
const ZSH: &str = r#"zmodload zsh/zpty
zpty -b comp zsh -f -i
zpty -w comp "PROMPT=''; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w comp 'compadd() { if (( ${@[(I)-[OAD]]} )); then builtin compadd "$@"; return; fi; local -a hits; builtin compadd -A hits "$@"; (( $#hits )) && print -rl -- $hits >>'${(q)2}'; builtin compadd "$@" }'
zpty -w comp "export PATH=${(q)3}:\$PATH"
zpty -n -w comp "$4"$'\t'
for i in {1..100}; do [[ -s $2 ]] && break; sleep 0.1; done
sleep 0.3
zpty -d comp"#;

fn zsh_completes_every_subcommand_flag_and_value() -> Outcome {
    check_all("zsh", &|typed| {
        let (dir, file) = script("zsh");
        let out = dir.path().join("offered");
        let bin_dir = Path::new(BIN).parent().unwrap();
        let started = Instant::now();
        let o = Command::new("zsh")
            .args(["-f", "-c", ZSH, "zsh"])
            .arg(file.parent().unwrap())
            .arg(&out)
            .arg(bin_dir)
            .arg(format!("apim-profiles {typed}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "zsh: {}", String::from_utf8_lossy(&o.stderr));
        assert!(started.elapsed() < Duration::from_secs(30));
        lines(&std::fs::read(&out).unwrap_or_default())
    })
}

fn fish_completes_every_subcommand_flag_and_value() -> Outcome {
    check_all("fish", &|typed| {
        let (_dir, file) = script("fish");
        let o = Command::new("fish")
            .args(["--no-config", "-c", "source $argv[1]; and complete -C $argv[2]"])
            .arg(&file)
            .arg(format!("apim-profiles {typed}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "fish: {}", String::from_utf8_lossy(&o.stderr));
        lines(&o.stdout)
    })
}

fn main() -> ExitCode {
    runner::run(&[
        ("bash_completes_every_subcommand_flag_and_value", bash_completes_every_subcommand_flag_and_value),
        ("zsh_completes_every_subcommand_flag_and_value", zsh_completes_every_subcommand_flag_and_value),
        ("fish_completes_every_subcommand_flag_and_value", fish_completes_every_subcommand_flag_and_value),
    ])
}
