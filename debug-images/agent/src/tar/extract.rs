//! `untar`: extracts a tar stream under a destination directory inside the target's root.
//!
//! The destination is resolved with [`Root`](super::resolve::Root) (so it may be reached
//! through the target's own symlinks). Below it, nothing is followed: every directory is
//! opened component by component with `O_NOFOLLOW`, an entry whose path goes through a
//! symlink is refused — including a symlink the same archive created a moment earlier
//! (the classic "symlink, then a file through it" tar-slip) — and so are absolute names and
//! `..`. Extraction stops at the first refused entry, naming it; entries before it stay.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, SystemTime};

use super::archive::describe;
use super::format::{Kind, Reader, UnsafeName};
use super::resolve::cstring;
use crate::sys;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    pub skipped: u64,
}

/// Why extraction stopped.
#[derive(Debug)]
pub enum ExtractError {
    /// The entry is unsafe: refused before anything was written for it.
    Refused { entry: String, reason: String },
    /// Writing the entry failed.
    Write { entry: String, error: io::Error },
    /// The archive itself is unreadable or truncated.
    Archive(io::Error),
}

impl std::fmt::Display for ExtractError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExtractError::Refused { entry, reason } => {
                write!(f, "refusing entry {entry:?}: {reason}")
            }
            ExtractError::Write { entry, error } => {
                write!(f, "cannot extract {entry:?}: {}", describe(error))
            }
            ExtractError::Archive(error) => write!(f, "bad archive: {}", describe(error)),
        }
    }
}

/// A directory whose final mode and mtime are set after its contents are written.
struct PendingDir {
    path: Vec<Vec<u8>>,
    mode: u32,
    mtime: i64,
}

pub fn extract(
    dest: OwnedFd,
    input: impl BufRead,
    mut warn: impl FnMut(String),
) -> Result<Stats, ExtractError> {
    let mut reader = Reader::new(input);
    let mut stats = Stats::default();
    let mut dirs: Vec<PendingDir> = Vec::new();
    while let Some(entry) = reader.next_entry().map_err(ExtractError::Archive)? {
        let shown = String::from_utf8_lossy(&entry.name).into_owned();
        let refuse = |reason: String| ExtractError::Refused {
            entry: shown.clone(),
            reason,
        };
        let write_err = |error: io::Error| ExtractError::Write {
            entry: shown.clone(),
            error,
        };
        let path = safe_components(&entry.name).map_err(refuse)?;
        let Some((last, parents)) = path.split_last() else {
            // `./`: the destination itself, which we leave as it is.
            continue;
        };
        match entry.kind {
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo | Kind::Other(_) => {
                warn(format!("skipped {shown}: {}", kind_name(entry.kind)));
                stats.skipped += 1;
                continue;
            }
            _ => {}
        }
        let parent = open_dirs(dest.as_fd(), parents, true).map_err(|e| match e {
            Walk::Symlink(at) => refuse(format!("its path goes through the symlink {at:?}")),
            Walk::Io(e) => write_err(e),
        })?;
        let name = cstring(last).map_err(write_err)?;
        match entry.kind {
            Kind::Directory => {
                match sys::mkdirat(parent.as_fd(), &name, 0o700) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        let st = sys::fstatat(parent.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW)
                            .map_err(write_err)?;
                        match st.st_mode & libc::S_IFMT {
                            libc::S_IFDIR => {}
                            libc::S_IFLNK => return Err(refuse("it exists as a symlink".into())),
                            _ => return Err(write_err(io::Error::from_raw_os_error(libc::EEXIST))),
                        }
                    }
                    Err(e) => return Err(write_err(e)),
                }
                let _ = sys::lchownat(parent.as_fd(), &name, entry.uid as u32, entry.gid as u32);
                dirs.push(PendingDir {
                    path: path.clone(),
                    mode: entry.mode,
                    mtime: entry.mtime,
                });
            }
            Kind::File => {
                remove_non_dir(parent.as_fd(), &name).map_err(write_err)?;
                let fd = sys::openat(
                    parent.as_fd(),
                    &name,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )
                .map_err(write_err)?;
                let mut file = File::from(fd);
                stats.bytes += copy_data(&mut reader, &mut file).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        ExtractError::Archive(e)
                    } else {
                        write_err(e)
                    }
                })?;
                // chown before chmod: chown clears set-id bits.
                let _ = std::os::unix::fs::fchown(
                    &file,
                    Some(entry.uid as u32),
                    Some(entry.gid as u32),
                );
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(entry.mode & 0o7777))
                    .map_err(write_err)?;
                file.set_modified(system_time(entry.mtime))
                    .map_err(write_err)?;
            }
            Kind::Symlink => {
                remove_non_dir(parent.as_fd(), &name).map_err(write_err)?;
                let target = cstring(&entry.link).map_err(write_err)?;
                sys::symlinkat(&target, parent.as_fd(), &name).map_err(write_err)?;
                let _ = sys::lchownat(parent.as_fd(), &name, entry.uid as u32, entry.gid as u32);
                let _ = sys::set_mtime(parent.as_fd(), &name, entry.mtime);
            }
            Kind::HardLink => {
                let target = safe_components(&entry.link)
                    .map_err(|r| refuse(format!("link target: {r}")))?;
                let Some((target_last, target_parents)) = target.split_last() else {
                    return Err(refuse("hard link to the destination itself".into()));
                };
                let target_dir =
                    open_dirs(dest.as_fd(), target_parents, false).map_err(|e| match e {
                        Walk::Symlink(at) => {
                            refuse(format!("link target goes through the symlink {at:?}"))
                        }
                        Walk::Io(e) => write_err(e),
                    })?;
                let target_name = cstring(target_last).map_err(write_err)?;
                remove_non_dir(parent.as_fd(), &name).map_err(write_err)?;
                sys::linkat(target_dir.as_fd(), &target_name, parent.as_fd(), &name)
                    .map_err(write_err)?;
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo | Kind::Other(_) => {
                unreachable!("skipped above")
            }
        }
        stats.entries += 1;
    }
    // Deepest first, so setting a parent's mtime is the last change to it.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.len()));
    for dir in dirs {
        let shown = String::from_utf8_lossy(&dir.path.join(&b'/')).into_owned();
        let (last, parents) = dir.path.split_last().expect("directories have names");
        let result = open_dirs(dest.as_fd(), parents, false)
            .map_err(|e| match e {
                Walk::Symlink(at) => {
                    io::Error::other(format!("path goes through the symlink {at:?}"))
                }
                Walk::Io(e) => e,
            })
            .and_then(|parent| {
                let name = cstring(last)?;
                sys::fchmodat(parent.as_fd(), &name, dir.mode & 0o7777)?;
                sys::set_mtime(parent.as_fd(), &name, dir.mtime)
            });
        if let Err(e) = result {
            warn(format!(
                "{shown}: cannot set mode or mtime: {}",
                describe(&e)
            ));
        }
    }
    Ok(stats)
}

/// Splits an archive name into components, refusing absolute names, `..` and NUL bytes.
pub fn safe_components(name: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    super::format::name_components(name).map_err(|unsafe_name| {
        match unsafe_name {
            UnsafeName::Absolute => "absolute name",
            UnsafeName::Parent => "`..` in the name",
            UnsafeName::Nul => "NUL byte in the name",
        }
        .to_string()
    })
}

enum Walk {
    /// The path goes through a symlink (named by its path under the destination).
    Symlink(String),
    Io(io::Error),
}

/// Opens `parts` below `dest` as directories, never following a symlink; creates missing
/// ones when `create` (archives may omit parent directory entries).
fn open_dirs(dest: BorrowedFd<'_>, parts: &[Vec<u8>], create: bool) -> Result<OwnedFd, Walk> {
    let mut current = dest.try_clone_to_owned().map_err(Walk::Io)?;
    for (i, part) in parts.iter().enumerate() {
        let name = cstring(part).map_err(Walk::Io)?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let next = match sys::openat(current.as_fd(), &name, flags, 0) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                match sys::mkdirat(current.as_fd(), &name, 0o755) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(Walk::Io(e)),
                }
                sys::openat(current.as_fd(), &name, flags, 0)
            }
            other => other,
        };
        match next {
            Ok(fd) => current = fd,
            Err(e) => {
                let is_link = sys::fstatat(current.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
                if is_link {
                    let at = parts[..=i]
                        .iter()
                        .map(|p| String::from_utf8_lossy(p))
                        .collect::<Vec<_>>()
                        .join("/");
                    return Err(Walk::Symlink(at));
                }
                return Err(Walk::Io(e));
            }
        }
    }
    Ok(current)
}

/// Makes room for a new file, symlink or link: an existing non-directory is replaced (as
/// tar does), a directory is an error.
/// The current entry's data into `file`, written from the input's buffer as it lies (in
/// pieces as large as the pipe delivers, not std's 8 KiB copy buffer).
fn copy_data(reader: &mut Reader<impl BufRead>, file: &mut File) -> io::Result<u64> {
    let mut data = reader.data();
    let mut copied = 0;
    loop {
        let piece = match data.fill_buf() {
            Ok([]) => return Ok(copied),
            Ok(piece) => piece,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        file.write_all(piece)?;
        let n = piece.len();
        data.consume(n);
        copied += n as u64;
    }
}

fn remove_non_dir(parent: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    match sys::fstatat(parent, name, libc::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            Err(io::Error::from_raw_os_error(libc::EISDIR))
        }
        Ok(_) => sys::unlinkat(parent, name, 0),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

fn system_time(mtime: i64) -> SystemTime {
    if mtime >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(mtime as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(mtime.unsigned_abs())
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::CharDevice => "character device",
        Kind::BlockDevice => "block device",
        Kind::Fifo => "fifo",
        _ => "unsupported entry type",
    }
}
