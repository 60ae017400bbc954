//! What `image` reports: each image's digest and size, the layer every
//! image shares, and each one's own layer (`image --json`, schema/image.json).

use serde::Serialize;

use crate::report::human::{escape, human_bytes};
use crate::report::schema::SchemaVersion;

/// `image --json`.
#[derive(Debug, Serialize, Default, schemars::JsonSchema)]
pub struct ImageDoc {
    pub schema_version: SchemaVersion,
    pub command: String,
    /// False when the layout already held every blob and tag (a re-run).
    pub changed: bool,
    pub home: String,
    pub product: String,
    pub version: String,
    /// The home's U2 update level (`updates/config.json`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_level: Option<String>,
    /// The OCI image layout written.
    pub out: String,
    /// The base image as given, and its layers.
    pub base: String,
    pub base_layers: Vec<LayerDoc>,
    /// The layer of the files identical in every image, referenced by each.
    pub shared_layer: LayerDoc,
    pub images: Vec<ImageReport>,
    pub warnings: Vec<String>,
    pub duration_ms: u64,
}

/// One layer blob.
#[derive(Debug, Serialize, Default, Clone, schemars::JsonSchema)]
pub struct LayerDoc {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// Compressed bytes.
    pub size: u64,
    /// `sha256:<hex>` of the uncompressed tar (absent for a base layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<String>,
    /// Tar entries (files, directories, links) in it.
    pub entries: usize,
    /// Bytes of file content in it (uncompressed).
    pub content_bytes: u64,
}

/// One profile's image.
#[derive(Debug, Serialize, Clone, schemars::JsonSchema)]
pub struct ImageReport {
    pub profile: String,
    pub tag: String,
    /// `oci:<out>:<tag>`, as skopeo names it.
    pub reference: String,
    /// `sha256:<hex>` of the manifest: the image's digest.
    pub digest: String,
    /// Bytes of the manifest, the configuration and every layer.
    pub size: u64,
    pub config_digest: String,
    /// The layer of this profile's own files (what differs from the others).
    pub layer: LayerDoc,
    /// Where the home is in the image.
    pub home: String,
    pub entrypoint: Vec<String>,
}

/// The text form.
pub fn render(d: &ImageDoc) -> String {
    let mut s = String::new();
    for i in &d.images {
        s.push_str(&format!(
            "{}  {}  {}  {}\n",
            escape(&i.profile),
            escape(&i.reference),
            i.digest,
            human_bytes(i.size)
        ));
        s.push_str(&format!("  own layer {}  {}\n", i.layer.digest, human_bytes(i.layer.size)));
    }
    let l = &d.shared_layer;
    s.push_str(&format!(
        "shared layer {}  {} ({} entries), in all {} images\n",
        l.digest,
        human_bytes(l.size),
        l.entries,
        d.images.len()
    ));
    if !d.changed {
        s.push_str("nothing changed: the layout already held these images\n");
    }
    s
}
