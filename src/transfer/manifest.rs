//! The snapshot archive: the agent's tar of the target's `/`, filtered by `--include` and
//! `--exclude`, rewritten entry by entry into the output, with a manifest of every entry
//! (path, type, size, mode, ids, mtime, sha256, link target) computed while the bytes pass
//! and stored as the archive's last member, [`MANIFEST_NAME`].
//!
//! Nothing is buffered but one header and one chunk: the manifest's lines are the only thing
//! that grows (a few hundred bytes per file). With `--include`, a directory entry is held
//! back until something below it is kept, so the archive has no empty skeleton of the tree.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use ring::digest::{Context, SHA256};
use serde::Serialize;
use tar_format::{Entry, Kind, Reader, write_end, write_header, write_padding};

use crate::transfer::glob::Glob;

/// The manifest's name in the archive.
pub const MANIFEST_NAME: &str = "distroless-debug-manifest.json";

/// Which paths go into the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub include: Vec<Glob>,
    pub exclude: Vec<Glob>,
}

impl Filter {
    pub fn keeps(&self, path: &str) -> bool {
        if self.exclude.iter().any(|g| g.covers(path)) {
            return false;
        }
        self.include.is_empty() || self.include.iter().any(|g| g.covers(path))
    }
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// As the target sees it: `/etc/app/v2/config.yaml`.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Octal, as `ls` and `chmod` speak it: `0644`.
    pub mode: String,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target, or the path a hard link shares its data with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The manifest document. Versioned: fields are only added.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The target container's image, as the pod spec names it.
    pub image: String,
    pub created: String,
    /// Paths the agent left out at the source (always /proc, /sys, /dev; volumes with
    /// `--no-volumes`; literal `--exclude` paths).
    pub excluded: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    /// What the agent reported while reading (unreadable files, skipped sockets).
    pub notes: Vec<String>,
    pub entries: Vec<Item>,
}

/// Rewrites the agent's stream into `out`; call [`Recorder::finish`] with the manifest.
pub struct Recorder<W: Write> {
    out: W,
    filter: Filter,
    items: Vec<Item>,
    /// Directories seen but not yet written (with `--include`), outermost first.
    pending: Vec<Entry>,
    /// Names written, for hard links whose first name was filtered out.
    written: HashSet<Vec<u8>>,
    buf: Vec<u8>,
    pub files: u64,
    pub bytes: u64,
}

impl<W: Write> Recorder<W> {
    pub fn new(out: W, filter: Filter) -> Self {
        Recorder {
            out,
            filter,
            items: Vec::new(),
            pending: Vec::new(),
            written: HashSet::new(),
            buf: vec![0u8; 256 * 1024],
            files: 0,
            bytes: 0,
        }
    }

    /// Copies every kept entry of `input`; `Err` is a broken input or output.
    pub fn copy_from(
        &mut self,
        input: impl Read,
        warn: &mut dyn FnMut(String),
    ) -> Result<(), RecordError> {
        let mut reader = Reader::new(input);
        while let Some(entry) = reader.next_entry().map_err(RecordError::Input)? {
            let path = format!("/{}", String::from_utf8_lossy(&entry.name));
            // Directories above this entry that are still pending stay; others are done.
            self.pending.retain(|d| {
                entry.name.starts_with(&d.name) && entry.name.get(d.name.len()) == Some(&b'/')
            });
            if entry.name == MANIFEST_NAME.as_bytes() {
                warn(format!(
                    "left out /{MANIFEST_NAME} of the target: the snapshot's own manifest has that name"
                ));
                continue;
            }
            if !self.filter.keeps(&path) {
                if entry.kind == Kind::Directory
                    && !self.filter.exclude.iter().any(|g| g.covers(&path))
                {
                    self.pending.push(entry);
                }
                continue;
            }
            if entry.kind == Kind::HardLink && !self.written.contains(&entry.link) {
                warn(format!(
                    "left out {path}: a hard link to /{}, which is not in the snapshot",
                    String::from_utf8_lossy(&entry.link)
                ));
                continue;
            }
            for dir in std::mem::take(&mut self.pending) {
                self.write_plain(&dir)?;
            }
            self.write_entry(&entry, &path, &mut reader)?;
        }
        Ok(())
    }

    fn write_plain(&mut self, entry: &Entry) -> Result<(), RecordError> {
        let path = format!("/{}", String::from_utf8_lossy(&entry.name));
        write_header(&mut self.out, entry).map_err(RecordError::Output)?;
        self.record(entry, path, None);
        Ok(())
    }

    fn write_entry(
        &mut self,
        entry: &Entry,
        path: &str,
        reader: &mut Reader<impl Read>,
    ) -> Result<(), RecordError> {
        if entry.kind != Kind::File {
            return self.write_plain(entry);
        }
        write_header(&mut self.out, entry).map_err(RecordError::Output)?;
        let mut hash = Context::new(&SHA256);
        let mut data = reader.data();
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RecordError::Input(e)),
            };
            hash.update(&self.buf[..n]);
            self.out
                .write_all(&self.buf[..n])
                .map_err(RecordError::Output)?;
        }
        write_padding(&mut self.out, entry.size).map_err(RecordError::Output)?;
        self.files += 1;
        self.bytes += entry.size;
        let digest: String = hash
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.record(entry, path.to_string(), Some(digest));
        Ok(())
    }

    fn record(&mut self, entry: &Entry, path: String, sha256: Option<String>) {
        self.written.insert(entry.name.clone());
        let (kind, target) = match entry.kind {
            Kind::File => ("file", None),
            Kind::Directory => ("directory", None),
            Kind::Symlink => (
                "symlink",
                Some(String::from_utf8_lossy(&entry.link).into_owned()),
            ),
            Kind::HardLink => (
                "hardlink",
                Some(format!("/{}", String::from_utf8_lossy(&entry.link))),
            ),
            Kind::CharDevice => ("char-device", None),
            Kind::BlockDevice => ("block-device", None),
            Kind::Fifo => ("fifo", None),
            Kind::Other(_) => ("other", None),
        };
        self.items.push(Item {
            path,
            kind,
            size: (entry.kind == Kind::File).then_some(entry.size),
            mode: format!("{:04o}", entry.mode & 0o7777),
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime,
            sha256,
            target,
        });
    }

    /// Appends the manifest (with the entries recorded) and the end of the archive; returns
    /// the output for the caller to finish (a gzip trailer, a flush).
    pub fn finish(mut self, mut manifest: Manifest, mtime: i64) -> Result<W, RecordError> {
        manifest.files = self.files;
        manifest.bytes = self.bytes;
        manifest.entries = std::mem::take(&mut self.items);
        let mut json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| RecordError::Output(io::Error::other(e)))?;
        json.push(b'\n');
        let entry = Entry {
            name: MANIFEST_NAME.as_bytes().to_vec(),
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: json.len() as u64,
            mtime,
            link: Vec::new(),
        };
        write_header(&mut self.out, &entry)
            .and_then(|()| self.out.write_all(&json))
            .and_then(|()| write_padding(&mut self.out, entry.size))
            .and_then(|()| write_end(&mut self.out))
            .and_then(|()| self.out.flush())
            .map_err(RecordError::Output)?;
        Ok(self.out)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the archive stream from the agent is broken")]
    Input(#[source] io::Error),
    #[error("writing the snapshot failed")]
    Output(#[source] io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: Kind, data: &[u8], link: &str) -> (Entry, Vec<u8>) {
        (
            Entry {
                name: name.into(),
                kind,
                mode: if kind == Kind::Directory {
                    0o755
                } else {
                    0o644
                },
                uid: 65532,
                gid: 65532,
                size: data.len() as u64,
                mtime: 1_700_000_000,
                link: link.into(),
            },
            data.to_vec(),
        )
    }

    fn agent_stream() -> Vec<u8> {
        let mut out = Vec::new();
        for (e, data) in [
            entry("etc", Kind::Directory, b"", ""),
            entry("etc/app", Kind::Directory, b"", ""),
            entry("etc/app/current", Kind::Symlink, b"", "/etc/app/v2"),
            entry("etc/app/v2", Kind::Directory, b"", ""),
            entry("etc/app/v2/config.yaml", Kind::File, b"greeting: ok\n", ""),
            entry(
                "etc/app/v2/same.yaml",
                Kind::HardLink,
                b"",
                "etc/app/v2/config.yaml",
            ),
            entry("etc/passwd", Kind::File, b"root:x:0:0\n", ""),
            entry("var", Kind::Directory, b"", ""),
            entry("var/log", Kind::Directory, b"", ""),
            entry("var/log/app.log", Kind::File, &[b'x'; 1000], ""),
            entry("sandbox-app", Kind::File, b"\x7fELF", ""),
        ] {
            write_header(&mut out, &e).unwrap();
            out.extend_from_slice(&data);
            write_padding(&mut out, data.len() as u64).unwrap();
        }
        write_end(&mut out).unwrap();
        out
    }

    fn manifest() -> Manifest {
        Manifest {
            api_version: "distroless-debug/v1",
            kind: "SnapshotManifest",
            namespace: "files".into(),
            pod: "web".into(),
            container: "app".into(),
            image: "sandbox.local/distroless-app:nonroot".into(),
            created: "2026-11-26T18:00:00Z".into(),
            excluded: vec!["/proc".into()],
            include: Vec::new(),
            exclude: Vec::new(),
            files: 0,
            bytes: 0,
            notes: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// (names in the archive, the manifest's JSON) for a filter.
    fn snapshot(filter: Filter) -> (Vec<String>, serde_json::Value, Vec<String>) {
        let mut warnings = Vec::new();
        let mut recorder = Recorder::new(Vec::new(), filter);
        recorder
            .copy_from(&agent_stream()[..], &mut |w| warnings.push(w))
            .unwrap();
        let archive = recorder.finish(manifest(), 1_800_000_000).unwrap();
        let mut reader = Reader::new(&archive[..]);
        let mut names = Vec::new();
        let mut json = Vec::new();
        while let Some(e) = reader.next_entry().unwrap() {
            names.push(String::from_utf8_lossy(&e.name).into_owned());
            if e.name == MANIFEST_NAME.as_bytes() {
                reader.data().read_to_end(&mut json).unwrap();
            }
        }
        (names, serde_json::from_slice(&json).unwrap(), warnings)
    }

    fn sha256_hex(data: &[u8]) -> String {
        ring::digest::digest(&SHA256, data)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn everything_goes_through_with_a_manifest_last() {
        let (names, m, warnings) = snapshot(Filter::default());
        assert!(warnings.is_empty());
        assert_eq!(names.len(), 12);
        assert_eq!(names.last().map(String::as_str), Some(MANIFEST_NAME));
        assert_eq!(m["kind"], "SnapshotManifest");
        assert_eq!(m["files"], 4);
        assert_eq!(m["bytes"], 13 + 11 + 1000 + 4);
        let entries = m["entries"].as_array().unwrap();
        let config = entries
            .iter()
            .find(|e| e["path"] == "/etc/app/v2/config.yaml")
            .unwrap();
        assert_eq!(config["type"], "file");
        assert_eq!(config["size"], 13);
        assert_eq!(config["mode"], "0644");
        assert_eq!(config["uid"], 65532);
        assert_eq!(config["sha256"], sha256_hex(b"greeting: ok\n").as_str());
        let link = entries
            .iter()
            .find(|e| e["path"] == "/etc/app/current")
            .unwrap();
        assert_eq!(
            (&link["type"], &link["target"]),
            (&"symlink".into(), &"/etc/app/v2".into())
        );
        assert!(link.get("sha256").is_none());
        let hard = entries
            .iter()
            .find(|e| e["path"] == "/etc/app/v2/same.yaml")
            .unwrap();
        assert_eq!(hard["target"], "/etc/app/v2/config.yaml");
    }

    #[test]
    fn exclude_drops_a_subtree_and_include_keeps_only_what_it_names_and_its_parents() {
        let filter = Filter {
            include: Vec::new(),
            exclude: vec![Glob::new("/var/log").unwrap(), Glob::new("*.yaml").unwrap()],
        };
        let (names, m, warnings) = snapshot(filter);
        assert!(!names.iter().any(|n| n.starts_with("var/log")), "{names:?}");
        assert!(names.contains(&"var".to_string()));
        assert!(!names.iter().any(|n| n.ends_with(".yaml")), "{names:?}");
        // The hard link's data went with its excluded first name.
        assert_eq!(
            warnings.len(),
            0,
            "same.yaml is excluded by *.yaml itself: {warnings:?}"
        );
        assert_eq!(m["files"], 2);

        let filter = Filter {
            include: vec![Glob::new("/etc/app/v2/*.yaml").unwrap()],
            exclude: Vec::new(),
        };
        let (names, _, _) = snapshot(filter);
        assert_eq!(
            names,
            [
                "etc",
                "etc/app",
                "etc/app/v2",
                "etc/app/v2/config.yaml",
                "etc/app/v2/same.yaml",
                MANIFEST_NAME
            ]
        );
    }

    #[test]
    fn a_hard_link_whose_data_was_left_out_is_left_out_too() {
        let filter = Filter {
            include: Vec::new(),
            exclude: vec![Glob::new("/etc/app/v2/config.yaml").unwrap()],
        };
        let (names, _, warnings) = snapshot(filter);
        assert!(!names.iter().any(|n| n.ends_with("same.yaml")));
        assert_eq!(
            warnings,
            [
                "left out /etc/app/v2/same.yaml: a hard link to /etc/app/v2/config.yaml, which is not in the snapshot"
            ]
        );
    }

    #[test]
    fn a_broken_stream_is_an_input_error() {
        let stream = agent_stream();
        let mut recorder = Recorder::new(Vec::new(), Filter::default());
        let err = recorder
            .copy_from(&stream[..1500], &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, RecordError::Input(_)), "{err:?}");
    }
}
