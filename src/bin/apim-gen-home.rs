//! Generates a synthetic API-M 4.2.0 home of realistic size and spread from
//! the committed fixture: thousands of jars, big wars, portal files, a
//! database. Contents are pseudo-random (incompressible, so a copy really
//! moves bytes) and deterministic from the seed. Used by the benchmark and
//! the interruption tests; not part of the product tool.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Generate a large synthetic API-M home (4.2.0, or any version's test home as --template)")]
struct Args {
    /// Parent directory: the home is created as <OUT_PARENT>/<NAME>.
    out_parent: PathBuf,
    /// The home to start from (the committed fixture, or a version's test home).
    #[arg(long)]
    template: PathBuf,
    /// The generated home's directory name (default: the template's).
    #[arg(long)]
    name: Option<String>,
    /// Approximate total size in MB.
    #[arg(long, default_value_t = 900)]
    size_mb: u64,
    /// Approximate number of files.
    #[arg(long, default_value_t = 6500)]
    files: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Add awkward entries: spaces, unicode, `#`, links, empty and read-only directories.
    #[arg(long)]
    names_edge: bool,
}

/// splitmix64: small, fast, good enough for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Log-uniform between lo and hi: many small files, a few big ones.
    fn log_size(&mut self, lo: u64, hi: u64) -> u64 {
        let (l, h) = ((lo.max(1)) as f64, hi as f64);
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (l * (h / l).powf(u)) as u64
    }
}

struct Writer {
    rng: Rng,
    buf: Vec<u8>,
    files: u64,
    bytes: u64,
    scale: f64,
}

impl Writer {
    fn file(&mut self, path: &Path, size: u64) -> Result<()> {
        let size = ((size as f64) * self.scale) as u64;
        if let Some(p) = path.parent() {
            fs::create_dir_all(p)?;
        }
        let mut f = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut left = size;
        while left > 0 {
            let n = left.min(self.buf.len() as u64) as usize;
            // Refresh part of the buffer so files differ from each other.
            for chunk in self.buf[..n.min(4096)].chunks_mut(8) {
                let v = self.rng.next().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            f.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        let age = 86_400 * (30 + self.rng.below(400)) as i64;
        let t = filetime::FileTime::from_unix_time(1_760_000_000 - age, 0);
        filetime::set_file_mtime(path, t)?;
        self.files += 1;
        self.bytes += size;
        Ok(())
    }
}

fn main() -> Result<()> {
    let a = Args::parse();
    let home = copy_template(&a)?;
    let mut rng = Rng(a.seed);
    let mut buf = vec![0u8; 1 << 20];
    for chunk in buf.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    let mut w = Writer { rng, buf, files: 0, bytes: 0, scale: 1.0 };
    // Shares of the default 900 MB / 6500 files, scaled to what was asked.
    let plan = plan_files(&home, &mut w.rng, a.files as f64 / 6500.0)?;
    let planned: u64 = plan.iter().map(|(_, s)| s).sum();
    w.scale = (a.size_mb * 1_000_000) as f64 / planned as f64;
    write_plan(&mut w, &plan)?;
    if a.names_edge {
        add_awkward_names(&mut w, &home)?;
    }
    println!("{}: {} files written, {:.1} MB", home.display(), w.files, w.bytes as f64 / 1e6);
    Ok(())
}

/// Copies the template to <OUT_PARENT>/<NAME>, which must not exist yet.
fn copy_template(a: &Args) -> Result<PathBuf> {
    let name = a.name.clone().or_else(|| a.template.file_name().map(|n| n.to_string_lossy().into_owned()));
    let home = a.out_parent.join(name.unwrap_or_else(|| "wso2am-4.2.0".into()));
    if home.exists() {
        anyhow::bail!("{} exists; remove it first", home.display());
    }
    fs::create_dir_all(&a.out_parent)?;
    let st = std::process::Command::new("cp").arg("-a").arg(&a.template).arg(&home).status()?;
    anyhow::ensure!(st.success(), "copying the template home failed");
    Ok(home)
}

/// The files to write and their sizes at full scale (scaled to --size-mb
/// when written); `file_scale` scales the counts to --files.
fn plan_files(home: &Path, r: &mut Rng, file_scale: f64) -> Result<Vec<(PathBuf, u64)>> {
    let count = |n: u64| ((n as f64) * file_scale).round().max(1.0) as u64;
    let mut plan: Vec<(PathBuf, u64)> = Vec::new();
    for i in 0..count(3300) {
        plan.push((
            home.join(format!("repository/components/plugins/org.example.bundle{i:04}_1.{}.{}.jar", i % 7, i % 13)),
            r.log_size(5_000, 2_500_000),
        ));
    }
    for i in 0..count(220) {
        plan.push((home.join(format!("repository/components/lib/lib-{i:03}.jar")), r.log_size(10_000, 3_000_000)));
    }
    for i in 0..count(80) {
        plan.push((
            home.join(format!("repository/components/dropins/dropin-{i:03}.jar")),
            r.log_size(5_000, 1_000_000),
        ));
    }
    for i in 0..count(150) {
        plan.push((home.join(format!("lib/endorsed-{i:03}.jar")), r.log_size(5_000, 1_500_000)));
    }
    for portal in ["publisher", "devportal", "admin"] {
        plan_portal(home, portal, count(800), r, &mut plan);
    }
    for i in 0..count(200) {
        plan.push((home.join(format!("repository/resources/extra/res-{i:03}.xml")), r.log_size(500, 50_000)));
    }
    for i in 0..count(50) {
        plan.push((home.join(format!("bin/tool-{i:02}.sh")), r.log_size(500, 20_000)));
    }
    // Wars grow to realistic sizes (they were tiny in the fixture).
    let wars = fs::read_dir(home.join("repository/deployment/server/webapps"))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".war"))
        .map(|e| e.path())
        .collect::<Vec<_>>();
    for war in wars {
        let size = r.log_size(2_000_000, 40_000_000);
        plan.push((war, size));
    }
    plan.push((home.join("repository/database/WSO2AM_DB.mv.db"), 12_000_000));
    plan.push((home.join("repository/database/WSO2SHARED_DB.mv.db"), 6_000_000));
    Ok(plan)
}

/// A portal's `n` static files, spread over its usual directories.
fn plan_portal(home: &Path, portal: &str, n: u64, r: &mut Rng, plan: &mut Vec<(PathBuf, u64)>) {
    // Up to 4.1.0 the portals are jaggery apps.
    let jag = home.join(format!("repository/deployment/server/jaggeryapps/{portal}"));
    let apps = if jag.is_dir() { "jaggeryapps" } else { "webapps" };
    for i in 0..n {
        let ext = ["js", "css", "json", "png", "svg", "map"][(i % 6) as usize];
        let dir =
            ["site/public/dist", "site/public/images", "site/public/locales", "services", "source/src/app/components"]
                [(i % 5) as usize];
        plan.push((
            home.join(format!("repository/deployment/server/{apps}/{portal}/{dir}/d{}/f{i:04}.{ext}", i % 23)),
            r.log_size(1_000, 200_000),
        ));
    }
}

/// Writes the planned files; every other script is made executable.
fn write_plan(w: &mut Writer, plan: &[(PathBuf, u64)]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (p, s) in plan {
        w.file(p, *s)?;
    }
    for (i, p) in plan.iter().enumerate() {
        if p.0.extension().is_some_and(|e| e == "sh") && i % 2 == 0 {
            fs::set_permissions(&p.0, fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// Spaces, unicode and `#` in names, links (one dangling loop), an empty
/// nested directory and a read-only one.
fn add_awkward_names(w: &mut Writer, home: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let e = home.join("repository/deployment/server/webapps");
    w.file(&e.join("team docs.war"), 10_000)?;
    w.file(&e.join("team docs/WEB-INF/web.xml"), 100)?;
    w.file(&home.join("repository/resources/ünïcode dir/#hash file.txt"), 100)?;
    fs::create_dir_all(home.join("repository/logs/empty/deeper"))?;
    std::os::unix::fs::symlink("../conf/carbon.xml", home.join("repository/logs/carbon-link"))?;
    std::os::unix::fs::symlink("loop-b", home.join("repository/logs/loop-a"))?;
    std::os::unix::fs::symlink("loop-a", home.join("repository/logs/loop-b"))?;
    let ro = home.join("repository/resources/readonly");
    w.file(&ro.join("locked.txt"), 100)?;
    fs::set_permissions(ro.join("locked.txt"), fs::Permissions::from_mode(0o444))?;
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555))?;
    Ok(())
}
