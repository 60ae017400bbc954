//! The table of [`super::judge`]: each row a copy on disk, its record
//! (`have`), the record a run would write now (`wanted`) and what no record
//! shows (`unseen`), and the standing expected. The copy is a real directory;
//! its fingerprint is taken from it, as `split` takes it.

use std::sync::Arc;

use super::*;
use crate::model::update_result::{RecordedUpdate, UpdateResult, UpdateStatus};

/// A record of the copy in `dir` as the tool would leave it.
fn record_of(dir: &Path) -> Record {
    let mut r: Record = serde_json::from_value(serde_json::json!({
        "tool": "apim-profiles",
        "tool_version": "1.0.0",
        "profile": "gateway-worker",
        "product": "wso2am",
        "version": "4.2.0",
        "profile_sha256": "p1",
        "skip_config_optimization": false,
        "options_sha256": "o1",
        "source": "/opt/wso2am-4.2.0",
        "source_fingerprint": "s1",
        "deployment_toml_sha256": null
    }))
    .expect("a record");
    r.copy_fingerprint = Some(Arc::new(Fingerprint::of_dir(dir).expect("the copy's fingerprint")));
    r
}

fn update(status: UpdateStatus, conflicts: &[&str]) -> Option<RecordedUpdate> {
    let mut u = UpdateResult::new(String::new());
    u.status = status;
    u.conflicts = conflicts.iter().map(|c| c.to_string()).collect();
    Some(RecordedUpdate::of(&u))
}

/// What a row changes: the copy's record, the wanted record, the copy itself.
type Change = fn(&mut Record, &mut Record, &Path);

fn edit_a_file(_: &mut Record, _: &mut Record, dir: &Path) {
    std::fs::write(dir.join("conf/a.xml"), "<edited by hand/>").expect("edit");
}

/// (row, change, unseen, expected standing, words its reason holds)
type Row = (&'static str, Change, &'static [&'static str], &'static str, &'static str);

const ROWS: &[Row] = &[
    ("as the tool left it", |_, _, _| {}, &[], "current", ""),
    ("another tool version", |h, _, _| h.tool_version = "0.9.0".into(), &[], "stale", "made by apim-profiles 0.9.0"),
    ("another profile definition", |h, _, _| h.profile_sha256 = "p0".into(), &[], "stale", "profile definition"),
    (
        "made with --skip-config-optimization",
        |h, _, _| h.skip_config_optimization = true,
        &[],
        "stale",
        "made with --skip-config-optimization",
    ),
    ("other options", |h, _, _| h.options_sha256 = "o0".into(), &[], "stale", "other options"),
    ("the source changed", |_, w, _| w.source_fingerprint = Some("s2".into()), &[], "stale", "source home changed"),
    ("what no record shows", |_, _, _| {}, &["the source home is gone"], "stale", "the source home is gone"),
    (
        "an update waiting on conflicts",
        |h, _, _| h.update = update(UpdateStatus::Conflicts, &["a.xml"]),
        &[],
        "conflicts",
        "a.xml",
    ),
    ("an update that failed", |h, _, _| h.update = update(UpdateStatus::Failed, &[]), &[], "failed", "did not finish"),
    (
        "an update that timed out",
        |h, _, _| h.update = update(UpdateStatus::TimedOut, &[]),
        &[],
        "failed",
        "did not finish",
    ),
    ("an update that finished", |h, _, _| h.update = update(UpdateStatus::Updated, &[]), &[], "current", ""),
    ("no copy fingerprint", |h, _, _| h.copy_fingerprint = None, &[], "stale", "no fingerprint of the copy"),
    (
        "a fingerprint without change times",
        |h, _, d| {
            h.copy_fingerprint = Some(Arc::new(Fingerprint::of_tree(&crate::model::tree::Tree::scan(d).unwrap())))
        },
        &[],
        "stale",
        "without change times",
    ),
    ("a file edited", edit_a_file, &[], "drifted", "1 change since apim-profiles left it"),
    (
        "stale and edited: stale wins, the edit named",
        |h, w, d| {
            edit_a_file(h, w, d);
            h.profile_sha256 = "p0".into();
        },
        &[],
        "stale",
        "which a rebuild would discard",
    ),
    (
        "stale and waiting on conflicts: stale wins",
        |h, _, _| {
            h.update = update(UpdateStatus::Conflicts, &["a.xml"]);
            h.options_sha256 = "o0".into();
        },
        &[],
        "stale",
        "other options",
    ),
    (
        "conflicts and edited: conflicts win",
        |h, w, d| {
            edit_a_file(h, w, d);
            h.update = update(UpdateStatus::Conflicts, &["b.xml"]);
        },
        &[],
        "conflicts",
        "b.xml",
    ),
];

#[test]
fn judge_table() {
    for (row, change, unseen, want, words) in ROWS {
        let dir = tempfile::tempdir().expect("a directory");
        std::fs::create_dir(dir.path().join("conf")).expect("conf/");
        std::fs::write(dir.path().join("conf/a.xml"), "<a/>").expect("a file");
        let mut have = record_of(dir.path());
        let mut wanted = have.clone();
        change(&mut have, &mut wanted, dir.path());
        let unseen: Vec<String> = unseen.iter().map(|u| u.to_string()).collect();
        let got = judge(dir.path(), &have, &wanted, &unseen).expect("judged");
        let name = match &got {
            CopyState::Absent => "absent",
            CopyState::Current => "current",
            CopyState::Conflicts { .. } => "conflicts",
            CopyState::Failed { .. } => "failed",
            CopyState::Drifted { .. } => "drifted",
            CopyState::Stale { .. } => "stale",
        };
        assert_eq!(name, *want, "{row}: {got:?}");
        let why = got.why().unwrap_or_default();
        assert!(why.contains(words), "{row}: {why:?} does not say {words:?}");
    }
}
