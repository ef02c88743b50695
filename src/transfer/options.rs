//! What `cp` and `snapshot` are asked to do, as `cmd/options.rs` builds it from the flags.

use std::path::PathBuf;

use crate::session::options::DebugOptions;

/// `cp`: which way, and the debug container to go through.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyOptions {
    /// How to get the debug container (its `mode` is unused: `cp` execs the agent itself).
    pub session: DebugOptions,
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    /// `remote` is absolute and normalized (see `cp::normalize_remote_path`).
    Download {
        remote: String,
        local: PathBuf,
    },
    Upload {
        local: PathBuf,
        remote: String,
    },
}

/// `snapshot`: where to, what, and the debug container to go through.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotOptions {
    /// How to get the debug container (its `mode` is unused).
    pub session: DebugOptions,
    pub output: SnapshotOutput,
    /// The target container's volumes are included (no `--no-volumes`).
    pub volumes: bool,
    pub filter: crate::transfer::manifest::Filter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotOutput {
    File {
        path: PathBuf,
        gzip: bool,
    },
    /// `-o -`: a plain tar on stdout.
    Stdout,
}
