//! The refusal cases: how to break the input, the arguments, what the message
//! says. `safety.rs` checks each exits 2 and writes nothing; `snapshots.rs`
//! locks the two lines each prints.

use std::path::Path;

use super::DTPL;

/// One refusal: how to break the input, the arguments, what the message says.
pub struct Case {
    pub name: &'static str,
    pub prepare: fn(&Path, &Path) -> Vec<String>,
    pub expect: &'static str,
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// Arguments for a split with one profile definition of `text` in a --profile-dir.
fn with_definition(h: &Path, o: &Path, text: &str) -> Vec<String> {
    let d = h.parent().unwrap().join("defs/4.2.0");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("gateway-worker.toml"), text).unwrap();
    args(&["split", &p(h), "--out", &p(o), "--no-update", "--profile-dir", &p(d.parent().unwrap())])
}

const BAD_PROFILE: &str = "name = \"gateway-worker\"\nproduct = \"wso2am\"\nversion = \"4.2.0\"\nsummary = \"x\"\n[[step]]\nop = \"remove\"\npaths = [\"repository/x\"\n";

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "output inside the source",
            prepare: |h, _| args(&["split", &p(h), "--out", &p(&h.join("copies")), "--no-update"]),
            expect: "is inside the home",
        },
        Case {
            name: "source inside the output",
            prepare: |h, _| args(&["split", &p(h), "--out", &p(h.parent().unwrap()), "--no-update"]),
            expect: "is inside the output",
        },
        Case {
            name: "a copy already there, not made by the tool",
            prepare: |h, o| {
                std::fs::create_dir_all(o.join("gateway-worker/wso2am-4.2.0/bin")).unwrap();
                args(&["split", &p(h), "--out", &p(o), "--no-update", "--force"])
            },
            expect: "was not made by apim-profiles",
        },
        Case {
            name: "not an API-M home",
            prepare: |h, o| args(&["split", &p(&h.join("repository")), "--out", &p(o), "--no-update"]),
            expect: "not an API-M home",
        },
        Case {
            name: "a path that does not exist",
            prepare: |h, o| args(&["split", &p(&h.join("nope")), "--out", &p(o), "--no-update"]),
            expect: "does not exist",
        },
        Case {
            name: "another product",
            prepare: |h, o| {
                std::fs::write(h.join("updates/product.txt"), "wso2is-7.0.0\n").unwrap();
                std::fs::remove_file(h.join("repository/conf/carbon.xml")).unwrap();
                std::fs::write(h.join("bin/version.txt"), "WSO2 Identity Server v7.0.0\n").unwrap();
                args(&["split", &p(h), "--out", &p(o), "--no-update"])
            },
            expect: "is not WSO2 API Manager",
        },
        Case {
            name: "another version",
            prepare: |h, o| {
                std::fs::write(h.join("updates/product.txt"), "wso2am-4.9.0\n").unwrap();
                std::fs::write(h.join("bin/version.txt"), "WSO2 API Manager v4.9.0\n").unwrap();
                let c =
                    std::fs::read_to_string(h.join("repository/conf/carbon.xml")).unwrap().replace("4.2.0", "4.9.0");
                std::fs::write(h.join("repository/conf/carbon.xml"), c).unwrap();
                args(&["split", &p(h), "--out", &p(o), "--no-update"])
            },
            expect: "no profiles for API-M 4.9.0",
        },
        Case {
            name: "identity files that disagree",
            prepare: |h, o| {
                std::fs::write(h.join("bin/version.txt"), "WSO2 API Manager v4.1.0\n").unwrap();
                args(&["split", &p(h), "--out", &p(o), "--no-update"])
            },
            expect: "conflicting identity files",
        },
        Case {
            name: "unknown profile",
            prepare: |h, o| args(&["split", &p(h), "--out", &p(o), "--no-update", "--profiles", "traffic-manger"]),
            expect: "unknown profile `traffic-manger`",
        },
        Case {
            name: "a server running from the home",
            prepare: |h, o| {
                std::fs::write(h.join("wso2carbon.pid"), format!("{}\n", std::process::id())).unwrap();
                args(&["split", &p(h), "--out", &p(o), "--no-update"])
            },
            expect: "a server is running from",
        },
        Case {
            name: "a deployment template that is not TOML",
            prepare: |h, o| {
                std::fs::write(h.join(format!("{DTPL}/gateway-worker.toml")), "[server]\nhostname = \"a\"\n[broken\n")
                    .unwrap();
                args(&["split", &p(h), "--out", &p(o), "--no-update"])
            },
            expect: "gateway-worker.toml:3:",
        },
        Case {
            name: "a profile definition that is not TOML",
            prepare: |h, o| with_definition(h, o, BAD_PROFILE),
            expect: "gateway-worker.toml:8:",
        },
        Case {
            name: "a profile definition whose path leaves the home",
            prepare: |h, o| with_definition(h, o, &BAD_PROFILE.replace("[\"repository/x\"", "[\"../../etc/passwd\"]")),
            expect: "leaves the home",
        },
        Case {
            name: "a profile definition with an absolute path",
            prepare: |h, o| with_definition(h, o, &BAD_PROFILE.replace("[\"repository/x\"", "[\"/etc\"]")),
            expect: "is absolute",
        },
        Case {
            name: "an update level that is not one",
            prepare: |h, o| {
                args(&[
                    "split",
                    &p(h),
                    "--out",
                    &p(o),
                    "--update-level",
                    "latest",
                    "--update-tool",
                    &p(&h.join("bin/api-manager.sh")),
                ])
            },
            expect: "is not a level",
        },
        Case {
            name: "an update zip that is not there",
            prepare: |h, o| {
                args(&[
                    "split",
                    &p(h),
                    "--out",
                    &p(o),
                    "--update-zip",
                    "/nonexistent.zip",
                    "--update-tool",
                    &p(&h.join("bin/api-manager.sh")),
                ])
            },
            expect: "is not a file",
        },
        Case {
            name: "optimize with an unknown profile",
            prepare: |h, _| args(&["optimize", &p(h), "--profile", "gateway"]),
            expect: "unknown profile `gateway`",
        },
        Case {
            name: "no copy threads",
            prepare: |h, o| args(&["split", &p(h), "--out", &p(o), "--no-update", "--jobs", "0"]),
            expect: "--jobs 0 would run nothing",
        },
        Case {
            name: "no update runs",
            prepare: |h, o| args(&["split", &p(h), "--out", &p(o), "--update-jobs", "0"]),
            expect: "--update-jobs 0 would run nothing",
        },
        Case {
            name: "a profile of an older version, by its old name",
            prepare: |h, o| args(&["split", &p(h), "--out", &p(o), "--no-update", "-p", "api-key-manager"]),
            expect: "unknown profile `api-key-manager` for",
        },
        Case {
            name: "status of a path that does not exist",
            prepare: |_, o| args(&["status", &p(o)]),
            expect: "does not exist",
        },
        Case {
            name: "verify of something that is not a copy",
            prepare: |h, _| args(&["verify", &p(h)]),
            expect: "has no .apim-profiles.json record",
        },
    ]
}
