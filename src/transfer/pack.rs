//! The local side of an upload: a file or directory written as a tar stream for the agent's
//! `untar`, read from disk as it is sent (nothing is held in memory).
//!
//! The path the user named is followed if it is a symlink (like `cp` and `tar -H`); below
//! it nothing is followed: symlinks travel as symlinks, hard links as links to the first
//! name. Sockets, devices and fifos are skipped with a note, unreadable files reported and
//! skipped. Entries carry uid/gid 0: the agent keeps ids only when it runs as root, so the
//! files end up owned by whoever writes them in the target (the target's own uid), never by
//! a local uid that means nothing there. Set-id bits are not sent.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar_format::{Entry, Kind, write_end, write_header, write_padding};

/// What went into the stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Packed {
    pub entries: u64,
    /// File data bytes.
    pub bytes: u64,
    pub skipped: u64,
    pub unreadable: u64,
    pub top_is_dir: bool,
}

/// Why packing stopped.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The path the user named cannot be read: nothing was sent.
    #[error("cannot read {path}")]
    Source {
        path: String,
        #[source]
        error: io::Error,
    },
    /// The stream to the agent broke (it stopped reading: the agent's stderr says why).
    #[error("the upload stream broke")]
    Output(#[source] io::Error),
}

/// Writes `source` as a tar whose top entry is named `name` (a single component, or empty
/// to send a directory's children without an entry of its own).
pub fn pack(
    source: &Path,
    name: &[u8],
    out: impl Write,
    warn: &mut dyn FnMut(String),
) -> Result<Packed, PackError> {
    let meta = std::fs::metadata(source).map_err(|error| PackError::Source {
        path: source.display().to_string(),
        error,
    })?;
    let mut packer = Packer {
        out,
        links: HashMap::new(),
        stats: Packed {
            top_is_dir: meta.is_dir(),
            ..Packed::default()
        },
        buf: vec![0u8; 256 * 1024],
        warn,
    };
    if meta.is_file() {
        // Opened before anything is sent, so an unreadable file is an error, not an archive
        // with a hole.
        let file = File::open(source).map_err(|error| PackError::Source {
            path: source.display().to_string(),
            error,
        })?;
        packer.file(name.to_vec(), &meta, file, source)?;
    } else if meta.is_dir() {
        std::fs::read_dir(source).map_err(|error| PackError::Source {
            path: source.display().to_string(),
            error,
        })?;
        packer.add(name.to_vec(), source, &meta)?;
    } else {
        return Err(PackError::Source {
            path: source.display().to_string(),
            error: io::Error::other("it is neither a file nor a directory"),
        });
    }
    write_end(&mut packer.out)
        .and_then(|()| packer.out.flush())
        .map_err(PackError::Output)?;
    Ok(packer.stats)
}

struct Packer<'w, W: Write> {
    out: W,
    /// (dev, ino) of files with several names → the name sent first.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: Packed,
    buf: Vec<u8>,
    warn: &'w mut dyn FnMut(String),
}

impl<W: Write> Packer<'_, W> {
    fn add(&mut self, name: Vec<u8>, path: &Path, meta: &Metadata) -> Result<(), PackError> {
        let kind = meta.file_type();
        if kind.is_dir() {
            if !name.is_empty() {
                self.header(&entry(name.clone(), Kind::Directory, meta))?;
            }
            let mut children: Vec<_> = match std::fs::read_dir(path) {
                Ok(dir) => dir.filter_map(Result::ok).map(|e| e.file_name()).collect(),
                Err(e) => {
                    self.unreadable(path, &e);
                    return Ok(());
                }
            };
            children.sort();
            for child in children {
                let child_path = path.join(&child);
                let mut child_name = name.clone();
                if !child_name.is_empty() {
                    child_name.push(b'/');
                }
                child_name.extend_from_slice(child.as_bytes());
                match std::fs::symlink_metadata(&child_path) {
                    Ok(meta) => self.add(child_name, &child_path, &meta)?,
                    Err(e) => self.unreadable(&child_path, &e),
                }
            }
            Ok(())
        } else if kind.is_symlink() {
            match std::fs::read_link(path) {
                Ok(target) => {
                    let mut e = entry(name, Kind::Symlink, meta);
                    e.link = target.as_os_str().as_bytes().to_vec();
                    self.header(&e)
                }
                Err(e) => {
                    self.unreadable(path, &e);
                    Ok(())
                }
            }
        } else if kind.is_file() {
            match File::open(path) {
                Ok(file) => self.file(name, meta, file, path),
                Err(e) => {
                    self.unreadable(path, &e);
                    Ok(())
                }
            }
        } else {
            let what = if kind.is_socket() {
                "socket"
            } else if kind.is_fifo() {
                "fifo"
            } else {
                "device"
            };
            (self.warn)(format!("skipped {}: {what}", path.display()));
            self.stats.skipped += 1;
            Ok(())
        }
    }

    fn file(
        &mut self,
        name: Vec<u8>,
        meta: &Metadata,
        mut file: File,
        path: &Path,
    ) -> Result<(), PackError> {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let mut e = entry(name, Kind::HardLink, meta);
                e.link = first.clone();
                return self.header(&e);
            }
            self.links.insert(key, name.clone());
        }
        let mut e = entry(name, Kind::File, meta);
        e.size = meta.len();
        self.header(&e)?;
        let mut left = e.size;
        let mut failure = None;
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    failure = Some("it shrank while being sent; padded with zeros".to_string());
                    break;
                }
                Ok(n) => {
                    self.out
                        .write_all(&self.buf[..n])
                        .map_err(PackError::Output)?;
                    left -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(format!("{e}; the rest was padded with zeros"));
                    break;
                }
            }
        }
        if let Some(why) = failure {
            // The header promised `size` bytes: keep the archive valid, and say so.
            self.buf.fill(0);
            while left > 0 {
                let n = self
                    .buf
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                self.out
                    .write_all(&self.buf[..n])
                    .map_err(PackError::Output)?;
                left -= n as u64;
            }
            (self.warn)(format!("{}: {why}", path.display()));
            self.stats.unreadable += 1;
        }
        self.stats.bytes += e.size;
        write_padding(&mut self.out, e.size).map_err(PackError::Output)
    }

    fn header(&mut self, e: &Entry) -> Result<(), PackError> {
        write_header(&mut self.out, e).map_err(PackError::Output)?;
        self.stats.entries += 1;
        Ok(())
    }

    fn unreadable(&mut self, path: &Path, e: &io::Error) {
        (self.warn)(format!("skipped {}: {e}", path.display()));
        self.stats.unreadable += 1;
    }
}

fn entry(name: Vec<u8>, kind: Kind, meta: &Metadata) -> Entry {
    let keep = if kind == Kind::Directory {
        0o1777
    } else {
        0o777
    };
    Entry {
        name,
        kind,
        mode: meta.mode() & keep,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: meta.mtime(),
        link: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::transfer::extract::tests::Scratch;
    use crate::transfer::extract::{Destination, extract};

    fn warnings_of(source: &Path, name: &str) -> (Vec<u8>, Packed, Vec<String>) {
        let mut warnings = Vec::new();
        let mut out = Vec::new();
        let packed = pack(source, name.as_bytes(), &mut out, &mut |w| warnings.push(w)).unwrap();
        (out, packed, warnings)
    }

    #[test]
    fn a_directory_round_trips_through_the_extractor() {
        let s = Scratch::new("pack");
        let src = s.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/data.bin"), vec![9u8; 70_000]).unwrap();
        std::fs::write(src.join("run.sh"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(src.join("run.sh"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        symlink("sub/data.bin", src.join("link")).unwrap();
        std::fs::hard_link(src.join("run.sh"), src.join("again.sh")).unwrap();
        let (bytes, packed, warnings) = warnings_of(&src, "app");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!((packed.entries, packed.bytes), (6, 70_010));

        let destination = Destination::resolve(&s.join("copy"), b"app").unwrap();
        extract(&bytes[..], b"app", &destination, &mut |_| {}).unwrap();
        assert_eq!(
            std::fs::read(s.join("copy/sub/data.bin")).unwrap(),
            vec![9u8; 70_000]
        );
        assert_eq!(
            std::fs::read_link(s.join("copy/link")).unwrap(),
            Path::new("sub/data.bin")
        );
        let mode = std::fs::metadata(s.join("copy/run.sh")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "set-id bits are not sent");
    }

    #[test]
    fn a_symlink_named_on_the_command_line_is_followed_and_sockets_skipped() {
        let s = Scratch::new("packtop");
        std::fs::write(s.join("real"), b"x").unwrap();
        symlink(s.join("real"), s.join("named")).unwrap();
        let (bytes, packed, _) = warnings_of(&s.join("named"), "named");
        assert_eq!((packed.entries, packed.top_is_dir), (1, false));
        let mut reader = tar_format::Reader::new(&bytes[..]);
        let first = reader.next_entry().unwrap().unwrap();
        assert_eq!((first.kind, first.size), (Kind::File, 1));

        std::fs::create_dir(s.join("dir")).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(s.join("dir/sock")).unwrap();
        let (_, packed, warnings) = warnings_of(&s.join("dir"), "dir");
        assert_eq!(packed.skipped, 1);
        assert!(warnings[0].ends_with("sock: socket"), "{warnings:?}");
    }

    #[test]
    fn a_missing_source_is_an_error_before_anything_is_sent() {
        let mut out = Vec::new();
        let err = pack(Path::new("/nonexistent/x"), b"x", &mut out, &mut |_| {}).unwrap_err();
        assert!(matches!(err, PackError::Source { .. }));
        assert!(out.is_empty());
    }
}
