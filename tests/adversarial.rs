//! Adversarial tests (issue 13): each attack a hostile local user or a careless
//! operator tried, done through the real binary on real files. Every test
//! checks the exit code, that nothing outside the output changed (a digest of
//! HOME and of a victim file outside it, before and after), and that no secret
//! shows in any byte of stdout, stderr, JSON, records or any process's argv.
//!
//! Attacks that need a second account plant their links as `nobody` (through
//! `setpriv`); they need root and are skipped, with the reason printed, when
//! the suite does not run as root.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sha2::{Digest, Sha256};

const PASSWORD: &str = "Adv3rsarial-U2-Pa55word!";
const VICTIM_TEXT: &str = "root:$6$VictimShadowHash$abcdefghijkl:19000:0:99999:7:::\n";

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("apim-profiles")
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A temporary world: a home, a victim file outside it that only root may
/// read, and an output path. Directories are traversable by others, as on a
/// real host, so that an unprivileged account can reach what it may write.
struct World {
    tmp: tempfile::TempDir,
    home: PathBuf,
    victim: PathBuf,
    out: PathBuf,
    calls: PathBuf,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = home_in(tmp.path());
        let victim = tmp.path().join("victim-shadow");
        std::fs::write(&victim, VICTIM_TEXT).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = tmp.path().join("out");
        let calls = tmp.path().join("calls.log");
        World { home, victim, out, calls, tmp }
    }
    fn root(&self) -> &Path {
        self.tmp.path()
    }
    fn snapshot(&self) -> Snapshot {
        Snapshot { home: digest(&self.home), home_times: mtimes(&self.home), victim: sha(&read(&self.victim)) }
    }
    fn assert_untouched(&self, before: &Snapshot) {
        assert_eq!(sha(&read(&self.victim)), before.victim, "the victim file outside HOME was changed");
        let after = digest(&self.home);
        for (k, v) in &before.home {
            assert_eq!(after.get(k), Some(v), "HOME entry {k} changed");
        }
        for k in after.keys() {
            assert!(before.home.contains_key(k), "HOME gained {k}");
        }
        assert_eq!(mtimes(&self.home), before.home_times, "something in HOME was touched");
    }
    fn calls(&self) -> String {
        std::fs::read_to_string(&self.calls).unwrap_or_default()
    }
}

struct Snapshot {
    home: std::collections::BTreeMap<String, Item>,
    home_times: std::collections::BTreeMap<String, (i64, i64)>,
    victim: String,
}

fn sha(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// No secret in any byte of these outputs.
fn assert_no_secret(what: &str, bytes: &[u8], secrets: &[&str]) {
    for s in secrets {
        let found = bytes.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(!found, "secret {s:?} in {what}:\n{}", String::from_utf8_lossy(bytes));
    }
}

fn assert_output_clean(o: &Output, secrets: &[&str]) {
    assert_no_secret("stdout", &o.stdout, secrets);
    assert_no_secret("stderr", &o.stderr, secrets);
}

/// No secret in any file below `dir` (records, journals, logs, copies' own files).
fn assert_no_secret_under(dir: &Path, secrets: &[&str]) {
    if !dir.exists() {
        return;
    }
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            assert_no_secret(&e.path().display().to_string(), &read(e.path()), secrets);
        }
    }
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn text(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", text(o)))
}

/// Runs a shell command as `nobody`, the hostile local account.
fn as_nobody(script: &str) {
    let st = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script])
        .status()
        .unwrap();
    assert!(st.success(), "as nobody: {script}");
}

/// Whether attacks by a second account can run here; prints why not.
fn can_attack_as_nobody(test: &str) -> bool {
    if !is_root() {
        eprintln!("skipped {test}: needs root to act as the unprivileged account `nobody` (setpriv)");
        return false;
    }
    true
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn collect(mut child: Child) -> Output {
    use std::io::Read;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_end(&mut stdout).unwrap();
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_end(&mut stderr).unwrap();
    }
    let status = child.wait().unwrap();
    Output { status, stdout, stderr }
}

/// Every process whose command line or environment holds `needle`, as
/// (pid, "cmdline"/"environ"). Root reads every process's environment.
fn processes_holding(needle: &str, skip_pid: Option<u32>) -> Vec<(u32, &'static str, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if Some(pid) == skip_pid || pid == std::process::id() {
            continue;
        }
        for what in ["cmdline", "environ"] {
            if let Ok(b) = std::fs::read(e.path().join(what)) {
                if b.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                    found.push((pid, what, String::from_utf8_lossy(&cmd).replace('\0', " ")));
                }
            }
        }
    }
    found
}

/// Processes whose command line mentions `marker` (a test's temporary dir).
fn processes_mentioning(marker: &str) -> Vec<(u32, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Ok(b) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&b).replace('\0', " ");
            let argv0 = cmd.split(' ').next().unwrap_or_default();
            if cmd.contains(marker) && !argv0.ends_with("/apim-profiles") {
                v.push((pid, cmd));
            }
        }
    }
    v
}

fn kill_mentioning(marker: &str) {
    for (pid, _) in processes_mentioning(marker) {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn password_sha() -> String {
    sha(PASSWORD.as_bytes())
}

/// A mode-600 credentials file outside HOME.
fn credentials_file(w: &World) -> PathBuf {
    let f = w.root().join("wso2-credentials");
    std::fs::write(&f, format!("username=ops@example.com\npassword={PASSWORD}\n")).unwrap();
    chmod(&f, 0o600);
    f
}

/// `split` with the update double, credentials from a mode-600 file.
fn split_with_update(w: &World, extra: &[&str]) -> Command {
    let mut c = Command::new(exe());
    c.arg("split")
        .arg(&w.home)
        .arg("--out")
        .arg(&w.out)
        .arg("--update-tool")
        .arg(double())
        .arg("--credentials-file")
        .arg(credentials_file(w))
        .arg("--json")
        .args(extra)
        .env_remove("WSO2_USERNAME")
        .env_remove("WSO2_PASSWORD")
        .env("APIM_DOUBLE_EXPECT_PASSWORD_SHA256", password_sha())
        .env("APIM_DOUBLE_CALLS", &w.calls)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn split_plain(w: &World, out: &Path, extra: &[&str]) -> Output {
    bin().arg("split").arg(&w.home).arg("--out").arg(out).args(["--no-update", "--json"]).args(extra).output().unwrap()
}

// --- 1. output into HOME by any route -------------------------------------------

#[test]
fn an_output_through_a_missing_dir_and_dotdot_never_reaches_home() {
    let w = World::new();
    let before = w.snapshot();
    let r = w.root().display().to_string();
    let forms = [
        format!("{r}/no-such-dir/../wso2am-4.2.0/nodes"),
        format!("{r}/no-such-dir/deeper/../../wso2am-4.2.0/nodes"),
        format!("{r}/no-such-dir/../wso2am-4.2.0"),
        format!("{r}/no-such-dir/../wso2am-4.2.0/./repository/../nodes"),
    ];
    for out in &forms {
        for dry in [false, true] {
            let extra: &[&str] = if dry { &["--dry-run"] } else { &[] };
            let o = split_plain(&w, Path::new(out), extra);
            assert_eq!(code(&o), Some(2), "--out {out}: {}", text(&o));
            let v = json(&o);
            assert_eq!(v["exit_code"], 2);
            assert!(v["error"].as_str().unwrap().contains("inside"), "{v}");
            assert!(v["hint"].as_str().is_some());
            w.assert_untouched(&before);
            assert!(!w.root().join("no-such-dir").exists(), "--out {out} created a directory");
        }
    }
    // The same, relative to the working directory.
    let o = bin()
        .current_dir(w.root())
        .args(["split", "wso2am-4.2.0", "--out", "no-such-dir/../wso2am-4.2.0/nodes", "--no-update", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    w.assert_untouched(&before);
    assert!(!w.root().join("no-such-dir").exists());
    // And HOME inside the output by a route through a missing directory.
    let o = split_plain(&w, &w.root().join("x/../"), &[]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    w.assert_untouched(&before);
}

/// Unmounts a bind mount when the test ends, however it ends.
struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_bind_mount_alias_of_home_is_recognised() {
    if !is_root() {
        eprintln!("skipped a_bind_mount_alias_of_home_is_recognised: mount --bind needs root");
        return;
    }
    let w = World::new();
    let alias = w.root().join("alias");
    std::fs::create_dir(&alias).unwrap();
    let st = Command::new("mount").arg("--bind").arg(&w.home).arg(&alias).status().unwrap();
    if !st.success() {
        eprintln!("skipped a_bind_mount_alias_of_home_is_recognised: mount --bind is not permitted here");
        return;
    }
    let _m = Mount(alias.clone());
    // An alias of HOME's parent too: the output's existing ancestors count.
    let parent_alias = w.root().join("parent-alias");
    std::fs::create_dir(&parent_alias).unwrap();
    assert!(Command::new("mount").arg("--bind").arg(w.root()).arg(&parent_alias).status().unwrap().success());
    let _m2 = Mount(parent_alias.clone());
    let before = w.snapshot();
    for out in [alias.join("nodes"), alias.clone(), alias.join("repository/conf"), parent_alias.join("wso2am-4.2.0/x")]
    {
        let o = split_plain(&w, &out, &[]);
        assert_eq!(code(&o), Some(2), "--out {}: {}", out.display(), text(&o));
        assert!(json(&o)["error"].as_str().unwrap().contains("inside"), "{}", text(&o));
        w.assert_untouched(&before);
    }
    // HOME given through the alias, output inside the real HOME.
    let o = bin()
        .arg("split")
        .arg(&alias)
        .arg("--out")
        .arg(w.home.join("nodes"))
        .args(["--no-update", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    w.assert_untouched(&before);
}

// --- 2. the update password never on a command line ------------------------------

#[test]
fn the_update_password_is_in_no_argv_and_no_environment_of_the_tool() {
    let w = World::new();
    let before = w.snapshot();
    let child = split_with_update(&w, &["--profiles", "gateway-worker"]).env("APIM_DOUBLE_SLEEP", "3").spawn().unwrap();
    let apim_pid = child.id();
    wait_for("the update double to start", Duration::from_secs(60), || w.calls().contains("--backup"));
    // While the double sleeps: every process's argv and environment.
    let mut looked = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1500) {
        let holding = processes_holding(PASSWORD, None);
        assert!(holding.is_empty(), "the password is readable in /proc: {holding:?}");
        looked += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(looked > 3);
    // An unprivileged account reads every command line: nothing there either.
    if is_root() {
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", "cat /proc/[0-9]*/cmdline"])
            .output()
            .unwrap();
        assert_no_secret("command lines read by nobody", &o.stdout, &[PASSWORD]);
    }
    let o = collect(child);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["profiles"][0]["update"]["status"], "updated", "{v}");
    // The tool was asked at its own prompt: no --password among its arguments.
    let calls = w.calls();
    assert!(!calls.contains("--password") && !calls.contains("--username"), "{calls}");
    assert!(calls.contains("user=ops@example.com password=present tty=yes prompted=yes"), "{calls}");
    assert_output_clean(&o, &[PASSWORD]);
    assert_no_secret_under(&w.out, &[PASSWORD]);
    w.assert_untouched(&before);
    let _ = apim_pid;
}

#[test]
fn credentials_from_the_environment_do_not_reach_the_tools_environment() {
    let w = World::new();
    // Its own password, so that a test running beside it cannot be mistaken for it.
    let password = "Env-Only-U2-Passw0rd";
    let mut c = split_with_update(&w, &["--profiles", "traffic-manager"]);
    c.env("APIM_DOUBLE_SLEEP", "2")
        .env("WSO2_USERNAME", "ops@example.com")
        .env("WSO2_PASSWORD", password)
        .env("APIM_DOUBLE_EXPECT_PASSWORD_SHA256", sha(password.as_bytes()));
    // No credentials file this time: the environment is the source.
    let args: Vec<_> = c.get_args().map(|a| a.to_owned()).collect();
    let mut c2 = Command::new(exe());
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--credentials-file" {
            skip = true;
            continue;
        }
        c2.arg(a);
    }
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => c2.env(k, v),
            None => c2.env_remove(k),
        };
    }
    let child = c2.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let apim = child.id();
    wait_for("the update double to start", Duration::from_secs(60), || w.calls().contains("--backup"));
    // Only apim-profiles itself (given the variable by the operator) holds it.
    let holding = processes_holding(password, Some(apim));
    assert!(holding.is_empty(), "the password is readable in /proc: {holding:?}");
    let o = collect(child);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(w.calls().contains("password=present"));
    assert_output_clean(&o, &[password]);
    assert_no_secret_under(&w.out, &[password]);
}

// --- 3. links planted at the tool's own file names --------------------------------

#[test]
fn a_link_planted_at_the_records_temporary_name_is_not_followed() {
    if !can_attack_as_nobody("a_link_planted_at_the_records_temporary_name_is_not_followed") {
        return;
    }
    let w = World::new();
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let copy = w.out.join("gateway-worker/wso2am-4.2.0");
    // The output is writable by other accounts (a shared staging area).
    for d in [&w.out, &w.out.join("gateway-worker"), &copy] {
        chmod(d, 0o777);
    }
    as_nobody(&format!("ln -s {} {}/.apim-profiles.json.tmp", w.victim.display(), copy.display()));
    let before = w.snapshot();
    let o = Command::new(exe())
        .arg("update")
        .arg(&copy)
        .arg("--json")
        .arg("--update-tool")
        .arg(double())
        .arg("--credentials-file")
        .arg(credentials_file(&w))
        .env("APIM_DOUBLE_EXPECT_PASSWORD_SHA256", password_sha())
        .env("APIM_DOUBLE_CALLS", &w.calls)
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    w.assert_untouched(&before);
    assert_output_clean(&o, &[PASSWORD, "VictimShadowHash"]);
    assert_no_secret_under(&w.out, &[PASSWORD, "VictimShadowHash"]);
    // The record is a real file the tool wrote.
    let md = std::fs::symlink_metadata(copy.join(".apim-profiles.json")).unwrap();
    assert!(md.file_type().is_file());
}

#[test]
fn a_link_planted_at_the_journal_is_refused_not_followed() {
    if !can_attack_as_nobody("a_link_planted_at_the_journal_is_refused_not_followed") {
        return;
    }
    let w = World::new();
    chmod(&w.home, 0o777);
    as_nobody(&format!("ln -s {} {}/.apim-profiles-journal.json", w.victim.display(), w.home.display()));
    let victim = sha(&read(&w.victim));
    let o = bin().arg("optimize").arg(&w.home).args(["--profile", "gateway-worker", "--json"]).output().unwrap();
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(json(&o)["error"].as_str().unwrap().contains("journal"), "{}", text(&o));
    assert_eq!(sha(&read(&w.victim)), victim, "the journal link's target was written");
    assert_output_clean(&o, &["VictimShadowHash"]);
}

#[test]
fn links_planted_at_predictable_temporary_names_are_not_followed() {
    if !can_attack_as_nobody("links_planted_at_predictable_temporary_names_are_not_followed") {
        return;
    }
    let w = World::new();
    std::fs::create_dir(&w.out).unwrap();
    chmod(&w.out, 0o777);
    // In-place optimize: a writable conf directory.
    let conf = w.home.join("repository/conf");
    chmod(&conf, 0o777);
    // The next few thousand pids: what an attacker guesses for `<name>.<pid>`.
    // Planted without a process per link (each would use up a pid), then
    // handed to `nobody` in one call, as if that account had made them.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").unwrap().trim().parse().unwrap();
    let mut planted = Vec::new();
    for p in last + 1..last + 3000 {
        for l in [
            w.out.join(format!(".apim-profiles.lock.{p}")),
            conf.join(format!(".deployment.toml.apim-profiles-tmp-{p}")),
        ] {
            std::os::unix::fs::symlink(&w.victim, &l).unwrap();
            planted.push(l);
        }
    }
    assert!(Command::new("chown").arg("-h").arg("nobody").args(&planted).status().unwrap().success());
    // The lock itself, too.
    as_nobody(&format!("ln -s {} {}/.apim-profiles.lock", w.victim.display(), w.out.display()));
    let victim = sha(&read(&w.victim));
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(sha(&read(&w.victim)), victim, "a lock link's target was written");
    let o = bin().arg("optimize").arg(&w.home).args(["--profile", "gateway-worker", "--json"]).output().unwrap();
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(sha(&read(&w.victim)), victim, "a temporary file link's target was written");
    assert_eq!(std::fs::read_to_string(&w.victim).unwrap(), VICTIM_TEXT);
}

// --- 4. a directory appearing at the final place during a run ----------------------

#[test]
fn a_directory_appearing_at_the_final_place_during_a_run_is_left_alone() {
    let w = World::new();
    let before = w.snapshot();
    // The each order: the copy is staged beside its final place while its update runs.
    let child = split_with_update(&w, &["--profiles", "gateway-worker", "--update-each"])
        .env("APIM_DOUBLE_SLEEP", "2")
        .spawn()
        .unwrap();
    wait_for("the update double to start", Duration::from_secs(60), || w.calls().contains("--backup"));
    let place = w.out.join("gateway-worker/wso2am-4.2.0");
    std::fs::create_dir(&place).unwrap();
    std::fs::write(place.join("someone-elses.txt"), "not yours\n").unwrap();
    let o = collect(child);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(place.join("someone-elses.txt")).unwrap(), "not yours\n");
    assert_eq!(names_in(&place), ["someone-elses.txt"], "the directory that appeared was replaced");
    let v = json(&o);
    assert!(v["profiles"][0]["error"].as_str().unwrap().contains("appeared"), "{v}");
    w.assert_untouched(&before);
    assert_output_clean(&o, &[PASSWORD]);
}

#[test]
fn force_exchanges_only_with_the_copy_that_was_there() {
    let w = World::new();
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let place = w.out.join("gateway-worker/wso2am-4.2.0");
    // A stale copy (other options), rebuilt with --force while someone swaps
    // another directory in at its place.
    let child = split_with_update(&w, &["--profiles", "gateway-worker", "--force", "--skip-config-optimization"])
        .env("APIM_DOUBLE_SLEEP", "2")
        .spawn()
        .unwrap();
    wait_for("the update double to start", Duration::from_secs(60), || w.calls().contains("--backup"));
    std::fs::rename(&place, w.out.join("gateway-worker/moved-away")).unwrap();
    std::fs::create_dir(&place).unwrap();
    std::fs::write(place.join("someone-elses.txt"), "not yours\n").unwrap();
    let o = collect(child);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert_eq!(names_in(&place), ["someone-elses.txt"], "a directory the record did not name was exchanged");
}

// --- 5. deployment.toml or a template linked outside HOME -------------------------

#[test]
fn a_deployment_toml_linked_outside_home_is_refused_and_never_printed() {
    let w = World::new();
    let toml = w.home.join(TOML);
    std::fs::remove_file(&toml).unwrap();
    std::os::unix::fs::symlink(&w.victim, &toml).unwrap();
    let before = w.snapshot();
    for extra in [&["--dry-run"][..], &[][..]] {
        let o = split_plain(&w, &w.out, extra);
        assert_eq!(code(&o), Some(2), "{}", text(&o));
        let v = json(&o);
        assert!(v["error"].as_str().unwrap().contains("outside"), "{v}");
        assert_output_clean(&o, &["VictimShadowHash", "root:"]);
        assert!(!w.out.exists());
    }
    let o = bin().arg("optimize").arg(&w.home).args(["--profile", "gateway-worker", "--dry-run"]).output().unwrap();
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert_output_clean(&o, &["VictimShadowHash"]);
    // Relative, escaping by `..`.
    std::fs::remove_file(&toml).unwrap();
    std::os::unix::fs::symlink("../../../victim-shadow", &toml).unwrap();
    let o = split_plain(&w, &w.out, &["--dry-run"]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert_output_clean(&o, &["VictimShadowHash"]);
    w.assert_untouched(&w.snapshot());
    let _ = before;
}

#[test]
fn a_template_linked_outside_home_is_refused_one_inside_is_read() {
    let w = World::new();
    let tpl = w.home.join(DTPL).join("gateway-worker.toml");
    let inside = w.home.join("repository/resources/conf/gw-template-kept-here.toml");
    std::fs::rename(&tpl, &inside).unwrap();
    // A link that stays inside HOME is fine.
    std::os::unix::fs::symlink("../gw-template-kept-here.toml", &tpl).unwrap();
    let o = split_plain(&w, &w.out, &["--dry-run", "--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    // One that leaves it is not read.
    std::fs::remove_file(&tpl).unwrap();
    std::os::unix::fs::symlink(&w.victim, &tpl).unwrap();
    let before = w.snapshot();
    let o = split_plain(&w, &w.out, &["--dry-run", "--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert_output_clean(&o, &["VictimShadowHash"]);
    w.assert_untouched(&before);
}

// --- 6. masking as a policy ---------------------------------------------------------

const SECRETS: &[&str] = &[
    "UrlParamPw1",
    "UrlUserinfoPw2",
    "SecretsCipherText3",
    "SecretsPlain4",
    "ApiKeyValue5",
    "AccessKeyValue6",
    "SecretKeyValue7",
    "KeystorePassValue8",
    "MultiLinePw9",
    "MultiLineTok10",
    "LiteralSecret11",
    "InlineUrlPw12",
    "CamelSecretKey13",
    "ApiTokenValue14",
    "CredentialValue15",
    "NewApiKey21",
];

fn secret_toml() -> String {
    let base = std::fs::read_to_string(fixture().join(TOML)).unwrap();
    format!(
        r#"{base}
[database.apim_extra]
url = "jdbc:mysql://db.example.internal:3306/apim?user=apim&password=UrlParamPw1&useSSL=true"
replica = "jdbc:postgresql://apim:UrlUserinfoPw2@db.example.internal:5432/apim"
pool = {{ url = "jdbc:mysql://apim:InlineUrlPw12@db/x", max = 5 }}

[secrets]
admin_password = "SecretsCipherText3"
some_alias = 'SecretsPlain4'

[apim.keys]
api_key = "ApiKeyValue5"
access_key = "AccessKeyValue6"
secret_key = "SecretKeyValue7"
keystorePass = "KeystorePassValue8"
secretKey = "CamelSecretKey13"
api-token = "ApiTokenValue14"
aws_credential = "CredentialValue15"
note = """
not a secret, just text
"""
password = """
MultiLinePw9
"""
token = '''
MultiLineTok10
'''
client_secret = 'LiteralSecret11'
"#
    )
}

#[test]
fn every_secret_form_is_masked_in_text_json_summary_and_errors() {
    let w = World::new();
    std::fs::write(w.home.join(TOML), secret_toml()).unwrap();
    let carry =
        ["--carry", "database.apim_extra,secrets,apim.keys,super_admin", "--set", "apim.keys.api_key=\"NewApiKey21\""];
    let before = w.snapshot();
    let mut outputs = Vec::new();
    for json_flag in [true, false] {
        let mut c = bin();
        c.arg("split").arg(&w.home).arg("--out").arg(&w.out).args(["--no-update", "--dry-run"]).args(carry);
        if json_flag {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        assert_eq!(code(&o), Some(0), "{}", text(&o));
        outputs.push(o);
    }
    let o = bin()
        .arg("optimize")
        .arg(&w.home)
        .args(["--profile", "traffic-manager", "--dry-run", "--json"])
        .args(carry)
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    outputs.push(o);
    for o in &outputs {
        assert_output_clean(o, SECRETS);
    }
    // The summary lists the carried keys, values masked.
    let v = json(&outputs[0]);
    let settings = v["profiles"][0]["settings"].to_string();
    assert!(settings.contains("apim.keys.api_key: ******** -> ******** (changed)"), "{settings}");
    // Refused --set values are not echoed, whatever the key.
    for set in [
        "database.apim_extra.url=jdbc:mysql://apim:UrlUserinfoPw2@db/x",
        "apim.keys.api_key=ApiKeyValue5",
        "apim.keys.access_key=\"AccessKeyValue6\" junk",
        "secrets.some_alias=SecretsPlain4",
        "gateway-worker:apim.keys.keystorePass=KeystorePassValue8",
    ] {
        let o = bin()
            .arg("split")
            .arg(&w.home)
            .arg("--out")
            .arg(&w.out)
            .args(["--no-update", "--dry-run", "--json", "--set", set])
            .output()
            .unwrap();
        assert_eq!(code(&o), Some(2), "--set {set}: {}", text(&o));
        assert_output_clean(&o, SECRETS);
    }
    w.assert_untouched(&before);
    assert!(!w.out.exists());
}

#[test]
fn a_changed_secret_still_shows_as_changed() {
    let w = World::new();
    let o = bin()
        .arg("optimize")
        .arg(&w.home)
        .args(["--profile", "gateway-worker", "--dry-run", "--json", "--carry", "super_admin"])
        .args(["--set", "super_admin.password=\"Changed-Admin-Pw20\""])
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_output_clean(&o, &["Changed-Admin-Pw20", "Fixture-Admin-Pw1"]);
    let v = json(&o);
    let p = &v["profiles"][0];
    let diff = p["diff"].as_str().unwrap_or_default();
    let minus = diff.lines().any(|l| l.starts_with("-password"));
    let plus = diff.lines().any(|l| l.starts_with("+password"));
    assert!(minus && plus, "the diff hides the changed password:\n{diff}");
    let settings = p["settings"].to_string();
    assert!(settings.contains("super_admin.password") && settings.contains("(changed)"), "{settings}");
}

// --- 7. absolute links inside HOME pointing into HOME ------------------------------

#[test]
fn absolute_links_into_home_are_made_relative_in_the_copy_and_reported() {
    let w = World::new();
    let abs_file = w.home.join("bin/abs-version.txt");
    let abs_dir = w.home.join("repository/abs-conf");
    let outside = w.home.join("bin/outside-link");
    std::os::unix::fs::symlink(w.home.join("bin/version.txt"), &abs_file).unwrap();
    std::os::unix::fs::symlink(w.home.join("repository/conf"), &abs_dir).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &outside).unwrap();
    let before = w.snapshot();
    let o = split_plain(&w, &w.out, &[]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let v = json(&o);
    for p in v["profiles"].as_array().unwrap() {
        let copy = PathBuf::from(p["path"].as_str().unwrap());
        let copy_c = std::fs::canonicalize(&copy).unwrap();
        for (link, rel) in [(&abs_file, "bin/abs-version.txt"), (&abs_dir, "repository/abs-conf")] {
            let _ = link;
            let l = copy.join(rel);
            let target = std::fs::read_link(&l).unwrap();
            assert!(target.is_relative(), "{} still points to {}", l.display(), target.display());
            let resolved = std::fs::canonicalize(&l).unwrap();
            assert!(resolved.starts_with(&copy_c), "{} resolves to {}", l.display(), resolved.display());
            let listed = p["links_rewritten"].to_string();
            assert!(listed.contains(rel), "{rel} not reported: {listed}");
        }
        // A link out of HOME is copied as it is (a faithful copy).
        assert_eq!(std::fs::read_link(copy.join("bin/outside-link")).unwrap(), PathBuf::from("/etc/hostname"));
        // The copy with its relative links is what the profile asks for.
        let o = bin().arg("verify").arg(&copy).output().unwrap();
        assert_eq!(code(&o), Some(0), "{}", text(&o));
        // Writing through the copy's links changes only the copy.
        std::fs::write(copy.join("bin/abs-version.txt"), "changed in the copy\n").unwrap();
        std::fs::write(copy.join("repository/abs-conf/new-in-copy.xml"), "x").unwrap();
    }
    w.assert_untouched(&before);
}

// --- 8. the update tool's output and its processes ----------------------------------

#[test]
fn output_that_is_not_utf8_does_not_fail_a_good_update() {
    let w = World::new();
    let o = split_with_update(&w, &["--profiles", "gateway-worker"])
        .env("APIM_DOUBLE_NOISE", "binary")
        .spawn()
        .map(collect)
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["profiles"][0]["update"]["status"], "updated", "{v}");
    assert_eq!(v["profiles"][0]["update"]["tool_exit_code"], 0);
}

#[test]
fn tool_output_without_newlines_is_kept_in_bounded_lines() {
    let w = World::new();
    let o = split_with_update(&w, &["--profiles", "gateway-worker", "--update-each"])
        .env("APIM_DOUBLE_NOISE", "unbroken")
        .env("APIM_DOUBLE_NOISE_MB", "3")
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let log = std::fs::read(w.out.join("gateway-worker/wso2am-4.2.0/.apim-profiles-update.log")).unwrap();
    let dots = log.iter().filter(|b| **b == b'.').count();
    assert!(dots >= 3 << 20, "the tool's output was not kept whole: {dots} dots");
    let longest = log.split(|b| *b == b'\n').map(<[u8]>::len).max().unwrap();
    assert!(longest <= (1 << 20) + 64, "a line of {longest} bytes was kept");
}

#[test]
fn a_detached_child_holding_the_pipes_does_not_hold_the_run_past_the_timeout() {
    let w = World::new();
    let marker = w.root().display().to_string();
    let t = Instant::now();
    let mut child = split_with_update(&w, &["--profiles", "gateway-worker", "--update-timeout", "4"])
        .env("APIM_DOUBLE_SCENARIO", "detach")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(30));
    let left = processes_mentioning(&marker);
    kill_mentioning(&marker);
    let _ = child.kill();
    let st = st.expect("the run waited for a detached child past --update-timeout");
    assert!(t.elapsed() < Duration::from_secs(30));
    assert!(st.code().is_some(), "{st:?}");
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn after_sigkill_no_orphan_update_survives_and_a_rerun_refuses_meanwhile() {
    let w = World::new();
    let marker = w.root().display().to_string();
    let mut child = split_with_update(&w, &["--profiles", "gateway-worker"])
        .env("APIM_DOUBLE_SCENARIO", "hang")
        .env("APIM_DOUBLE_IGNORE_TERM", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the update double to start", Duration::from_secs(60), || w.calls().contains("--backup"));
    std::thread::sleep(Duration::from_millis(200));
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    // At once: the previous run's update is still dying (its processes ignore
    // SIGTERM and get SIGKILL after a grace period); a re-run must not start a
    // second update beside it.
    let o = split_with_update(&w, &["--profiles", "gateway-worker"]).output().unwrap();
    assert_eq!(code(&o), Some(2), "a re-run started beside a running update: {}", text(&o));
    let err = json(&o)["error"].as_str().unwrap().to_string();
    assert!(err.contains("still running"), "{err}");
    let pgid: i32 = err.rsplit("process group ").next().unwrap().trim_end_matches(')').parse().unwrap();
    // Soon nothing of it is left, and a re-run goes ahead.
    let t = Instant::now();
    let o = loop {
        let o = split_with_update(&w, &["--profiles", "gateway-worker"]).output().unwrap();
        if code(&o) != Some(2) || t.elapsed() > Duration::from_secs(20) {
            break o;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let left: Vec<_> = group_members(pgid);
    kill_mentioning(&marker);
    assert!(left.is_empty(), "processes of the killed run's update: {left:?}");
}

#[test]
fn a_setsid_grandchild_that_outlived_a_sigkill_stops_the_rerun() {
    let w = World::new();
    let marker = w.root().display().to_string();
    let mut child = split_with_update(&w, &["--profiles", "gateway-worker"])
        .env("APIM_DOUBLE_SCENARIO", "detach")
        .env("APIM_DOUBLE_DETACH_SECONDS", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The tool has started its child in a session of its own, then waits.
    let detached = format!("detached from {}", w.out.display());
    // Found once it leads a session of its own (before that, `setsid` is
    // still in the tool's group and goes with it).
    let leads_session = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let f: Vec<&str> = stat.rsplit_once(')').map(|x| x.1).unwrap_or("").split_whitespace().collect();
        f.get(3).and_then(|s| s.parse::<u32>().ok()) == Some(pid)
    };
    wait_for("the detached child", Duration::from_secs(60), || {
        processes_mentioning(&detached).iter().any(|(pid, _)| leads_session(*pid))
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    // Its group is gone soon (the launcher's parent-death signal), the child not.
    let t = Instant::now();
    let o = loop {
        let o = split_with_update(&w, &["--profiles", "gateway-worker"]).output().unwrap();
        let err = json(&o)["error"].as_str().unwrap_or_default().to_string();
        if !err.contains("still running") || t.elapsed() > Duration::from_secs(20) {
            break o;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let left = processes_mentioning(&detached);
    kill_mentioning(&marker);
    assert!(!left.is_empty(), "the detached child did not outlive the run (nothing to test)");
    assert_eq!(code(&o), Some(2), "a re-run started an update beside a leftover of the last one: {}", text(&o));
    let err = json(&o)["error"].as_str().unwrap().to_string();
    assert!(err.contains("still works in") && err.contains(&format!("process {}", left[0].0)), "{err}");
}

#[test]
fn a_planted_update_marker_never_names_another_process_group() {
    let w = World::new();
    std::fs::create_dir_all(&w.out).unwrap();
    // A marker naming this test's own process group, written by another account
    // (and one by root naming a live group it did not start).
    let mine = unsafe { libc::getpgrp() };
    let planted = w.out.join(".apim-profiles-update.pid");
    std::fs::write(&planted, format!("{mine}\n")).unwrap();
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    }
    let o = split_with_update(&w, &["--profiles", "gateway-worker"]).output().unwrap();
    assert_eq!(code(&o), Some(0), "a planted marker stopped the run: {}", text(&o));
    assert!(!text(&o).contains(&format!("-{mine}")), "{}", text(&o));
    // A live group of someone else's (its leader started at another time than
    // the marker says), named by a marker of the running account.
    use std::os::unix::process::CommandExt;
    let mut other = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
    std::fs::write(&planted, format!("{} 1\n", other.id())).unwrap();
    std::os::unix::fs::chown(&planted, Some(unsafe { libc::geteuid() }), None).unwrap();
    let o = split_with_update(&w, &["--profiles", "gateway-worker", "--force"]).output().unwrap();
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(code(&o), Some(0), "a marker naming another group stopped the run: {}", text(&o));
}

/// Pids whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let f: Vec<&str> = stat.rsplit_once(')').map(|x| x.1).unwrap_or("").split_whitespace().collect();
        if f.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) {
            v.push(pid);
        }
    }
    v
}

// --- 9. signals and bounds -----------------------------------------------------------

/// Runs a command that may block; Ctrl-C after `patience`. Returns the exit
/// status, or fails when even SIGINT does not end it.
fn run_with_ctrl_c(mut c: Command, patience: Duration) -> (Option<i32>, bool) {
    let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    if let Some(st) = wait_timeout(&mut child, patience) {
        return (st.code(), false);
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = wait_timeout(&mut child, Duration::from_secs(5));
    if st.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("SIGINT was ignored while the run blocked");
    }
    (st.unwrap().code(), true)
}

#[test]
fn special_files_are_refused_before_a_read_can_block() {
    let w = World::new();
    let fifo = w.root().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // A template linked to a FIFO inside HOME.
    let in_home_fifo = w.home.join("repository/resources/conf/fifo.toml");
    assert!(Command::new("mkfifo").arg(&in_home_fifo).status().unwrap().success());
    let tpl = w.home.join(DTPL).join("gateway-worker.toml");
    std::fs::remove_file(&tpl).unwrap();
    std::os::unix::fs::symlink("../fifo.toml", &tpl).unwrap();
    let mut c = Command::new(exe());
    c.arg("split").arg(&w.home).arg("--out").arg(&w.out).args(["--no-update", "--dry-run"]);
    assert_eq!(run_with_ctrl_c(c, Duration::from_secs(5)), (Some(2), false));
    std::fs::remove_file(&tpl).unwrap();
    std::fs::remove_file(&in_home_fifo).unwrap();
    std::fs::write(&tpl, read(fixture().join(DTPL).join("gateway-worker.toml"))).unwrap();
    // An overlay that is a FIFO.
    let mut c = Command::new(exe());
    c.arg("split").arg(&w.home).arg("--out").arg(&w.out).args(["--no-update", "--dry-run", "--overlay"]).arg(&fifo);
    assert_eq!(run_with_ctrl_c(c, Duration::from_secs(5)), (Some(2), false));
    // A credentials file that is a FIFO.
    chmod(&fifo, 0o600);
    let mut c = Command::new(exe());
    c.arg("split")
        .arg(&w.home)
        .arg("--out")
        .arg(&w.out)
        .arg("--update-tool")
        .arg(double())
        .arg("--credentials-file")
        .arg(&fifo)
        .env_remove("WSO2_PASSWORD")
        .env_remove("WSO2_USERNAME");
    assert_eq!(run_with_ctrl_c(c, Duration::from_secs(5)), (Some(2), false));
    assert!(!w.out.exists());
}

#[test]
fn a_dry_run_stops_on_ctrl_c() {
    let w = World::new();
    // A large deployment.toml makes the dry-run long enough to interrupt.
    let mut big = std::fs::read_to_string(w.home.join(TOML)).unwrap();
    for i in 0..60_000 {
        big.push_str(&format!("[custom.t{i}]\nkey_{i} = \"value {i}\"\nlist = [1, 2, 3]\n"));
    }
    std::fs::write(w.home.join(TOML), big).unwrap();
    let mut c = Command::new(exe());
    c.arg("split")
        .arg(&w.home)
        .arg("--out")
        .arg(&w.out)
        .args(["--no-update", "--dry-run", "--profiles", "control-plane,gateway-worker,traffic-manager"])
        .args(["--carry", "super_admin"]);
    let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let running = child.try_wait().unwrap().is_none();
    if !running {
        eprintln!("skipped the Ctrl-C check: the dry-run finished in under 300 ms on this machine");
        return;
    }
    let t = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = wait_timeout(&mut child, Duration::from_secs(5)).expect("the dry-run ignored Ctrl-C");
    assert!(t.elapsed() < Duration::from_secs(2), "Ctrl-C took {:?}", t.elapsed());
    assert_eq!(st.code(), Some(130));
    assert!(!w.out.exists());
}

#[test]
fn jobs_are_bounded() {
    let w = World::new();
    for (flag, n) in [("--jobs", "257"), ("--jobs", "100000"), ("--update-jobs", "1000")] {
        let t = Instant::now();
        let o = if flag == "--jobs" {
            split_plain(&w, &w.out, &[flag, n])
        } else {
            let copy = w.out.join("gateway-worker/wso2am-4.2.0");
            bin().arg("update").arg(&copy).args([flag, n, "--json"]).output().unwrap()
        };
        assert_eq!(code(&o), Some(2), "{flag} {n}: {}", text(&o));
        let v = json(&o);
        assert!(v["hint"].as_str().unwrap().contains("256"), "{v}");
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(!w.out.exists(), "{flag} {n} wrote before refusing");
    }
    let o = split_plain(&w, &w.out, &["--jobs", "256", "--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let md = std::fs::metadata(&w.out).unwrap();
    assert!(md.dev() > 0);
}

// --- issue 25: one file-system discipline for every read, write and delete ---------

/// A root-only directory outside HOME (`<root>/root-only`, 0700) holding
/// files the attacks aim at, and its digest.
fn root_only_dir(w: &World, files: &[&str]) -> PathBuf {
    let d = w.root().join("root-only");
    for f in files {
        let p = d.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("root-only {f}\n")).unwrap();
        chmod(&p, 0o600);
    }
    chmod(&d, 0o700);
    d
}

fn chown_nobody(p: &Path) {
    assert!(Command::new("chown").args(["-R", "65534:65534"]).arg(p).status().unwrap().success());
}

#[test]
fn a_directory_swapped_for_a_link_during_optimize_in_place_deletes_nothing_elsewhere() {
    if !can_attack_as_nobody("a_directory_swapped_for_a_link_during_optimize_in_place_deletes_nothing_elsewhere") {
        return;
    }
    let w = World::new();
    // The files the gateway-worker plan removes from webapps, kept by root
    // in a directory only root may enter.
    let webapps: Vec<String> = names_in(&w.home.join(WEBAPPS));
    let files: Vec<String> = webapps.iter().map(|n| format!("server/webapps/{n}")).collect();
    let victim_dir = root_only_dir(&w, &files.iter().map(String::as_str).collect::<Vec<_>>());
    let victim_before = digest(&victim_dir);
    chown_nobody(&w.home);
    // The pack owner swaps repository/deployment for a link to it at the
    // moment the tool is about to open webapps (the fault hook).
    let dep = w.home.join("repository/deployment");
    let swap = format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'mv {d} {d}.moved && ln -s {v} {d}'",
        d = dep.display(),
        v = victim_dir.display()
    );
    let o = bin()
        .arg("optimize")
        .arg(&w.home)
        .args(["--profile", "gateway-worker", "--json"])
        .env("APIM_PROFILES_BEFORE_OPEN", format!("{WEBAPPS}={swap}"))
        .output()
        .unwrap();
    assert!(std::fs::symlink_metadata(&dep).unwrap().file_type().is_symlink(), "the hook did not run: {}", text(&o));
    assert_ne!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(digest(&victim_dir), victim_before, "files in the root-only directory were deleted: {}", text(&o));
    let v = json(&o);
    assert!(v["error"].as_str().unwrap_or_default().contains("link"), "{v}");
}

#[test]
fn a_profile_directory_planted_as_a_link_or_by_another_account_is_refused() {
    if !can_attack_as_nobody("a_profile_directory_planted_as_a_link_or_by_another_account_is_refused") {
        return;
    }
    let w = World::new();
    std::fs::create_dir(&w.out).unwrap();
    chmod(&w.out, 0o777);
    let before = w.snapshot();
    let target = w.home.join("repository");
    as_nobody(&format!("ln -s {} {}/control-plane", target.display(), w.out.display()));
    let o = split_plain(&w, &w.out, &["--profiles", "control-plane"]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    let v = json(&o);
    assert!(v["error"].as_str().unwrap().contains("not a directory apim-profiles made"), "{v}");
    assert!(v["hint"].as_str().is_some(), "{v}");
    w.assert_untouched(&before);
    // A real directory, but another account's: refused the same way.
    as_nobody(&format!("mkdir {}/gateway-worker", w.out.display()));
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(json(&o)["error"].as_str().unwrap().contains("uid 65534"), "{}", text(&o));
    assert_eq!(
        names_in(&w.out.join("gateway-worker")),
        Vec::<String>::new(),
        "written into another account's directory"
    );
    w.assert_untouched(&before);
    // The directory the tool makes itself is used.
    std::fs::remove_dir(w.out.join("gateway-worker")).unwrap();
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::metadata(w.out.join("gateway-worker")).unwrap().mode() & 0o022, 0);
}

/// Names of the entries of an archive (tar.gz or zip), as the system tools list them.
fn archive_names(p: &Path) -> String {
    let o = if p.extension().is_some_and(|e| e == "zip") {
        Command::new("unzip").arg("-Z1").arg(p).output().unwrap()
    } else {
        Command::new("tar").arg("tzf").arg(p).output().unwrap()
    };
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_copy_directory_swapped_for_a_link_while_archived_puts_no_outside_file_in_the_archive() {
    if !can_attack_as_nobody("a_copy_directory_swapped_for_a_link_while_archived_puts_no_outside_file_in_the_archive") {
        return;
    }
    for format in ["tar.gz", "zip"] {
        let w = World::new();
        let victim_dir = root_only_dir(&w, &["root-only-secret.txt", "keys/root-only.jks"]);
        chown_nobody(&w.home);
        let copy = w.out.join("gateway-worker/wso2am-4.2.0");
        let conf = copy.join("repository/conf");
        let swap = format!(
            "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'mv {c} {c}.moved && ln -s {v} {c}'",
            c = conf.display(),
            v = victim_dir.display()
        );
        let o = bin()
            .arg("split")
            .arg(&w.home)
            .arg("--out")
            .arg(&w.out)
            .args(["--no-update", "--json", "--profiles", "gateway-worker", "--archive", format])
            .env("APIM_PROFILES_BEFORE_OPEN", format!("repository/conf={swap}"))
            .output()
            .unwrap();
        assert!(std::fs::symlink_metadata(&conf).unwrap().file_type().is_symlink(), "hook did not run: {}", text(&o));
        assert_ne!(code(&o), Some(0), "{format}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("changed while it was archived"), "{format}: {}", text(&o));
        for e in std::fs::read_dir(w.out.join("gateway-worker")).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                let names = archive_names(&p);
                assert!(!names.contains("root-only"), "{format}: outside files in {}: {names}", p.display());
            }
        }
    }
}

#[test]
fn archives_are_no_wider_than_the_copy_and_not_written_through_planted_links() {
    if !can_attack_as_nobody("archives_are_no_wider_than_the_copy_and_not_written_through_planted_links") {
        return;
    }
    let w = World::new();
    chmod(&w.home, 0o750);
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker", "--archive", "zip"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let zip = w.out.join("gateway-worker/wso2am-4.2.0.zip");
    let md = std::fs::symlink_metadata(&zip).unwrap();
    assert!(md.file_type().is_file());
    assert_eq!(md.mode() & 0o7777, 0o640, "the archive of a 750 copy");
    assert!(archive_names(&zip).contains("wso2am-4.2.0/repository/conf/deployment.toml"));
    // A profile directory others may write in (where links could be planted
    // at the archive's names) is refused before anything is written.
    let pdir = w.out.join("gateway-worker");
    chmod(&pdir, 0o777);
    std::fs::remove_file(&zip).unwrap();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").unwrap().trim().parse().unwrap();
    for p in last + 1..last + 200 {
        std::os::unix::fs::symlink(&w.victim, pdir.join(format!(".wso2am-4.2.0.zip.apim-profiles-tmp-{p}"))).unwrap();
    }
    as_nobody(&format!("ln -s {} {}", w.victim.display(), zip.display()));
    let victim = sha(&read(&w.victim));
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker", "--archive", "zip"]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(json(&o)["error"].as_str().unwrap().contains("not a directory apim-profiles made"), "{}", text(&o));
    assert_eq!(sha(&read(&w.victim)), victim, "written through a planted link");
    // Made safe again, the archive replaces the link rather than writing through it.
    chmod(&pdir, 0o755);
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker", "--archive", "zip"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(sha(&read(&w.victim)), victim, "written through a planted link");
    assert!(std::fs::symlink_metadata(&zip).unwrap().file_type().is_file(), "the archive is still a link");
}

#[test]
fn archive_entry_names_are_exact_bytes_never_decoded_lossily() {
    use std::os::unix::ffi::OsStrExt;
    let w = World::new();
    // Two names that a lossy decoding makes one ("caf\u{FFFD}.txt").
    let dir = w.home.join("repository/conf");
    for b in [&b"caf\xe9.txt"[..], &b"caf\xff.txt"[..]] {
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b)), b).unwrap();
    }
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker", "--archive", "zip"]);
    assert_ne!(code(&o), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("--archive tar.gz"), "{}", text(&o));
    assert!(!w.out.join("gateway-worker/wso2am-4.2.0.zip").exists());
    let o = split_plain(&w, &w.root().join("out2"), &["--profiles", "gateway-worker", "--archive", "tar.gz"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let tgz = w.root().join("out2/gateway-worker/wso2am-4.2.0.tar.gz");
    let listing = Command::new("tar").args(["--quoting-style=literal", "-tzf"]).arg(&tgz).output().unwrap().stdout;
    for b in [&b"conf/caf\xe9.txt"[..], &b"conf/caf\xff.txt"[..]] {
        assert!(listing.windows(b.len()).any(|x| x == b), "{}", String::from_utf8_lossy(&listing));
    }
}

#[test]
fn man_pages_replace_a_planted_link_never_write_through_it() {
    if !can_attack_as_nobody("man_pages_replace_a_planted_link_never_write_through_it") {
        return;
    }
    let w = World::new();
    let man = w.root().join("man1");
    std::fs::create_dir(&man).unwrap();
    chmod(&man, 0o777);
    as_nobody(&format!(
        "ln -s {v} {m}/apim-profiles.1 && ln -s {v} {m}/apim-profiles-split.1",
        v = w.victim.display(),
        m = man.display()
    ));
    let o = bin().arg("man").arg("--out").arg(&man).output().unwrap();
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&w.victim).unwrap(), VICTIM_TEXT, "a man page was written through the link");
    for page in ["apim-profiles.1", "apim-profiles-split.1"] {
        let md = std::fs::symlink_metadata(man.join(page)).unwrap();
        assert!(md.file_type().is_file(), "{page} is still a link");
        assert_eq!(md.mode() & 0o7777, 0o644);
    }
    assert!(std::fs::read_to_string(man.join("apim-profiles-split.1")).unwrap().contains(".SH"));
}

#[test]
fn oracle_user_password_urls_and_comments_beside_secrets_are_masked() {
    const ORA: &[&str] = &["OraFilePw1", "OraCommentPw2", "OraCommentPw3", "OraSetPw4", "OraCarryPw5", "OraErrPw6"];
    let w = World::new();
    let toml = w.home.join(TOML);
    let mut conf = std::fs::read_to_string(&toml).unwrap();
    conf.push_str(
        "\n[database.oracle_extra]\nurl = \"jdbc:oracle:thin:apim/OraFilePw1@db.example:1521/ORCL\" # was OraCommentPw2\n\
         password = \"OraCarryPw5\" # old one: OraCommentPw3\n# previous password: OraCommentPw3\n",
    );
    std::fs::write(&toml, conf).unwrap();
    let mut outputs = Vec::new();
    for json_flag in [true, false] {
        let mut c = bin();
        c.arg("split").arg(&w.home).arg("--out").arg(&w.out);
        c.args(["--no-update", "--dry-run", "--profiles", "gateway-worker", "--carry", "database.oracle_extra"]);
        c.args(["--set", "database.apim_db.url=\"jdbc:oracle:thin:apim/OraSetPw4@//db:1521/svc\""]);
        if json_flag {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        assert_eq!(code(&o), Some(0), "{}", text(&o));
        outputs.push(o);
    }
    // The URL's host still shows: only the password is hidden.
    let v = json(&outputs[0]);
    assert!(v.to_string().contains("jdbc:oracle:thin:apim/********@//db:1521/svc"), "{v}");
    // An error that names the value does not show it either.
    let o = bin()
        .arg("split")
        .arg(&w.home)
        .arg("--out")
        .arg(&w.out)
        .args([
            "--no-update",
            "--dry-run",
            "--json",
            "--set",
            "database.apim_db.url=jdbc:oracle:thin:u/OraErrPw6@h junk",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    outputs.push(o);
    for o in &outputs {
        assert_output_clean(o, ORA);
    }
    assert!(!w.out.exists());
}

/// `ansible-playbook` from `$APIM_TEST_ANSIBLE_VENV/bin`, else from PATH.
fn ansible_playbook() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("APIM_TEST_ANSIBLE_VENV") {
        let p = Path::new(&v).join("bin/ansible-playbook");
        return p.exists().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("ansible-playbook")).find(|p| p.exists())
}

#[test]
fn the_ansible_module_never_shows_or_returns_set_secrets() {
    let Some(playbook) = ansible_playbook() else {
        eprintln!("skipped the_ansible_module_never_shows_or_returns_set_secrets: no ansible-playbook (set APIM_TEST_ANSIBLE_VENV)");
        return;
    };
    const ANS: &[&str] = &["AnsSetAdminPw1", "AnsUrlPw2", "AnsOraPw3", "AnsSecretsAlias4"];
    let w = World::new();
    let play = w.root().join("play.yml");
    let yaml = format!(
        r#"- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - apim_profiles:
        binary: {bin}
        home: {home}
        out: {out}
        profiles: [gateway-worker]
        set:
          gateway-worker:
            super_admin.password: AnsSetAdminPw1
            database.apim_db.url: "jdbc:mysql://apim:AnsUrlPw2@db:3306/apim"
            database.shared_db.url: "jdbc:oracle:thin:apim/AnsOraPw3@db:1521/x"
            secrets.some_alias: AnsSecretsAlias4
            server.offset: 5
      register: r
    - debug: var=r
    - assert:
        that: ["r.profiles[0].status == 'created'", "'AnsSetAdminPw1' not in (r | to_json)"]
"#,
        bin = exe().display(),
        home = w.home.display(),
        out = w.out.display()
    );
    std::fs::write(&play, yaml).unwrap();
    let o = Command::new(&playbook)
        .args(["-i", "localhost,", "-vvv"])
        .arg(&play)
        .env("ANSIBLE_LIBRARY", Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/plugins/modules"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_PYTHON_INTERPRETER", playbook.with_file_name("python"))
        .env("ANSIBLE_LOCAL_TEMP", w.root().join("ans-local"))
        .env("ANSIBLE_REMOTE_TEMP", w.root().join("ans-remote"))
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_output_clean(&o, ANS);
    // The values were applied all the same, and ordinary values still show.
    let toml = std::fs::read_to_string(w.out.join("gateway-worker/wso2am-4.2.0").join(TOML)).unwrap();
    assert!(toml.contains("AnsSetAdminPw1") && toml.contains("offset = 5"), "{toml}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"server.offset\": 5"), "{}", text(&o));
}

#[test]
fn an_update_that_removes_the_products_core_directories_fails_verification() {
    let w = World::new();
    // Each copy updated: that profile fails.
    let o = split_with_update(&w, &["--profiles", "gateway-worker", "--update-each"])
        .env("APIM_DOUBLE_REMOVE", "repository/components")
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    let v = json(&o);
    let p = &v["profiles"][0];
    assert_eq!(p["status"], "failed", "{v}");
    assert!(p["error"].as_str().unwrap().contains("repository/components/ is missing"), "{v}");
    assert!(!w.out.join("gateway-worker/wso2am-4.2.0").exists(), "the broken copy was published");
    // The home updated once (the default): no copy is made from it.
    let o = split_with_update(&w, &["--profiles", "gateway-worker"])
        .env("APIM_DOUBLE_REMOVE", "repository/components")
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("repository/components/ is missing"), "{}", text(&o));
    assert!(!w.out.join("gateway-worker/wso2am-4.2.0").exists(), "a copy of the broken home was published");
    // A copy that lost a core directory after it was made does not verify.
    let o = split_plain(&w, &w.root().join("out2"), &["--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let copy = w.root().join("out2/gateway-worker/wso2am-4.2.0");
    std::fs::remove_dir_all(copy.join("repository/components")).unwrap();
    let o = bin().arg("verify").arg(&copy).arg("--json").output().unwrap();
    assert_ne!(code(&o), Some(0), "{}", text(&o));
    assert!(json(&o)["profiles"][0]["drift"].to_string().contains("repository/components/ is missing"), "{}", text(&o));
}

/// Runs a command that must end by itself within `limit`: the exit code, or
/// a failure naming what hung.
fn run_within(mut c: Command, limit: Duration, what: &str) -> Output {
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if wait_timeout(&mut child, limit).is_none() {
        let _ = child.kill();
        panic!("{what}: still running after {limit:?}");
    }
    collect(child)
}

#[test]
fn settings_records_and_locks_that_are_fifos_devices_or_huge_are_refused_quickly() {
    let w = World::new();
    let fifo = w.root().join("fifo.toml");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let huge = w.root().join("huge.toml");
    std::fs::File::create(&huge).unwrap().set_len(64 << 20).unwrap();
    // The settings file.
    for settings in [fifo.as_path(), Path::new("/dev/zero"), huge.as_path()] {
        let mut c = Command::new(exe());
        c.arg("split").arg(&w.home).arg("--out").arg(&w.out).args(["--dry-run", "--json", "--settings"]).arg(settings);
        let o = run_within(c, Duration::from_secs(5), &format!("--settings {}", settings.display()));
        assert_eq!(code(&o), Some(2), "{}", text(&o));
        assert!(json(&o)["hint"].as_str().is_some(), "{}", text(&o));
    }
    // HOME/.apim-profiles.json as a FIFO: the refusal of a home that looks
    // like a copy does not hang on it.
    let rec = w.home.join(".apim-profiles.json");
    assert!(Command::new("mkfifo").arg(&rec).status().unwrap().success());
    let mut c = Command::new(exe());
    c.arg("split").arg(&w.home).arg("--out").arg(&w.out).args(["--no-update", "--dry-run", "--json"]);
    let o = run_within(c, Duration::from_secs(5), "a FIFO at HOME/.apim-profiles.json");
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    std::fs::remove_file(&rec).unwrap();
    // A FIFO at the output's lock: replaced, and the run succeeds.
    std::fs::create_dir(&w.out).unwrap();
    assert!(Command::new("mkfifo").arg(w.out.join(".apim-profiles.lock")).status().unwrap().success());
    let mut c = Command::new(exe());
    c.arg("split").arg(&w.home).arg("--out").arg(&w.out).args([
        "--no-update",
        "--json",
        "--profiles",
        "gateway-worker",
    ]);
    let o = run_within(c, Duration::from_secs(60), "a FIFO at the lock");
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    // A copy's record grown huge (sparse: no disk used) is refused, not read whole.
    let copy = w.out.join("gateway-worker/wso2am-4.2.0");
    std::fs::OpenOptions::new().write(true).open(copy.join(".apim-profiles.json")).unwrap().set_len(300 << 20).unwrap();
    let mut c = Command::new(exe());
    c.arg("verify").arg(&copy).arg("--json");
    let o = run_within(c, Duration::from_secs(5), "a huge record");
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(json(&o)["error"].as_str().unwrap().contains("bytes"), "{}", text(&o));
}

#[test]
fn the_templates_directory_swapped_for_a_link_during_split_publishes_no_outside_content() {
    if !can_attack_as_nobody("the_templates_directory_swapped_for_a_link_during_split_publishes_no_outside_content") {
        return;
    }
    let w = World::new();
    let victim_dir = root_only_dir(&w, &["gateway-worker.toml"]);
    std::fs::write(victim_dir.join("gateway-worker.toml"), "[server]\nhostname = \"ROOT-ONLY-TEMPLATE\"\n").unwrap();
    chown_nobody(&w.home);
    let dtpl = w.home.join(DTPL);
    let swap = format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'mv {d} {d}.moved && ln -s {v} {d}'",
        d = dtpl.display(),
        v = victim_dir.display()
    );
    let o = bin()
        .arg("split")
        .arg(&w.home)
        .arg("--out")
        .arg(&w.out)
        .args(["--no-update", "--json", "--profiles", "gateway-worker", "--set", "server.offset=3"])
        .env("APIM_PROFILES_BEFORE_OPEN", format!("{DTPL}/gateway-worker.toml={swap}"))
        .output()
        .unwrap();
    assert!(std::fs::symlink_metadata(&dtpl).unwrap().file_type().is_symlink(), "hook did not run: {}", text(&o));
    assert_output_clean(&o, &["ROOT-ONLY-TEMPLATE"]);
    assert_no_secret_under(&w.out, &["ROOT-ONLY-TEMPLATE"]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
}

// --- issue 25: a seal the pack owner cannot forge -------------------------------

/// What the pack owner runs as `nobody`: plants `repository/components/dropins/planted.jar`
/// in the copy and writes the record again as earlier versions sealed it: the jar's
/// line (mode, size, times, device and inode, as `stat` gives them) in the copy's
/// fingerprint, its SHA-256 among the content digests, and the unkeyed SHA-256 of
/// the record's compact JSON as its seal. With that seal, `verify` said 0 and
/// `status` `current`.
const RESEAL_AS_EARLIER: &str = r#"
import hashlib, json, os, sys
copy, rel = sys.argv[1], 'repository/components/dropins/planted.jar'
jar = os.path.join(copy, rel)
with open(jar, 'wb') as f:
    f.write(b'PK planted by the pack owner')
st = os.lstat(jar)
t = lambda ns: '%d.%09d' % (ns // 10**9, ns % 10**9)
line = 'f %o %d %s,%s,%d:%d %s' % (st.st_mode & 0o7777, st.st_size, t(st.st_mtime_ns), t(st.st_ctime_ns), st.st_dev, st.st_ino, rel)
rp = os.path.join(copy, '.apim-profiles.json')
rec = json.load(open(rp))
del rec['seal']
path = lambda l: l.split(' ', 4)[4].encode()
files = [l for l in rec['copy_fingerprint'] if l.startswith('f ')]
sha = dict(zip(map(path, files), [rec['content_sha256'][i*64:(i+1)*64] for i in range(len(files))]))
sha[rel.encode()] = hashlib.sha256(open(jar, 'rb').read()).hexdigest()
rec['copy_fingerprint'] = sorted(rec['copy_fingerprint'] + [line], key=path)
rec['content_sha256'] = ''.join(sha[path(l)] for l in rec['copy_fingerprint'] if l.startswith('f '))
rec['seal'] = hashlib.sha256(json.dumps(rec, separators=(',', ':'), ensure_ascii=False).encode()).hexdigest()
with open(rp + '.new', 'w') as f:
    json.dump(rec, f, indent=2)
os.replace(rp + '.new', rp)
"#;

fn verify_json(copy: &Path) -> Output {
    bin().arg("verify").arg(copy).arg("--json").output().unwrap()
}

fn status_of_copy(copy: &Path) -> serde_json::Value {
    let o = bin().arg("status").arg(copy).arg("--json").output().unwrap();
    json(&o)["profiles"][0].clone()
}

/// A copy whose record its output's key does not prove: `verify` fails with
/// the line and a hint, `status` does not say current.
fn assert_not_sealed(copy: &Path, why: &str) {
    let o = verify_json(copy);
    assert_ne!(code(&o), Some(0), "verify passed: {}", text(&o));
    let p = &json(&o)["profiles"][0];
    assert_ne!(p["status"], "verified", "{p}");
    let reason = p["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("record not sealed by this output") && reason.contains(why), "{p}");
    assert!(reason.contains("--force"), "no hint of what to do: {p}");
    let s = status_of_copy(copy);
    assert_ne!(s["status"], "current", "{s}");
    assert!(s["reasons"].to_string().contains("record not sealed by this output"), "{s}");
}

#[test]
fn a_jar_planted_by_the_pack_owner_under_a_record_sealed_again_is_not_sealed_by_this_output() {
    if !can_attack_as_nobody("a_jar_planted_by_the_pack_owner_under_a_record_sealed_again_is_not_sealed_by_this_output")
    {
        return;
    }
    let w = World::new();
    chown_nobody(&w.home);
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let copy = w.out.join("gateway-worker/wso2am-4.2.0");
    assert_eq!(std::fs::metadata(&copy).unwrap().uid(), 65534, "the copy is not the pack owner's (cp -a)");
    assert_eq!(code(&verify_json(&copy)), Some(0));

    let script = w.root().join("reseal.py");
    std::fs::write(&script, RESEAL_AS_EARLIER).unwrap();
    as_nobody(&format!("python3 {} {}", script.display(), copy.display()));
    assert!(copy.join("repository/components/dropins/planted.jar").exists());
    assert_not_sealed(&copy, "unkeyed seal");
    // Nothing acts on it: update refuses, a re-run calls it stale, --force rebuilds.
    let o = bin().arg("update").arg(&copy).arg("--json").output().unwrap();
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(text(&o).contains("record not sealed by this output"), "{}", text(&o));
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(json(&o)["error"].as_str().unwrap().contains("not sealed by this output"), "{}", text(&o));
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker", "--force"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(!copy.join("repository/components/dropins/planted.jar").exists(), "the rebuild kept the planted jar");
    assert_eq!(code(&verify_json(&copy)), Some(0));

    // The key is the tool's alone; the pack owner cannot read it.
    let key = w.out.join(".apim-profiles-key");
    let md = std::fs::symlink_metadata(&key).unwrap();
    assert_eq!((md.len(), md.mode() & 0o7777, md.uid()), (32, 0o600, 0), "{md:?}");
    let st = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!st.status.success() && st.stdout.is_empty(), "nobody read the key");

    // A record (and copy) taken from another output of the same home: another key.
    let other = w.root().join("out-other");
    assert_eq!(code(&split_plain(&w, &other, &["--profiles", "gateway-worker"])), Some(0));
    let theirs = other.join("gateway-worker/wso2am-4.2.0/.apim-profiles.json");
    as_nobody(&format!("cp {} {}/.apim-profiles.json.new", theirs.display(), copy.display()));
    as_nobody(&format!("mv {c}/.apim-profiles.json.new {c}/.apim-profiles.json", c = copy.display()));
    assert_not_sealed(&copy, "does not hold under the output's key");
}

#[test]
fn an_output_key_that_is_not_the_tools_own_is_refused_and_a_copy_without_its_key_is_not_verified() {
    let w = World::new();
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let copy = w.out.join("gateway-worker/wso2am-4.2.0");
    let key = w.out.join(".apim-profiles-key");
    // A copy sent elsewhere (a node) has no key beside it: its record proves nothing there.
    let node = w.root().join("node");
    std::fs::create_dir(&node).unwrap();
    assert!(Command::new("cp").arg("-a").arg(&copy).arg(&node).status().unwrap().success());
    assert_not_sealed(&node.join("wso2am-4.2.0"), "there is no key");

    chmod(&key, 0o640);
    assert_not_sealed(&copy, "group or others have access to it");
    let before = digest(&w.out);
    let o = split_plain(&w, &w.out, &["--profiles", "gateway-worker", "--force"]);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(json(&o)["error"].as_str().unwrap().contains("is refused"), "{}", text(&o));
    assert_eq!(digest(&w.out), before, "a refused run wrote");
    chmod(&key, 0o600);
    assert_eq!(code(&verify_json(&copy)), Some(0));
    // A link where the key goes is not followed.
    let aside = w.root().join("key-aside");
    std::fs::rename(&key, &aside).unwrap();
    std::os::unix::fs::symlink(&aside, &key).unwrap();
    assert_not_sealed(&copy, "it is a link");
    std::fs::remove_file(&key).unwrap();
    std::fs::rename(&aside, &key).unwrap();
    // A record removed from a copy of an output that seals its records: not
    // checked against the profile alone as a copy that never had one.
    let rec = copy.join(".apim-profiles.json");
    std::fs::rename(&rec, w.root().join("record-aside")).unwrap();
    let o = verify_json(&copy);
    assert_eq!(code(&o), Some(2), "{}", text(&o));
    assert!(json(&o)["profiles"][0]["reason"].as_str().unwrap().contains("the record was removed"), "{}", text(&o));
    std::fs::rename(w.root().join("record-aside"), &rec).unwrap();
    if !is_root() {
        eprintln!("skipped the key of another account: chown needs root");
        return;
    }
    assert!(Command::new("chown").arg("65534:65534").arg(&key).status().unwrap().success());
    assert_not_sealed(&copy, "owned by uid 65534");
}
