//! `./install.sh --demo` on a fresh clone ends with a successful session into the sandbox;
//! `./install.sh --prefix DIR` installs the plugin and its completion helper, through which
//! kubectl completes `kubectl distroless-debug` against a cluster.
//!
//! The clone is made from this checkout's HEAD, so the test sees what a new machine would:
//! only committed files. It builds with `--debug` into this test run's own target directory,
//! so it shares the suite's one build profile and its compiled dependencies.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube_sandbox::SandboxOptions;

fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("skipping: {why}");
}

/// target/ of this test run: the test binary is target/debug/deps/install-HASH.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in target/PROFILE/deps")
        .to_path_buf()
}

#[test]
fn install_demo_on_a_fresh_clone_ends_with_a_session() {
    // The effective uid, from the kernel's own view of this process.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return skip_or_fail("install.sh --demo runs containers with runc and needs root");
    }
    if Command::new("runc").arg("--version").output().is_err() {
        return skip_or_fail("runc is not installed (tests/run.sh installs it)");
    }
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        return skip_or_fail("kubectl is not on PATH");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch =
        std::env::temp_dir().join(format!("distroless-debug-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let clone = scratch.join("clone");
    let out = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(repo)
        .arg(&clone)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git clone: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let prefix = scratch.join("prefix");
    let out = Command::new(clone.join("install.sh"))
        .args(["--demo", "--debug", "--prefix"])
        .arg(&prefix)
        .current_dir(&clone)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run install.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let installed = prefix.join("bin/kubectl-distroless_debug").is_file()
        && prefix
            .join("bin/kubectl_complete-distroless_debug")
            .is_file();
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        out.status.success(),
        "install.sh --demo failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        installed,
        "the plugin and its completion helper were not both installed into PREFIX/bin"
    );
    // The session ran as the target's user and saw the target's files through /target.
    assert!(
        stdout.contains("current -> /etc/app/v2"),
        "stdout:\n{stdout}"
    );
    assert!(stdout.contains("uid=65532"), "stdout:\n{stdout}");
    assert!(stderr.contains("demo done"), "stderr:\n{stderr}");
}

/// The newest kubectl of this machine that completes plugins (1.26 and later): a versioned
/// `kubectl.1.NN` beside the one on PATH.
fn completing_kubectl() -> Option<PathBuf> {
    support::newest_versioned_kubectl(26).map(|(_, path)| path)
}

#[tokio::test]
async fn install_prefix_puts_both_binaries_and_kubectl_completes_through_them() {
    let Some(kubectl) = completing_kubectl() else {
        return skip_or_fail("no kubectl 1.26+ (kubectl.1.NN beside the kubectl on PATH)");
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch =
        std::env::temp_dir().join(format!("distroless-debug-complete-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let prefix = scratch.join("prefix");
    let out = Command::new(repo.join("install.sh"))
        .args(["--debug", "--prefix"])
        .arg(&prefix)
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run install.sh");
    assert!(
        out.status.success(),
        "install.sh --prefix failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = prefix.join("bin");
    for name in [
        "kubectl-distroless_debug",
        "kubectl_complete-distroless_debug",
    ] {
        assert!(
            bin.join(name).is_file(),
            "{name} was not installed into PREFIX/bin"
        );
    }

    let Some(c) = support::cluster_with(SandboxOptions::api_only()).await else {
        return;
    };
    // A pod with a native sidecar and a run-to-completion init container, in a namespace of
    // its own, and a Deployment: no node, so they stay Pending, which completion does not mind.
    c.namespace("shop", None).await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": {
            "initContainers": [
                { "name": "setup", "image": support::NONROOT_APP },
                { "name": "proxy", "image": support::NONROOT_APP, "restartPolicy": "Always" }
            ],
            "containers": [{ "name": "app", "image": support::NONROOT_APP }]
        }
    }))
    .expect("a pod");
    c.pods("shop")
        .create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "api" },
        "spec": {
            "selector": { "matchLabels": { "app": "api" } },
            "template": {
                "metadata": { "labels": { "app": "api" } },
                "spec": { "containers": [{ "name": "server", "image": support::NONROOT_APP }] }
            }
        }
    }))
    .expect("a deployment");
    Api::<Deployment>::namespaced(c.client.clone(), "shop")
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create the deployment");

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let complete = async |words: &[&str]| {
        let mut command = tokio::process::Command::new(&kubectl);
        command
            .args(["__complete", "distroless-debug"])
            .args(words)
            .env("PATH", &path)
            .env("KUBECONFIG", c.sb.kubeconfig_path())
            .env("KUBECACHEDIR", scratch.join("kubecache"))
            .kill_on_drop(true);
        let run = support::run_command(command, Duration::from_secs(20)).await;
        assert_eq!(run.code, Some(0), "{words:?}: {run:?}");
        run.stdout.lines().map(String::from).collect::<Vec<_>>()
    };

    // Subcommands and the pods of the namespace typed with -n; none of another namespace.
    let first = complete(&["-n", "shop", ""]).await;
    for expected in ["cp", "run", "ls", "completion", "web", ":4"] {
        assert!(
            first.iter().any(|l| l == expected),
            "{expected} in {first:?}"
        );
    }
    let elsewhere = complete(&[""]).await;
    assert!(elsewhere.iter().any(|l| l == "cp"), "{elsewhere:?}");
    assert!(
        !elsewhere.iter().any(|l| l == "web"),
        "default namespace: {elsewhere:?}"
    );
    // The containers a session may target: the regular one and the native sidecar.
    let containers = complete(&["-n", "shop", "pod/web", "-c", ""]).await;
    assert_eq!(containers, ["app", "proxy", ":4"]);
    let toolkits = complete(&["pod/web", "--toolkit", ""]).await;
    for expected in ["base", "net", "python", "auto"] {
        assert!(
            toolkits.iter().any(|l| l == expected),
            "{expected} in {toolkits:?}"
        );
    }
    assert_eq!(
        complete(&["-n", "shop", "deploy/"]).await,
        ["deploy/api", ":4"]
    );
    // cp: the pod's name and a colon, no space after it.
    assert_eq!(
        complete(&["-n", "shop", "cp", "pod/w"]).await,
        ["pod/web:", ":6"]
    );
    let namespaces = complete(&["-n", ""]).await;
    assert!(namespaces.iter().any(|l| l == "shop"), "{namespaces:?}");
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn the_completion_scripts_name_the_binary_and_bash_parses_its_own() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(support::BIN)
            .args(["completion", shell])
            .output()
            .expect("the plugin runs");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("kubectl-distroless_debug") && script.contains("snapshot"),
            "{shell}: {script}"
        );
    }
    let script = Command::new(support::BIN)
        .args(["completion", "bash"])
        .output()
        .expect("the plugin runs")
        .stdout;
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("bash runs");
    use std::io::Write;
    bash.stdin
        .take()
        .expect("stdin")
        .write_all(&script)
        .expect("write the script");
    assert!(
        bash.wait().expect("bash ends").success(),
        "bash -n refused the script"
    );
}
