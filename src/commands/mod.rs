//! The commands wing: one module per command, orchestration only. Each reads
//! as the steps a person would list and calls the model, the engine, the
//! update step and the reports to do them; each ends in a
//! [`RunOutcome`](crate::report::RunOutcome) or an error, which `main` maps to
//! an exit code.

pub mod image;
pub mod optimize;
pub mod profiles;
pub mod split;
pub mod status;
pub mod update;
pub mod verify;
