//! Command-line hygiene (issue 14): Unix conventions for pipes, write errors
//! and signals; the contract's exit codes for bad input; contradictions
//! refused with both flags named; a declared toolchain that matches the lock;
//! names printed safely for people and losslessly for scripts.

use std::path::Path;
use std::process::Command;

// ---- toolchain ---------------------------------------------------------------

fn parse_version(v: &str) -> (u64, u64, u64) {
    let mut it = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// `rust-version` in Cargo.toml is the highest `rust-version` among the
/// locked packages a Linux build uses (dev-dependencies included: CI runs the
/// tests). Checked with `cargo metadata`, which reads the lock only.
#[test]
fn rust_version_is_what_the_locked_dependencies_need() {
    let o = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let used: std::collections::HashSet<&str> =
        m["resolve"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    let mut ours = None;
    let mut need = ((0, 0, 0), String::from("nothing"));
    for p in m["packages"].as_array().unwrap() {
        if !used.contains(p["id"].as_str().unwrap()) {
            continue;
        }
        let Some(rv) = p["rust_version"].as_str() else { continue };
        if p["name"] == "apim-profiles" {
            ours = Some(rv.to_string());
            continue;
        }
        let v = parse_version(rv);
        if v > need.0 {
            need = (v, format!("{} {} needs {rv}", p["name"].as_str().unwrap(), p["version"].as_str().unwrap()));
        }
    }
    let ours = ours.expect("Cargo.toml declares rust-version");
    assert_eq!(parse_version(&ours), need.0, "Cargo.toml says rust-version {ours}, but {}", need.1);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let short = ours.trim_end_matches(".0");
    assert!(readme.contains(&format!("Rust toolchain ({short} or newer")), "README names another Rust version");
    assert!(readme.contains("cargo install --locked --path ."), "README installs without --locked");
}
