//! What the cgroup and sidecar checks share: the real kubectl against a sandbox with its runc
//! node, pods as JSON, waiting, and the node's footprint of one pod on the host. Which kubectl
//! and runc's own view of the node come from `support`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use kube_sandbox::Sandbox;
use serde_json::Value;

pub const BUSYBOX: &str = "sandbox.local/busybox:latest";

/// kubectl 1.33, the newest the tests drive (`support::kubectl`: under `CI=true` a missing one
/// fails); elsewhere `kubectl` on PATH stands in for it.
pub fn newest_kubectl() -> PathBuf {
    crate::support::kubectl(33).unwrap_or_else(|| PathBuf::from("kubectl"))
}

pub async fn kubectl(sb: &Sandbox, args: &[&str]) -> Output {
    let mut cmd = sb.kubectl_at(&newest_kubectl());
    cmd.args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("running kubectl"))
        .await
        .unwrap()
}

/// kubectl's stdout; panics with its stderr when it fails.
pub async fn kubectl_ok(sb: &Sandbox, args: &[&str]) -> String {
    let out = kubectl(sb, args).await;
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl apply -f` of a manifest.
pub async fn apply(sb: &Sandbox, name: &str, yaml: &str) {
    let path = sb.dir().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    kubectl_ok(sb, &["apply", "-f", &path.to_string_lossy()]).await;
}

/// The pod as `kubectl get -o json` prints it.
pub async fn get_pod(sb: &Sandbox, name: &str) -> Value {
    let out = kubectl_ok(sb, &["get", "pod", name, "-o", "json"]).await;
    serde_json::from_str(&out).unwrap()
}

/// Poll `check` every 200 ms until it returns something, or panic after `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The status of container `name` among `statuses` (`containerStatuses`, ...).
pub fn status_of<'a>(statuses: &'a Value, name: &str) -> &'a Value {
    statuses
        .as_array()
        .and_then(|l| l.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

/// The container ID after `containerd://`; panics unless it is containerd's 64 hex digits.
pub fn container_id(status: &Value) -> String {
    let full = status["containerID"].as_str().unwrap_or("");
    let id = full
        .strip_prefix("containerd://")
        .unwrap_or_else(|| panic!("containerID {full:?} is not containerd://<id>"));
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{full}"
    );
    id.to_string()
}

/// The pod's directories in every cgroup hierarchy that still exist (whatever its QoS).
pub fn pod_cgroups_left(uid: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for parent in ["kubepods", "kubepods/besteffort", "kubepods/burstable"] {
            let dir = hierarchy.path().join(parent).join(format!("pod{uid}"));
            if dir.exists() {
                left.push(dir);
            }
        }
    }
    left
}

/// Delete the pods (`grace` seconds to stop) and wait until the API has forgotten them (the
/// node has stopped everything).
pub async fn delete_and_wait(sb: &Sandbox, names: &[&str], grace: u32) {
    let grace = format!("--grace-period={grace}");
    let mut args = vec!["delete", "pod", "--wait=true", "--timeout=60s", &grace];
    args.extend(names);
    kubectl_ok(sb, &args).await;
}
