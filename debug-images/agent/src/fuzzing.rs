//! `untar` and path resolution, opened to the fuzz targets (`fuzz/`, a crate of its own) and
//! to nothing else. What must hold afterwards (nothing written outside the root, every
//! resolved path inside it) the targets check, in `fuzz/src/lib.rs`.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::tar::extract::extract;
use crate::tar::resolve::{Resolver, Root};

/// `untar --root ROOT DEST` with `archive` on stdin: Ok, or the message the user would read.
pub fn untar(root: &Path, dest: &[u8], archive: &[u8]) -> Result<(), String> {
    let root = Root::open(root).map_err(|e| e.to_string())?;
    let dest = root
        .open_inside(dest, libc::O_PATH | libc::O_DIRECTORY, true)
        .map_err(|e| e.to_string())?;
    extract(dest, archive, |_| {})
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Where `path` leads inside `root` (as `tar` and `untar` resolve it), by the kernel's
/// resolver (`kernel`) or the userspace walk: the real path of what was opened, or the error.
pub fn resolve(
    root: &Path,
    path: &[u8],
    follow_final: bool,
    kernel: bool,
) -> Result<PathBuf, String> {
    let resolver = if kernel {
        Resolver::Kernel
    } else {
        Resolver::Userspace
    };
    let root = Root::open_with(root, resolver).map_err(|e| e.to_string())?;
    let fd = root
        .open_inside(path, libc::O_PATH, follow_final)
        .map_err(|e| e.to_string())?;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|e| e.to_string())
}
