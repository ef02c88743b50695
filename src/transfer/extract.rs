//! Safe local extraction of a download: the agent's tar stream becomes files under one local
//! destination, and nothing is written anywhere else.
//!
//! The stream comes from a container that may be compromised (incident response is when `cp`
//! is used), so every entry is treated as hostile:
//! - names are relative, without `..`, and below the copied path; anything else stops the
//!   extraction, naming the entry;
//! - nothing below the destination is followed: directories are opened one component at a
//!   time with `O_NOFOLLOW` (`openat`), so an entry whose path goes through a symlink (one
//!   that was there or one the same archive just made: the classic tar-slip) stops it too;
//! - a symlink is made only when it points inside the destination. An absolute target inside
//!   the copied path is rewritten relative (it means the target's root, not ours); a link
//!   pointing anywhere else is not made and a warning names it, so a later
//!   `vim copy/config.yaml` cannot write to `~/.bashrc` through a planted link;
//! - existing files and links are replaced, never written through; set-id bits are dropped.
//!
//! Only the DEST the user typed may be followed (it is theirs), never a name below it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Timespec, Timestamps};
use tar_format::{Entry, Kind, Reader, UnsafeName};

/// Where the copied path lands, decided from DEST before the first byte arrives, as `cp -r`
/// decides: into an existing directory under the source's own name, else as DEST itself.
#[derive(Debug)]
pub struct Destination {
    parent: OwnedFd,
    /// The copy's name in `parent`; `None` when `parent` itself receives the copy (a copy of
    /// the target's `/` into an existing directory).
    name: Option<Vec<u8>>,
    /// The copy's local path, for messages.
    pub path: PathBuf,
}

impl Destination {
    /// `source_name` is the copied path's last component (empty for `/`).
    pub fn resolve(dest: &Path, source_name: &[u8]) -> io::Result<Destination> {
        let existing_dir = match std::fs::metadata(dest) {
            Ok(meta) => meta.is_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if existing_dir {
            let parent = open_followed(dest)?;
            if source_name.is_empty() {
                return Ok(Destination {
                    parent,
                    name: None,
                    path: dest.to_path_buf(),
                });
            }
            return Ok(Destination {
                parent,
                name: Some(source_name.to_vec()),
                path: dest.join(OsStr::from_bytes(source_name)),
            });
        }
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "names no file or directory (it ends in `..` or is `/`)",
            )
        })?;
        let parent_path = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Ok(Destination {
            parent: open_followed(parent_path)?,
            name: Some(name.as_bytes().to_vec()),
            path: dest.to_path_buf(),
        })
    }
}

/// How a directory is opened only to be named by the `*at` calls. Linux has `O_PATH`: the
/// descriptor cannot read the directory, and opening it needs no read permission on it. Other
/// systems (macOS) have no `O_PATH`; the closest faithful equivalent is a read-only open of the
/// directory, which the `*at` calls accept alike. It needs read permission on the directory:
/// those we make have it (0o700 or 0o755 until their own mode is set, last), so only a
/// destination the user cannot list behaves differently, and refuses. `O_NOFOLLOW` is added
/// where a name must not be followed, on either system.
#[cfg(target_os = "linux")]
const DIR_HANDLE: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
#[cfg(not(target_os = "linux"))]
const DIR_HANDLE: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// The permission bits of a tar header's mode. `mode_t` is u32 on Linux and u16 on macOS; the
/// bits kept (at most 0o7777) fit both.
fn permissions(mode: u32) -> Mode {
    let bits = u16::try_from(mode & 0o7777).unwrap_or_default();
    Mode::from_raw_mode(rustix::fs::RawMode::from(bits))
}

fn open_followed(dir: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(CWD, dir, DIR_HANDLE, Mode::empty())?)
}

/// What an extraction made.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub hard_links: u64,
    /// Bytes of file data written.
    pub bytes: u64,
    /// Devices, fifos and unknown entry types: not made, with a note.
    pub skipped: u64,
    /// Symlinks pointing outside the destination: not made, with a warning.
    pub refused_links: u64,
    /// The copied path was a directory (else a single file).
    pub top_is_dir: bool,
}

/// Why an extraction stopped. Entries before the failing one stay in place: a stream cannot
/// be checked before it is read.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(
        "refusing entry {entry:?} of the archive: {reason}; nothing was written for it or after it"
    )]
    Refused { entry: String, reason: String },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    #[error("the archive stream is broken")]
    Archive(#[source] io::Error),
    #[error("the archive is empty: nothing was copied")]
    Empty,
}

/// A directory whose mode and mtime are set after its contents (it may be read-only).
struct PendingDir {
    rel: Vec<Vec<u8>>,
    mode: u32,
    mtime: i64,
}

enum Top {
    File,
    Dir(OwnedFd),
}

/// Extracts `input` below `dest`. `prefix` is the archive name of the copied path (the
/// remote path without its leading `/`; empty for `/`): every entry must be it or below it.
/// File data is written from `input`'s own buffer, where it lies, in the pieces it holds.
pub fn extract(
    input: impl BufRead,
    prefix: &[u8],
    dest: &Destination,
    warn: &mut dyn FnMut(String),
) -> Result<Stats, ExtractError> {
    let prefix = components(prefix).map_err(|reason| ExtractError::Refused {
        entry: String::from_utf8_lossy(prefix).into_owned(),
        reason,
    })?;
    let mut reader = Reader::new(input);
    let mut stats = Stats::default();
    let mut top: Option<Top> = None;
    let mut dirs: Vec<PendingDir> = Vec::new();
    let mut refused_links: Vec<Vec<Vec<u8>>> = Vec::new();

    while let Some(entry) = reader.next_entry().map_err(ExtractError::Archive)? {
        let shown = String::from_utf8_lossy(&entry.name).into_owned();
        let refuse = |reason: String| ExtractError::Refused {
            entry: shown.clone(),
            reason,
        };
        let parts = components(&entry.name).map_err(refuse)?;
        let Some(rel) = parts.strip_prefix(prefix.as_slice()) else {
            return Err(refuse(format!(
                "it is not below the copied path /{}",
                join(&prefix)
            )));
        };
        if let Some(link) = refused_links
            .iter()
            .find(|l| rel.len() > l.len() && rel.starts_with(l))
        {
            return Err(refuse(format!(
                "its path goes through the symlink {:?}, which points outside the destination",
                join(link)
            )));
        }
        if matches!(
            entry.kind,
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo | Kind::Other(_)
        ) {
            warn(format!("skipped {shown}: {}", kind_name(entry.kind)));
            stats.skipped += 1;
            continue;
        }

        if top.is_none() {
            if rel.is_empty() {
                match entry.kind {
                    Kind::Directory => {
                        top = Some(Top::Dir(make_top_dir(dest, Some(&entry), &mut dirs)?));
                        stats.top_is_dir = true;
                        stats.directories += 1;
                    }
                    Kind::File => {
                        let Some(name) = &dest.name else {
                            return Err(refuse("a file cannot replace a directory".into()));
                        };
                        let path = dest.path.clone();
                        write_file(dest.parent.as_fd(), name, &entry, &mut reader, &path)?;
                        stats.files += 1;
                        stats.bytes += entry.size;
                        top = Some(Top::File);
                    }
                    _ => return Err(refuse("the copied path itself is a link".into())),
                }
                continue;
            }
            // Archives may leave out a directory's own entry: the copy is a directory.
            top = Some(Top::Dir(make_top_dir(dest, None, &mut dirs)?));
            stats.top_is_dir = true;
        }
        let Some(Top::Dir(root)) = &top else {
            return Err(refuse(
                "the copied path was a file, yet more entries follow".into(),
            ));
        };
        if rel.is_empty() {
            // The copied directory named again: nothing to make.
            continue;
        }
        let local = local_path(&dest.path, rel);
        let write_err = |error: io::Error| ExtractError::Write {
            path: local.clone(),
            error,
        };
        let (last, parents) = rel.split_last().unwrap_or((&rel[0], &[]));
        let parent = open_dirs(root.as_fd(), parents, true).map_err(|e| match e {
            Walk::Symlink(at) => refuse(format!("its path goes through the symlink {at:?}")),
            Walk::Io(e) => write_err(e),
        })?;
        match entry.kind {
            Kind::Directory => {
                match rustix::fs::mkdirat(&parent, last.as_slice(), Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {
                        match file_type_at(parent.as_fd(), last).map_err(write_err)? {
                            FileType::Directory => {}
                            FileType::Symlink => {
                                return Err(refuse("it exists as a symlink".into()));
                            }
                            _ => {
                                return Err(write_err(io::Error::other(
                                    "it exists and is not a directory",
                                )));
                            }
                        }
                    }
                    Err(e) => return Err(write_err(e.into())),
                }
                dirs.push(PendingDir {
                    rel: rel.to_vec(),
                    mode: entry.mode,
                    mtime: entry.mtime,
                });
                stats.directories += 1;
            }
            Kind::File => {
                write_file(parent.as_fd(), last, &entry, &mut reader, &local)?;
                stats.files += 1;
                stats.bytes += entry.size;
            }
            Kind::Symlink => match link_plan(parents, &entry.link, &prefix) {
                LinkPlan::Refuse(reason) => {
                    warn(format!(
                        "not created: symlink {shown} -> {}: {reason}",
                        String::from_utf8_lossy(&entry.link)
                    ));
                    refused_links.push(rel.to_vec());
                    stats.refused_links += 1;
                }
                plan => {
                    let target = match plan {
                        LinkPlan::Rewrite(target) => target,
                        _ => entry.link.clone(),
                    };
                    remove_non_dir(parent.as_fd(), last).map_err(write_err)?;
                    rustix::fs::symlinkat(target.as_slice(), &parent, last.as_slice())
                        .map_err(|e| write_err(e.into()))?;
                    let _ = rustix::fs::utimensat(
                        &parent,
                        last.as_slice(),
                        &times(entry.mtime),
                        AtFlags::SYMLINK_NOFOLLOW,
                    );
                    stats.symlinks += 1;
                }
            },
            Kind::HardLink => {
                let target =
                    components(&entry.link).map_err(|r| refuse(format!("its link target: {r}")))?;
                let Some(target) = target
                    .strip_prefix(prefix.as_slice())
                    .filter(|t| !t.is_empty())
                else {
                    return Err(refuse(format!(
                        "it links to {:?}, which is not below the copied path",
                        String::from_utf8_lossy(&entry.link)
                    )));
                };
                let (target_last, target_parents) =
                    target.split_last().unwrap_or((&target[0], &[]));
                let target_dir =
                    open_dirs(root.as_fd(), target_parents, false).map_err(|e| match e {
                        Walk::Symlink(at) => {
                            refuse(format!("its link target goes through the symlink {at:?}"))
                        }
                        Walk::Io(e) => write_err(e),
                    })?;
                remove_non_dir(parent.as_fd(), last).map_err(write_err)?;
                rustix::fs::linkat(
                    &target_dir,
                    target_last.as_slice(),
                    &parent,
                    last.as_slice(),
                    AtFlags::empty(),
                )
                .map_err(|e| write_err(e.into()))?;
                stats.hard_links += 1;
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo | Kind::Other(_) => {}
        }
    }

    let Some(top) = top else {
        return Err(ExtractError::Empty);
    };
    if let Top::Dir(root) = top {
        finish_dirs(root.as_fd(), dest, dirs, warn);
    }
    Ok(stats)
}

/// Makes (or reuses) the copied directory at the destination and opens it; its mode and
/// mtime come from its `entry`, when the archive has one.
fn make_top_dir(
    dest: &Destination,
    entry: Option<&Entry>,
    dirs: &mut Vec<PendingDir>,
) -> Result<OwnedFd, ExtractError> {
    let write_err = |error: io::Error| ExtractError::Write {
        path: dest.path.clone(),
        error,
    };
    let Some(name) = &dest.name else {
        return rustix::fs::openat(&dest.parent, ".", DIR_HANDLE, Mode::empty())
            .map_err(|e| write_err(e.into()));
    };
    let mode = if entry.is_some() { 0o700 } else { 0o755 };
    match rustix::fs::mkdirat(&dest.parent, name.as_slice(), Mode::from_raw_mode(mode)) {
        Ok(()) => {
            if let Some(entry) = entry {
                dirs.push(PendingDir {
                    rel: Vec::new(),
                    mode: entry.mode,
                    mtime: entry.mtime,
                });
            }
        }
        // Copying into an existing directory merges, as `cp -r` does; its mode stays.
        Err(rustix::io::Errno::EXIST) => {
            match file_type_at(dest.parent.as_fd(), name).map_err(write_err)? {
                FileType::Directory => {}
                FileType::Symlink => {
                    return Err(write_err(io::Error::other(
                        "it exists and is a symlink, which is never followed: remove it or choose another destination",
                    )));
                }
                _ => {
                    return Err(write_err(io::Error::other(
                        "it exists and is not a directory, but the copied path is one",
                    )));
                }
            }
        }
        Err(e) => return Err(write_err(e.into())),
    }
    open_dirs(dest.parent.as_fd(), std::slice::from_ref(name), false).map_err(|e| match e {
        Walk::Symlink(_) => write_err(io::Error::other("it is a symlink")),
        Walk::Io(e) => write_err(e),
    })
}

fn write_file(
    parent: BorrowedFd<'_>,
    name: &[u8],
    entry: &Entry,
    reader: &mut Reader<impl BufRead>,
    local: &Path,
) -> Result<(), ExtractError> {
    let write_err = |error: io::Error| ExtractError::Write {
        path: local.to_path_buf(),
        error,
    };
    remove_non_dir(parent, name).map_err(write_err)?;
    let fd = rustix::fs::openat(
        parent,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| write_err(e.into()))?;
    let mut file = File::from(fd);
    let mut data = reader.data();
    loop {
        let piece = match data.fill_buf() {
            Ok([]) => break,
            Ok(piece) => piece,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ExtractError::Archive(e)),
        };
        file.write_all(piece).map_err(write_err)?;
        let n = piece.len();
        data.consume(n);
    }
    // Set-id bits are dropped: a downloaded binary must not become set-id locally.
    rustix::fs::fchmod(&file, permissions(entry.mode & 0o777)).map_err(|e| write_err(e.into()))?;
    file.set_modified(system_time(entry.mtime))
        .map_err(write_err)?;
    Ok(())
}

/// Sets directory modes and mtimes, deepest first, so a read-only directory is finished last
/// and setting a parent's mtime is the last change to it.
fn finish_dirs(
    root: BorrowedFd<'_>,
    dest: &Destination,
    mut dirs: Vec<PendingDir>,
    warn: &mut dyn FnMut(String),
) {
    dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.len()));
    for dir in dirs {
        let result = match dir.rel.split_last() {
            Some((last, parents)) => open_dirs(root, parents, false)
                .map_err(|e| match e {
                    Walk::Symlink(at) => io::Error::other(format!("goes through the symlink {at}")),
                    Walk::Io(e) => e,
                })
                .and_then(|parent| set_dir_attributes(parent.as_fd(), last, dir.mode, dir.mtime)),
            None => match &dest.name {
                Some(name) => set_dir_attributes(dest.parent.as_fd(), name, dir.mode, dir.mtime),
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            warn(format!(
                "{}: cannot set mode or mtime: {e}",
                local_path(&dest.path, &dir.rel).display()
            ));
        }
    }
}

fn set_dir_attributes(
    parent: BorrowedFd<'_>,
    name: &[u8],
    mode: u32,
    mtime: i64,
) -> io::Result<()> {
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // The sticky bit is kept; set-id bits on directories are dropped like on files.
    rustix::fs::fchmod(&dir, permissions(mode & 0o1777))?;
    rustix::fs::futimens(&dir, &times(mtime))?;
    Ok(())
}

/// What to do with a symlink entry.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkPlan {
    /// Its target stays inside the destination as it is.
    Keep,
    /// An absolute target inside the copied path, made relative.
    Rewrite(Vec<u8>),
    /// Not made: the reason.
    Refuse(String),
}

/// Decides a symlink in directory `parent` (components below the copy's top), pointing at
/// `target`, when the copy is of the target's `/<prefix>`.
///
/// Relative targets may climb (`../../x`) only as far as the copy's top and may not climb
/// again after descending (`a/../../x`): `a` might itself be a link, so only that shape can
/// be checked without following anything. Absolute targets mean the target's root: kept
/// (made relative, by the shortest way from `parent`) when inside the copied path, else
/// refused.
pub fn link_plan(parent: &[Vec<u8>], target: &[u8], prefix: &[Vec<u8>]) -> LinkPlan {
    let depth = parent.len();
    if target.is_empty() {
        return LinkPlan::Refuse("it has an empty target".into());
    }
    if target.contains(&0) {
        return LinkPlan::Refuse("its target contains a NUL byte".into());
    }
    let parts: Vec<&[u8]> = target
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    if target[0] == b'/' {
        if parts.contains(&&b".."[..]) {
            return LinkPlan::Refuse("its absolute target contains `..`".into());
        }
        let inside = parts.len() >= prefix.len()
            && parts
                .iter()
                .zip(prefix)
                .all(|(part, expected)| *part == expected.as_slice());
        if !inside {
            return LinkPlan::Refuse(format!(
                "it points outside the copied path /{}",
                join(prefix)
            ));
        }
        let inside = &parts[prefix.len()..];
        let shared = parent
            .iter()
            .zip(inside)
            .take_while(|(a, b)| a.as_slice() == **b)
            .count();
        let mut relative: Vec<&[u8]> = vec![b".."; depth - shared];
        relative.extend_from_slice(&inside[shared..]);
        if relative.is_empty() {
            return LinkPlan::Rewrite(b".".to_vec());
        }
        return LinkPlan::Rewrite(relative.join(&b'/'));
    }
    let climbs = parts.iter().take_while(|p| **p == b"..").count();
    if parts[climbs..].contains(&&b".."[..]) {
        return LinkPlan::Refuse("its target climbs with `..` after a name".into());
    }
    if climbs > depth {
        return LinkPlan::Refuse("it points outside the destination".into());
    }
    LinkPlan::Keep
}

/// Splits an archive name into components, refusing absolute names, `..` and NUL bytes.
pub fn components(name: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    tar_format::name_components(name).map_err(|unsafe_name| {
        match unsafe_name {
            UnsafeName::Absolute => "it is an absolute name",
            UnsafeName::Nul => "its name contains a NUL byte",
            UnsafeName::Parent => "its name contains `..`",
        }
        .to_string()
    })
}

enum Walk {
    /// The path goes through a symlink (named by its path below the copy's top).
    Symlink(String),
    Io(io::Error),
}

/// Opens `parts` below `top` as directories, never following a symlink; makes missing ones
/// when `create` (archives may omit parent directory entries).
fn open_dirs(top: BorrowedFd<'_>, parts: &[Vec<u8>], create: bool) -> Result<OwnedFd, Walk> {
    let flags = DIR_HANDLE | OFlags::NOFOLLOW;
    let mut current = top.try_clone_to_owned().map_err(Walk::Io)?;
    for (i, part) in parts.iter().enumerate() {
        let opened = match rustix::fs::openat(&current, part.as_slice(), flags, Mode::empty()) {
            Err(rustix::io::Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&current, part.as_slice(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(Walk::Io(e.into())),
                }
                rustix::fs::openat(&current, part.as_slice(), flags, Mode::empty())
            }
            other => other,
        };
        match opened {
            Ok(fd) => current = fd,
            Err(e) => {
                if matches!(file_type_at(current.as_fd(), part), Ok(FileType::Symlink)) {
                    return Err(Walk::Symlink(join(&parts[..=i])));
                }
                return Err(Walk::Io(e.into()));
            }
        }
    }
    Ok(current)
}

fn file_type_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<FileType> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(FileType::from_raw_mode(st.st_mode))
}

/// Makes room for a file or link: an existing non-directory is removed (so it is replaced,
/// never written through); a directory is an error.
fn remove_non_dir(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match file_type_at(parent, name) {
        Ok(FileType::Directory) => Err(io::Error::other("a directory is in the way")),
        Ok(_) => Ok(rustix::fs::unlinkat(parent, name, AtFlags::empty())?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn join(parts: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&parts.join(&b'/')).into_owned()
}

fn local_path(top: &Path, rel: &[Vec<u8>]) -> PathBuf {
    let mut path = top.to_path_buf();
    for part in rel {
        path.push(OsStr::from_bytes(part));
    }
    path
}

fn system_time(mtime: i64) -> SystemTime {
    if mtime >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(mtime.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(mtime.unsigned_abs())
    }
}

fn times(mtime: i64) -> Timestamps {
    let at = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: at,
        last_modification: at,
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

#[cfg(test)]
#[path = "extract_tests.rs"]
pub(crate) mod tests;
