//! The extractor against crafted archives: what a normal download makes, and every tar-slip
//! shape refused with the entry named and nothing written outside the destination.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::sync::atomic::{AtomicU32, Ordering};

use tar_format::{write_end, write_header, write_padding};

use super::*;

/// A directory under the system temp dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dd-extract-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Read-only directories from the tests would stop remove_dir_all.
        let _ = std::process::Command::new("chmod")
            .args(["-R", "u+rwx"])
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file(name: &str, mode: u32, data: &[u8]) -> (Entry, Vec<u8>) {
    (
        Entry {
            name: name.into(),
            kind: Kind::File,
            mode,
            uid: 65532,
            gid: 65532,
            size: data.len() as u64,
            mtime: 1_700_000_000,
            link: Vec::new(),
        },
        data.to_vec(),
    )
}

fn dir(name: &str, mode: u32) -> (Entry, Vec<u8>) {
    let (mut e, _) = file(name, mode, b"");
    e.kind = Kind::Directory;
    e.mtime = 1_600_000_000;
    (e, Vec::new())
}

fn link(name: &str, kind: Kind, target: &str) -> (Entry, Vec<u8>) {
    let (mut e, _) = file(name, 0o777, b"");
    e.kind = kind;
    e.link = target.into();
    (e, Vec::new())
}

fn archive(entries: &[(Entry, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (e, data) in entries {
        write_header(&mut out, e).unwrap();
        out.extend_from_slice(data);
        write_padding(&mut out, data.len() as u64).unwrap();
    }
    write_end(&mut out).unwrap();
    out
}

fn run(
    bytes: &[u8],
    prefix: &str,
    dest: &Path,
    source_name: &str,
) -> (Result<Stats, ExtractError>, Vec<String>) {
    let mut warnings = Vec::new();
    let destination = Destination::resolve(dest, source_name.as_bytes()).unwrap();
    let result = extract(bytes, prefix.as_bytes(), &destination, &mut |w| {
        warnings.push(w)
    });
    (result, warnings)
}

fn refused_entry(result: Result<Stats, ExtractError>) -> String {
    match result {
        Err(ExtractError::Refused { entry, .. }) => entry,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Every path below `dir`, sorted, for "nothing else was written" checks.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_file_goes_to_a_new_name_or_into_an_existing_directory_under_its_own_name() {
    let s = Scratch::new("file");
    let bytes = archive(&[file("etc/app/current/config.yaml", 0o640, b"port: 8080\n")]);
    let (result, _) = run(
        &bytes,
        "etc/app/current/config.yaml",
        &s.join("x"),
        "config.yaml",
    );
    let stats = result.unwrap();
    assert_eq!((stats.files, stats.bytes, stats.top_is_dir), (1, 11, false));
    assert_eq!(std::fs::read(s.join("x")).unwrap(), b"port: 8080\n");
    assert_eq!(mode(&s.join("x")), 0o640);
    assert_eq!(
        std::fs::metadata(s.join("x")).unwrap().mtime(),
        1_700_000_000
    );

    std::fs::create_dir(s.join("into")).unwrap();
    let (result, _) = run(
        &bytes,
        "etc/app/current/config.yaml",
        &s.join("into"),
        "config.yaml",
    );
    result.unwrap();
    assert_eq!(
        std::fs::read(s.join("into/config.yaml")).unwrap(),
        b"port: 8080\n"
    );
}

#[test]
fn a_directory_keeps_modes_mtimes_and_inside_symlinks() {
    let s = Scratch::new("dir");
    let bytes = archive(&[
        dir("etc/app", 0o750),
        dir("etc/app/v2", 0o755),
        file("etc/app/v2/config.yaml", 0o644, b"a: 1\n"),
        file("etc/app/v2/run.sh", 0o755, b"#!/bin/sh\n"),
        link("etc/app/current", Kind::Symlink, "/etc/app/v2"),
        link("etc/app/relative", Kind::Symlink, "v2/config.yaml"),
        link("etc/app/v2/up", Kind::Symlink, "../relative"),
        link("etc/app/v2/again", Kind::HardLink, "etc/app/v2/config.yaml"),
        dir("etc/app/locked", 0o555),
        file("etc/app/locked/inside", 0o444, b"x"),
    ]);
    // DEST absent: the directory becomes DEST.
    let (result, warnings) = run(&bytes, "etc/app", &s.join("copy"), "app");
    let stats = result.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        (
            stats.files,
            stats.directories,
            stats.symlinks,
            stats.hard_links
        ),
        (3, 3, 3, 1)
    );
    let top = s.join("copy");
    assert_eq!(mode(&top), 0o750);
    assert_eq!(mode(&top.join("v2/run.sh")), 0o755);
    assert_eq!(mode(&top.join("locked")), 0o555);
    assert_eq!(std::fs::metadata(&top).unwrap().mtime(), 1_600_000_000);
    // The absolute link meant the target's /etc/app/v2: rewritten to stay in the copy.
    assert_eq!(
        std::fs::read_link(top.join("current")).unwrap(),
        Path::new("v2")
    );
    assert_eq!(
        std::fs::read_link(top.join("relative")).unwrap(),
        Path::new("v2/config.yaml")
    );
    assert_eq!(
        std::fs::read(top.join("current/config.yaml")).unwrap(),
        b"a: 1\n"
    );
    assert_eq!(std::fs::read(top.join("v2/up")).unwrap(), b"a: 1\n");
    assert_eq!(
        std::fs::metadata(top.join("v2/again")).unwrap().ino(),
        std::fs::metadata(top.join("v2/config.yaml")).unwrap().ino()
    );

    // DEST an existing directory: the copy goes in under its own name.
    std::fs::create_dir(s.join("into")).unwrap();
    let (result, _) = run(&bytes, "etc/app", &s.join("into"), "app");
    result.unwrap();
    assert_eq!(
        std::fs::read(s.join("into/app/v2/config.yaml")).unwrap(),
        b"a: 1\n"
    );
}

#[test]
fn a_copy_of_the_root_has_no_entry_of_its_own() {
    let s = Scratch::new("root");
    let bytes = archive(&[dir("etc", 0o755), file("etc/hostname", 0o644, b"web\n")]);
    let (result, _) = run(&bytes, "", &s.join("fs"), "");
    assert!(result.unwrap().top_is_dir);
    assert_eq!(std::fs::read(s.join("fs/etc/hostname")).unwrap(), b"web\n");
    std::fs::create_dir(s.join("existing")).unwrap();
    let (result, _) = run(&bytes, "", &s.join("existing"), "");
    result.unwrap();
    assert_eq!(
        std::fs::read(s.join("existing/etc/hostname")).unwrap(),
        b"web\n"
    );
}

#[test]
fn dot_dot_and_absolute_names_are_refused_by_name_and_nothing_escapes() {
    for (name, prefix) in [
        ("../evil", ""),
        ("top/../../evil", "top"),
        ("/tmp/evil", ""),
        ("top/a/../../../evil", "top"),
    ] {
        let s = Scratch::new("slip");
        let bytes = archive(&[dir("top", 0o755), file(name, 0o644, b"owned")]);
        let (result, _) = run(&bytes, prefix, &s.join("out"), "top");
        assert_eq!(refused_entry(result), name);
        assert!(!s.0.parent().unwrap().join("evil").exists() && !s.join("evil").exists());
        assert!(tree(&s.join("out")).iter().all(|p| !p.contains("evil")));
        assert!(!Path::new("/tmp/evil").exists());
    }
}

#[test]
fn an_entry_outside_the_copied_path_is_refused() {
    let s = Scratch::new("other");
    let bytes = archive(&[dir("etc/app", 0o755), file("etc/passwd", 0o644, b"root")]);
    let (result, _) = run(&bytes, "etc/app", &s.join("out"), "app");
    match result {
        Err(ExtractError::Refused { entry, reason }) => {
            assert_eq!(entry, "etc/passwd");
            assert!(
                reason.contains("not below the copied path /etc/app"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_symlink_escaping_is_not_made_and_a_write_through_it_is_refused() {
    for target in ["/tmp", "../../..", "../outside"] {
        let s = Scratch::new("escape");
        std::fs::create_dir(s.join("outside")).unwrap();
        let bytes = archive(&[
            dir("top", 0o755),
            link("top/evil", Kind::Symlink, target),
            file("top/evil/payload", 0o644, b"owned"),
        ]);
        let (result, warnings) = run(&bytes, "top", &s.join("out"), "top");
        assert_eq!(refused_entry(result), "top/evil/payload", "target {target}");
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("not created: symlink top/evil ->")),
            "{warnings:?}"
        );
        assert!(tree(&s.join("outside")).is_empty());
        assert_eq!(tree(&s.join("out")), Vec::<String>::new());
        assert!(!Path::new("/tmp/payload").exists());
    }
}

#[test]
fn a_symlink_inside_is_made_but_never_written_through() {
    let s = Scratch::new("through");
    let bytes = archive(&[
        dir("top", 0o755),
        dir("top/sub", 0o755),
        link("top/alias", Kind::Symlink, "sub"),
        file("top/alias/file", 0o644, b"x"),
    ]);
    let (result, _) = run(&bytes, "top", &s.join("out"), "top");
    match result {
        Err(ExtractError::Refused { entry, reason }) => {
            assert_eq!(entry, "top/alias/file");
            assert!(
                reason.contains("goes through the symlink \"alias\""),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!s.join("out/sub/file").exists());
}

#[test]
fn a_symlink_already_in_the_destination_is_not_followed() {
    let s = Scratch::new("planted");
    std::fs::create_dir_all(s.join("out/top")).unwrap();
    std::fs::create_dir(s.join("outside")).unwrap();
    symlink(s.join("outside"), s.join("out/top/sub")).unwrap();
    symlink(s.join("outside/victim"), s.join("out/top/file")).unwrap();
    std::fs::write(s.join("outside/victim"), b"precious").unwrap();
    // A file entry at the planted link's name replaces the link, not the victim.
    let bytes = archive(&[dir("top", 0o755), file("top/file", 0o644, b"new")]);
    run(&bytes, "top", &s.join("out"), "top").0.unwrap();
    assert_eq!(
        std::fs::read(s.join("outside/victim")).unwrap(),
        b"precious"
    );
    assert_eq!(std::fs::read(s.join("out/top/file")).unwrap(), b"new");
    // An entry below the planted directory link is refused.
    let bytes = archive(&[dir("top", 0o755), file("top/sub/x", 0o644, b"owned")]);
    assert_eq!(
        refused_entry(run(&bytes, "top", &s.join("out"), "top").0),
        "top/sub/x"
    );
    assert_eq!(tree(&s.join("outside")), vec!["victim".to_string()]);
}

#[test]
fn hard_links_out_of_the_copy_are_refused() {
    for target in ["../../etc/passwd", "/etc/passwd", "etc/passwd"] {
        let s = Scratch::new("hard");
        let bytes = archive(&[dir("top", 0o755), link("top/pw", Kind::HardLink, target)]);
        assert_eq!(
            refused_entry(run(&bytes, "top", &s.join("out"), "top").0),
            "top/pw",
            "{target}"
        );
        assert!(!s.join("out/pw").exists());
    }
}

#[test]
fn set_id_bits_are_dropped_and_devices_skipped() {
    let s = Scratch::new("setid");
    let (mut fifo, _) = file("top/fifo", 0o644, b"");
    fifo.kind = Kind::Fifo;
    let bytes = archive(&[
        dir("top", 0o755),
        file("top/su", 0o4755, b"ELF"),
        (fifo, Vec::new()),
    ]);
    let (result, warnings) = run(&bytes, "top", &s.join("out"), "top");
    assert_eq!(result.unwrap().skipped, 1);
    assert_eq!(mode(&s.join("out/su")), 0o755);
    assert_eq!(warnings, vec!["skipped top/fifo: fifo".to_string()]);
}

#[test]
fn a_directory_does_not_replace_a_file_and_a_link_is_not_a_destination() {
    let s = Scratch::new("clash");
    std::fs::write(s.join("taken"), b"mine").unwrap();
    let bytes = archive(&[dir("top", 0o755), file("top/a", 0o644, b"x")]);
    let destination = Destination::resolve(&s.join("taken"), b"top").unwrap();
    let err = extract(&bytes[..], b"top", &destination, &mut |_| {}).unwrap_err();
    assert!(matches!(err, ExtractError::Write { .. }), "{err:?}");
    assert_eq!(std::fs::read(s.join("taken")).unwrap(), b"mine");

    std::fs::create_dir(s.join("into")).unwrap();
    std::fs::create_dir(s.join("elsewhere")).unwrap();
    symlink(s.join("elsewhere"), s.join("into/top")).unwrap();
    let (result, _) = run(&bytes, "top", &s.join("into"), "top");
    assert!(
        matches!(result, Err(ExtractError::Write { .. })),
        "{result:?}"
    );
    assert!(tree(&s.join("elsewhere")).is_empty());
}

#[test]
fn broken_streams_are_errors_not_panics() {
    let s = Scratch::new("broken");
    let good = archive(&[dir("top", 0o755), file("top/a", 0o644, &[7u8; 3000])]);
    for cut in (0..good.len()).step_by(211) {
        let dest = s.join(&format!("cut{cut}"));
        let destination = Destination::resolve(&dest, b"top").unwrap();
        let _ = extract(&good[..cut], b"top", &destination, &mut |_| {});
    }
    let destination = Destination::resolve(&s.join("garbage"), b"top").unwrap();
    assert!(matches!(
        extract(
            &b"definitely not a tar archive"[..],
            b"top",
            &destination,
            &mut |_| {}
        ),
        Err(ExtractError::Archive(_))
    ));
    let destination = Destination::resolve(&s.join("empty"), b"top").unwrap();
    assert!(matches!(
        extract(&archive(&[])[..], b"top", &destination, &mut |_| {}),
        Err(ExtractError::Empty)
    ));
}

#[test]
fn link_plans() {
    let prefix: Vec<Vec<u8>> = vec![b"etc".to_vec(), b"app".to_vec()];
    let table: &[(&[&str], &str, LinkPlan)] = &[
        (&[], "v2", LinkPlan::Keep),
        (&["v2"], "../v1/x", LinkPlan::Keep),
        (&["v2"], "./../x", LinkPlan::Keep),
        (
            &[],
            "../x",
            LinkPlan::Refuse("it points outside the destination".into()),
        ),
        (
            &["a", "b"],
            "../../../x",
            LinkPlan::Refuse("it points outside the destination".into()),
        ),
        (
            &["a"],
            "a/../../x",
            LinkPlan::Refuse("its target climbs with `..` after a name".into()),
        ),
        (&[], "/etc/app/v2", LinkPlan::Rewrite(b"v2".to_vec())),
        (
            &["a", "b"],
            "/etc/app/v2/x",
            LinkPlan::Rewrite(b"../../v2/x".to_vec()),
        ),
        (
            &["v2", "b"],
            "/etc/app/v2/x",
            LinkPlan::Rewrite(b"../x".to_vec()),
        ),
        (&["v2"], "/etc/app/v2", LinkPlan::Rewrite(b".".to_vec())),
        (&[], "/etc/app", LinkPlan::Rewrite(b".".to_vec())),
        (&["a"], "/etc/app/", LinkPlan::Rewrite(b"..".to_vec())),
        (
            &[],
            "/etc/apps",
            LinkPlan::Refuse("it points outside the copied path /etc/app".into()),
        ),
        (
            &[],
            "/etc/passwd",
            LinkPlan::Refuse("it points outside the copied path /etc/app".into()),
        ),
        (
            &[],
            "/etc/app/../passwd",
            LinkPlan::Refuse("its absolute target contains `..`".into()),
        ),
        (&[], "", LinkPlan::Refuse("it has an empty target".into())),
    ];
    for (parent, target, expected) in table {
        let parent: Vec<Vec<u8>> = parent.iter().map(|p| p.as_bytes().to_vec()).collect();
        assert_eq!(
            &link_plan(&parent, target.as_bytes(), &prefix),
            expected,
            "parent {parent:?}, target {target}"
        );
    }
}
