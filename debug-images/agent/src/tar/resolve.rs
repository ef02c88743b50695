//! Path resolution *inside* a root directory: the target's filesystem as the target sees it.
//!
//! `/proc/<pid>/root` shows the target's files, but its symlinks were written for the
//! target: `/etc/app/current -> /etc/app/v2` must lead to the target's `/etc/app/v2`, not the
//! debug container's, and `..` must stop at the target's `/`. The kernel does exactly this
//! with `openat2(RESOLVE_IN_ROOT)` (Linux 5.6+); where it is missing or a seccomp profile
//! refuses it (ENOSYS/EPERM), [`Root`] falls back to a userspace walk with the same rules:
//! one component at a time with `O_PATH|O_NOFOLLOW`, symlinks re-resolved against the root,
//! `..` clamped at the root, at most 40 symlinks (the kernel's `MAXSYMLINKS`).
//! Magic links (`/proc/<pid>/fd/*`, `/proc/self/root` inside the target) are refused by
//! both (`RESOLVE_NO_MAGICLINKS`; the userspace walk reads them as plain links, whose
//! targets like `socket:[123]` or a path resolve inside the root, never through the kernel's
//! jump).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::sys;

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;
/// The kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

/// How paths are resolved; chosen once per [`Root`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    Kernel,
    Userspace,
}

/// A directory that paths are resolved inside of.
pub struct Root {
    fd: OwnedFd,
    resolver: Resolver,
}

impl Root {
    /// Opens `dir` as the root. The resolver is the kernel's unless
    /// `DISTROLESS_DEBUG_NO_OPENAT2=1` or a probe shows openat2 is unavailable.
    pub fn open(dir: &Path) -> io::Result<Root> {
        let forced = std::env::var_os("DISTROLESS_DEBUG_NO_OPENAT2").is_some_and(|v| v == "1");
        let mut root = Root::open_with(dir, Resolver::Kernel)?;
        if forced || !root.kernel_works() {
            root.resolver = Resolver::Userspace;
        }
        Ok(root)
    }

    pub fn open_with(dir: &Path, resolver: Resolver) -> io::Result<Root> {
        let path = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
        // The root itself may be a magic link (/proc/1/root): we follow it on purpose, once.
        let fd = sys::openat(at_cwd(), &path, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Root { fd, resolver })
    }

    #[cfg(test)]
    pub fn resolver(&self) -> Resolver {
        self.resolver
    }

    fn kernel_works(&self) -> bool {
        match sys::openat2(self.fd.as_fd(), c".", libc::O_PATH, 0, RESOLVE_IN_ROOT) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EINVAL | libc::E2BIG)
            ),
        }
    }

    /// Opens `path` (absolute or relative, both taken from the root) with `flags`.
    /// With `follow_final` false, a final symlink is not followed: with `O_PATH` the link
    /// itself is returned, otherwise ELOOP.
    pub fn open_inside(
        &self,
        path: &[u8],
        flags: libc::c_int,
        follow_final: bool,
    ) -> io::Result<OwnedFd> {
        let flags = if follow_final {
            flags
        } else {
            flags | libc::O_NOFOLLOW
        };
        match self.resolver {
            Resolver::Kernel => {
                let name = cstring(if path.is_empty() { b"." } else { path })?;
                let mut attempts = 0;
                loop {
                    match sys::openat2(
                        self.fd.as_fd(),
                        &name,
                        flags,
                        0,
                        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
                    ) {
                        // EAGAIN: a concurrent rename or mount made the kernel unsure `..`
                        // stayed inside; retry, then walk in userspace.
                        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && attempts < 3 => {
                            attempts += 1
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                            return self.open_userspace(path, flags, follow_final);
                        }
                        other => return other,
                    }
                }
            }
            Resolver::Userspace => self.open_userspace(path, flags, follow_final),
        }
    }

    fn open_userspace(
        &self,
        path: &[u8],
        flags: libc::c_int,
        follow_final: bool,
    ) -> io::Result<OwnedFd> {
        let mut queue: Vec<Vec<u8>> = components(path);
        queue.reverse(); // popped from the end
        // `dir/`, `dir/.`: the last component must be a directory, so a final symlink is
        // followed whatever `follow_final` says, as the kernel resolves such a path.
        let names_a_dir = path
            .rsplit(|&b| b == b'/')
            .next()
            .is_some_and(|last| last.is_empty() || last == b".");
        let follow_final = follow_final || names_a_dir;
        // `ancestors` are the directories above `current`, so `..` can go back without
        // trusting the filesystem's own `..` (which would leave the root at its top).
        let mut ancestors: Vec<OwnedFd> = Vec::new();
        let mut current = self.fd.try_clone()?;
        let mut last: Option<(OwnedFd, CString)> = None;
        let mut links = 0;
        while let Some(component) = queue.pop() {
            if component == b".." {
                if let Some(parent) = ancestors.pop() {
                    current = parent;
                }
                last = None;
                continue;
            }
            let name = cstring(&component)?;
            let fd = sys::openat(current.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
            let st = sys::fstatat(fd.as_fd(), c"", libc::AT_EMPTY_PATH)?;
            let is_last = queue.is_empty();
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK && (!is_last || follow_final) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = sys::readlinkat(fd.as_fd(), c"")?;
                if target.first() == Some(&b'/') {
                    current = self.fd.try_clone()?;
                    ancestors.clear();
                }
                let mut more = components(&target);
                more.reverse();
                queue.extend(more);
                last = None;
                continue;
            }
            if (!is_last || names_a_dir) && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            let parent = std::mem::replace(&mut current, fd);
            last = Some((parent.try_clone()?, name));
            ancestors.push(parent);
        }
        if flags & libc::O_PATH != 0
            && flags & !(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_DIRECTORY) == 0
        {
            if flags & libc::O_DIRECTORY != 0 {
                let st = sys::fstatat(current.as_fd(), c"", libc::AT_EMPTY_PATH)?;
                if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                    return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                }
            }
            return Ok(current);
        }
        // Reopen the final object with the real flags, by name from its parent and without
        // following: if it was swapped for a symlink since, this fails instead of escaping.
        match last {
            Some((parent, name)) => sys::openat(parent.as_fd(), &name, flags | libc::O_NOFOLLOW, 0),
            // The root itself, or a directory reached by `..`.
            None => sys::openat(current.as_fd(), c".", flags, 0),
        }
    }
}

fn at_cwd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is the documented "current directory" value for *at calls; it is
    // never closed and no I/O is done on it as a descriptor.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// `a//b/./c/` → [a, b, c]; `..` kept for the walk to clamp.
pub fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

pub fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, symlink};
    use std::path::PathBuf;

    /// A scratch tree:
    /// ```text
    /// outside/secret                       (next to the root: must never be reached)
    /// root/etc/app/v2/config.yaml          "v2"
    /// root/etc/app/current -> /etc/app/v2  (absolute, as the target wrote it)
    /// root/rel -> etc/app                  (relative)
    /// root/escape -> ../../outside         (relative, climbs past the root)
    /// root/abs-escape -> /../../outside
    /// root/outside/secret                  "inside" (where escapes must land)
    /// root/loop1 -> loop2, root/loop2 -> loop1
    /// root/etc/file                        (a file used as a directory)
    /// ```
    pub fn tree(name: &str) -> PathBuf {
        let base = std::env::temp_dir().join(format!("dda-resolve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret"), "outside").unwrap();
        std::fs::create_dir_all(root.join("etc/app/v2")).unwrap();
        std::fs::write(root.join("etc/app/v2/config.yaml"), "v2").unwrap();
        std::fs::write(root.join("etc/file"), "f").unwrap();
        symlink("/etc/app/v2", root.join("etc/app/current")).unwrap();
        symlink("etc/app", root.join("rel")).unwrap();
        symlink("../../outside", root.join("escape")).unwrap();
        symlink("/../../outside", root.join("abs-escape")).unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        std::fs::write(root.join("outside/secret"), "inside").unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        base
    }

    fn read(root: &Root, path: &str) -> io::Result<String> {
        let fd = root.open_inside(path.as_bytes(), libc::O_RDONLY, true)?;
        std::io::read_to_string(std::fs::File::from(fd))
    }

    fn identity(root: &Root, path: &str, follow: bool) -> Result<(u64, u64), i32> {
        root.open_inside(path.as_bytes(), libc::O_PATH, follow)
            .and_then(|fd| sys::fstatat(fd.as_fd(), c"", libc::AT_EMPTY_PATH))
            .map(|st| (st.st_dev, st.st_ino))
            .map_err(|e| e.raw_os_error().unwrap_or(-1))
    }

    fn roots(base: &Path) -> Vec<Root> {
        let mut roots = vec![Root::open_with(&base.join("root"), Resolver::Userspace).unwrap()];
        let kernel = Root::open_with(&base.join("root"), Resolver::Kernel).unwrap();
        if kernel.kernel_works() {
            roots.push(kernel);
        } else {
            eprintln!("openat2 unavailable here: testing the userspace resolver only");
        }
        roots
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let base = tree("abs");
        for root in roots(&base) {
            assert_eq!(
                read(&root, "/etc/app/current/config.yaml").unwrap(),
                "v2",
                "{:?}",
                root.resolver
            );
            assert_eq!(read(&root, "rel/current/config.yaml").unwrap(), "v2");
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn dotdot_and_escaping_links_are_clamped_at_the_root() {
        let base = tree("clamp");
        for root in roots(&base) {
            let r = root.resolver;
            assert_eq!(
                read(&root, "/../../outside/secret").unwrap(),
                "inside",
                "{r:?}"
            );
            assert_eq!(read(&root, "escape/secret").unwrap(), "inside", "{r:?}");
            assert_eq!(read(&root, "abs-escape/secret").unwrap(), "inside", "{r:?}");
            assert_eq!(
                read(&root, "etc/app/../app/v2/../../app/current/config.yaml").unwrap(),
                "v2"
            );
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    /// A trailing `/` (or `/.`) names a directory: a final symlink is followed even when
    /// final links are not, and a file there is not a directory. Both resolvers agree (the
    /// userspace walk returned the link itself, where openat2 followed it).
    #[test]
    fn a_trailing_slash_follows_a_final_link_in_both_resolvers() {
        let base = tree("slash");
        let v2 = std::fs::metadata(base.join("root/etc/app/v2")).unwrap();
        for root in roots(&base) {
            let r = root.resolver;
            for path in ["etc/app/current/", "etc/app/current/.", "rel/current//"] {
                assert_eq!(
                    identity(&root, path, false),
                    Ok((v2.dev(), v2.ino())),
                    "{path} {r:?}"
                );
            }
            assert_eq!(
                identity(&root, "etc/file/", false),
                Err(libc::ENOTDIR),
                "{r:?}"
            );
            let link = std::fs::symlink_metadata(base.join("root/etc/app/current")).unwrap();
            assert_eq!(
                identity(&root, "etc/app/current", false),
                Ok((link.dev(), link.ino())),
                "{r:?}"
            );
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn loops_and_non_directories_fail_cleanly() {
        let base = tree("loops");
        for root in roots(&base) {
            let r = root.resolver;
            assert_eq!(identity(&root, "loop1", true), Err(libc::ELOOP), "{r:?}");
            assert_eq!(identity(&root, "loop1/x", true), Err(libc::ELOOP), "{r:?}");
            assert_eq!(
                identity(&root, "etc/file/x", true),
                Err(libc::ENOTDIR),
                "{r:?}"
            );
            assert_eq!(identity(&root, "nope/x", true), Err(libc::ENOENT), "{r:?}");
            // Not following a final symlink: O_PATH gives the link, a real open refuses.
            assert!(identity(&root, "loop1", false).is_ok(), "{r:?}");
            assert!(
                root.open_inside(b"etc/app/current", libc::O_RDONLY, false)
                    .is_err(),
                "{r:?}"
            );
            assert!(
                root.open_inside(b"etc/app/current", libc::O_RDONLY, true)
                    .is_ok(),
                "{r:?}"
            );
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn both_resolvers_agree() {
        let base = tree("agree");
        let all = roots(&base);
        if all.len() < 2 {
            // docs/files.md says the two resolvers are tested against each other.
            let why = "openat2 (RESOLVE_IN_ROOT) is unavailable here: the kernel resolver cannot be compared with the userspace one";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipped: {why}");
            std::fs::remove_dir_all(base).unwrap();
            return;
        }
        let paths = [
            "/",
            "",
            ".",
            "..",
            "etc",
            "/etc/app/current",
            "/etc/app/current/config.yaml",
            "rel",
            "rel/current",
            "escape",
            "escape/secret",
            "abs-escape/secret",
            "loop1",
            "etc/file",
            "etc/file/x",
            "nope",
            "/etc/app/v2/../../..",
            "etc//app/./v2/",
        ];
        for path in paths {
            for follow in [true, false] {
                assert_eq!(
                    identity(&all[0], path, follow),
                    identity(&all[1], path, follow),
                    "path {path:?} follow={follow}"
                );
            }
        }
        std::fs::remove_dir_all(base).unwrap();
    }
}
