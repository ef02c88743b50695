//! `snapshot` against the sandbox cluster with real containers (runc): the distroless app's
//! binary, config and symlink are in the archive as the target sees them, the manifest's
//! sha256s are those of the bytes in the archive (and of the image's own files), and
//! `--exclude` / `--include` / `--no-volumes` leave out what they say.
//!
//! Needs root and runc: skipped with the reason otherwise, a failure under CI=true.

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{NONROOT_APP, TestCluster};
use tar_format::{Kind, Reader};

const LIMIT: Duration = Duration::from_secs(90);
const MANIFEST: &str = "distroless-debug-manifest.json";

fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A snapshot read back: every entry (`/path` → kind, data or link) and the manifest.
struct Archive {
    entries: BTreeMap<String, (Kind, Vec<u8>, String)>,
    manifest: Value,
}

fn read_archive(path: &Path) -> Archive {
    let file = std::fs::File::open(path).expect("the snapshot exists");
    let input: Box<dyn Read> = if path.to_string_lossy().ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = Reader::new(input);
    let mut entries = BTreeMap::new();
    let mut manifest = Value::Null;
    while let Some(entry) = reader.next_entry().expect("a valid tar") {
        let mut data = Vec::new();
        reader.data().read_to_end(&mut data).expect("entry data");
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        if name == MANIFEST {
            manifest = serde_json::from_slice(&data).expect("the manifest is JSON");
            continue;
        }
        let link = String::from_utf8_lossy(&entry.link).into_owned();
        entries.insert(format!("/{name}"), (entry.kind, data, link));
    }
    Archive { entries, manifest }
}

fn manifest_entry<'a>(manifest: &'a Value, path: &str) -> Option<&'a Value> {
    manifest["entries"]
        .as_array()?
        .iter()
        .find(|e| e["path"] == path)
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("dd-snap-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
    fn arg(&self, rel: &str) -> String {
        self.0.join(rel).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The distroless app as 65532 with an emptyDir volume at /data holding one file.
async fn app_with_volume(c: &TestCluster) {
    c.namespace("snap", Some("restricted")).await;
    c.create_running(
        "snap",
        json!({
            "metadata": { "name": "web" },
            "spec": {
                "securityContext": { "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532 },
                "volumes": [{ "name": "scratch", "emptyDir": {} }],
                "containers": [{
                    "name": "app",
                    "image": NONROOT_APP,
                    "volumeMounts": [{ "name": "scratch", "mountPath": "/data" }],
                    "securityContext": {
                        "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                        "capabilities": { "drop": ["ALL"] },
                        "seccompProfile": { "type": "RuntimeDefault" }
                    }
                }]
            }
        }),
    )
    .await;
    let put = c
        .run(
            &[
                "-n",
                "snap",
                "pod/web",
                "--",
                "sh",
                "-c",
                "echo volume-data > /target/data/in-volume.txt",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(put.code, Some(0), "{put:?}");
}

async fn snapshot(c: &TestCluster, args: &[&str]) -> support::Run {
    let mut argv = vec!["-n", "snap", "snapshot", "pod/web"];
    argv.extend_from_slice(args);
    c.run(&argv, LIMIT).await
}

#[tokio::test]
async fn a_snapshot_holds_the_binary_config_and_symlink_with_matching_sha256s() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app_with_volume(&c).await;
    let s = Scratch::new("full");
    c.sb.clear_requests();
    let run = snapshot(&c, &["-o", &s.arg("web.tar.gz")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("wrote "), "{run:?}");
    // One exec, the agent's `tar`, which ends the container as the last session out: no
    // `stop` after it, and the container ends by itself.
    let requests = c.sb.requests();
    assert_eq!(support::exec_verbs(&requests), ["run"], "{requests:#?}");
    support::assert_no_stop_after_the_work(&requests, "snapshot");
    assert_eq!(support::verbs_ending_the_container(&requests), ["tar"]);
    c.wait_all_terminated("snap", "web", Duration::from_secs(20))
        .await;
    assert!(!Path::new(&s.arg("web.tar.gz.partial")).exists());
    let archive = read_archive(Path::new(&s.arg("web.tar.gz")));

    // The binary and the config, byte for byte the image's.
    let rootfs = c.sb.dir().join("images/distroless-app/rootfs");
    for (path, rel) in [
        ("/sandbox-app", "sandbox-app"),
        ("/etc/app/v2/config.yaml", "etc/app/v2/config.yaml"),
    ] {
        let (kind, data, _) = &archive.entries[path];
        assert_eq!(*kind, Kind::File, "{path}");
        let image = std::fs::read(rootfs.join(rel)).expect("the image's file");
        assert_eq!(sha256(data), sha256(&image), "{path}");
    }
    // The symlink as the target has it: absolute, not followed.
    let (kind, _, link) = &archive.entries["/etc/app/current"];
    assert_eq!((*kind, link.as_str()), (Kind::Symlink, "/etc/app/v2"));
    // The volume is in; the kernel's views are not.
    assert_eq!(archive.entries["/data/in-volume.txt"].1, b"volume-data\n");
    assert!(
        !archive
            .entries
            .keys()
            .any(|p| p.starts_with("/proc/") || p.starts_with("/sys/"))
    );

    // The manifest: every file's sha256 is that of its bytes in the archive.
    let m = &archive.manifest;
    assert_eq!(m["kind"], "SnapshotManifest");
    assert_eq!(
        (m["pod"].as_str(), m["container"].as_str()),
        (Some("web"), Some("app"))
    );
    let mut files = 0;
    for (path, (kind, data, _)) in &archive.entries {
        let item = manifest_entry(m, path).unwrap_or_else(|| panic!("{path} is in the manifest"));
        if *kind == Kind::File {
            files += 1;
            assert_eq!(item["sha256"], sha256(data).as_str(), "{path}");
            assert_eq!(item["size"], data.len(), "{path}");
        }
    }
    assert_eq!(m["files"], files);
    let link = manifest_entry(m, "/etc/app/current").expect("the symlink is listed");
    assert_eq!(
        (&link["type"], &link["target"]),
        (&json!("symlink"), &json!("/etc/app/v2"))
    );
    assert_eq!(manifest_entry(m, "/sandbox-app").unwrap()["mode"], "0755");
    // /root is 0700 root: unreadable for the target's uid, and said so.
    assert!(
        m["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "/root: Permission denied"),
        "{}",
        m["notes"]
    );
}

#[tokio::test]
async fn exclude_include_and_no_volumes_leave_out_what_they_say() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app_with_volume(&c).await;
    let s = Scratch::new("filters");

    let run = snapshot(
        &c,
        &[
            "-o",
            &s.arg("ex.tar"),
            "--exclude",
            "*.yaml",
            "--exclude",
            "/sandbox-app",
            "--no-volumes",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let archive = read_archive(Path::new(&s.arg("ex.tar")));
    assert!(!archive.entries.contains_key("/etc/app/v2/config.yaml"));
    assert!(!archive.entries.contains_key("/sandbox-app"));
    assert!(
        !archive.entries.keys().any(|p| p.starts_with("/data")),
        "--no-volumes"
    );
    assert!(archive.entries.contains_key("/etc/passwd"));
    assert!(archive.entries.contains_key("/etc/app/current"));
    assert!(manifest_entry(&archive.manifest, "/etc/app/v2/config.yaml").is_none());
    let excluded = archive.manifest["excluded"].as_array().unwrap();
    assert!(
        excluded.contains(&json!("/sandbox-app")),
        "a literal path is left out at the source"
    );
    assert!(excluded.contains(&json!("/data")), "{excluded:?}");

    let run = snapshot(&c, &["-o", &s.arg("in.tar"), "--include", "/etc/app/**"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let archive = read_archive(Path::new(&s.arg("in.tar")));
    let paths: Vec<&str> = archive.entries.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/etc",
            "/etc/app",
            "/etc/app/current",
            "/etc/app/v2",
            "/etc/app/v2/config.yaml"
        ]
    );

    // A name that is not a tar is refused before anything is sent.
    c.sb.clear_requests();
    let run = snapshot(&c, &["-o", &s.arg("x.zip")]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(c.sb.requests(), [], "no request was sent");
    assert!(!Path::new(&s.arg("x.zip")).exists(), "no file was written");
    assert!(
        c.debug_containers("snap", "web")
            .await
            .iter()
            .all(|(_, st)| st == "terminated")
    );
}
