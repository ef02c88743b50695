//! `tar`: writes the target's files as a tar stream, every path resolved inside the root.
//!
//! Command-line paths are resolved with [`Root`], following symlinks as the target would
//! (so `/etc/app/current` archives what the target sees there). Below them the walk works on
//! directory descriptors only (`openat`/`fstatat` with `O_NOFOLLOW`): symlinks inside a
//! directory are archived as symlinks, never followed, so nothing outside the root can be
//! reached by a link planted in it.
//!
//! File data goes out by `sendfile(2)` when the output takes it (stdout as a pipe or socket,
//! which is what an exec gives us): the kernel moves the page-cache pages into the pipe, so a
//! large download costs the agent no copy through userspace, as `cat` costs busybox none.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::format::{self, Entry, Kind};
use super::resolve::{self, Root};
use crate::sys;

/// What happened, for the summary line and the exit code.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    /// Sockets, devices, fifos: skipped with a note.
    pub skipped: u64,
    /// Paths that could not be read: reported, not archived (or archived incomplete).
    pub unreadable: u64,
}

/// Where an archive goes: headers and padding are written; file data may be handed over
/// with [`Sink::send_file`] instead.
pub trait Sink: Write {
    /// Moves up to `count` bytes of `file`, from its current offset, to the output after all
    /// that was written before. `None`: this output cannot, so the data is copied instead.
    fn send_file(&mut self, _file: &File, _count: usize) -> Option<io::Result<usize>> {
        None
    }
}

impl Sink for Vec<u8> {}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn send_file(&mut self, file: &File, count: usize) -> Option<io::Result<usize>> {
        (**self).send_file(file, count)
    }
}

/// A descriptor as an archive's output (the agent's stdout): headers through a 1 MiB buffer
/// (not std's line-buffered stdout, which would split every write at its last newline), file
/// data by `sendfile(2)` until the kernel says this descriptor cannot take it.
pub struct FdSink {
    out: BufWriter<File>,
    sendfile: bool,
}

impl FdSink {
    pub fn new(fd: OwnedFd) -> FdSink {
        FdSink {
            out: BufWriter::with_capacity(1 << 20, File::from(fd)),
            sendfile: true,
        }
    }
}

impl Write for FdSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Sink for FdSink {
    fn send_file(&mut self, file: &File, count: usize) -> Option<io::Result<usize>> {
        if !self.sendfile {
            return None;
        }
        if let Err(e) = self.out.flush() {
            return Some(Err(e));
        }
        match sys::sendfile(self.out.get_ref().as_fd(), file.as_fd(), count) {
            // The output (a tty, a file opened for appending) or the file's filesystem does
            // not do it: copy from now on.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                ) =>
            {
                self.sendfile = false;
                None
            }
            other => Some(other),
        }
    }
}

pub struct Archiver<'r, W: Sink> {
    root: &'r Root,
    out: W,
    excludes: Vec<Vec<u8>>,
    /// (dev, ino) of files with several links → the name they were archived under.
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
    pub stats: Stats,
    warn: Box<dyn FnMut(String) + 'r>,
}

/// An error writing the archive itself: the stream is broken and we stop.
#[derive(Debug)]
pub struct OutputError(pub io::Error);

enum Object {
    File(OwnedFd),
    Dir(OwnedFd),
    Symlink(Vec<u8>),
    Other,
}

impl<'r, W: Sink> Archiver<'r, W> {
    pub fn new(
        root: &'r Root,
        out: W,
        excludes: &[Vec<u8>],
        warn: impl FnMut(String) + 'r,
    ) -> Self {
        Archiver {
            root,
            out,
            excludes: excludes.iter().map(|e| lexical_name(e)).collect(),
            links: HashMap::new(),
            buf: vec![0u8; 1 << 20],
            stats: Stats::default(),
            warn: Box::new(warn),
        }
    }

    /// Archives `path` (inside the root) under its lexical name without the leading `/`.
    pub fn add_path(&mut self, path: &[u8]) -> Result<(), OutputError> {
        let name = lexical_name(path);
        let shown = String::from_utf8_lossy(path).into_owned();
        let opened = self
            .root
            .open_inside(path, libc::O_PATH, true)
            .and_then(|fd| {
                let st = sys::fstatat(fd.as_fd(), c"", libc::AT_EMPTY_PATH)?;
                let object = match st.st_mode & libc::S_IFMT {
                    libc::S_IFDIR => Object::Dir(self.root.open_inside(
                        path,
                        libc::O_RDONLY | libc::O_DIRECTORY,
                        true,
                    )?),
                    libc::S_IFREG => Object::File(self.root.open_inside(
                        path,
                        libc::O_RDONLY | libc::O_NONBLOCK,
                        true,
                    )?),
                    _ => Object::Other,
                };
                Ok((object, st))
            });
        match opened {
            Ok((object, st)) => self.emit(name, object, st, &shown),
            Err(e) => {
                self.unreadable(&shown, e);
                Ok(())
            }
        }
    }

    pub fn finish(mut self) -> Result<Stats, OutputError> {
        format::write_end(&mut self.out)
            .and_then(|()| self.out.flush())
            .map_err(OutputError)?;
        Ok(self.stats)
    }

    fn emit(
        &mut self,
        name: Vec<u8>,
        object: Object,
        st: libc::stat,
        shown: &str,
    ) -> Result<(), OutputError> {
        if self.is_excluded(&name) {
            return Ok(());
        }
        let mut entry = Entry {
            name: name.clone(),
            kind: Kind::File,
            mode: st.st_mode & 0o7777,
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            size: 0,
            mtime: st.st_mtime,
            link: Vec::new(),
        };
        match object {
            Object::Dir(fd) => {
                // The root itself ("/") has no name: only its children are archived.
                if !name.is_empty() {
                    entry.kind = Kind::Directory;
                    self.write_entry(&entry)?;
                }
                self.walk(&name, fd.as_fd(), shown)
            }
            Object::Symlink(target) => {
                entry.kind = Kind::Symlink;
                entry.link = target;
                self.write_entry(&entry)
            }
            Object::File(fd) => {
                let file = File::from(fd);
                // The descriptor's own stat is the truth: the name may have changed since.
                let st = match sys::fstatat(file.as_fd(), c"", libc::AT_EMPTY_PATH) {
                    Ok(st) => st,
                    Err(e) => {
                        self.unreadable(shown, e);
                        return Ok(());
                    }
                };
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        entry.kind = Kind::HardLink;
                        entry.link = first.clone();
                        return self.write_entry(&entry);
                    }
                    self.links.insert(key, name.clone());
                }
                entry.size = st.st_size as u64;
                entry.mtime = st.st_mtime;
                self.write_entry(&entry)?;
                self.copy_data(file, entry.size, shown)
            }
            Object::Other => {
                let kind = match st.st_mode & libc::S_IFMT {
                    libc::S_IFSOCK => "socket",
                    libc::S_IFCHR => "character device",
                    libc::S_IFBLK => "block device",
                    libc::S_IFIFO => "fifo",
                    _ => "special file",
                };
                (self.warn)(format!("skipped {shown}: {kind}"));
                self.stats.skipped += 1;
                Ok(())
            }
        }
    }

    fn walk(&mut self, name: &[u8], dir: BorrowedFd<'_>, shown: &str) -> Result<(), OutputError> {
        let mut children = match sys::read_dir_names(dir) {
            Ok(children) => children,
            Err(e) => {
                self.unreadable(shown, e);
                return Ok(());
            }
        };
        children.sort();
        for child in children {
            let mut child_name = name.to_vec();
            if !child_name.is_empty() {
                child_name.push(b'/');
            }
            child_name.extend_from_slice(child.to_bytes());
            if self.is_excluded(&child_name) {
                continue;
            }
            let child_shown = format!("/{}", String::from_utf8_lossy(&child_name));
            match open_child(dir, &child) {
                Ok((object, st)) => self.emit(child_name, object, st, &child_shown)?,
                Err(e) => self.unreadable(&child_shown, e),
            }
        }
        Ok(())
    }

    fn copy_data(&mut self, mut file: File, size: u64, shown: &str) -> Result<(), OutputError> {
        let mut left = size;
        let mut failure = None;
        // Any error of sendfile (the file's or the output's) is left to the copy below to
        // meet again and report as it always does.
        let mut direct = true;
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            if direct {
                match self.out.send_file(&file, want) {
                    Some(Ok(0)) => {
                        failure = Some(format!(
                            "{shown}: file shrank while archived; padded with zeros"
                        ));
                        break;
                    }
                    Some(Ok(n)) => {
                        left -= n as u64;
                        continue;
                    }
                    Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Some(Err(_)) | None => direct = false,
                }
            }
            match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    failure = Some(format!(
                        "{shown}: file shrank while archived; padded with zeros"
                    ));
                    break;
                }
                Ok(n) => {
                    self.out.write_all(&self.buf[..n]).map_err(OutputError)?;
                    left -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(format!("{shown}: {e}; rest padded with zeros"));
                    break;
                }
            }
        }
        if let Some(message) = failure {
            self.buf[..].fill(0);
            while left > 0 {
                let n = self
                    .buf
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                self.out.write_all(&self.buf[..n]).map_err(OutputError)?;
                left -= n as u64;
            }
            (self.warn)(message);
            self.stats.unreadable += 1;
        }
        self.stats.bytes += size;
        format::write_padding(&mut self.out, size).map_err(OutputError)
    }

    fn write_entry(&mut self, entry: &Entry) -> Result<(), OutputError> {
        format::write_header(&mut self.out, entry).map_err(OutputError)?;
        self.stats.entries += 1;
        Ok(())
    }

    fn unreadable(&mut self, shown: &str, e: io::Error) {
        (self.warn)(format!("{shown}: {}", describe(&e)));
        self.stats.unreadable += 1;
    }

    fn is_excluded(&self, name: &[u8]) -> bool {
        self.excludes.iter().any(|ex| {
            name.starts_with(ex)
                && (name.len() == ex.len() || name[ex.len()] == b'/' || ex.is_empty())
        })
    }
}

/// Opens a directory entry without following it; sockets, devices and fifos are not opened.
fn open_child(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<(Object, libc::stat)> {
    let st = sys::fstatat(dir, name, libc::AT_SYMLINK_NOFOLLOW)?;
    let object = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Object::Dir(sys::openat(
            dir,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?),
        // O_NONBLOCK: should the name have become a fifo since the stat, open does not hang.
        libc::S_IFREG => Object::File(sys::openat(
            dir,
            name,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
            0,
        )?),
        libc::S_IFLNK => Object::Symlink(sys::readlinkat(dir, name)?),
        _ => Object::Other,
    };
    Ok((object, st))
}

/// `/a/./b//../c/` → `a/c`: the name an in-root path gets in the archive (`..` clamped at
/// the root, like the resolver does).
pub fn lexical_name(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for component in resolve::components(path) {
        if component == b".." {
            parts.pop();
        } else {
            parts.push(component);
        }
    }
    parts.join(&b'/')
}

/// `Permission denied` without Rust's `(os error 13)` suffix, as tar tools print it.
pub fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}
