//! The toolkits against real containers in the sandbox cluster: the `full` image (built here
//! from its Debian package list) runs real curl, ss, strace and tcpdump next to a distroless
//! target; `--toolkit auto` reads the target's runtime; a config file moves every image
//! reference to a mirror; `images` and `info` show what a user relies on.
//!
//! The sandbox is a test double of the API server only; containers, uids, capabilities and
//! the kernel's ptrace rules are real (runc), so a profile that cannot do what it promises
//! fails here as it would on a node running containerd.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use support::{BIN, NONROOT_APP, TestCluster, VERSION, base_image_dir, base_image_ref};

const LIMIT: Duration = Duration::from_secs(60);

fn toolkit_ref(toolkit: &str) -> String {
    format!("ghcr.io/kubectl-distroless-debug/{toolkit}:{VERSION}")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory this test binary was built in.
fn target_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

/// Our `full` image as a directory, built by debug-images/build-local.sh from its package list
/// (about 12 s and 136 MiB) with the agent of the `base` build. Kept in the target directory
/// under a name derived from its inputs, so a later test process reuses it; the agent is
/// installed afresh each time, as it may have changed.
///
/// None (after saying why) when it cannot be built here, e.g. without Debian's apt or its
/// repositories; under CI=true that is a failure instead.
fn full_image_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let agent = base_image_dir().join("rootfs/usr/local/bin/distroless-debug-agent");
        let inputs: String = [
            "debug-images/full/packages.txt",
            "debug-images/build-local.sh",
            "debug-images/debian-rootfs.sh",
            "debug-images/dpkg-slim.cfg",
        ]
        .iter()
        .map(|f| std::fs::read_to_string(repo().join(f)).unwrap_or_default())
        .collect();
        // FNV-1a: only needs to change when the inputs do.
        let stamp = inputs.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let out = target_dir().join(format!("test-images/full-{stamp:016x}"));
        if !out.join("config.json").is_file() {
            // Built from other inputs, the ones before are of no more use (136 MiB each).
            let images = target_dir().join("test-images");
            for entry in std::fs::read_dir(&images).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with("full-") {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
            build_full(&out, &agent)?;
        }
        std::fs::copy(
            &agent,
            out.join("rootfs/usr/local/bin/distroless-debug-agent"),
        )
        .map_err(|e| format!("cannot install the agent in the full image: {e}"))?;
        Ok(out)
    });
    match dir {
        Ok(dir) => Some(dir.clone()),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("{why}"),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

fn build_full(out: &Path, agent: &Path) -> Result<(), String> {
    // debian-rootfs.sh resolves packages with apt: it needs the package lists once.
    let lists = std::fs::read_dir("/var/lib/apt/lists")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().contains("Packages"))
        })
        .unwrap_or(false);
    if !lists {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
    }
    let building = out.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let status = Command::new("bash")
        .arg(repo().join("debug-images/build-local.sh"))
        .arg("--agent")
        .arg(agent)
        .arg("full")
        .arg(&building)
        .current_dir(repo())
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            return Err(format!(
                "debug-images/build-local.sh full failed: {other:?}"
            ));
        }
    }
    // Another test process may have finished first: then its copy is as good as ours.
    if std::fs::rename(&building, out).is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    Ok(())
}

/// A distroless-like image whose program is a Go binary: a copy of the kubectl on this
/// machine (static, with Go build info) serving `kubectl proxy` on 127.0.0.1:8001, which
/// needs no cluster until a request comes. None when no Go-built kubectl is found.
fn go_app_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let kubectl = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("kubectl"))
                .find(|p| p.is_file())
        })?;
        let kubectl = std::fs::canonicalize(kubectl).ok()?;
        let out = target_dir().join(format!("test-images/go-app-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let rootfs = out.join("rootfs");
        for dir in ["app", "tmp", "etc", "proc", "sys", "dev"] {
            std::fs::create_dir_all(rootfs.join(dir)).ok()?;
        }
        let exe = rootfs.join("app/kubectl");
        if std::fs::hard_link(&kubectl, &exe).is_err() {
            std::fs::copy(&kubectl, &exe).ok()?;
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0::/:/nonexistent\nnonroot:x:65532:65532::/tmp:/nonexistent\n",
        )
        .ok()?;
        let config = serde_json::json!({
            "architecture": if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" },
            "os": "linux",
            "config": {
                "User": "65532:65532",
                "Entrypoint": ["/app/kubectl", "proxy", "--server=http://127.0.0.1:1",
                               "--port=8001", "--address=127.0.0.1"],
                "Env": ["HOME=/tmp"],
                "WorkingDir": "/"
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        });
        std::fs::write(out.join("config.json"), config.to_string()).ok()?;
        Some(out)
    })
    .clone()
}

async fn with_full() -> Option<TestCluster> {
    let c = support::cluster().await?;
    c.sb.register_image_dir(&toolkit_ref("full"), &full_image_dir()?)
        .expect("register the full image");
    c.namespace("tk", None).await;
    c.running_app("tk", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    Some(c)
}

#[tokio::test]
async fn the_full_toolkit_sees_a_nonroot_distroless_target() {
    let Some(c) = with_full().await else {
        return;
    };
    let before = c.target_fingerprint("tk", "web").await;
    let run = async |args: &[&str]| {
        let mut argv = vec!["-n", "tk", "pod/web", "--toolkit", "full"];
        argv.extend_from_slice(args);
        c.run(&argv, LIMIT).await
    };

    // As the target's uid, with no capability at all.
    let r = run(&["--", "sh", "-c", "id -u; grep CapEff /proc/self/status"]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.starts_with("65532\n"), "{r:?}");
    assert!(r.stdout.contains("CapEff:\t0000000000000000"), "{r:?}");

    let r = run(&["--", "ls", "/target"]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.lines().any(|l| l == "etc"), "{r:?}");
    // The target's files, as its uid reads them (an absolute symlink of the target's would
    // resolve in the debug container's root here: `cp` resolves them in the target's).
    let r = run(&["--", "cat", "/target/etc/app/v2/config.yaml"]).await;
    assert_eq!(r.code, Some(0), "{r:?}");

    let r = run(&["--", "curl", "-sS", "--max-time", "5", "localhost:8080"]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stdout.is_empty(), "the app answered: {r:?}");

    let r = run(&["--", "ss", "-ltn"]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("LISTEN") && l.contains(":8080")),
        "the app's socket: {r:?}"
    );

    // tcpdump as the target's uid cannot capture: the plugin says which profile can.
    let r = run(&["--", "tcpdump", "-i", "lo", "-c", "1"]).await;
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr.contains("hint: tcpdump") && r.stderr.contains("--profile netadmin"),
        "{r:?}"
    );

    assert_eq!(
        c.target_fingerprint("tk", "web").await,
        before,
        "the target was never restarted"
    );
    let added = c.pod_json("tk", "web").await["spec"]["ephemeralContainers"][0].clone();
    assert_eq!(added["image"], toolkit_ref("full").as_str());
}

#[tokio::test]
async fn ptrace_and_netadmin_profiles_run_strace_and_tcpdump_on_the_target() {
    let Some(c) = with_full().await else {
        return;
    };
    // strace attaches to the target (PID 1 in the shared PID namespace): the app logs a line
    // a second, so its writes and sleeps show.
    let r = c
        .run(
            &[
                "-n",
                "tk",
                "pod/web",
                "--toolkit",
                "full",
                "--profile",
                "ptrace",
                "--",
                "timeout",
                "3",
                "strace",
                "-p",
                "1",
            ],
            LIMIT,
        )
        .await;
    assert!(
        r.stderr.contains("strace: Process 1 attached"),
        "strace attached: {r:?}"
    );
    assert!(
        [
            "write(",
            "nanosleep(",
            "clock_nanosleep(",
            "epoll_wait(",
            "futex("
        ]
        .iter()
        .any(|call| r.stderr.contains(call)),
        "the target's syscalls: {r:?}"
    );
    let pod = c.pod_json("tk", "web").await;
    let sc = &pod["spec"]["ephemeralContainers"][0]["securityContext"];
    assert_eq!(
        sc["runAsUser"], 0,
        "added capabilities are only effective for root"
    );
    assert_eq!(sc["capabilities"]["add"][0], "SYS_PTRACE");

    // Why those profiles run as root: capabilities added to a non-root container are in its
    // bounding set only; containerd sets no ambient ones, so the process holds none of them.
    // A plain pod of the full image as 65532 with NET_RAW and NET_ADMIN added shows it.
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "caps" },
        "spec": { "containers": [{
            "name": "probe", "image": toolkit_ref("full"),
            "command": ["sh", "-c", "grep -E 'Cap(Eff|Bnd)' /proc/self/status; sleep 600"],
            "securityContext": { "runAsUser": 65532, "runAsGroup": 65532,
                                 "capabilities": { "add": ["NET_RAW", "NET_ADMIN"] } }
        }] }
    }))
    .expect("a pod");
    c.pods("tk")
        .create(&Default::default(), &pod)
        .await
        .expect("create the pod");
    let mut log = String::new();
    support::wait_for("the caps pod's log", LIMIT, &mut async || {
        log = c
            .pods("tk")
            .logs("caps", &Default::default())
            .await
            .unwrap_or_default();
        log.contains("CapEff")
    })
    .await;
    assert!(log.contains("CapEff:\t0000000000000000"), "{log}");
    let bounding = log
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:\t"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or_default();
    const NET_ADMIN: u64 = 1 << 12;
    const NET_RAW: u64 = 1 << 13;
    assert_eq!(
        bounding & (NET_ADMIN | NET_RAW),
        NET_ADMIN | NET_RAW,
        "{log}"
    );
    // As root, the netadmin profile's process holds them.
    let r = c
        .run(
            &[
                "-n",
                "tk",
                "pod/web",
                "--toolkit",
                "full",
                "--profile",
                "netadmin",
                "--new",
                "--",
                "grep",
                "CapEff",
                "/proc/self/status",
            ],
            LIMIT,
        )
        .await;
    let effective = r
        .stdout
        .trim()
        .strip_prefix("CapEff:\t")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_default();
    assert_eq!(
        effective & (NET_ADMIN | NET_RAW),
        NET_ADMIN | NET_RAW,
        "{r:?}"
    );

    // tcpdump captures the app's traffic on the pod's loopback while curl talks to it.
    let r = c
        .run(
            &[
                "-n",
                "tk",
                "pod/web",
                "--toolkit",
                "full",
                "--profile",
                "netadmin",
                "--",
                "sh",
                "-c",
                "tcpdump -i lo -n -c 2 'tcp port 8080' & sleep 1; \
                 curl -s --max-time 5 localhost:8080 >/dev/null; wait",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("2 packets captured"), "{r:?}");
    assert!(
        r.stdout.lines().filter(|l| l.contains(".8080")).count() >= 2,
        "packets to or from :8080: {r:?}"
    );
}

#[tokio::test]
async fn toolkit_auto_picks_go_for_a_go_binary_and_base_otherwise() {
    let Some(c) = support::cluster().await else {
        return;
    };
    let Some(go_app) = go_app_dir() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no Go-built kubectl on PATH to make a Go target from"
        );
        eprintln!("skipped: no kubectl on PATH to make a Go target from");
        return;
    };
    c.sb.register_image_dir("sandbox.local/go-app:test", &go_app)
        .expect("register the Go target");
    // The go toolkit is built with Docker only (delve, gops); the base image's directory
    // stands in for it under the go reference: what is tested is the choice.
    c.sb.register_image_dir(&toolkit_ref("go"), &base_image_dir())
        .expect("register the stand-in go image");
    c.namespace("auto", Some("restricted")).await;
    c.running_app(
        "auto",
        "goapp",
        "sandbox.local/go-app:test",
        Some((65532, 65532)),
    )
    .await;
    c.running_app("auto", "web", NONROOT_APP, Some((65532, 65532)))
        .await;

    // `info` reads the target: the Go binary, its uid, its socket.
    c.sb.clear_requests();
    let r = c
        .run(&["-n", "auto", "info", "pod/goapp", "-o", "json"], LIMIT)
        .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    // Its one exec ends the container as the last session out: no `stop` after it.
    let requests = c.sb.requests();
    assert_eq!(support::exec_verbs(&requests), ["info"], "{requests:#?}");
    assert_eq!(support::verbs_ending_the_container(&requests), ["info"]);
    support::assert_no_stop_after_the_work(&requests, "info");
    let info: Value = serde_json::from_str(&r.stdout).expect("info -o json is JSON");
    assert_eq!(info["pod"], "goapp");
    assert_eq!(info["container"], "app");
    assert_eq!(info["pid"], 1);
    assert_eq!(
        (info["uid"].as_i64(), info["gid"].as_i64()),
        (Some(65532), Some(65532))
    );
    assert_eq!(info["exe"], "/app/kubectl");
    assert_eq!(info["cmdline"][1], "proxy");
    assert_eq!(info["runtime"], "go");
    assert!(
        info["go_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("go1.")),
        "{info}"
    );
    assert_eq!(info["toolkit"], "go");
    assert!(
        info["listening"]
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["port"] == 8001)),
        "{info}"
    );
    c.wait_all_terminated("auto", "goapp", Duration::from_secs(20))
        .await;

    // Text form: one aligned line per fact.
    let r = c.run(&["-n", "auto", "info", "pod/web"], LIMIT).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.lines().any(|l| l == "runtime    other"), "{r:?}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("listening  tcp") && l.contains(":8080")),
        "{r:?}"
    );

    // auto on the Go target: the base probe reads it, go is used for the session.
    c.sb.clear_requests();
    let r = c
        .run(
            &[
                "-n",
                "auto",
                "pod/goapp",
                "--toolkit",
                "auto",
                "--",
                "sh",
                "-c",
                "echo ok",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "ok\n");
    assert!(
        r.stderr.contains("runs /app/kubectl (runtime go") && r.stderr.contains("using go"),
        "{r:?}"
    );
    let pod = c.pod_json("auto", "goapp").await;
    let images: Vec<&str> = pod["spec"]["ephemeralContainers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["image"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        images.last().copied(),
        Some(toolkit_ref("go").as_str()),
        "{images:?}"
    );
    c.wait_all_terminated("auto", "goapp", LIMIT).await;

    assert_eq!(
        writes(&c),
        (2, 3),
        "PATCHes (probe, go) and execs (info, stop the probe, the command, which ends its container: no stop)"
    );

    // auto on the Rust target: runtime other, so the probe itself is the session's container.
    c.sb.clear_requests();
    let r = c
        .run(
            &["-n", "auto", "pod/web", "--toolkit", "auto", "--", "true"],
            LIMIT,
        )
        .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr.contains("(runtime other") && r.stderr.contains("using base"),
        "{r:?}"
    );
    assert_eq!(
        writes(&c),
        (1, 2),
        "one PATCH (the probe, kept) and execs (info, the command, which ends its container: no stop)"
    );
    let containers = c.debug_containers("auto", "web").await;
    let pod = c.pod_json("auto", "web").await;
    // info added one; auto added one more, the probe, and ran the command in it.
    assert_eq!(containers.len(), 2, "{containers:?}");
    assert_eq!(
        pod["spec"]["ephemeralContainers"][1]["image"],
        base_image_ref().as_str()
    );
    c.wait_all_terminated("auto", "web", LIMIT).await;
}

/// (PATCHes of ephemeralcontainers, exec requests) the sandbox has seen.
fn writes(c: &TestCluster) -> (usize, usize) {
    let requests = c.sb.requests();
    let count = |method: &str, suffix: &str| {
        requests
            .iter()
            .filter(|q| q.method == method && q.path.ends_with(suffix))
            .count()
    };
    (
        count("PATCH", "/ephemeralcontainers"),
        count("GET", "/exec") + count("POST", "/exec"),
    )
}

/// A config file in a directory of its own, named by XDG_CONFIG_HOME.
fn config_home(name: &str, text: &str) -> PathBuf {
    let home = target_dir().join(format!("test-config/{name}-{}", std::process::id()));
    let dir = home.join("kubectl-distroless-debug");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(dir.join("config.yaml"), text).expect("config file");
    home
}

#[tokio::test]
async fn a_config_file_moves_the_patch_to_a_mirror() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("mirror", None).await;
    c.running_app("mirror", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    let home = config_home(
        "mirror",
        "registry: registry.corp:5000/dd\nimages:\n  full: registry.corp:5000/tools/full-debug:7\n",
    );
    let plugin = |args: &[&str], env_registry: Option<&str>| {
        let mut command = c.plugin(args);
        command.env("XDG_CONFIG_HOME", &home);
        if let Some(registry) = env_registry {
            command.env("DISTROLESS_DEBUG_REGISTRY", registry);
        }
        support::run_command(command, LIMIT)
    };
    let mirrored = format!("registry.corp:5000/dd/base:{VERSION}");

    let r = plugin(
        &["-n", "mirror", "pod/web", "--dry-run=client", "-o", "yaml"],
        None,
    )
    .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains(&format!("image: {mirrored}")), "{r:?}");
    let r = plugin(
        &[
            "-n",
            "mirror",
            "pod/web",
            "--toolkit",
            "full",
            "--dry-run=client",
            "-o",
            "json",
        ],
        None,
    )
    .await;
    let body: Value = serde_json::from_str(&r.stdout).expect("the PATCH body as JSON");
    assert_eq!(
        body["spec"]["ephemeralContainers"][0]["image"],
        "registry.corp:5000/tools/full-debug:7"
    );
    // The environment variable wins over the whole file.
    let r = plugin(
        &[
            "-n",
            "mirror",
            "pod/web",
            "--toolkit",
            "full",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        Some("other.corp/dd"),
    )
    .await;
    assert!(
        r.stdout
            .contains(&format!("image: other.corp/dd/full:{VERSION}")),
        "{r:?}"
    );

    // A real session: the PATCH carries the mirror's reference and the node runs it.
    c.sb.register_image_dir(&mirrored, &base_image_dir())
        .expect("register the mirrored base");
    let r = plugin(&["-n", "mirror", "pod/web", "--", "true"], None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    let patches =
        c.sb.requests()
            .iter()
            .filter(|q| q.method == "PATCH" && q.path.ends_with("/ephemeralcontainers"))
            .count();
    assert_eq!(patches, 1, "only the real session sent one");
    let pod = c.pod_json("mirror", "web").await;
    assert_eq!(
        pod["spec"]["ephemeralContainers"][0]["image"],
        mirrored.as_str()
    );
    assert_eq!(
        c.debug_containers("mirror", "web").await[0].1,
        "terminated",
        "it ran from the mirror's image and was stopped"
    );

    // `images` shows the same references, and where they come from.
    let r = plugin(&["images"], None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains(&format!("base     {mirrored}")), "{r:?}");
    assert!(
        r.stdout
            .contains("full     registry.corp:5000/tools/full-debug:7"),
        "{r:?}"
    );
    assert!(r.stdout.contains("References from config file"), "{r:?}");
}

#[test]
fn images_lists_every_toolkit_and_its_packages_without_a_cluster() {
    let output = Command::new(BIN)
        .args(["images", "-o", "json"])
        .env("XDG_CONFIG_HOME", config_home("none", "# nothing\n"))
        .env_remove("DISTROLESS_DEBUG_REGISTRY")
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .expect("the plugin runs");
    assert!(output.status.success(), "{output:?}");
    let list: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let rows = list["images"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = rows.iter().filter_map(|r| r["toolkit"].as_str()).collect();
    assert_eq!(
        names,
        ["base", "net", "full", "jvm", "python", "go", "node"]
    );
    assert_eq!(rows[2]["image"], toolkit_ref("full").as_str());
    let full_list = std::fs::read_to_string(repo().join("debug-images/full/packages.txt"))
        .expect("full's package list");
    let expected: Vec<&str> = full_list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let shown: Vec<&str> = rows[2]["packages"]
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(shown, expected, "the same list the image is built from");
}

#[test]
fn a_broken_config_file_is_refused_with_its_line_and_column() {
    let home = config_home("broken", "registry: registry.corp/dd\ntoolkit: java\n");
    let output = Command::new(BIN)
        .args(["images"])
        .env("XDG_CONFIG_HOME", &home)
        .env_remove("DISTROLESS_DEBUG_REGISTRY")
        .output()
        .expect("the plugin runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "kubectl-distroless-debug/config.yaml:2:10: `toolkit: java` is not a toolkit"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_default_toolkit_follows_a_runtime_the_pod_spec_names_at_no_extra_cost() {
    let Some(c) = support::cluster().await else {
        return;
    };
    // A target whose image is named like a Python runtime (its content is our base image:
    // only the name matters to the spec hint).
    c.sb.register_image_dir("docker.io/library/python:3.12-slim", &base_image_dir())
        .expect("register the python-named target image");
    c.sb.register_image_dir(&toolkit_ref("python"), &base_image_dir())
        .expect("register the python toolkit");
    c.namespace("hinted", None).await;
    c.running_app(
        "hinted",
        "py",
        "docker.io/library/python:3.12-slim",
        Some((65532, 65532)),
    )
    .await;

    let r = c
        .run(
            &["-n", "hinted", "pod/py", "--dry-run=client", "-o", "json"],
            LIMIT,
        )
        .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    let body: Value = serde_json::from_str(&r.stdout).expect("the PATCH body as JSON");
    assert_eq!(
        body["spec"]["ephemeralContainers"][0]["image"],
        toolkit_ref("python").as_str()
    );

    c.sb.clear_requests();
    let r = c
        .run(&["-n", "hinted", "pod/py", "--", "true"], LIMIT)
        .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        c.debug_containers("hinted", "py").await.len(),
        1,
        "one debug container"
    );
    // The same requests as any fresh session: one PATCH and the command's exec, no probe
    // exec, and no stop (the command's session ends the container).
    assert_eq!(writes(&c), (1, 1), "{:#?}", c.sb.requests());
    // A distroless target with no runtime in its name keeps base.
    c.running_app("hinted", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    let r = c
        .run(
            &["-n", "hinted", "pod/web", "--dry-run=client", "-o", "json"],
            LIMIT,
        )
        .await;
    let body: Value = serde_json::from_str(&r.stdout).expect("the PATCH body as JSON");
    assert_eq!(
        body["spec"]["ephemeralContainers"][0]["image"],
        base_image_ref().as_str()
    );
}
