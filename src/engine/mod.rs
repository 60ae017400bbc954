//! The engine: what writes. Copying a plan's tree (`copy`), the output
//! directory with its lock, staging guard and publishing rename (`output`),
//! carrying out a plan in place (`inplace`) and archives (`archive`). It
//! imports the model and nothing above it.

pub mod archive;
pub mod base;
pub mod copy;
pub mod fidelity;
pub mod inplace;
pub mod oci;
pub mod output;
pub mod writeback;
