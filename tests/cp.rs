//! `cp` against the sandbox cluster with real containers (runc): what the target sees through
//! its own symlinks comes out byte for byte, a tree round-trips with its modes and symlinks,
//! uploads write as the target's uid, a read-only root says so, and the agent's `untar`
//! refuses archives that would escape the target's root.
//!
//! The extractor's refusals of crafted archives are unit tests (src/transfer/extract_tests.rs); here
//! the cluster parts. Needs root and runc: skipped with the reason otherwise, a failure under
//! CI=true (see tests/support).

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use support::{NONROOT_APP, TestCluster};
use tar_format::{Entry, Kind, write_end, write_header, write_padding};
use tokio::io::AsyncWriteExt;

const LIMIT: Duration = Duration::from_secs(90);

/// A local scratch directory, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("dd-cp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn arg(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every path below `dir` → what it is: `file <mode> <sha256>`, `dir <mode>`, `link <target>`.
fn inventory(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable").flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let mode = meta.permissions().mode() & 0o7777;
            let what = if meta.file_type().is_symlink() {
                format!(
                    "link {}",
                    std::fs::read_link(&path).unwrap_or_default().display()
                )
            } else if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {mode:o}")
            } else {
                format!("file {mode:o} {}", sha256(&path))
            };
            out.insert(rel, what);
        }
    }
    out
}

/// The distroless app as 65532:65532 in a `restricted` namespace, as in production.
async fn restricted_app(c: &TestCluster) {
    c.namespace("files", Some("restricted")).await;
    c.running_app("files", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
}

/// The image's own files, to compare downloads with.
fn image_file(c: &TestCluster, rel: &str) -> PathBuf {
    c.sb.dir().join("images/distroless-app/rootfs").join(rel)
}

async fn cp(c: &TestCluster, args: &[&str]) -> support::Run {
    let mut argv = vec!["-n", "files", "cp"];
    argv.extend_from_slice(args);
    c.run(&argv, LIMIT).await
}

#[tokio::test]
async fn a_file_through_the_targets_absolute_symlink_and_directories_byte_for_byte() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let s = Scratch::new("down");

    // /etc/app/current -> /etc/app/v2 is absolute: it must resolve in the target's root.
    let run = cp(
        &c,
        &[
            "pod/web:/etc/app/current/config.yaml",
            &s.arg("config.yaml"),
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        sha256(&s.path("config.yaml")),
        sha256(&image_file(&c, "etc/app/v2/config.yaml")),
        "the file the target reads through its symlink"
    );
    assert!(
        run.stderr
            .contains("copied web:/etc/app/current/config.yaml (file, 86 B)"),
        "{run:?}"
    );

    // The binary, into an existing directory under its own name, mode kept.
    let run = cp(&c, &["pod/web:/sandbox-app", &s.arg(".")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        sha256(&s.path("sandbox-app")),
        sha256(&image_file(&c, "sandbox-app"))
    );
    assert_eq!(
        std::fs::metadata(s.path("sandbox-app")).unwrap().mode() & 0o7777,
        0o755
    );

    // A directory: a new DEST becomes the copy; the absolute symlink stays a symlink, made
    // relative so it points into the copy, not at this machine's /etc/app/v2.
    let run = cp(&c, &["pod/web:/etc/app", &s.arg("app")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let copied = inventory(&s.path("app"));
    assert_eq!(copied.get("current").map(String::as_str), Some("link v2"));
    assert_eq!(
        copied.get("v2/config.yaml"),
        Some(&format!(
            "file 644 {}",
            sha256(&image_file(&c, "etc/app/v2/config.yaml"))
        ))
    );
    assert_eq!(copied.get("v2").map(String::as_str), Some("dir 755"));

    // A missing path is named, with the target's view.
    let run = cp(&c, &["pod/web:/etc/nope", &s.arg("nope")]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("/etc/nope in container app of pod web: No such file or directory"),
        "{run:?}"
    );
    assert!(!s.path("nope").exists());

    // Every cp stopped the container it added.
    c.wait_all_terminated("files", "web", Duration::from_secs(30))
        .await;
}

#[tokio::test]
async fn a_tree_round_trips_with_modes_and_symlinks_and_uploads_write_as_the_target() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let s = Scratch::new("round");
    let tree = s.path("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    // Incompressible, not block-aligned, larger than every pipe on the way.
    let mut data = Vec::with_capacity(3 << 20);
    let mut x: u32 = 0x9e37_79b9;
    while data.len() < (3 << 20) + 123 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(tree.join("sub/data.bin"), &data).unwrap();
    std::fs::write(tree.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::write(tree.join("secret"), "s3cret\n").unwrap();
    std::fs::write(tree.join("sub/deeper/empty"), "").unwrap();
    for (rel, mode) in [
        ("run.sh", 0o755),
        ("secret", 0o600),
        ("sub/deeper", 0o700),
        ("sub", 0o750),
    ] {
        std::fs::set_permissions(tree.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    symlink("sub/data.bin", tree.join("data")).unwrap();
    symlink("../run.sh", tree.join("sub/run")).unwrap();

    // Up into a directory the target's uid owns: it lands as /tmp/tree.
    let run = cp(&c, &[&s.arg("tree"), "pod/web:/tmp"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("to web:/tmp/tree"), "{run:?}");
    // Owned by the target's uid in the target, not by ours (root) here.
    let ls = c
        .run(
            &[
                "-n",
                "files",
                "pod/web",
                "--",
                "stat",
                "-c",
                "%u:%g",
                "/target/tmp/tree/secret",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(ls.stdout.trim(), "65532:65532", "{ls:?}");

    // And down again, to a new name.
    let run = cp(&c, &["pod/web:/tmp/tree", &s.arg("back")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(inventory(&s.path("back")), inventory(&tree));

    // A file upload to a new name in an existing directory.
    let run = cp(&c, &[&s.arg("tree/secret"), "pod/web:/tmp/renamed"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = cp(&c, &["pod/web:/tmp/renamed", &s.arg("renamed")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(std::fs::read(s.path("renamed")).unwrap(), b"s3cret\n");

    // Where the target's uid may not write, neither may we.
    let run = cp(&c, &[&s.arg("tree/secret"), "pod/web:/etc/"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("could not write /etc/secret in container app of pod web"),
        "{run:?}"
    );
    assert!(run.stderr.contains("Permission denied"), "{run:?}");
    assert!(run.stderr.contains("uid 65532"), "{run:?}");
}

/// A normal `cp` sends no `stop`, down or up: its last exec (the agent's `tar`, `untar`) ends
/// the container as the last session out, also when the agent fails (a missing path), and
/// the plugin only sees it Terminated. Each exec before it is left unmarked.
#[tokio::test]
async fn a_normal_copy_ends_its_container_without_a_stop() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let s = Scratch::new("laststop");
    std::fs::write(s.path("up.txt"), "up\n").unwrap();
    let down = ["pod/web:/etc/app/current/config.yaml", &s.arg("down.yaml")];
    let up = [&s.arg("up.txt"), "pod/web:/tmp"];
    let missing = ["pod/web:/etc/nope", &s.arg("nope")];
    for (what, args, code, execs, last) in [
        ("download", &down, 0, &["run"][..], "tar"),
        ("upload", &up, 0, &["stat", "run"][..], "untar"),
        ("missing path", &missing, 1, &["run"][..], "tar"),
    ] {
        c.sb.clear_requests();
        let run = cp(&c, args).await;
        assert_eq!(run.code, Some(code), "{what}: {run:?}");
        let requests = c.sb.requests();
        assert_eq!(
            support::exec_verbs(&requests),
            execs,
            "{what}: no stop after the work: {requests:#?}"
        );
        support::assert_no_stop_after_the_work(&requests, what);
        assert_eq!(
            support::verbs_ending_the_container(&requests),
            [last],
            "{what}: only the last exec ends the container"
        );
        c.wait_all_terminated("files", "web", Duration::from_secs(20))
            .await;
    }
    assert_eq!(std::fs::read(s.path("down.yaml")).unwrap().len(), 86);
}

/// A debug container reused while its own session runs stays for that session: `cp` both
/// ways, `snapshot` and `info` end their execs with `--end-container`, but a live session
/// keeps it (the agent's rule), and no `stop` is sent either.
#[tokio::test]
async fn a_reused_container_outlives_copies_snapshots_and_info_beside_a_live_session() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let s = Scratch::new("reusedlast");
    std::fs::write(s.path("up.txt"), "up\n").unwrap();
    let mut holder = c
        .started_session(&[
            "-n",
            "files",
            "pod/web",
            "--",
            "sh",
            "-c",
            "echo started; sleep 120",
        ])
        .await;
    let held = c.debug_containers("files", "web").await;
    assert_eq!(held.len(), 1, "{held:?}");
    let snapshot = s.arg("etc.tar");
    let down = s.arg("down.yaml");
    let up = s.arg("up.txt");
    for args in [
        vec!["cp", "pod/web:/etc/app/current/config.yaml", &down],
        vec!["cp", &up, "pod/web:/tmp"],
        vec![
            "snapshot",
            "pod/web",
            "--include",
            "/etc/**",
            "-o",
            &snapshot,
        ],
        vec!["info", "pod/web"],
    ] {
        c.sb.clear_requests();
        let mut argv = vec!["-n", "files"];
        argv.extend_from_slice(&args);
        let run = c.run(&argv, LIMIT).await;
        assert_eq!(run.code, Some(0), "{args:?}: {run:?}");
        assert!(run.stderr.contains("reusing dbg-"), "{args:?}: {run:?}");
        let requests = c.sb.requests();
        support::assert_no_stop_after_the_work(&requests, &format!("{args:?}"));
        assert_eq!(
            support::verbs_ending_the_container(&requests).len(),
            1,
            "{args:?}"
        );
        // Seen within the agent's 50 ms tick had it ended.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            c.debug_containers("files", "web").await,
            held,
            "{args:?}: the session's container still runs"
        );
    }
    support::send(&holder, libc::SIGTERM);
    support::exit_code(&mut holder, LIMIT).await;
    c.wait_all_terminated("files", "web", LIMIT).await;
}

/// The agent refuses the first entry and exits while most of a large upload is still on its
/// way: kube-rs's stdin pipe then stopped being read and the plugin waited forever.
#[tokio::test]
async fn an_upload_the_agent_refuses_at_once_ends_with_its_reason_not_a_hang() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let s = Scratch::new("refused");
    std::fs::write(s.path("big"), vec![0x5a; 64 << 20]).unwrap();
    let argv = ["-n", "files", "cp", &s.arg("big"), "pod/web:/etc/"];
    let run = c.run(&argv, Duration::from_secs(30)).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("could not write /etc/big in container app of pod web"),
        "{run:?}"
    );
    assert!(run.stderr.contains("Permission denied"), "{run:?}");
}

/// The connection is cut mid-download, without a close frame or a status: kube-rs's stdout
/// pipe then never reached its end and the plugin waited forever.
#[tokio::test]
async fn a_download_cut_off_mid_stream_fails_with_the_broken_stream_not_a_hang() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let made = c
        .run(
            &[
                "-n",
                "files",
                "pod/web",
                "--",
                "sh",
                "-c",
                "head -c 67108864 /dev/urandom > /target/tmp/big",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(made.code, Some(0), "{made:?}");
    c.sb.set_faults(kube_sandbox::Faults {
        drop_exec_after_ms: Some(30),
        ..Default::default()
    });
    let s = Scratch::new("cut");
    let argv = ["-n", "files", "cp", "pod/web:/tmp/big", &s.arg("big")];
    let run = c.run(&argv, Duration::from_secs(30)).await;
    c.sb.set_faults(kube_sandbox::Faults::default());
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("copying /tmp/big from pod web to"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("the archive stream is broken"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_read_only_root_filesystem_is_named_with_the_writable_volume() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("files", Some("restricted")).await;
    c.create_running(
        "files",
        json!({
            "metadata": { "name": "ro" },
            "spec": {
                "securityContext": { "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532 },
                "volumes": [{ "name": "scratch", "emptyDir": {} }],
                "containers": [{
                    "name": "app",
                    "image": NONROOT_APP,
                    "volumeMounts": [{ "name": "scratch", "mountPath": "/data" }],
                    "securityContext": {
                        "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                        "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] },
                        "seccompProfile": { "type": "RuntimeDefault" }
                    }
                }]
            }
        }),
    )
    .await;
    let s = Scratch::new("ro");
    std::fs::write(s.path("fix.json"), "{}\n").unwrap();

    let run = cp(&c, &[&s.arg("fix.json"), "pod/ro:/etc/app/"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(
            "/etc/app is read-only in the target (container app of pod ro): readOnlyRootFilesystem; copy into a writable volume such as /data"
        ),
        "{run:?}"
    );
    let run = cp(&c, &[&s.arg("fix.json"), "pod/ro:/data"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = cp(&c, &["pod/ro:/data/fix.json", &s.arg("back.json")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(std::fs::read(s.path("back.json")).unwrap(), b"{}\n");
}

fn crafted(entries: &[(&str, Kind, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let entry = Entry {
            name: name.as_bytes().to_vec(),
            kind: *kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: data.len() as u64,
            mtime: 1_700_000_000,
            link: link.as_bytes().to_vec(),
        };
        write_header(&mut out, &entry).unwrap();
        out.extend_from_slice(data);
        write_padding(&mut out, data.len() as u64).unwrap();
    }
    write_end(&mut out).unwrap();
    out
}

#[tokio::test]
async fn the_agents_untar_refuses_archives_that_escape_the_target_root() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "../../tmp/escaped",
            crafted(&[("../../tmp/escaped", Kind::File, "", b"x")]),
        ),
        (
            "/tmp/escaped",
            crafted(&[("/tmp/escaped", Kind::File, "", b"x")]),
        ),
        (
            "up/escaped",
            crafted(&[
                ("up", Kind::Symlink, "/", b""),
                ("up/escaped", Kind::File, "", b"x"),
            ]),
        ),
    ];
    for (entry, archive) in cases {
        // Straight into the agent, as a hostile archive would arrive.
        let mut command = c.plugin(&[
            "-n",
            "files",
            "pod/web",
            "--",
            "distroless-debug-agent",
            "untar",
            "/tmp/inbox",
        ]);
        let setup = c
            .run(
                &[
                    "-n",
                    "files",
                    "pod/web",
                    "--",
                    "mkdir",
                    "-p",
                    "/target/tmp/inbox",
                ],
                LIMIT,
            )
            .await;
        assert_eq!(setup.code, Some(0), "{setup:?}");
        command.stdin(std::process::Stdio::piped());
        command.stdout(std::process::Stdio::piped());
        command.stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("the plugin starts");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(&archive)
            .await
            .expect("the archive is sent");
        drop(stdin);
        let output = tokio::time::timeout(LIMIT, child.wait_with_output())
            .await
            .expect("it ends")
            .expect("it runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{entry}: {stderr}");
        assert!(
            stderr.contains(&format!("refusing entry \"{entry}\"")),
            "{entry}: {stderr}"
        );
        let check = c
            .run(
                &["-n", "files", "pod/web", "--", "ls", "/target/tmp"],
                LIMIT,
            )
            .await;
        assert!(!check.stdout.contains("escaped"), "{entry}: {check:?}");
        let check = c
            .run(&["-n", "files", "pod/web", "--", "ls", "/target"], LIMIT)
            .await;
        assert!(!check.stdout.contains("escaped"), "{entry}: {check:?}");
    }
}

#[tokio::test]
async fn mirrored_volumes_and_copied_env_reach_the_debug_container() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("files", Some("restricted")).await;
    c.create_running("files", json!({
        "metadata": { "name": "vol" },
        "spec": {
            "securityContext": { "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532 },
            "volumes": [{ "name": "scratch", "emptyDir": {} }],
            "containers": [{
                "name": "app",
                "image": NONROOT_APP,
                "env": [{ "name": "LOG_LEVEL", "value": "debug" }, { "name": "HOME", "value": "/nope" }],
                "volumeMounts": [{ "name": "scratch", "mountPath": "/data" }],
                "securityContext": {
                    "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                    "capabilities": { "drop": ["ALL"] },
                    "seccompProfile": { "type": "RuntimeDefault" }
                }
            }]
        }
    })).await;
    let put = c
        .run(
            &[
                "-n",
                "files",
                "pod/vol",
                "--",
                "sh",
                "-c",
                "echo shared > /target/data/f",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(put.code, Some(0), "{put:?}");

    let run = c
        .run(
            &[
                "-n",
                "files",
                "pod/vol",
                "--mirror-volumes",
                "--copy-env",
                "--",
                "sh",
                "-c",
                "cat /target-volumes/data/f; echo \"$LOG_LEVEL $HOME\"",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "shared\ndebug /tmp\n", "{run:?}");
    assert!(
        run.stderr
            .contains("--copy-env: the debug container gets container app's environment"),
        "{run:?}"
    );
    let pod = c.pod_json("files", "vol").await;
    let added = pod["spec"]["ephemeralContainers"]
        .as_array()
        .and_then(|all| all.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        added["volumeMounts"][0]["mountPath"],
        "/target-volumes/data"
    );
}
