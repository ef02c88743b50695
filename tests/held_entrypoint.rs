//! The held entrypoint of a `--copy` pod, end to end on the sandbox's runc node with the
//! real `base` image: a pod of the shape the copy has (docs/agent.md, the held entrypoint)
//! where the init container installs the agent into the shared emptyDir, the crashing app's
//! container holds its command, and `start` in the debug container (another uid) runs it
//! there through `kubectl exec`: the app's own error and exit code, an override that fixes
//! it, again after an exit.

mod support;

use std::process::Output;

use serde_json::json;
use support::{base_image_ref, cluster};

const CRASHING_APP: &str = "sandbox.local/crashing-app:v1";

fn held_pod() -> serde_json::Value {
    let volume = json!([{ "name": "distroless-debug", "mountPath": "/.distroless-debug" }]);
    let restricted = |uid: i64| {
        json!({
            "runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": true,
            "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] }
        })
    };
    json!({
        "metadata": {
            "name": "held",
            "labels": { "distroless-debug.io/copy": "true", "distroless-debug.io/copy-of": "crashy" }
        },
        "spec": {
            "shareProcessNamespace": true,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 600,
            "terminationGracePeriodSeconds": 1,
            "volumes": [{ "name": "distroless-debug", "emptyDir": {} }],
            "initContainers": [{
                "name": "distroless-debug-install",
                "image": base_image_ref(),
                "command": ["/usr/local/bin/distroless-debug-agent", "install", "/.distroless-debug/agent"],
                "securityContext": restricted(65532),
                "volumeMounts": volume,
            }],
            "containers": [{
                "name": "app",
                "image": CRASHING_APP,
                "command": ["/.distroless-debug/agent", "entrypoint", "--socket",
                            "/.distroless-debug/start.sock", "--", "/sandbox-app", "require-port"],
                "volumeMounts": volume,
            }, {
                "name": "distroless-debug",
                "image": base_image_ref(),
                "args": ["hold", "--ttl", "10m"],
                "env": [{ "name": "DISTROLESS_DEBUG_START_SOCKET", "value": "/.distroless-debug/start.sock" }],
                "securityContext": restricted(1000),
                "volumeMounts": volume,
            }]
        }
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_in_the_debug_container_runs_the_held_command_in_the_target_container() {
    let Some(c) = cluster().await else { return };
    c.create_running("default", held_pod()).await;
    let exec = |script: &str| -> Output {
        c.sb.kubectl()
            .args([
                "exec",
                "held",
                "-c",
                "distroless-debug",
                "--",
                "sh",
                "-c",
                script,
            ])
            .output()
            .unwrap()
    };

    // The app's own error, on start's stderr, and its exit code.
    let out = exec("start");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("sandbox-app: PORT is not set"),
        "{}",
        text(&out.stderr)
    );

    // With the override it serves; Ctrl-C (SIGINT to start) ends it, and it ran in the
    // target container (its cgroup names the app container's ID), as the image's uid; the
    // debug container runs as another uid, so the socket is open to it.
    let out = exec(
        "start PORT=8080 & sleep 2; \
         pid=$(pidof sandbox-app); \
         echo \"uid $(awk '/^Uid:/ {print $2}' /proc/$pid/status)\"; \
         head -n1 /proc/$pid/cgroup; \
         kill -INT $!; wait $!; echo \"start exited $?\"",
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("serving on :8080"), "{stdout}");
    assert!(stdout.contains("uid 65532\n"), "{stdout}");
    let pod = c.pod_json("default", "held").await;
    let app_id = pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "app")
        .and_then(|s| s["containerID"].as_str())
        .unwrap()
        .trim_start_matches("containerd://")
        .to_string();
    assert!(
        stdout.contains(&format!("/{app_id}\n")),
        "{app_id}: {stdout}"
    );
    // sandbox-app exits 0 on SIGINT.
    assert!(stdout.contains("start exited 0\n"), "{stdout}");

    // Again after an exit.
    let out = exec("start");
    assert_eq!(out.status.code(), Some(1));
}
