//! The last source of the target's identity, against the sandbox: a node that does not report
//! `status.containerStatuses[].user` (kubelets before 1.33) and pods whose spec sets no uid,
//! so only the agent, reading `/proc/<pid>/status`, can say who the target runs as.

mod support;

use std::time::Duration;

use kube_sandbox::{Faults, SandboxOptions};
use serde_json::json;
use support::{NONROOT_APP, ROOT_APP, TestCluster};

const LIMIT: Duration = Duration::from_secs(90);

async fn old_kubelet() -> Option<TestCluster> {
    support::cluster_with(SandboxOptions {
        faults: Faults {
            hide_container_user: true,
            ..Faults::default()
        },
        ..SandboxOptions::default()
    })
    .await
}

fn requests(c: &TestCluster, method: &str, suffix: &str) -> usize {
    c.sb.requests()
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .count()
}

/// Execs of the agent's `info`: the probe that reads who the target runs as.
fn info_execs(c: &TestCluster) -> usize {
    c.sb.requests()
        .iter()
        .filter(|r| r.path.ends_with("/exec") && r.query.contains("command=info&"))
        .count()
}

#[tokio::test]
async fn a_debug_container_that_reads_the_target_as_its_image_user_is_kept() {
    let Some(c) = old_kubelet().await else {
        return;
    };
    // A restricted namespace and a distroless image whose USER is 65532: the pod says it
    // runs as non-root, never as whom.
    c.namespace("locked", Some("restricted")).await;
    c.create_running(
        "locked",
        json!({
            "metadata": { "name": "web" },
            "spec": {
                "securityContext": { "runAsNonRoot": true,
                                     "seccompProfile": { "type": "RuntimeDefault" } },
                "containers": [{ "name": "app", "image": NONROOT_APP,
                    "securityContext": { "allowPrivilegeEscalation": false,
                                         "capabilities": { "drop": ["ALL"] } } }]
            }
        }),
    )
    .await;
    assert!(
        c.pod_json("locked", "web").await["status"]["containerStatuses"][0]
            .get("user")
            .is_none(),
        "the node reports no user"
    );
    c.sb.clear_requests();
    let run = c
        .run(
            &[
                "-n",
                "locked",
                "pod/web",
                "--",
                "sh",
                "-c",
                "id -u; ls /target/etc",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout.lines().next(), Some("65532"), "{run:?}");
    assert!(run.stdout.lines().any(|l| l == "passwd"), "{run:?}");
    assert!(!run.stderr.contains("warning"), "{run:?}");

    // One container, as its image's user, and one exec more than a session that knew.
    let containers = c.debug_containers("locked", "web").await;
    assert_eq!(containers.len(), 1, "{containers:?}");
    let added = &c.pod_json("locked", "web").await["spec"]["ephemeralContainers"][0];
    assert!(
        added["securityContext"].get("runAsUser").is_none(),
        "{added}"
    );
    assert_eq!(requests(&c, "PATCH", "/ephemeralcontainers"), 1);
    // info and the command, which ends its container: no stop.
    assert_eq!(requests(&c, "GET", "/exec"), 2);
    assert_eq!(info_execs(&c), 1, "{:#?}", c.sb.requests());
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn a_debug_container_that_cannot_read_the_target_is_replaced_by_one_running_as_it() {
    let Some(c) = old_kubelet().await else {
        return;
    };
    // The image's USER is root; our debug image's is 65532, which cannot read root's /proc.
    c.namespace("open", Some("baseline")).await;
    c.running_app("open", "root-app", ROOT_APP, None).await;
    let before = c.target_fingerprint("open", "root-app").await;
    let run = c
        .run(
            &[
                "-n",
                "open",
                "root-app",
                "-o",
                "json",
                "--",
                "sh",
                "-c",
                "id -u; ls /target/etc",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let result: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let stdout = result["stdout"].as_str().unwrap_or_default();
    assert_eq!(stdout.lines().next(), Some("0"), "{result}");
    assert!(stdout.lines().any(|l| l == "passwd"), "{result}");
    // The agent's reading took time, and the result says how much.
    assert!(
        result["durationsMs"]["probe"].as_u64().unwrap_or(0) > 0,
        "{result}"
    );

    let containers = c.debug_containers("open", "root-app").await;
    assert_eq!(containers.len(), 2, "{containers:?}");
    let (probe, replacement) = (&containers[0].0, &containers[1].0);
    assert_eq!(result["debugContainer"], replacement.as_str());
    assert!(
        run.stderr.contains(&format!(
            "container app runs as 0:0 (read by the agent in {probe}"
        )) && run
            .stderr
            .contains(&format!("replacing it with {replacement}")),
        "{run:?}"
    );
    let spec = &c.pod_json("open", "root-app").await["spec"]["ephemeralContainers"];
    assert!(spec[0]["securityContext"].get("runAsUser").is_none());
    assert_eq!(spec[1]["securityContext"]["runAsUser"], 0);
    assert_eq!(spec[1]["securityContext"]["runAsGroup"], 0);
    c.wait_all_terminated("open", "root-app", Duration::from_secs(20))
        .await;
    assert_eq!(c.target_fingerprint("open", "root-app").await, before);
}

#[tokio::test]
async fn a_reused_container_is_not_probed_again() {
    let Some(c) = old_kubelet().await else {
        return;
    };
    c.namespace("open", Some("baseline")).await;
    c.running_app("open", "root-app", ROOT_APP, None).await;
    let mut first = c
        .plugin(&["-n", "open", "root-app", "--", "sleep", "30"])
        .spawn()
        .expect("starts");
    c.wait_for("the replacement running", LIMIT, async || {
        let containers = c.debug_containers("open", "root-app").await;
        containers.len() == 2 && containers[1].1 == "running"
    })
    .await;
    c.sb.clear_requests();
    let run = c
        .run(
            &["-n", "open", "root-app", "--", "ls", "/target/etc"],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.lines().any(|l| l == "passwd"), "{run:?}");
    assert_eq!(requests(&c, "PATCH", "/ephemeralcontainers"), 0);
    assert!(
        requests(&c, "GET", "/exec") > 0,
        "the command ran in the reused container"
    );
    assert_eq!(info_execs(&c), 0, "the reused container was probed again");
    assert_eq!(c.debug_containers("open", "root-app").await.len(), 2);
    let _ = first.kill().await;
    let _ = c
        .run(&["-n", "open", "cleanup"], Duration::from_secs(30))
        .await;
    c.wait_all_terminated("open", "root-app", Duration::from_secs(20))
        .await;
}
