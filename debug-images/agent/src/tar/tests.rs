//! `tar` and `untar` end to end on scratch trees: what goes in comes out, nothing escapes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Cursor;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::archive::{Archiver, FdSink, Stats};
use super::extract::{self, ExtractError};
use super::format::{self, Entry, Kind};
use super::resolve::{Resolver, Root, tests::tree};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dda-tar-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn tar_of(root: &Root, paths: &[&str]) -> (Vec<u8>, Stats, Vec<String>) {
    let mut warnings = Vec::new();
    let mut out = Vec::new();
    let stats = {
        let mut archiver = Archiver::new(root, &mut out, &[], |w| warnings.push(w));
        for path in paths {
            archiver.add_path(path.as_bytes()).unwrap();
        }
        archiver.finish().unwrap()
    };
    (out, stats, warnings)
}

fn entries(archive: &[u8]) -> Vec<(Entry, Vec<u8>)> {
    let mut reader = format::Reader::new(archive);
    let mut all = Vec::new();
    while let Some(entry) = reader.next_entry().unwrap() {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut reader.data(), &mut data).unwrap();
        all.push((entry, data));
    }
    all
}

fn names(archive: &[u8]) -> Vec<String> {
    entries(archive)
        .iter()
        .map(|(e, _)| String::from_utf8_lossy(&e.name).into_owned())
        .collect()
}

fn both_resolvers(dir: &Path) -> Vec<Root> {
    let kernel = Root::open(dir).unwrap();
    let mut roots = vec![Root::open_with(dir, Resolver::Userspace).unwrap()];
    if kernel.resolver() == Resolver::Kernel {
        roots.push(kernel);
    }
    roots
}

#[test]
fn command_line_paths_follow_the_targets_symlinks_inside_the_root() {
    let base = tree("tar-follow");
    for root in both_resolvers(&base.join("root")) {
        let (archive, stats, warnings) = tar_of(&root, &["/etc/app/current/config.yaml", "escape"]);
        assert!(warnings.is_empty(), "{warnings:?}");
        let all = entries(&archive);
        let found: Vec<(String, Vec<u8>)> = all
            .iter()
            .map(|(e, d)| (String::from_utf8_lossy(&e.name).into_owned(), d.clone()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("etc/app/current/config.yaml".to_string(), b"v2".to_vec()),
                ("escape".to_string(), Vec::new()),
                ("escape/secret".to_string(), b"inside".to_vec()),
            ],
            "{:?}",
            root.resolver()
        );
        assert_eq!(stats.entries, 3);
    }
    fs::remove_dir_all(base).unwrap();
}

/// A tree with file sizes around the 512-byte block and over the 1 MiB copy buffer, and a
/// hard link, archived through `sink`.
fn tar_through(root: &Root, sink: FdSink) {
    let mut archiver = Archiver::new(root, sink, &[], |_| {});
    archiver.add_path(b"/").unwrap();
    archiver.finish().unwrap();
}

fn sized_tree(name: &str) -> PathBuf {
    let base = tree(name);
    let root = base.join("root");
    for (file, size) in [
        ("empty", 0),
        ("block", 512),
        ("odd", 513),
        ("big", 3 << 20 | 7),
    ] {
        let data: Vec<u8> = (0..size)
            .map(|i: u32| (i.wrapping_mul(7) % 251) as u8)
            .collect();
        fs::write(root.join(file), data).unwrap();
    }
    fs::hard_link(root.join("odd"), root.join("odd-again")).unwrap();
    base
}

#[test]
fn file_data_sent_into_a_pipe_by_sendfile_is_the_archive_a_copy_makes() {
    let base = sized_tree("tar-sendfile");
    let root = Root::open(&base.join("root")).unwrap();
    let (copied, _, _) = tar_of(&root, &["/"]);
    let (mut reader, writer) = std::io::pipe().unwrap();
    let reading = std::thread::spawn(move || {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut all).unwrap();
        all
    });
    tar_through(&root, FdSink::new(writer.into()));
    let sent = reading.join().unwrap();
    assert!(copied.len() > 3 << 20);
    assert!(sent == copied, "the same archive, byte for byte");
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn an_output_sendfile_refuses_gets_the_data_copied() {
    // sendfile(2) refuses a file opened for appending (EINVAL).
    let base = sized_tree("tar-append");
    let root = Root::open(&base.join("root")).unwrap();
    let (copied, _, _) = tar_of(&root, &["/"]);
    let out = base.join("out.tar");
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)
        .unwrap();
    tar_through(&root, FdSink::new(file.into()));
    assert!(fs::read(&out).unwrap() == copied, "the same archive");
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn symlinks_below_a_directory_are_archived_not_followed() {
    let base = tree("tar-nofollow");
    let root = Root::open(&base.join("root")).unwrap();
    let (archive, _, _) = tar_of(&root, &["/"]);
    let all = entries(&archive);
    let escape = all.iter().find(|(e, _)| e.name == b"escape").unwrap();
    assert_eq!(escape.0.kind, Kind::Symlink);
    assert_eq!(escape.0.link, b"../../outside");
    assert!(
        all.iter().all(|(_, data)| data != b"outside"),
        "nothing from outside the root"
    );
    assert!(names(&archive).contains(&"outside/secret".to_string()));
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn missing_paths_and_excludes() {
    let base = tree("tar-missing");
    let root = Root::open(&base.join("root")).unwrap();
    let (_, stats, warnings) = tar_of(&root, &["/no/such"]);
    assert_eq!(stats.entries, 0);
    assert_eq!(
        warnings,
        vec!["/no/such: No such file or directory".to_string()]
    );

    let mut out = Vec::new();
    let mut archiver = Archiver::new(&root, &mut out, &[b"/etc/app".to_vec()], |_| {});
    archiver.add_path(b"/etc").unwrap();
    archiver.finish().unwrap();
    assert_eq!(names(&out), vec!["etc", "etc/file"]);
    fs::remove_dir_all(base).unwrap();
}

/// A tree with every kind of member and the attributes tar must keep.
fn rich_tree(dir: &Path) {
    fs::create_dir_all(dir.join("d/sub")).unwrap();
    fs::create_dir_all(dir.join("empty")).unwrap();
    fs::write(dir.join("d/data.txt"), "data\n").unwrap();
    fs::write(dir.join("d/run.sh"), "#!/bin/sh\n").unwrap();
    fs::write(dir.join("d/sub/big.bin"), vec![0xabu8; 300_000]).unwrap();
    let long_dir = dir.join("l".repeat(90)).join("m".repeat(90));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("deep.txt"), "deep").unwrap();
    fs::hard_link(dir.join("d/data.txt"), dir.join("d/hard.txt")).unwrap();
    symlink("data.txt", dir.join("d/link")).unwrap();
    symlink("/abs/target/that/does/not/exist", dir.join("dangling")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();
    fs::set_permissions(dir.join("d/data.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(dir.join("d/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir.join("d/sub"), fs::Permissions::from_mode(0o750)).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    fs::File::options()
        .write(true)
        .open(dir.join("d/run.sh"))
        .unwrap()
        .set_modified(old)
        .unwrap();
}

/// path → (kind, mode, mtime for files, content or link target, link count)
fn describe_tree(dir: &Path) -> BTreeMap<String, (String, u32, i64, Vec<u8>, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let ft = meta.file_type();
            let (kind, content, mtime) = if ft.is_symlink() {
                (
                    "link",
                    fs::read_link(&path)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                    0,
                )
            } else if ft.is_dir() {
                stack.push(path.clone());
                ("dir", Vec::new(), meta.mtime())
            } else if ft.is_file() {
                ("file", fs::read(&path).unwrap(), meta.mtime())
            } else {
                continue;
            };
            out.insert(
                rel,
                (
                    kind.to_string(),
                    meta.mode() & 0o7777,
                    mtime,
                    content,
                    meta.nlink(),
                ),
            );
        }
    }
    out
}

#[test]
fn round_trip_keeps_contents_modes_mtimes_links() {
    let base = scratch("roundtrip");
    let src = base.join("src");
    let dst = base.join("dst");
    fs::create_dir_all(&dst).unwrap();
    rich_tree(&src);
    let root = Root::open(&src).unwrap();
    let (archive, stats, warnings) = tar_of(&root, &["/"]);
    assert_eq!(warnings, vec!["skipped /sock: socket".to_string()]);
    assert_eq!(stats.skipped, 1);

    let dest = Root::open(&dst).unwrap();
    let dest_fd = dest
        .open_inside(b"/", libc::O_PATH | libc::O_DIRECTORY, true)
        .unwrap();
    let mut notes = Vec::new();
    extract::extract(dest_fd, Cursor::new(&archive), |n| notes.push(n)).unwrap();
    assert!(notes.is_empty(), "{notes:?}");

    let mut expected = describe_tree(&src);
    expected.remove("sock");
    assert_eq!(describe_tree(&dst), expected);
    let a = fs::metadata(dst.join("d/data.txt")).unwrap();
    let b = fs::metadata(dst.join("d/hard.txt")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard links stay hard links");
    fs::remove_dir_all(base).unwrap();
}

fn malicious(members: &[(&str, Kind, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link) in members {
        let data: &[u8] = if *kind == Kind::File { b"pwned" } else { b"" };
        let entry = Entry {
            name: name.as_bytes().to_vec(),
            kind: *kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: data.len() as u64,
            mtime: 0,
            link: link.as_bytes().to_vec(),
        };
        format::write_header(&mut out, &entry).unwrap();
        out.extend_from_slice(data);
        format::write_padding(&mut out, data.len() as u64).unwrap();
    }
    format::write_end(&mut out).unwrap();
    out
}

#[test]
fn untar_refuses_every_kind_of_tar_slip_and_names_the_entry() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (malicious(&[("../evil", Kind::File, "")]), "../evil"),
        (
            malicious(&[("ok/../../evil", Kind::File, "")]),
            "ok/../../evil",
        ),
        (malicious(&[("/evil", Kind::File, "")]), "/evil"),
        (
            malicious(&[("link", Kind::Symlink, "/"), ("link/evil", Kind::File, "")]),
            "link/evil",
        ),
        (
            malicious(&[("up", Kind::Symlink, ".."), ("up/evil", Kind::File, "")]),
            "up/evil",
        ),
        (
            malicious(&[
                ("d", Kind::Symlink, "../outside"),
                ("d", Kind::Directory, ""),
            ]),
            "d",
        ),
        (
            malicious(&[("h", Kind::HardLink, "../outside/secret")]),
            "h",
        ),
    ];
    for (archive, bad) in cases {
        let base = scratch("slip");
        let dest_dir = base.join("dest");
        fs::create_dir_all(&dest_dir).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret"), "secret").unwrap();
        let root = Root::open(&base).unwrap();
        let dest = root
            .open_inside(b"/dest", libc::O_PATH | libc::O_DIRECTORY, true)
            .unwrap();
        let err = extract::extract(dest, Cursor::new(&archive), |_| {}).unwrap_err();
        match &err {
            ExtractError::Refused { entry, .. } => assert_eq!(entry, bad, "{err}"),
            other => panic!("{bad}: expected a refusal, got {other}"),
        }
        assert!(err.to_string().contains(bad));
        assert!(
            !base.join("evil").exists() && !Path::new("/evil").exists(),
            "{bad}"
        );
        assert_eq!(
            fs::read_to_string(base.join("outside/secret")).unwrap(),
            "secret"
        );
        assert_eq!(
            fs::read_dir(base.join("outside")).unwrap().count(),
            1,
            "{bad}"
        );
        fs::remove_dir_all(base).unwrap();
    }
}

#[test]
fn untar_replaces_files_but_not_through_symlinks() {
    let base = scratch("replace");
    fs::create_dir_all(base.join("dest")).unwrap();
    fs::write(base.join("target-file"), "keep").unwrap();
    // An existing symlink at a file's name is replaced by the file, not written through.
    symlink(base.join("target-file"), base.join("dest/f")).unwrap();
    let archive = malicious(&[("f", Kind::File, "")]);
    let root = Root::open(&base).unwrap();
    let dest = root
        .open_inside(b"dest", libc::O_PATH | libc::O_DIRECTORY, true)
        .unwrap();
    extract::extract(dest, Cursor::new(&archive), |_| {}).unwrap();
    assert_eq!(fs::read_to_string(base.join("dest/f")).unwrap(), "pwned");
    assert_eq!(
        fs::read_to_string(base.join("target-file")).unwrap(),
        "keep"
    );
    assert!(
        !fs::symlink_metadata(base.join("dest/f"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    fs::remove_dir_all(base).unwrap();
}
