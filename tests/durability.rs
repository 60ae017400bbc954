//! A published copy survives a power cut (issue 17): everything under the
//! staging directory is flushed (`syncfs`) before the rename that publishes
//! it, and large files are flushed (`fsync`) as they complete. Watched with
//! strace (apt-get install strace); without it the test is reported skipped
//! (`ignored, skipped: <why>`, see tests/runner).

mod common;
mod runner;

use std::io::Write;
use std::process::Command;

use common::*;
use runner::{skip, Outcome};

fn the_copy_is_flushed_before_the_rename_that_publishes_it() -> Outcome {
    if !Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success()) {
        return skip("strace is not installed (apt-get install strace)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = home_in(tmp.path());
    // A file over the per-file flush threshold (1 MiB) that gateway-worker keeps.
    let mut f = std::fs::File::create(home.join("repository/components/lib/big-durable.jar")).unwrap();
    f.write_all(&vec![7u8; 3 << 20]).unwrap();
    drop(f);
    let out = tmp.path().join("out");
    let trace = tmp.path().join("trace");
    let exe = assert_cmd::cargo::cargo_bin("apim-profiles");
    let st = Command::new("strace")
        .args(["-f", "-qq", "-y", "-e", "trace=syncfs,fsync,rename,renameat,renameat2", "-o"])
        .arg(&trace)
        .arg(exe)
        .arg("split")
        .arg(&home)
        .arg("--out")
        .arg(&out)
        .args(["--no-update", "--profiles", "gateway-worker", "--reflink", "never", "-q"])
        .status()
        .unwrap();
    assert!(st.success());
    let trace = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    let final_path = out.join("gateway-worker/wso2am-4.2.0");
    let publish = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains(&format!("\"{}\"", final_path.display())))
        .unwrap_or_else(|| panic!("no rename onto {} in:\n{trace}", final_path.display()));
    let sync = lines.iter().position(|l| l.contains("syncfs(") && l.ends_with("= 0"));
    assert!(sync.is_some_and(|s| s < publish), "no syncfs before the publishing rename:\n{trace}");
    // The large file is fsynced as it completes (-y names an fd's file).
    assert!(
        lines[..publish].iter().any(|l| l.contains("fsync(") && l.contains("big-durable.jar>")),
        "the large file was not fsynced before publishing:\n{trace}"
    );
    Outcome::Passed
}

fn main() -> std::process::ExitCode {
    runner::run(&[(
        "the_copy_is_flushed_before_the_rename_that_publishes_it",
        the_copy_is_flushed_before_the_rename_that_publishes_it,
    )])
}
