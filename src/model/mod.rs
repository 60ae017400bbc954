//! The model, on the ground floor: what a home is (`home`), what a profile
//! does (`profile`, as data, with its version's `facts`), the tree of entries
//! (`tree`), the plan of one profile on one tree (`plan`), the operator's
//! deployment.toml settings (`config`) and the record a copy keeps (`record`).
//! Nothing here writes a copy or prints; nothing here imports the engine,
//! the update step, the reports or the commands.

pub mod config;
pub mod content;
pub mod copy;
pub mod facts;
pub mod fingerprint;
pub mod home;
pub mod mask;
pub mod paths;
pub mod pattern;
pub mod plan;
pub mod profile;
pub mod record;
pub mod record_stream;
pub mod seal;
pub mod secret;
pub mod settings;
pub mod standing;
pub mod text;
pub mod tree;
pub mod update_result;
