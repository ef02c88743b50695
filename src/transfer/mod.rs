//! Files in and out of the target: tar glob, manifest, extract and pack, the exec stream,
//! `cp` and `snapshot`. Imports only from the layers below (docs/layout.md).

pub mod cp;
pub mod extract;
pub mod glob;
pub mod manifest;
pub mod options;
pub mod pack;
pub mod read_only;
pub mod remote;
pub mod snapshot;
