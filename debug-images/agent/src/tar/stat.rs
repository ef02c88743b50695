//! `stat`: what a path inside the target's root is, as one JSON line per path.
//!
//! The plugin's `cp` asks this before an upload, to name things as `cp` does (into an
//! existing directory under the source's name, else as the path itself) and to say
//! "read-only filesystem" before sending any byte. Paths resolve exactly as `tar` and
//! `untar` resolve them, so the answer is about the same file they would use.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use serde::Serialize;

use super::archive::describe;
use super::resolve::Root;
use super::{open_root, root_dir};
use crate::cli::StatFlags;
use crate::exit::Status;
use crate::sys;

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub path: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_fs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
}

/// The facts about `path` inside `root`, or why there are none.
pub fn facts_of(root: &Root, path: &[u8]) -> Facts {
    let shown = String::from_utf8_lossy(path).into_owned();
    let found = root.open_inside(path, libc::O_PATH, true).and_then(|fd| {
        let st = sys::fstatat(fd.as_fd(), c"", libc::AT_EMPTY_PATH)?;
        let read_only = sys::read_only_fs(fd.as_fd()).ok();
        Ok((st, read_only))
    });
    match found {
        Ok((st, read_only_fs)) => Facts {
            path: shown,
            kind: Some(kind_of(st.st_mode)),
            mode: Some(st.st_mode & 0o7777),
            uid: Some(st.st_uid),
            gid: Some(st.st_gid),
            size: Some(st.st_size as u64),
            read_only_fs,
            error: None,
            errno: None,
        },
        Err(e) => Facts {
            path: shown,
            kind: None,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            read_only_fs: None,
            error: Some(describe(&e)),
            errno: e.raw_os_error(),
        },
    }
}

fn kind_of(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "directory",
        libc::S_IFLNK => "symlink",
        libc::S_IFSOCK => "socket",
        libc::S_IFIFO => "fifo",
        libc::S_IFCHR => "char-device",
        libc::S_IFBLK => "block-device",
        _ => "other",
    }
}

pub fn main(flags: StatFlags) -> Status {
    let dir = match root_dir(flags.root, &flags.target, "stat") {
        Ok(dir) => dir,
        Err(status) => return status,
    };
    let Some(root) = open_root(&dir, "stat") else {
        return Status::Failure;
    };
    let mut out = io::stdout().lock();
    let mut all_found = true;
    for path in &flags.paths {
        let facts = facts_of(&root, path.as_os_str().as_bytes());
        all_found &= facts.error.is_none();
        let line = serde_json::to_string(&facts).unwrap_or_default();
        if writeln!(out, "{line}").is_err() {
            return Status::Failure;
        }
    }
    if all_found {
        Status::Success
    } else {
        Status::Failure
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::tar::resolve::{Resolver, Root};

    #[test]
    fn paths_resolve_inside_the_root_and_missing_ones_say_why() {
        let dir = std::env::temp_dir().join(format!("dda-stat-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc/app/v2")).unwrap();
        std::fs::write(dir.join("etc/app/v2/config.yaml"), b"a: 1\n").unwrap();
        // Absolute, as the target sees it: must not lead to the host's /etc/app/v2.
        symlink("/etc/app/v2", dir.join("etc/app/current")).unwrap();
        for resolver in [Resolver::Userspace, Resolver::Kernel] {
            let Ok(root) = Root::open_with(&dir, resolver) else {
                continue;
            };
            let facts = facts_of(&root, b"/etc/app/current/config.yaml");
            assert_eq!(facts.kind, Some("file"), "{facts:?}");
            assert_eq!(facts.size, Some(5));
            assert_eq!(facts.read_only_fs, Some(false));
            assert_eq!(facts_of(&root, b"/etc/app/current").kind, Some("directory"));
            let missing = facts_of(&root, b"/etc/app/nope");
            assert_eq!(missing.errno, Some(libc::ENOENT));
            assert_eq!(
                serde_json::to_string(&missing).unwrap(),
                r#"{"path":"/etc/app/nope","error":"No such file or directory","errno":2}"#
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
