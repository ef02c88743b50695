//! `tar` and `untar` inside the target's root (DESIGN.md step 7, issue 5): the part of
//! `cp` and `snapshot` that runs in the debug container, where no tar binary is needed.
//!
//! - [`resolve`]: paths resolved inside a root (openat2 `RESOLVE_IN_ROOT`, or userspace).
//! - [`format`]: the tar format (ustar + PAX), writer and reader, shared with the plugin
//!   (`crates/tar-format`).
//! - [`archive`]: the `tar` walk; [`extract`]: the `untar` extraction and its refusals.
//! - [`stat`]: what a path is, for the plugin's `cp` to choose names before an upload.

pub mod archive;
pub mod extract;
pub mod resolve;
pub mod stat;
pub use tar_format as format;

#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::cli::{TarFlags, TargetFlags, UntarFlags};
use crate::exit::Status;
use crate::session;
use crate::target;
use resolve::Root;

/// `--root DIR`, else the target's root (`/proc/<pid>/root`: exactly the target's, even
/// when another session re-points `/target` meanwhile).
pub(crate) fn root_dir(
    flag: Option<PathBuf>,
    target: &TargetFlags,
    verb: &str,
) -> Result<PathBuf, Status> {
    match flag {
        Some(dir) => Ok(dir),
        None => target::identify(target)
            .map(|t| PathBuf::from(format!("/proc/{}/root", t.pid)))
            .map_err(|failure| failure.report(verb)),
    }
}

pub(crate) fn open_root(dir: &std::path::Path, verb: &str) -> Option<Root> {
    match Root::open(dir) {
        Ok(root) => Some(root),
        Err(e) => {
            eprintln!(
                "distroless-debug-agent {verb}: cannot open the root {}: {}",
                dir.display(),
                archive::describe(&e)
            );
            None
        }
    }
}

pub fn archive_main(flags: TarFlags) -> Status {
    let dir = match root_dir(flags.root, &flags.target, "tar") {
        Ok(dir) => dir,
        Err(status) => return status,
    };
    if flags.end_container {
        session::register("tar", true);
    }
    let Some(root) = open_root(&dir, "tar") else {
        return Status::Failure;
    };
    let excludes: Vec<Vec<u8>> = flags
        .excludes
        .iter()
        .map(|e| e.as_os_str().as_bytes().to_vec())
        .collect();
    // A duplicate of fd 1: the archive bypasses std's line-buffered stdout entirely.
    let out = match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => archive::FdSink::new(fd),
        Err(e) => {
            eprintln!(
                "distroless-debug-agent tar: writing the archive: {}",
                archive::describe(&e)
            );
            return Status::Failure;
        }
    };
    let warn = |message: String| eprintln!("distroless-debug-agent tar: {message}");
    let mut archiver = archive::Archiver::new(&root, out, &excludes, warn);
    for path in &flags.paths {
        if let Err(archive::OutputError(e)) = archiver.add_path(path.as_os_str().as_bytes()) {
            eprintln!(
                "distroless-debug-agent tar: writing the archive: {}",
                archive::describe(&e)
            );
            return Status::Failure;
        }
    }
    let stats = match archiver.finish() {
        Ok(stats) => stats,
        Err(archive::OutputError(e)) => {
            eprintln!(
                "distroless-debug-agent tar: writing the archive: {}",
                archive::describe(&e)
            );
            return Status::Failure;
        }
    };
    if stats.skipped + stats.unreadable > 0 || stats.entries == 0 {
        eprintln!(
            "distroless-debug-agent tar: {} entries ({} bytes) archived; {} skipped, {} unreadable",
            stats.entries, stats.bytes, stats.skipped, stats.unreadable
        );
    }
    if stats.entries == 0 {
        Status::Failure
    } else {
        Status::Success
    }
}

pub fn extract_main(flags: UntarFlags) -> Status {
    let dir = match root_dir(flags.root, &flags.target, "untar") {
        Ok(dir) => dir,
        Err(status) => return status,
    };
    if flags.end_container {
        session::register(&format!("untar {}", flags.dest.display()), true);
    }
    let Some(root) = open_root(&dir, "untar") else {
        return Status::Failure;
    };
    let dest_bytes = flags.dest.as_os_str().as_bytes();
    let dest = match root.open_inside(dest_bytes, libc::O_PATH | libc::O_DIRECTORY, true) {
        Ok(dest) => dest,
        Err(e) => {
            eprintln!(
                "distroless-debug-agent untar: {}: {}",
                flags.dest.display(),
                archive::describe(&e)
            );
            return Status::Failure;
        }
    };
    let warn = |message: String| eprintln!("distroless-debug-agent untar: {message}");
    // Not std's stdin: its 8 KiB buffer would cut an upload into 8 KiB reads and writes.
    let input = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => io::BufReader::with_capacity(1 << 20, std::fs::File::from(fd)),
        Err(e) => {
            eprintln!(
                "distroless-debug-agent untar: reading the archive: {}",
                archive::describe(&e)
            );
            return Status::Failure;
        }
    };
    match extract::extract(dest, input, warn) {
        Ok(_) => Status::Success,
        Err(e) => {
            eprintln!("distroless-debug-agent untar: {e}");
            Status::Failure
        }
    }
}
