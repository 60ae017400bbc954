//! `apim-profiles image` with the real OCI tools: a tiny base image built
//! with `umoci` (no network), images of the fixture's three default
//! profiles, each unpacked with `umoci` and compared entry by entry with the
//! `split` copy of its profile, pushed with `skopeo` to a `docker-registry`
//! started on 127.0.0.1 (its storage then holds the shared layer once), and
//! made again with the same digests. Needs root (umoci keeps owners only as
//! root) and `apt-get install umoci skopeo docker-registry`; otherwise the
//! checks report themselves skipped (tests/runner).

mod common;
mod runner;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use runner::{skip, Outcome};
use sha2::{Digest, Sha256};

const PROFILES: [&str; 3] = ["control-plane", "gateway-worker", "traffic-manager"];

/// A bad input: what it is, the arguments, the environment, the output that must stay empty.
type BadCase<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str)>, &'a Path);
fn missing_tools(tools: &[&str]) -> Option<String> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    (!missing.is_empty())
        .then(|| format!("{} not installed (apt-get install umoci skopeo docker-registry)", missing.join(", ")))
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A tiny base image, made with umoci alone: one layer (`/etc/motd`,
/// `/home`), an environment variable and a command the images must drop.
fn tiny_base(dir: &Path) -> PathBuf {
    let base = dir.join("base");
    run(Command::new("umoci").arg("init").arg("--layout").arg(&base));
    run(Command::new("umoci").arg("new").arg("--image").arg(format!("{}:latest", base.display())));
    let bundle = dir.join("base-bundle");
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:latest", base.display())).arg(&bundle));
    std::fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
    std::fs::create_dir_all(bundle.join("rootfs/home")).unwrap();
    std::fs::write(bundle.join("rootfs/etc/motd"), "tiny base\n").unwrap();
    run(Command::new("umoci").args(["repack", "--image"]).arg(format!("{}:latest", base.display())).arg(&bundle));
    run(Command::new("umoci")
        .args(["config", "--config.env", "JAVA_HOME=/opt/java", "--config.cmd", "/bin/sh", "--image"])
        .arg(format!("{}:latest", base.display())));
    base
}

fn image_json(home: &Path, out: &Path, base: &str) -> serde_json::Value {
    let o = bin().arg("image").arg(home).arg("--out").arg(out).args(["--base", base, "--json"]).output().unwrap();
    assert!(
        o.status.success(),
        "image failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

#[derive(Debug, PartialEq, Eq)]
enum Node {
    File { sha: String, mode: u32 },
    Dir { mode: u32 },
    Link(PathBuf),
}

/// Every entry below `root` with its content, mode and link target, and
/// the owners seen (the split copy's record left out).
fn listing(root: &Path) -> (BTreeMap<String, Node>, BTreeSet<(u32, u32)>) {
    let mut m = BTreeMap::new();
    let mut owners = BTreeSet::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if !rel.contains('/') && rel.starts_with(".apim-profiles") {
            continue;
        }
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        owners.insert((md.uid(), md.gid()));
        let node = if md.file_type().is_symlink() {
            Node::Link(std::fs::read_link(e.path()).unwrap())
        } else if md.is_dir() {
            Node::Dir { mode: md.mode() & 0o7777 }
        } else {
            Node::File { sha: hex(&Sha256::digest(read(e.path()))), mode: md.mode() & 0o7777 }
        };
        m.insert(rel, node);
    }
    (m, owners)
}

/// Unpacks `oci:<layout>:<tag>` with umoci and compares the home in it with
/// the split copy, entry by entry; the base's file is there too.
fn unpacked_equals_split(layout: &Path, tag: &str, split_copy: &Path, work: &Path) {
    let bundle = work.join(format!("unpacked-{tag}"));
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:{tag}", layout.display())).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(read(rootfs.join("etc/motd")), b"tiny base\n", "the base layer is under the home");
    let home = rootfs.join("home/wso2carbon/wso2am-4.2.0");
    let (image, owners) = listing(&home);
    let (split, _) = listing(split_copy);
    assert!(!image.is_empty());
    let only_image: Vec<_> = image.keys().filter(|k| !split.contains_key(*k)).collect();
    let only_split: Vec<_> = split.keys().filter(|k| !image.contains_key(*k)).collect();
    assert!(
        only_image.is_empty() && only_split.is_empty(),
        "{tag}: only in the image {only_image:?}, only in split {only_split:?}"
    );
    for (k, v) in &image {
        assert_eq!(Some(v), split.get(k), "{tag}: {k} differs from the split copy");
    }
    assert_eq!(owners, BTreeSet::from([(802, 802)]), "{tag}: every entry of the home belongs to wso2carbon:wso2");
    let md = std::fs::metadata(&home).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (802, 802, std::fs::metadata(split_copy).unwrap().mode() & 0o7777)
    );
    assert_eq!(std::fs::metadata(rootfs.join("home/wso2carbon")).unwrap().uid(), 802);
}

/// The image's configuration as skopeo reads it.
fn config_of(layout: &Path, tag: &str) -> serde_json::Value {
    let text = run(Command::new("skopeo").args(["inspect", "--config"]).arg(format!("oci:{}:{tag}", layout.display())));
    serde_json::from_str(&text).unwrap()
}

/// A docker-registry on 127.0.0.1 with its own config and storage, stopped
/// when dropped.
struct Registry {
    child: std::process::Child,
    addr: String,
    storage: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path) -> Registry {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let storage = dir.join("registry-storage");
    std::fs::create_dir_all(&storage).unwrap();
    let config = dir.join("registry.yml");
    let yml = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
        storage.display()
    );
    std::fs::write(&config, yml).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting docker-registry");
    let reg = Registry { child, addr, storage };
    for _ in 0..100 {
        if std::net::TcpStream::connect(&reg.addr).is_ok() {
            return reg;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("docker-registry did not listen on {} within 10 s", reg.addr);
}

/// The blobs the registry stores: digest and bytes.
fn stored_blobs(storage: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let root = storage.join("docker/registry/v2/blobs/sha256");
    for e in walkdir::WalkDir::new(&root).min_depth(3).max_depth(3) {
        let e = e.unwrap();
        if e.file_name() == "data" {
            let hex = e.path().parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
            m.insert(format!("sha256:{hex}"), e.metadata().unwrap().len());
        }
    }
    m
}

fn digests(doc: &serde_json::Value) -> Vec<String> {
    doc["images"].as_array().unwrap().iter().map(|i| i["digest"].as_str().unwrap().to_string()).collect()
}

fn str_of(v: &serde_json::Value) -> String {
    v.as_str().unwrap().to_string()
}

/// Pushes every image with skopeo and checks what the registry stores: each
/// blob once, the shared layer among them, nothing else; then one image
/// back from the registry with its digest unchanged.
fn push_and_count(doc: &serde_json::Value, layout: &Path, work: &Path) {
    let reg = start_registry(work);
    let images = doc["images"].as_array().unwrap();
    for i in images {
        let tag = i["tag"].as_str().unwrap();
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/wso2am:{tag}", reg.addr)));
    }
    let stored = stored_blobs(&reg.storage);
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for l in doc["base_layers"].as_array().unwrap().iter().chain([&doc["shared_layer"]]) {
        expected.insert(str_of(&l["digest"]), l["size"].as_u64().unwrap());
    }
    for i in images {
        expected.insert(str_of(&i["layer"]["digest"]), i["layer"]["size"].as_u64().unwrap());
        expected.insert(str_of(&i["digest"]), 0);
        expected.insert(str_of(&i["config_digest"]), 0);
    }
    let names: BTreeSet<&String> = stored.keys().collect();
    assert_eq!(names, expected.keys().collect(), "the registry stores exactly the images' blobs, each once");
    let shared = str_of(&doc["shared_layer"]["digest"]);
    assert_eq!(stored[&shared], doc["shared_layer"]["size"].as_u64().unwrap(), "the shared layer, stored once");
    let total: u64 = stored.values().sum();
    let unshared: u64 = images.iter().map(|i| i["size"].as_u64().unwrap()).sum();
    let layer_bytes: u64 = expected.iter().filter(|(_, s)| **s > 0).map(|(d, _)| stored[d]).sum();
    println!(
        "registry: {} blobs, {total} bytes ({layer_bytes} in layers) for 3 images of {unshared} bytes unshared",
        stored.len()
    );
    assert_eq!(stored.len(), doc["base_layers"].as_array().unwrap().len() + 1 + 3 * 3);
    let per_image_shared = 2 * doc["shared_layer"]["size"].as_u64().unwrap();
    assert!(total + per_image_shared <= unshared + 64, "sharing saves the shared layer twice: {total} vs {unshared}");
    // And back: the image the registry gives is the image written.
    let back = work.join("back");
    let tag = images[1]["tag"].as_str().unwrap();
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{}/wso2am:{tag}", reg.addr))
        .arg(format!("oci:{}:{tag}", back.display())));
    let inspected: serde_json::Value =
        serde_json::from_str(&run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:{tag}", back.display()))))
            .unwrap();
    assert_eq!(inspected["Digest"], images[1]["digest"]);
}

fn images_unpack_as_split_copies_and_share_one_layer_in_a_registry() -> Outcome {
    if let Some(why) = missing_tools(&["umoci", "skopeo", "docker-registry"]) {
        return skip(why);
    }
    if !rustix::process::geteuid().is_root() {
        return skip("not root: umoci unpacks the owners (802:802) only as root");
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let home = home_in(&work.join("src"));
    let base = tiny_base(work);
    let split_out = work.join("split");
    split_json(&home, &split_out, &[]);
    let layout = work.join("oci");
    let doc = image_json(&home, &layout, &format!("{}:latest", base.display()));
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.iter().map(|i| i["tag"].as_str().unwrap()).collect::<Vec<_>>(), PROFILES);
    for p in PROFILES {
        unpacked_equals_split(&layout, p, &split_out.join(p).join("wso2am-4.2.0"), work);
        let c = config_of(&layout, p);
        let argv = ["/home/wso2carbon/wso2am-4.2.0/bin/api-manager.sh".to_string(), format!("-Dprofile={p}")];
        assert_eq!(c["config"]["Entrypoint"], serde_json::json!(argv));
        assert!(c["config"].get("Cmd").is_none_or(|x| x.is_null()), "the base's command is dropped");
        assert_eq!(c["config"]["User"], "802:802");
        assert_eq!(c["config"]["Labels"]["apim-profiles.profile"], p);
        assert_eq!(c["config"]["Labels"]["apim-profiles.version"], "4.2.0");
        assert_eq!(c["config"]["Labels"]["apim-profiles.update-level"], "4.2.0.0");
        assert!(c["config"]["Env"].as_array().unwrap().contains(&serde_json::json!("JAVA_HOME=/opt/java")));
        let layers = run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}:{p}", layout.display())));
        let layers: serde_json::Value = serde_json::from_str(&layers).unwrap();
        assert_eq!(layers["Layers"][1], doc["shared_layer"]["digest"], "{p} uses the shared layer");
    }
    // Again, into the same layout: nothing changes. From another `cp -a` of
    // the home into a new layout: the same digests.
    let again = image_json(&home, &layout, &format!("{}:latest", base.display()));
    assert_eq!(again["changed"], false);
    assert_eq!(digests(&again), digests(&doc));
    let other_home = home_in(&work.join("elsewhere"));
    let fresh = image_json(&other_home, &work.join("oci-again"), &format!("{}:latest", base.display()));
    assert_eq!(digests(&fresh), digests(&doc), "the same inputs give the same digests");
    for (p, d) in PROFILES.iter().zip(digests(&doc)) {
        println!("{p}: {d}");
    }
    push_and_count(&doc, &layout, work);
    Outcome::Passed
}

/// A `docker save` archive as base (made from the umoci base with skopeo):
/// the same shared and own layers, the base's layer carried as it is.
fn a_docker_save_archive_is_a_base_too() -> Outcome {
    if let Some(why) = missing_tools(&["umoci", "skopeo"]) {
        return skip(why);
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let home = home_in(&work.join("src"));
    let base = tiny_base(work);
    let archive = work.join("base.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:latest", base.display()))
        .arg(format!("docker-archive:{}:tiny/base:latest", archive.display())));
    let from_layout = image_json(&home, &work.join("a"), &format!("{}:latest", base.display()));
    let from_archive = image_json(&home, &work.join("b"), &format!("{}:latest", archive.display()));
    assert_eq!(from_archive["shared_layer"], from_layout["shared_layer"]);
    for (a, b) in from_archive["images"].as_array().unwrap().iter().zip(from_layout["images"].as_array().unwrap()) {
        assert_eq!(a["layer"], b["layer"]);
    }
    assert_eq!(from_archive["base_layers"].as_array().unwrap().len(), 1);
    // The archive's base layer, as skopeo wrote it, is in the layout.
    let d = str_of(&from_archive["base_layers"][0]["digest"]);
    assert!(work.join("b/blobs/sha256").join(d.trim_start_matches("sha256:")).is_file());
    let layers: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:gateway-worker", work.join("b").display()))))
    .unwrap();
    assert_eq!(layers["Layers"][0], serde_json::json!(d));
    if rustix::process::geteuid().is_root() {
        let split_out = work.join("split");
        split_json(&home, &split_out, &["--profiles", "gateway-worker"]);
        unpacked_equals_split(&work.join("b"), "gateway-worker", &split_out.join("gateway-worker/wso2am-4.2.0"), work);
    }
    Outcome::Passed
}

/// A base layout written by hand: no layer, a configuration.
fn hand_made_base(dir: &Path) -> PathBuf {
    let base = dir.join("hand-base");
    std::fs::create_dir_all(base.join("blobs/sha256")).unwrap();
    let put = |bytes: &[u8]| {
        let hex = hex(&Sha256::digest(bytes));
        std::fs::write(base.join("blobs/sha256").join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (cd, cs) =
        put(br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{cs}}},"layers":[]}}"#
    );
    let (md, ms) = put(manifest.as_bytes());
    std::fs::write(base.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{ms},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#
    );
    std::fs::write(base.join("index.json"), index).unwrap();
    base
}

/// Bad input: exit 2, one line of what is wrong and one of what to do,
/// nothing written (the output is not even made).
fn bad_input_is_refused_and_nothing_is_written() -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let home = home_in(&work.join("src"));
    let base = hand_made_base(work).display().to_string();
    let not_layout = work.join("not-a-layout");
    std::fs::create_dir_all(&not_layout).unwrap();
    std::fs::write(not_layout.join("notes.txt"), "mine").unwrap();
    let out = work.join("out");
    let cases: Vec<BadCase<'_>> = vec![
        ("missing base", vec!["--base".into(), work.join("nope").display().to_string()], vec![], &out),
        ("base not a layout", vec!["--base".into(), home.display().to_string()], vec![], &out),
        ("unknown base tag", vec!["--base".into(), format!("{base}:v2")], vec![], &out),
        ("bad tag", vec!["--base".into(), base.clone(), "--tag".into(), "a b/{profile}".into()], vec![], &out),
        ("one tag for all", vec!["--base".into(), base.clone(), "--tag".into(), "same".into()], vec![], &out),
        ("unknown profile", vec!["--base".into(), base.clone(), "-p".into(), "gateway".into()], vec![], &out),
        ("bad epoch", vec!["--base".into(), base.clone()], vec![("SOURCE_DATE_EPOCH", "yesterday")], &out),
        ("out not a layout", vec!["--base".into(), base.clone()], vec![], &not_layout),
    ];
    for (what, args, env, out) in cases {
        let before = names_in_or_none(out);
        let o = bin().arg("image").arg(&home).arg("--out").arg(out).args(&args).envs(env).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.starts_with("error: ") && err.contains("hint: "), "{what}: {err}");
        assert_eq!(names_in_or_none(out), before, "{what}: nothing written");
    }
    let o = bin().arg("image").arg(work.join("src")).arg("--out").arg(&out).args(["--base", &base]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "not a home");
    assert!(!out.exists());
    // The hand-made base itself is good: the same command with it works.
    let doc = image_json(&home, &out, &format!("{base}:v1"));
    assert_eq!(doc["images"].as_array().unwrap().len(), 3);
    Outcome::Passed
}

fn names_in_or_none(dir: &Path) -> Option<Vec<String>> {
    dir.exists().then(|| names_in(dir))
}

fn main() -> std::process::ExitCode {
    runner::run(&[
        (
            "images_unpack_as_split_copies_and_share_one_layer_in_a_registry",
            images_unpack_as_split_copies_and_share_one_layer_in_a_registry,
        ),
        ("a_docker_save_archive_is_a_base_too", a_docker_save_archive_is_a_base_too),
        ("bad_input_is_refused_and_nothing_is_written", bad_input_is_refused_and_nothing_is_written),
    ])
}
