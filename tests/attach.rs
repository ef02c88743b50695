//! Attach mode for commands, against the sandbox: a user who may attach but not exec runs
//! `-- COMMAND` and gets what an exec would give: stdout and stderr apart, none of it lost,
//! stdin when piped, the command's exit code, JSON, and teardown on a signal. (The
//! interactive shell in attach mode is tested in a real terminal, tests/terminal.rs.)

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use kube_sandbox::SandboxOptions;
use support::{ATTACH_ONLY, NONROOT_APP, TestCluster};
use tokio::io::AsyncWriteExt;

const LIMIT: Duration = Duration::from_secs(90);

/// A cluster where carol may attach but not exec, her kubeconfig, and a running target.
async fn attach_only() -> Option<(TestCluster, PathBuf)> {
    let c = support::cluster_with(SandboxOptions {
        rbac: Some(ATTACH_ONLY.into()),
        ..SandboxOptions::default()
    })
    .await?;
    c.namespace("locked", Some("restricted")).await;
    c.running_app("locked", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    let carol = c.sb.dir().join("carol.kubeconfig");
    c.sb.write_kubeconfig_for("carol-token", "carol", &carol)
        .expect("carol's kubeconfig");
    Some((c, carol))
}

fn execs(c: &TestCluster) -> usize {
    c.sb.requests()
        .iter()
        .filter(|r| r.path.ends_with("/exec"))
        .count()
}

#[tokio::test]
async fn a_command_runs_as_the_main_process_with_its_output_and_exit_code() {
    let Some((c, carol)) = attach_only().await else {
        return;
    };
    let before = c.target_fingerprint("locked", "web").await;
    c.sb.clear_requests();
    // Output written at once, before anything could have attached without the gate.
    let command = c.plugin_with_kubeconfig(
        &carol,
        &[
            "-n",
            "locked",
            "pod/web",
            "--",
            "sh",
            "-c",
            "echo first; echo to-stderr >&2; ls /target/etc; exit 5",
        ],
    );
    let run = support::run_command(command, LIMIT).await;
    assert_eq!(run.code, Some(5), "the command's exit code: {run:?}");
    assert_eq!(run.stdout.lines().next(), Some("first"), "{run:?}");
    assert!(run.stdout.lines().any(|l| l == "passwd"), "{run:?}");
    assert!(!run.stdout.contains("to-stderr"), "{run:?}");
    assert!(run.stderr.contains("to-stderr"), "{run:?}");
    assert!(
        run.stderr
            .contains("runs the command as its main process (attach mode)"),
        "{run:?}"
    );
    assert_eq!(execs(&c), 0, "no exec was tried");
    // The trail: carol may not create events (one note), and the session is recorded.
    let notes = run.stderr.matches("no Event written on pod web").count();
    assert_eq!(notes, 1, "{run:?}");
    let history = c.run(&["history", "-o", "json"], LIMIT).await;
    let listed: serde_json::Value = serde_json::from_str(&history.stdout).unwrap_or_default();
    let session = &listed["items"][0];
    assert_eq!(session["exitCode"], 5, "{listed:#}");
    assert_eq!(session["user"], "carol");
    let cast =
        std::fs::read_to_string(session["recording"].as_str().unwrap_or("-")).unwrap_or_default();
    assert!(cast.contains("first\\n"), "{cast}");
    assert!(
        !cast.contains("to-stderr"),
        "stderr is its own stream: {cast}"
    );
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
    assert_eq!(c.debug_containers("locked", "web").await.len(), 1);
    assert_eq!(c.target_fingerprint("locked", "web").await, before);
}

#[tokio::test]
async fn piped_stdin_reaches_the_command_and_json_carries_the_result() {
    let Some((c, carol)) = attach_only().await else {
        return;
    };
    let mut command = c.plugin_with_kubeconfig(
        &carol,
        &[
            "-n",
            "locked",
            "pod/web",
            "-o",
            "json",
            "--",
            "sh",
            "-c",
            "tr a-z A-Z; exit 3",
        ],
    );
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hello\nworld\n").await.expect("written");
    drop(stdin);
    let output = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("ends in time")
        .expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(result["exitCode"], 3, "{result}");
    assert_eq!(result["stdout"], "HELLO\nWORLD\n", "{result}");
    assert_eq!(result["reused"], false);
    assert!(
        result["debugContainer"]
            .as_str()
            .is_some_and(|n| n.starts_with("dbg-"))
    );
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn a_signal_stops_the_command_and_its_container_without_exec() {
    let Some((c, carol)) = attach_only().await else {
        return;
    };
    let before = c.target_fingerprint("locked", "web").await;
    // A script whose last command is not exec'd: its child must be stopped too.
    let mut command = c.plugin_with_kubeconfig(
        &carol,
        &[
            "-n",
            "locked",
            "pod/web",
            "--",
            "sh",
            "-c",
            "echo up; sleep 300; echo never",
        ],
    );
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("starts");
    assert_eq!(
        support::first_line(&mut child, LIMIT).await.as_deref(),
        Some("up")
    );
    support::send(&child, libc::SIGTERM);
    let output = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
        .await
        .expect("ends")
        .expect("status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128 + libc::SIGTERM), "{stderr}");
    assert!(stderr.contains("stopped dbg-"), "{stderr}");
    assert!(!stderr.contains("still running"), "{stderr}");
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
    let pod = c.pod_json("locked", "web").await;
    let ended = &pod["status"]["ephemeralContainerStatuses"][0]["state"]["terminated"];
    assert_eq!(ended["exitCode"], 128 + libc::SIGTERM, "{ended}");
    assert_eq!(c.target_fingerprint("locked", "web").await, before);
}
