//! Embeds every `profiles/<dir>/*.toml` (profile definitions, and each
//! directory's `_version.toml` facts): supporting a version is adding files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files: Vec<PathBuf> = Vec::new();
    for d in std::fs::read_dir(&root).expect("profiles/ exists") {
        let d = d.unwrap().path();
        if !d.is_dir() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", d.display());
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "toml") {
                println!("cargo:rerun-if-changed={}", f.display());
                files.push(f);
            }
        }
    }
    files.sort();
    let (facts, profiles): (Vec<&PathBuf>, Vec<&PathBuf>) =
        files.iter().partition(|f| f.file_name().is_some_and(|n| n == "_version.toml"));
    let list = |files: &[&PathBuf]| {
        let mut out = String::from("&[\n");
        for f in files {
            let rel = f.strip_prefix(&root).unwrap().display().to_string();
            writeln!(out, "    ({rel:?}, include_str!({:?})),", f.display().to_string()).unwrap();
        }
        out.push_str("]\n");
        out
    };
    let dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(dir.join("embedded_profiles.rs"), list(&profiles)).unwrap();
    std::fs::write(dir.join("embedded_facts.rs"), list(&facts)).unwrap();
}
