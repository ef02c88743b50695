//! Must-show 4, 5 and 6 of issue 2 with the runc node: a kube-rs client execs with a tty and
//! resizes it, a dropped exec stream is seen as closed, and nothing of the sandbox is left
//! after shutdown. Needs root and runc: skipped (printed reason) without, failing under
//! CI=true.

mod support;

use std::time::{Duration, Instant};

use futures::SinkExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, PostParams, TerminalSize};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_sandbox::{Faults, Sandbox, SandboxOptions, skip_without_node};
use serde_json::json;
use support::{Footprint, alive, mounts_under, runc_containers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn pods(sb: &Sandbox) -> Api<Pod> {
    let kubeconfig = Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Api::namespaced(Client::try_from(config).unwrap(), "default")
}

async fn create_running(pods: &Api<Pod>, name: &str, image: &str, command: &[&str]) {
    let mut container = json!({ "name": "main", "image": image });
    if !command.is_empty() {
        container["command"] = json!(command);
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "containers": [container] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = pods.get(name).await.unwrap();
        if p.status.and_then(|s| s.phase).as_deref() == Some("Running") {
            return;
        }
        assert!(Instant::now() < deadline, "{name} not Running within 60s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_execs_with_a_tty_and_resizes_it() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let pods = pods(&sb).await;
    create_running(
        &pods,
        "shell",
        "sandbox.local/busybox:latest",
        &["sleep", "3600"],
    )
    .await;

    let mut attached = pods
        .exec("shell", ["sh"], &AttachParams::interactive_tty())
        .await
        .unwrap();
    let mut resize = attached
        .terminal_size()
        .expect("a resize channel with a tty");
    resize
        .send(TerminalSize {
            width: 100,
            height: 40,
        })
        .await
        .unwrap();
    let mut stdin = attached.stdin().unwrap();
    let mut stdout = attached.stdout().unwrap();
    let status = attached.take_status().unwrap();
    // Give the resize frame a head start over the command that reads the size.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stdin.write_all(b"stty size; exit 3\n").await.unwrap();
    let mut output = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stdout.read_to_end(&mut output));
    read.await.expect("the shell ends within 10s").unwrap();
    let output = String::from_utf8_lossy(&output);
    assert!(
        output.contains("40 100"),
        "stty size after resize: {output:?}"
    );
    let status = status.await.expect("an exit status on channel 3");
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let code = status
        .details
        .and_then(|d| d.causes)
        .and_then(|c| c.into_iter().next());
    assert_eq!(code.and_then(|c| c.message).as_deref(), Some("3"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_exec_stream_is_seen_as_closed() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let pods = pods(&sb).await;
    create_running(
        &pods,
        "shell",
        "sandbox.local/busybox:latest",
        &["sleep", "3600"],
    )
    .await;
    sb.set_faults(Faults {
        drop_exec_after_ms: Some(300),
        ..Faults::default()
    });
    let started = Instant::now();
    let mut attached = pods
        .exec(
            "shell",
            ["sh", "-c", "echo started; sleep 30"],
            &AttachParams::default().stderr(false),
        )
        .await
        .unwrap();
    let mut stdout = attached.stdout().unwrap();
    let status = attached.take_status().unwrap();
    let mut first = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(10), stdout.read(&mut first))
        .await
        .expect("output within 10s")
        .unwrap();
    assert_eq!(&first[..n], b"started\n");
    // The client's session ends with a receive error: the connection went away mid-stream,
    // without a close frame or an exit status. (kube-rs leaves its stdout pipe open on that
    // path, so the end is observed through `join`.)
    let joined = tokio::time::timeout(Duration::from_secs(10), attached.join())
        .await
        .expect("the session ends long before the command would");
    let error = format!("{:?}", joined.expect_err("a dropped stream is an error"));
    assert!(error.contains("ReceiveWebSocketMessage"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(status.await.is_none(), "no exit status on a dropped stream");
    sb.shutdown().await;
}

async fn running_sandbox() -> (Sandbox, Footprint) {
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let pods = pods(&sb).await;
    create_running(&pods, "app", "sandbox.local/distroless-app:nonroot", &[]).await;
    create_running(
        &pods,
        "shell",
        "sandbox.local/busybox:latest",
        &["sleep", "3600"],
    )
    .await;
    let node = sb.node().unwrap();
    let pids: Vec<i64> = [("app", "main"), ("shell", "main")]
        .iter()
        .map(|(p, c)| node.container_pid("default", p, c).unwrap().into())
        .collect();
    let footprint = Footprint {
        pids,
        dir: sb.dir().to_path_buf(),
        runc_root: node.runc_root().to_path_buf(),
    };
    assert!(footprint.pids.iter().all(|p| alive(*p)));
    assert!(
        !mounts_under(&footprint.dir).is_empty(),
        "running containers have mounts"
    );
    assert!(!runc_containers(&footprint.runc_root).is_empty());
    (sb, footprint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_no_process_mount_or_runc_container() {
    if skip_without_node() {
        return;
    }
    let (sb, footprint) = running_sandbox().await;
    sb.shutdown().await;
    footprint.assert_gone();
}

/// On a current-thread runtime (the `#[tokio::test]` default) dropping blocks the only
/// thread: the sandbox's own runtime must finish the teardown alone.
#[tokio::test]
async fn dropping_the_handle_tears_down_too() {
    if skip_without_node() {
        return;
    }
    let (sb, footprint) = running_sandbox().await;
    drop(sb);
    footprint.assert_gone();
}
