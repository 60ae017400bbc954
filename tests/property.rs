//! Random trees (names with spaces, unicode, `#`, `.war` suffixes, links,
//! empty directories, read-only files) split without error and match what the
//! product's rules produce, computed here by an independent oracle written
//! from the facts file.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Kind {
    File,
    ReadOnlyFile,
    DirWithFile,
    EmptyDir,
    Link,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::File),
        Just(Kind::ReadOnlyFile),
        Just(Kind::DirWithFile),
        Just(Kind::EmptyDir),
        Just(Kind::Link)
    ]
}

fn name() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("am#sample#pizzashack#v".to_string()),
            Just("internal#data#v".to_string()),
            "[a-z #ü.-]{1,10}"
        ],
        "[0-9a-z ]{0,3}",
        prop_oneof![Just(".war".to_string()), Just(String::new()), Just(".xml".to_string())],
    )
        .prop_map(|(a, b, c)| format!("{a}{b}{c}"))
        .prop_filter("a usable file name", |n| {
            n != "." && n != ".." && !n.starts_with(".apim-profiles") && n.trim() == n || n.contains(' ')
        })
}

fn make(dir: &Path, name: &str, k: &Kind) {
    let p = dir.join(name);
    if std::fs::symlink_metadata(&p).is_ok() {
        return;
    }
    match k {
        Kind::File => std::fs::write(&p, name.as_bytes()).unwrap(),
        Kind::ReadOnlyFile => {
            std::fs::write(&p, b"ro").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        Kind::DirWithFile => {
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("WEB-INF.xml"), b"x").unwrap();
        }
        Kind::EmptyDir => std::fs::create_dir(&p).unwrap(),
        Kind::Link => std::os::unix::fs::symlink("some target", &p).unwrap(),
    }
}

/// The facts' prune-webapps rule: remove each entry matching no keep pattern,
/// and the directory named like it without `.war`.
fn oracle_prune(dir: &Path, keep: fn(&str) -> bool) {
    let names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    for n in names {
        if keep(&n) {
            continue;
        }
        rm(&dir.join(&n));
        if let Some(stem) = n.strip_suffix(".war").filter(|s| !s.is_empty() && *s != "." && *s != "..") {
            if std::fs::symlink_metadata(dir.join(stem)).is_ok_and(|m| m.is_dir()) {
                rm(&dir.join(stem));
            }
        }
    }
}

/// The facts' synapse rule: every sub-directory, every other entry but the file synapse.xml.
fn oracle_clear(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let is_dir = e.file_type().unwrap().is_dir();
        if is_dir || e.file_name() != "synapse.xml" {
            rm(&e.path());
        }
    }
}

fn rm(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).unwrap(),
        Ok(_) => std::fs::remove_file(p).unwrap(),
        Err(_) => {}
    }
}

fn under(d: &BTreeMap<String, Item>, prefix: &str) -> BTreeMap<String, Item> {
    d.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn random_trees_split_like_the_rules_say(
        webapps in proptest::collection::vec((name(), kind()), 0..12),
        synapse in proptest::collection::vec((name(), kind()), 0..6),
        elsewhere in proptest::collection::vec((name(), kind()), 0..6),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let home = home_in(tmp.path());
        for (n, k) in &webapps { make(&home.join(WEBAPPS), n, k); }
        for (n, k) in &synapse { make(&home.join(SYN), n, k); }
        let other = home.join("repository/resources/random");
        std::fs::create_dir_all(&other).unwrap();
        for (n, k) in &elsewhere { make(&other, n, k); }

        let out = tmp.path().join("out");
        split_json(&home, &out, &["--profiles", "gateway-worker,traffic-manager"]);

        // gateway-worker: webapps pruned, synapse configs kept.
        let gw_ref = tmp.path().join("ref-gw");
        let st = std::process::Command::new("cp").arg("-a").arg(&home).arg(&gw_ref).status().unwrap();
        prop_assert!(st.success());
        oracle_prune(&gw_ref.join(WEBAPPS), |n| (n.starts_with("am#sample#pizzashack#v") && n.ends_with(".war") && n.len() >= 26) || n == "api#am#gateway#v2.war");
        let gw = digest(&out.join("gateway-worker/wso2am-4.2.0"));
        let want = digest(&gw_ref);
        prop_assert_eq!(under(&gw, WEBAPPS), under(&want, WEBAPPS));
        prop_assert_eq!(under(&gw, SYN), under(&want, SYN));
        prop_assert_eq!(under(&gw, "repository/resources/random"), under(&want, "repository/resources/random"));

        // traffic-manager: webapps but internal#data#v*.war, synapse cleared.
        let tm_ref = tmp.path().join("ref-tm");
        let st = std::process::Command::new("cp").arg("-a").arg(&home).arg(&tm_ref).status().unwrap();
        prop_assert!(st.success());
        oracle_prune(&tm_ref.join(WEBAPPS), |n| n.starts_with("internal#data#v") && n.ends_with(".war") && n.len() >= 19);
        oracle_clear(&tm_ref.join(SYN));
        let tm = digest(&out.join("traffic-manager/wso2am-4.2.0"));
        let want = digest(&tm_ref);
        prop_assert_eq!(under(&tm, WEBAPPS), under(&want, WEBAPPS));
        prop_assert_eq!(under(&tm, SYN), under(&want, SYN));
        prop_assert_eq!(under(&tm, "repository/resources/random"), under(&want, "repository/resources/random"));
    }
}
