//! Which process is the target, in every pod shape, against the sandbox: a pod sharing one
//! PID namespace whose busybox sidecar starts before the distroless target, a native sidecar
//! as the target, a target that restarts, and a runtime whose cgroups show no container ID
//! (`opaque_cgroups`, as gVisor or Kata), where the plugin refuses and `--target-pid` picks.

mod support;

use std::time::Duration;

use kube_sandbox::{Faults, SandboxOptions};
use serde_json::{Value, json};
use support::{NONROOT_APP, TestCluster};

const LIMIT: Duration = Duration::from_secs(90);
const BUSYBOX: &str = "sandbox.local/busybox:latest";
/// A file only the target's image (sandbox.local/distroless-app) has.
const TARGET_ONLY: &str = "/etc/app/v2/config.yaml";

/// `shared` in namespace `t`: one PID namespace, a root busybox sidecar first, then the
/// distroless target `app` (uid 65532 from its image).
async fn shared_pod(c: &TestCluster) {
    c.namespace("t", None).await;
    c.create_running(
        "t",
        json!({
            "metadata": { "name": "shared" },
            "spec": {
                "shareProcessNamespace": true,
                "containers": [
                    { "name": "sidecar", "image": BUSYBOX, "command": ["sleep", "3600"] },
                    { "name": "app", "image": NONROOT_APP }
                ]
            }
        }),
    )
    .await;
}

/// A session on container `app` of pod `shared`: `-n t pod/shared -c app EXTRA -- COMMAND`.
async fn in_shared_app(c: &TestCluster, extra: &[&str], command: &[&str]) -> support::Run {
    let mut args = vec!["-n", "t", "pod/shared", "-c", "app"];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    c.run(&args, LIMIT).await
}

async fn info(c: &TestCluster, extra: &[&str]) -> Value {
    let mut args = vec!["-n", "t", "info", "pod/shared", "-c", "app", "-o", "json"];
    args.extend(extra);
    let run = c.run(&args, LIMIT).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

#[tokio::test]
async fn in_a_shared_pid_namespace_the_target_is_found_by_its_container_id() {
    let Some(c) = support::cluster().await else {
        return;
    };
    shared_pod(&c).await;

    let run = c
        .run(
            &["-n", "t", "pod/shared", "-c", "app", "--", "sh", "-c",
              "ls /target/etc; echo \"pid=$TARGET_PID root=$TARGET_ROOT\"; cat $TARGET_ROOT/etc/os-release"],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.lines().any(|l| l == "app"),
        "the target's /etc: {run:?}"
    );
    assert!(run.stdout.contains("Distroless (sandbox)"), "{run:?}");
    assert!(
        !run.stdout.contains("pid=1 "),
        "PID 1 is the pause process: {run:?}"
    );

    // The session above saw its container end: `info` sends its PATCH beside its reads,
    // planned from the pod that session saw, and still finds the target by its ID.
    c.sb.clear_requests();
    let facts = info(&c, &[]).await;
    assert_eq!(
        support::patches(&c.sb.requests()),
        [(support::JSON_PATCH.to_string(), 200)],
        "{:#?}",
        c.sb.requests()
    );
    assert_eq!(facts["exe"], "/sandbox-app", "{facts}");
    assert_eq!(facts["method"], "cgroup", "{facts}");
    assert_eq!(facts["uid"], 65532, "{facts}");
    let pid = facts["pid"].as_i64().unwrap_or(1);
    assert_ne!(pid, 1, "{facts}");
    let status = c.pod_json("t", "shared").await;
    let app_id = status["status"]["containerStatuses"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "app"))
        .and_then(|s| s["containerID"].as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        format!(
            "containerd://{}",
            facts["container_id"].as_str().unwrap_or("")
        ),
        app_id,
        "{facts}"
    );

    let dir = std::env::temp_dir().join(format!("dd-target-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let local = dir.join("config.yaml");
    let from = format!("pod/shared:{TARGET_ONLY}");
    let run = c
        .run(
            &[
                "-n",
                "t",
                "cp",
                &from,
                local.to_str().unwrap_or_default(),
                "-c",
                "app",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let copied = std::fs::read_to_string(&local).unwrap_or_default();
    assert!(copied.contains("sandbox-app configuration"), "{copied:?}");
    let busybox_only = dir.join("busybox");
    let run = c
        .run(
            &[
                "-n",
                "t",
                "cp",
                "pod/shared:/bin/busybox",
                busybox_only.to_str().unwrap_or_default(),
                "-c",
                "app",
            ],
            LIMIT,
        )
        .await;
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("No such file"), "{run:?}");
    let _ = std::fs::remove_dir_all(&dir);

    let run = c
        .run(
            &[
                "-n",
                "t",
                "run",
                "--builtin",
                "processes",
                "pod/shared",
                "-c",
                "app",
                "-o",
                "json",
            ],
            LIMIT,
        )
        .await;
    let result: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    let steps = &result["pods"][0]["steps"];
    let status = steps
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == "status"))
        .unwrap_or_else(|| panic!("no status step: {result}"));
    let stdout = status["stdout"].as_str().unwrap_or_default();
    assert!(stdout.contains("Name:\tsandbox-app"), "{status}");
    assert!(stdout.contains(&format!("Pid:\t{pid}\n")), "{status}");
    c.wait_all_terminated("t", "shared", LIMIT).await;
}

#[tokio::test]
async fn without_container_ids_in_cgroups_a_shared_pid_session_refuses_with_candidates() {
    let Some(c) = support::cluster_with(SandboxOptions {
        faults: Faults {
            opaque_cgroups: true,
            ..Faults::default()
        },
        ..SandboxOptions::default()
    })
    .await
    else {
        return;
    };
    shared_pod(&c).await;

    let run = in_shared_app(&c, &[], &["cat", "/target/etc/os-release"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        !run.stdout.contains("Distroless"),
        "nothing was run: {run:?}"
    );
    assert!(
        run.stderr
            .contains("cannot tell which process is container app"),
        "{run:?}"
    );
    assert!(run.stderr.contains("PID  UID    CONTAINER  EXE"), "{run:?}");
    assert!(run.stderr.contains("--target-pid"), "{run:?}");
    // The candidates: the sidecar's sleep (root, its exe hidden from uid 65532) and the app.
    let app_pid = run
        .stderr
        .lines()
        .find(|l| l.trim_end().ends_with("/sandbox-app"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no /sandbox-app candidate: {run:?}"))
        .to_string();
    assert!(run.stderr.contains("(sleep 3600)"), "{run:?}");
    // No debug container is left running after the refusal.
    c.wait_all_terminated("t", "shared", LIMIT).await;

    // `cp` and `info` refuse the same way. Their last exec ran with `--end-container`, but
    // the agent's refusal (exit 3) registers no session: the plugin's `stop` still ends the
    // container.
    let local = std::env::temp_dir().join(format!("dd-refused-{}", std::process::id()));
    let local = local.display().to_string();
    for args in [
        vec!["cp", "pod/shared:/etc/os-release", &local],
        vec!["info", "pod/shared"],
    ] {
        c.sb.clear_requests();
        let mut argv = vec!["-n", "t"];
        argv.extend_from_slice(&args);
        argv.extend(["-c", "app"]);
        let run = c.run(&argv, LIMIT).await;
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(
            run.stderr
                .contains("cannot tell which process is container app"),
            "{args:?}: {run:?}"
        );
        assert_eq!(
            support::stop_execs(&c.sb.requests()),
            1,
            "{args:?}: {:#?}",
            c.sb.requests()
        );
        c.wait_all_terminated("t", "shared", Duration::from_secs(30))
            .await;
    }
    assert!(!std::path::Path::new(&local).exists());

    let run = in_shared_app(
        &c,
        &["--target-pid", &app_pid],
        &[
            "sh",
            "-c",
            "cat /target/etc/os-release; echo pid=$TARGET_PID",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("Distroless (sandbox)"), "{run:?}");
    assert!(run.stdout.contains(&format!("pid={app_pid}")), "{run:?}");
    let facts = info(&c, &["--target-pid", &app_pid]).await;
    assert_eq!(facts["method"], "flag", "{facts}");
    assert_eq!(facts["exe"], "/sandbox-app", "{facts}");
    c.wait_all_terminated("t", "shared", LIMIT).await;
}

#[tokio::test]
async fn a_native_sidecar_is_a_target_and_a_run_to_completion_init_container_is_not() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("t", None).await;
    c.create_running(
        "t",
        json!({
            "metadata": { "name": "mesh" },
            "spec": {
                "initContainers": [
                    { "name": "migrate", "image": BUSYBOX, "command": ["true"] },
                    { "name": "proxy", "image": NONROOT_APP, "restartPolicy": "Always" }
                ],
                "containers": [
                    { "name": "main", "image": BUSYBOX, "command": ["sleep", "3600"] }
                ]
            }
        }),
    )
    .await;

    let run = c
        .run(
            &[
                "-n",
                "t",
                "pod/mesh",
                "-c",
                "proxy",
                "--",
                "sh",
                "-c",
                "id -u; ls /target; cat /target/etc/os-release",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.starts_with("65532\n"),
        "the sidecar's uid: {run:?}"
    );
    assert!(run.stdout.lines().any(|l| l == "sandbox-app"), "{run:?}");
    assert!(run.stdout.contains("Distroless (sandbox)"), "{run:?}");

    // Beside its reads, guarded by the sidecar's ID among the init containers' statuses.
    c.sb.clear_requests();
    let run = c
        .run(
            &["-n", "t", "info", "pod/mesh", "-c", "proxy", "-o", "json"],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        support::patches(&c.sb.requests()),
        [(support::JSON_PATCH.to_string(), 200)],
        "{:#?}",
        c.sb.requests()
    );
    let facts: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    assert_eq!(facts["exe"], "/sandbox-app", "{facts}");
    assert_eq!(facts["container"], "proxy", "{facts}");

    let patches = |c: &TestCluster| {
        c.sb.requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    };
    let before = patches(&c);
    let run = c
        .run(
            &["-n", "t", "pod/mesh", "-c", "migrate", "--", "true"],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("migrate is a run-to-completion init container of pod mesh"),
        "{run:?}"
    );
    assert_eq!(patches(&c), before, "nothing was sent: {run:?}");
    c.wait_all_terminated("t", "mesh", LIMIT).await;
}

/// The ID the pod status reports for `container` (`containerd://<64hex>`), once it runs.
async fn running_id(c: &TestCluster, pod: &str, container: &str) -> String {
    let mut id = String::new();
    c.wait_for(&format!("{container} running"), LIMIT, async || {
        let pod = c.pod_json("t", pod).await;
        let status = pod["status"]["containerStatuses"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == container))
            .cloned()
            .unwrap_or_default();
        id = status["containerID"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        !status["state"]["running"].is_null() && !id.is_empty()
    })
    .await;
    id
}

/// A session kept open (`-- sh -c 'echo started; sleep N'`) so its container is reused.
async fn held_session(c: &TestCluster, pod: &str, seconds: u32) -> tokio::process::Child {
    let script = format!("echo started; sleep {seconds}");
    c.started_session(&["-n", "t", pod, "-c", "app", "--", "sh", "-c", &script])
        .await
}

#[tokio::test]
async fn a_reused_debug_container_follows_a_target_that_restarted() {
    let Some(c) = support::cluster().await else {
        return;
    };
    shared_pod(&c).await;
    let mut holder = held_session(&c, "pod/shared", 120).await;
    let before = info(&c, &[]).await;
    let old_id = running_id(&c, "shared", "app").await;

    support::kill_on_host(&old_id);
    let mut new_id = old_id.clone();
    c.wait_for("the target restarted", LIMIT, async || {
        new_id = running_id(&c, "shared", "app").await;
        new_id != old_id
    })
    .await;

    let run = c
        .run(
            &["-n", "t", "info", "pod/shared", "-c", "app", "-o", "json"],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("reusing dbg-"), "{run:?}");
    let after: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    assert_eq!(after["debugContainer"], before["debugContainer"], "{after}");
    assert_ne!(after["pid"], before["pid"], "{after}");
    assert_eq!(after["exe"], "/sandbox-app", "{after}");
    assert_eq!(
        format!(
            "containerd://{}",
            after["container_id"].as_str().unwrap_or("")
        ),
        new_id
    );
    let run = in_shared_app(&c, &[], &["cat", "/target/etc/os-release"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("Distroless (sandbox)"), "{run:?}");
    support::send(&holder, libc::SIGTERM);
    support::exit_code(&mut holder, LIMIT).await;
    c.wait_all_terminated("t", "shared", LIMIT).await;
}

#[tokio::test]
async fn without_a_shared_pid_namespace_a_target_restart_ends_the_session_and_says_so() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("t", None).await;
    c.running_app("t", "solo", NONROOT_APP, None).await;
    let id = running_id(&c, "solo", "app").await;
    let mut session = held_session(&c, "pod/solo", 120).await;
    support::kill_on_host(&id);
    let code = support::exit_code(&mut session, LIMIT).await;
    let mut stderr = String::new();
    if let Some(mut pipe) = session.stderr.take() {
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut stderr).await;
    }
    assert_eq!(code, Some(137), "{stderr}");
    assert!(
        stderr.contains("container app of pod solo restarted"),
        "{stderr}"
    );
    assert!(!stderr.contains("still running"), "{stderr}");
    assert!(!stderr.contains("cleanup"), "{stderr}");
    c.wait_all_terminated("t", "solo", LIMIT).await;
}
