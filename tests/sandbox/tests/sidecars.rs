//! Native sidecars (init containers with `restartPolicy: Always`, Kubernetes ≥ 1.29) as the
//! kubelet runs them, seen through the real kubectl: started before the main containers (past
//! their startup probe), restarted whenever they exit, stopped after the main containers,
//! counted in READY, and a valid `targetContainerName` for an ephemeral container. Needs
//! root and runc.

mod pods;
mod support;

use std::time::Duration;

use kube_sandbox::{Sandbox, SandboxOptions, skip_without_node};
use pods::*;

/// `kubectl get pod NAME` without headers: NAME READY STATUS RESTARTS AGE...
async fn row(sb: &Sandbox, name: &str) -> Vec<String> {
    let out = kubectl_ok(sb, &["get", "pod", name, "--no-headers"]).await;
    let mut cells: Vec<String> = out.split_whitespace().map(String::from).collect();
    // RESTARTS may read `2 (3s ago)`: keep the count only.
    if cells.get(4).is_some_and(|c| c.starts_with('(')) {
        cells.drain(4..6);
    }
    cells
}

/// A pod with the native sidecar `proxy` running `sidecar_command` and the main container
/// `app` sleeping `app_sleep` seconds.
fn sidecar_pod(name: &str, restart_policy: &str, sidecar_command: &str, app_sleep: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart_policy}
  initContainers:
  - name: proxy
    image: {BUSYBOX}
    restartPolicy: Always
    command: {sidecar_command}
  containers:
  - name: app
    image: {BUSYBOX}
    command: [sleep, "{app_sleep}"]
"#
    )
}

fn running(status: &serde_json::Value) -> bool {
    status["state"]["running"].is_object()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_container_starts_after_the_sidecar_has_started_and_ready_counts_both() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    // The sidecar is started only once its startup probe sees the file it writes a second in;
    // the main container says whether the file was there when it began.
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  volumes:
  - name: shared
    emptyDir: {{}}
  initContainers:
  - name: setup
    image: {BUSYBOX}
    command: [sh, -c, "echo configured > /shared/setup"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  - name: proxy
    image: {BUSYBOX}
    restartPolicy: Always
    command: [sh, -c, "sleep 1; touch /shared/proxy-up; exec sleep 3600"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
    startupProbe:
      exec: {{command: [test, -f, /shared/proxy-up]}}
      periodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: [sh, -c, "cat /shared/setup; if [ -f /shared/proxy-up ]; then echo sidecar-up; else echo sidecar-not-up; fi; exec sleep 3600"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
"#
    );
    apply(&sb, "web", &yaml).await;
    let pod = wait_for(
        "web Running and Ready",
        Duration::from_secs(90),
        async || {
            let pod = get_pod(&sb, "web").await;
            let ready = pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            ready.then_some(pod)
        },
    )
    .await;
    assert_eq!(pod["status"]["phase"], "Running");
    let proxy = status_of(&pod["status"]["initContainerStatuses"], "proxy");
    assert!(running(proxy), "{proxy}");
    assert_eq!(proxy["started"], true, "{proxy}");
    assert_eq!(proxy["ready"], true, "{proxy}");
    let setup = status_of(&pod["status"]["initContainerStatuses"], "setup");
    assert_eq!(setup["state"]["terminated"]["exitCode"], 0, "{setup}");
    let app = status_of(&pod["status"]["containerStatuses"], "app");
    assert!(running(app), "{app}");
    let started = |s: &serde_json::Value| {
        s["state"]["running"]["startedAt"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(started(proxy) <= started(app), "{proxy} {app}");
    let conditions = pod["status"]["conditions"].as_array().unwrap();
    for type_ in ["Initialized", "ContainersReady", "Ready"] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == type_ && c["status"] == "True"),
            "{type_}: {conditions:?}"
        );
    }

    let logs = kubectl_ok(&sb, &["logs", "web", "-c", "app"]).await;
    assert_eq!(logs, "configured\nsidecar-up\n");
    let cells = row(&sb, "web").await;
    assert_eq!(cells[..4], ["web", "2/2", "Running", "0"], "{cells:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_that_exits_is_restarted_while_the_main_container_keeps_running() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    // restartPolicy Never: the sidecar restarts all the same.
    let yaml = sidecar_pod("flaky", "Never", r#"[sh, -c, "sleep 1; exit 3"]"#, "3600");
    apply(&sb, "flaky", &yaml).await;
    let first = wait_for("app running", Duration::from_secs(60), async || {
        let pod = get_pod(&sb, "flaky").await;
        let app = status_of(&pod["status"]["containerStatuses"], "app");
        running(app).then(|| app["containerID"].clone())
    })
    .await;
    let pod = wait_for(
        "two sidecar restarts",
        Duration::from_secs(60),
        async || {
            let pod = get_pod(&sb, "flaky").await;
            let restarts =
                status_of(&pod["status"]["initContainerStatuses"], "proxy")["restartCount"]
                    .as_i64()
                    .unwrap_or(0);
            (restarts >= 2).then_some(pod)
        },
    )
    .await;
    let proxy = status_of(&pod["status"]["initContainerStatuses"], "proxy");
    assert_eq!(proxy["lastState"]["terminated"]["exitCode"], 3, "{proxy}");
    let app = status_of(&pod["status"]["containerStatuses"], "app");
    assert!(running(app), "{app}");
    assert_eq!(app["restartCount"], 0);
    assert_eq!(
        app["containerID"], first,
        "the main container was not restarted"
    );
    assert_eq!(pod["status"]["phase"], "Running");
    let cells = row(&sb, "flaky").await;
    let restarts: i64 = cells[3].parse().unwrap();
    assert!(restarts >= 2, "RESTARTS counts the sidecar's: {cells:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_is_stopped_after_the_main_container_and_nothing_is_left() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let shared = sb.dir().join("shared");
    // The main container takes 2 s to stop; the sidecar records what it sees when told to.
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: ordered
spec:
  volumes:
  - name: shared
    hostPath: {{path: {shared}, type: DirectoryOrCreate}}
  initContainers:
  - name: proxy
    image: {BUSYBOX}
    restartPolicy: Always
    command: [sh, -c, "trap 'ls /shared > /shared/seen-by-proxy; exit 0' TERM; while true; do sleep 1; done"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  containers:
  - name: app
    image: {BUSYBOX}
    command: [sh, -c, "trap 'sleep 2; touch /shared/app-stopped; exit 0' TERM; while true; do sleep 1; done"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
"#,
        shared = shared.display()
    );
    apply(&sb, "ordered", &yaml).await;
    wait_for("ordered 2/2", Duration::from_secs(60), async || {
        let cells = row(&sb, "ordered").await;
        (cells[1] == "2/2").then_some(())
    })
    .await;
    let uid = get_pod(&sb, "ordered").await["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    delete_and_wait(&sb, &["ordered"], 30).await;
    let seen = std::fs::read_to_string(shared.join("seen-by-proxy")).unwrap_or_default();
    assert!(
        seen.lines().any(|l| l == "app-stopped"),
        "the sidecar was stopped before the main container had stopped: it saw {seen:?}"
    );
    let node = sb.node().unwrap();
    assert_eq!(
        support::runc_containers(node.runc_root()),
        [],
        "runc containers left"
    );
    assert_eq!(pod_cgroups_left(&uid), Vec::<std::path::PathBuf>::new());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_container_can_target_a_native_sidecar() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let yaml = sidecar_pod("meshed", "Always", r#"[sleep, "3700"]"#, "3600");
    apply(&sb, "meshed", &yaml).await;
    wait_for("meshed 2/2", Duration::from_secs(60), async || {
        (row(&sb, "meshed").await[1] == "2/2").then_some(())
    })
    .await;
    kubectl_ok(
        &sb,
        &[
            "debug", "meshed", "--image", BUSYBOX, "--target", "proxy", "-c", "dbg", "--", "sleep",
            "3601",
        ],
    )
    .await;
    wait_for("dbg running", Duration::from_secs(60), async || {
        let pod = get_pod(&sb, "meshed").await;
        running(status_of(
            &pod["status"]["ephemeralContainerStatuses"],
            "dbg",
        ))
        .then_some(())
    })
    .await;
    let seen = kubectl_ok(
        &sb,
        &[
            "exec",
            "meshed",
            "-c",
            "dbg",
            "--",
            "sh",
            "-c",
            "cat /proc/[0-9]*/cmdline | tr '\\0' ' '",
        ],
    )
    .await;
    assert!(seen.contains("sleep 3700"), "the sidecar's process: {seen}");
    assert!(
        !seen.contains("sleep 3600"),
        "not the main container's: {seen}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_are_stopped_once_the_main_containers_of_a_job_pod_have_completed() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let yaml = sidecar_pod(
        "job",
        "Never",
        r#"[sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]"#,
        "1",
    );
    apply(&sb, "job", &yaml).await;
    let pod = wait_for("job Succeeded", Duration::from_secs(60), async || {
        let pod = get_pod(&sb, "job").await;
        (pod["status"]["phase"] == "Succeeded").then_some(pod)
    })
    .await;
    let proxy = status_of(&pod["status"]["initContainerStatuses"], "proxy");
    assert_eq!(proxy["state"]["terminated"]["exitCode"], 0, "{proxy}");
    assert_eq!(proxy["restartCount"], 0, "{proxy}");
    let cells = row(&sb, "job").await;
    assert_eq!(cells[1..3], ["0/2", "Completed"], "{cells:?}");
    // And it stays stopped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pod = get_pod(&sb, "job").await;
    let proxy = status_of(&pod["status"]["initContainerStatuses"], "proxy");
    assert!(proxy["state"]["terminated"].is_object(), "{proxy}");
    sb.shutdown().await;
}
