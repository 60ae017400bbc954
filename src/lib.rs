//! apim-profiles: split a WSO2 API Manager home into per-profile optimized
//! copies with exact parity to the product's own profile optimization.
//!
//! One plan, three consumers: [`plan::compute`] decides what a profile keeps,
//! rewrites and removes; `split`/`optimize` carry it out, `--dry-run` prints
//! it, and `verify` checks a tree against it. Each command has one entry point:
//! [`split::run`], [`optimize::run`], [`update_cmd::run`], [`verify::run`],
//! [`profiles_cmd::run`].

pub mod archive;
pub mod config;
pub mod copy;
pub mod dryrun;
pub mod error;
pub mod home;
pub mod mask;
pub mod optimize;
pub mod out;
pub mod plan;
pub mod profile;
pub mod profiles_cmd;
pub mod record;
pub mod report;
pub mod schema;
pub mod settings;
pub mod split;
pub mod status;
pub mod style;
pub mod tree;
pub mod update;
pub mod update_cmd;
pub mod verify;

pub use schema::SCHEMA_VERSION;
pub mod manual;
pub mod progress;
