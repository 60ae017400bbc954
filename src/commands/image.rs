//! `image`: one OCI image per profile, written into an image layout directory
//! with no container daemon and no root. The steps: check (everything that
//! can be refused, the base image read whole), plan each profile as `split`
//! does, split the plans' trees into what every profile shares and each
//! one's rest, write those layers from the home (in parallel), then each
//! image's configuration and manifest, and tag them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use rayon::prelude::*;

use crate::engine::oci::{self, base::Base, layer, Descriptor, Layout};
use crate::engine::output::{self, CreatedDirs, Lock};
use crate::model::home::{self, Home};
use crate::model::plan::{self, Options, Plan};
use crate::model::profile::{load_catalog, Profile};
use crate::model::tree::Tree;
use crate::outcome::{refuse, Exit};
use crate::report::image::{ImageDoc, ImageReport, LayerDoc};
use crate::report::{Output, RunOutcome};

/// The account of WSO2's images (`wso2carbon`, group `wso2`).
pub const OWNER: (u32, u32) = (802, 802);
/// Where WSO2's images put the product: `<this>/<home name>`.
pub const USER_HOME: &str = "home/wso2carbon";

/// Everything `image` takes from its command line.
#[derive(Debug, Clone, Default)]
pub struct ImageArgs {
    pub home: PathBuf,
    pub out: PathBuf,
    /// `PATH` or `PATH:TAG` of an OCI layout or a `docker save` archive.
    pub base: String,
    pub profiles: Option<Vec<String>>,
    /// Each image's tag; `{profile}` is the profile's name.
    pub tag: String,
    pub options: Options,
    pub profile_dir: Option<PathBuf>,
}

/// What the checks found.
struct Checked {
    home: Home,
    out: PathBuf,
    profiles: Vec<Profile>,
    tags: Vec<String>,
    base: Base,
    epoch: Option<i64>,
}

pub fn run(args: &ImageArgs) -> Result<RunOutcome> {
    let started = Instant::now();
    let c = check(args)?;
    let source = Tree::scan(&c.home.path)?;
    output::check_separate(&c.home.path, &c.out, &source.dir_ids())?;
    let (mut plans, mut notes) = (Vec::new(), Vec::new());
    for p in &c.profiles {
        let mut plan = plan::compute(p, &source, &args.options)?;
        plan::check_met(&plan)?;
        plan.tree.relativize_links_into(&c.home.path);
        notes.extend(plan.notes().into_iter().map(|n| format!("{}: {n}", p.name)));
        plans.push(plan);
    }
    // Written from here on: the directories made on the way go again if
    // the run leaves nothing in them.
    crate::signals::start_writing();
    let mut created = CreatedDirs::default();
    created.create_all(&c.out)?;
    let _lock = Lock::acquire(&c.out)?;
    let layout = Layout::open(&c.out)?;
    let (base_layers, base_new) = c.base.copy_layers(&layout)?;
    let (shared, own) = write_layers(&layout, &c, &plans)?;
    let mut doc = new_doc(&c, &base_layers, &shared);
    doc.warnings = notes;
    doc.changed = base_new > 0 || shared.new || own.iter().any(|l| l.new);
    let mut tagged = Vec::new();
    for (i, p) in c.profiles.iter().enumerate() {
        let (report, manifest, new) = write_image(&layout, &c, p, &base_layers, &shared, &own[i], &c.tags[i])?;
        doc.changed |= new;
        tagged.push((c.tags[i].clone(), manifest));
        doc.images.push(report);
    }
    doc.changed |= layout.tag(&tagged)?;
    doc.duration_ms = started.elapsed().as_millis() as u64;
    Ok(RunOutcome { output: Output::Image(Box::new(doc)), exit: Exit::Ok })
}

/// Everything that can be refused, before anything is written.
fn check(args: &ImageArgs) -> Result<Checked> {
    let epoch = source_date_epoch()?;
    let catalog = load_catalog(args.profile_dir.as_deref())?;
    let home = home::detect(&args.home, &catalog)?;
    home::check_not_running(&home.path)?;
    crate::model::standing::check_not_a_copy(&home.path, &catalog, &home.version)?;
    let profiles = catalog.select(&home.product, &home.version, args.profiles.as_deref())?;
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    args.options.config.check_in_run(&names, "--profiles")?;
    let tags: Vec<String> = profiles.iter().map(|p| args.tag.replace("{profile}", &p.name)).collect();
    for t in &tags {
        check_tag(t)?;
    }
    if tags.iter().enumerate().any(|(i, t)| tags[..i].contains(t)) {
        return refuse(
            format!("--tag {} gives every image the same tag", args.tag),
            "put {profile} in the tag (e.g. --tag 4.2.0-{profile}) so that each profile's image has its own",
        );
    }
    let out = output::absolute(&args.out)?;
    output::check_separate(&home.path, &out, &crate::safe_fs::dev_ino(&home.path).into_iter().collect())?;
    oci::check_out(&out)?;
    let base = oci::base::open(&args.base)?;
    Ok(Checked { home, out, profiles, tags, base, epoch })
}

/// `SOURCE_DATE_EPOCH` (reproducible-builds.org): no time in an image is
/// later than it; a value that is not a number of seconds is refused.
fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => refuse(
                format!("SOURCE_DATE_EPOCH={v} is not a number of seconds since 1970"),
                "set it to a Unix time (e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)) or unset it",
            ),
        },
    }
}

/// A tag as registries take it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        return Ok(());
    }
    refuse(
        format!("`{t}` is not an image tag"),
        "use letters, digits, `_`, `.` and `-` (at most 128, not starting with `.` or `-`); {profile} is the profile's name",
    )
}

/// Where the home is in the image.
fn home_in_image(home: &Home) -> PathBuf {
    Path::new(USER_HOME).join(&home.dir_name)
}

/// The shared layer (with the directories above the home and the home's own
/// directory) and each profile's layer, all written at once.
fn write_layers(layout: &Layout, c: &Checked, plans: &[Plan]) -> Result<(layer::Written, Vec<layer::Written>)> {
    let trees: Vec<&Tree> = plans.iter().map(|p| &p.tree).collect();
    let part = layer::partition(&trees);
    let root = std::fs::metadata(&c.home.path)?;
    use std::os::unix::fs::MetadataExt;
    let t = root.mtime();
    let home = home_in_image(&c.home);
    let spec = |entries, dirs_first| layer::Spec {
        source_root: &c.home.path,
        dirs_first,
        home: home.clone(),
        entries,
        owner: OWNER,
        epoch: c.epoch,
    };
    let above = vec![
        (PathBuf::from("home"), 0o755, (0, 0), t),
        (PathBuf::from(USER_HOME), 0o755, OWNER, t),
        (home.clone(), root.mode() & 0o7777, OWNER, t),
    ];
    let mut specs = vec![spec(part.shared, above)];
    specs.extend(part.own.into_iter().map(|own| spec(own, Vec::new())));
    let mut written: Vec<layer::Written> =
        specs.par_iter().map(|s| layer::write(layout, s)).collect::<Result<Vec<_>>>()?;
    let shared = written.remove(0);
    Ok((shared, written))
}

fn layer_doc(l: &layer::Written) -> LayerDoc {
    LayerDoc {
        digest: l.descriptor.digest.clone(),
        size: l.descriptor.size,
        diff_id: Some(l.diff_id.clone()),
        entries: l.entries,
        content_bytes: l.bytes,
    }
}

fn new_doc(c: &Checked, base_layers: &[Descriptor], shared: &layer::Written) -> ImageDoc {
    ImageDoc {
        command: "image".into(),
        home: c.home.path.display().to_string(),
        product: c.home.product.clone(),
        version: c.home.version.clone(),
        update_level: crate::commands::status::update_level(&c.home.path),
        out: c.out.display().to_string(),
        base: c.base.reference.clone(),
        base_layers: base_layers
            .iter()
            .map(|d| LayerDoc { digest: d.digest.clone(), size: d.size, ..Default::default() })
            .collect(),
        shared_layer: layer_doc(shared),
        ..Default::default()
    }
}

/// The command that starts the profile, as absolute argv in the image.
fn entrypoint(p: &Profile, home: &Path) -> Vec<String> {
    let Some(cmd) = p.start_command() else { return Vec::new() };
    let mut words = cmd.split_whitespace().map(str::to_string);
    let first = words.next().unwrap_or_default();
    std::iter::once(format!("/{}", home.join(first).display())).chain(words).collect()
}

/// One profile's configuration and manifest.
fn write_image(
    layout: &Layout,
    c: &Checked,
    p: &Profile,
    base_layers: &[Descriptor],
    shared: &layer::Written,
    own: &layer::Written,
    tag: &str,
) -> Result<(ImageReport, Descriptor, bool)> {
    let home = home_in_image(&c.home);
    let argv = entrypoint(p, &home);
    let config = image_config(c, p, &argv, &[shared.diff_id.clone(), own.diff_id.clone()]);
    let (config_d, new_config) = layout.put(&oci::canonical_json(&config), oci::CONFIG)?;
    let mut layers = base_layers.to_vec();
    layers.push(shared.descriptor.clone());
    layers.push(own.descriptor.clone());
    let manifest = oci::Manifest {
        schema_version: 2,
        media_type: Some(oci::MANIFEST.into()),
        config: config_d.clone(),
        layers: layers.clone(),
    };
    let bytes = serde_json::to_vec(&manifest)?;
    let (manifest_d, new_manifest) = layout.put(&bytes, oci::MANIFEST)?;
    let size = manifest_d.size + config_d.size + layers.iter().map(|l| l.size).sum::<u64>();
    let report = ImageReport {
        profile: p.name.clone(),
        tag: tag.to_string(),
        reference: format!("oci:{}:{tag}", c.out.display()),
        digest: manifest_d.digest.clone(),
        size,
        config_digest: config_d.digest,
        layer: layer_doc(own),
        home: format!("/{}", home.display()),
        entrypoint: argv,
    };
    Ok((report, manifest_d, new_config || new_manifest))
}

/// The base's configuration with the profile's: the account, the working
/// directory, the entrypoint, the labels, the two layers, their history.
fn image_config(c: &Checked, p: &Profile, argv: &[String], diff_ids: &[String]) -> serde_json::Value {
    use serde_json::{json, Value};
    let home = format!("/{}", home_in_image(&c.home).display());
    let created = created_time(c);
    let mut v = c.base.config.clone();
    if !v.is_object() {
        v = json!({});
    }
    let mut cfg = v.get("config").filter(|x| x.is_object()).cloned().unwrap_or_else(|| json!({}));
    let mut env: Vec<Value> = cfg.get("Env").and_then(|e| e.as_array()).cloned().unwrap_or_default();
    env.retain(|e| !e.as_str().is_some_and(|s| s.starts_with("WSO2_SERVER_HOME=")));
    env.push(json!(format!("WSO2_SERVER_HOME={home}")));
    let mut labels = cfg.get("Labels").filter(|x| x.is_object()).cloned().unwrap_or_else(|| json!({}));
    let level = crate::commands::status::update_level(&c.home.path);
    for (k, val) in [
        ("product", Some(c.home.product.clone())),
        ("version", Some(c.home.version.clone())),
        ("update-level", level),
        ("profile", Some(p.name.clone())),
    ] {
        if let Some(val) = val {
            labels[format!("apim-profiles.{k}")] = json!(val);
        }
    }
    cfg["Env"] = json!(env);
    cfg["Labels"] = labels;
    cfg["User"] = json!(format!("{}:{}", OWNER.0, OWNER.1));
    cfg["WorkingDir"] = json!(format!("/{USER_HOME}"));
    cfg["Entrypoint"] = if argv.is_empty() { Value::Null } else { json!(argv) };
    if let Some(o) = cfg.as_object_mut() {
        o.remove("Cmd");
    }
    v["config"] = cfg;
    v["created"] = json!(created);
    let mut ids: Vec<Value> = c.base.diff_ids().into_iter().map(Value::from).collect();
    ids.extend(diff_ids.iter().cloned().map(Value::from));
    v["rootfs"] = json!({ "type": "layers", "diff_ids": ids });
    if let Some(h) = v.get_mut("history").and_then(|h| h.as_array_mut()) {
        for what in ["the files every profile keeps alike", &format!("the files of profile {}", p.name)] {
            h.push(json!({ "created": created, "created_by": format!("apim-profiles image: {what}") }));
        }
    }
    v
}

/// The image's creation time: `SOURCE_DATE_EPOCH`, else the home's own time.
fn created_time(c: &Checked) -> String {
    use std::os::unix::fs::MetadataExt;
    let home_t = std::fs::metadata(&c.home.path).map(|m| m.mtime()).unwrap_or(0);
    let t = layer::clamp(home_t, c.epoch);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)).to_string()
}
