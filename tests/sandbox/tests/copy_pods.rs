//! What a copy of a crash-looping pod needs from the node, as the kubelet does it and seen
//! through the real kubectl: the crashing app's CrashLoopBackOff, an init container filling
//! an emptyDir the main container reads, `restartPolicy: Never` (Failed/Succeeded),
//! `activeDeadlineSeconds` (DeadlineExceeded), and CreateContainerConfigError for a missing
//! ConfigMap, Secret or key. Needs root and runc.

mod pods;
mod support;

use std::time::Duration;

use kube_sandbox::fixtures::{CRASHING_APP, crash_looping_pod};
use kube_sandbox::{Sandbox, SandboxOptions, skip_without_node};
use pods::*;
use serde_json::Value;

/// The STATUS column of `kubectl get pod NAME`.
async fn status_column(sb: &Sandbox, name: &str) -> String {
    let out = kubectl_ok(sb, &["get", "pod", name, "--no-headers"]).await;
    out.split_whitespace().nth(2).unwrap_or("").to_string()
}

async fn wait_status(sb: &Sandbox, name: &str, want: &str, timeout: Duration) {
    wait_for(&format!("{name} shown as {want}"), timeout, async || {
        (status_column(sb, name).await == want).then_some(())
    })
    .await
}

async fn pod_events(sb: &Sandbox, name: &str) -> String {
    let selector = format!("involvedObject.name={name}");
    kubectl_ok(sb, &["get", "events", "--field-selector", &selector]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_app_crash_loops_with_its_error_and_serves_once_port_is_set() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    apply(&sb, "crashy", &crash_looping_pod("crashy", CRASHING_APP)).await;
    wait_status(&sb, "crashy", "CrashLoopBackOff", Duration::from_secs(60)).await;
    let pod = get_pod(&sb, "crashy").await;
    let app = status_of(&pod["status"]["containerStatuses"], "app");
    assert!(app["restartCount"].as_i64().unwrap() >= 1, "{app}");
    assert_eq!(app["lastState"]["terminated"]["exitCode"], 1, "{app}");
    let logs = kubectl_ok(&sb, &["logs", "crashy", "--previous"]).await;
    assert!(logs.contains("sandbox-app: PORT is not set"), "{logs}");

    // The same image with PORT set: the entrypoint from its config serves.
    let fixed = crash_looping_pod("fixed", CRASHING_APP).replace(
        &format!("    image: {CRASHING_APP}\n"),
        &format!("    image: {CRASHING_APP}\n    env: [{{name: PORT, value: \"8081\"}}]\n"),
    );
    apply(&sb, "fixed", &fixed).await;
    wait_status(&sb, "fixed", "Running", Duration::from_secs(60)).await;
    let logs = wait_for("fixed serving", Duration::from_secs(20), async || {
        let logs = kubectl_ok(&sb, &["logs", "fixed"]).await;
        logs.contains("serving on :8081").then_some(logs)
    })
    .await;
    assert!(!logs.contains("PORT is not set"), "{logs}");
    // DELETE stops every container: nothing of the pods is left on the node.
    let uids: Vec<String> = [get_pod(&sb, "crashy").await, get_pod(&sb, "fixed").await]
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_string())
        .collect();
    delete_and_wait(&sb, &["crashy", "fixed"], 1).await;
    for uid in uids {
        assert!(pod_cgroups_left(&uid).is_empty(), "pod {uid} left cgroups");
    }
    sb.shutdown().await;
}

/// The copy's shape: an init container installs a file into an emptyDir that both main
/// containers see (both run `main_command`), the pod shares its process namespace and never
/// restarts anything.
fn copy_like_pod(name: &str, main_command: &str, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: Never
  shareProcessNamespace: true
  terminationGracePeriodSeconds: 1
{extra_spec}  volumes:
  - name: distroless-debug
    emptyDir: {{}}
  initContainers:
  - name: install
    image: {BUSYBOX}
    command: [sh, -c, "sleep 1; echo installed > /.distroless-debug/agent.tmp && mv /.distroless-debug/agent.tmp /.distroless-debug/agent"]
    volumeMounts: [{{name: distroless-debug, mountPath: /.distroless-debug}}]
  containers:
  - name: app
    image: {BUSYBOX}
    command: [sh, -c, {main_command:?}]
    volumeMounts: [{{name: distroless-debug, mountPath: /.distroless-debug}}]
  - name: debugger
    image: {BUSYBOX}
    command: [sh, -c, {main_command:?}]
    volumeMounts: [{{name: distroless-debug, mountPath: /.distroless-debug}}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_container_fills_the_shared_empty_dir_and_never_pods_end_failed_or_succeeded() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    apply(
        &sb,
        "failing",
        &copy_like_pod(
            "failing",
            "cat /.distroless-debug/agent; sleep 2; exit 3",
            "",
        ),
    )
    .await;
    // kubectl shows the init container first, then the running pod.
    wait_status(&sb, "failing", "Init:0/1", Duration::from_secs(30)).await;
    wait_status(&sb, "failing", "Running", Duration::from_secs(30)).await;
    wait_status(&sb, "failing", "Error", Duration::from_secs(30)).await;
    let pod = get_pod(&sb, "failing").await;
    assert_eq!(pod["status"]["phase"], "Failed", "{pod}");
    let app = status_of(&pod["status"]["containerStatuses"], "app");
    assert_eq!(app["state"]["terminated"]["exitCode"], 3, "{app}");
    assert_eq!(app["restartCount"], 0, "{app}");
    for name in ["app", "debugger"] {
        let logs = kubectl_ok(&sb, &["logs", "failing", "-c", name]).await;
        assert_eq!(logs, "installed\n", "{name}");
    }
    let previous = kubectl(&sb, &["logs", "failing", "-c", "app", "--previous"]).await;
    assert_eq!(
        String::from_utf8_lossy(&previous.stderr).trim(),
        r#"Error from server (BadRequest): previous terminated container "app" in pod "failing" not found"#
    );

    apply(
        &sb,
        "done",
        &copy_like_pod("done", "cat /.distroless-debug/agent", ""),
    )
    .await;
    wait_status(&sb, "done", "Completed", Duration::from_secs(60)).await;
    assert_eq!(get_pod(&sb, "done").await["status"]["phase"], "Succeeded");
    delete_and_wait(&sb, &["failing", "done"], 1).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_kills_the_pod_and_fails_it_with_deadline_exceeded() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    apply(
        &sb,
        "copy",
        &copy_like_pod("copy", "exec sleep 3600", "  activeDeadlineSeconds: 4\n"),
    )
    .await;
    wait_status(&sb, "copy", "Running", Duration::from_secs(30)).await;
    let uid = get_pod(&sb, "copy").await["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    // Read through kubectl's jsonpath: the STATUS column shows DeadlineExceeded only until
    // the killed containers report their own reason (Error), as kubectl prints a real pod.
    wait_for(
        "copy failed by its deadline",
        Duration::from_secs(30),
        async || {
            let reason = [
                "get",
                "pod",
                "copy",
                "-o",
                "jsonpath={.status.phase}/{.status.reason}",
            ];
            (kubectl_ok(&sb, &reason).await == "Failed/DeadlineExceeded").then_some(())
        },
    )
    .await;
    let pod = get_pod(&sb, "copy").await;
    assert_eq!(pod["status"]["phase"], "Failed", "{pod}");
    assert_eq!(pod["status"]["reason"], "DeadlineExceeded", "{pod}");
    assert_eq!(
        pod["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    // Then every container is killed, and what the pod held on the node goes.
    wait_for(
        "the copy's containers killed",
        Duration::from_secs(20),
        async || {
            let pod = get_pod(&sb, "copy").await;
            let statuses = pod["status"]["containerStatuses"].as_array()?.clone();
            statuses
                .iter()
                .all(|c| c["state"]["terminated"].is_object())
                .then_some(())
        },
    )
    .await;
    wait_for(
        "the pod's cgroups removed",
        Duration::from_secs(20),
        async || pod_cgroups_left(&uid).is_empty().then_some(()),
    )
    .await;
    let events = pod_events(&sb, "copy").await;
    assert!(events.contains("DeadlineExceeded"), "{events}");
    delete_and_wait(&sb, &["copy"], 1).await;
    sb.shutdown().await;
}

/// Container `app` whose environment refers to `env_from` (an `env` list in flow style).
fn pod_with_env(name: &str, env: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: [sh, -c, "echo TOKEN=$TOKEN; exec sleep 3600"]
    env: {env}
"#
    )
}

async fn waiting_message(sb: &Sandbox, name: &str) -> String {
    wait_status(
        sb,
        name,
        "CreateContainerConfigError",
        Duration::from_secs(30),
    )
    .await;
    let pod: Value = get_pod(sb, name).await;
    let app = status_of(&pod["status"]["containerStatuses"], "app");
    assert_eq!(
        app["state"]["waiting"]["reason"], "CreateContainerConfigError",
        "{app}"
    );
    app["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_config_map_secret_or_key_is_a_create_container_config_error() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let secret_ref = "[{name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}]";
    apply(
        &sb,
        "needs-secret",
        &pod_with_env("needs-secret", secret_ref),
    )
    .await;
    assert_eq!(
        waiting_message(&sb, "needs-secret").await,
        r#"secret "creds" not found"#
    );
    let cm_ref = "[{name: TOKEN, valueFrom: {configMapKeyRef: {name: settings, key: token}}}]";
    apply(&sb, "needs-cm", &pod_with_env("needs-cm", cm_ref)).await;
    assert_eq!(
        waiting_message(&sb, "needs-cm").await,
        r#"configmap "settings" not found"#
    );
    let events = pod_events(&sb, "needs-cm").await;
    assert!(
        events.contains(r#"Error: configmap "settings" not found"#),
        "{events}"
    );

    // A ConfigMap without the key: the kubelet names the key and the object.
    let config_map =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {other: x}\n";
    apply(&sb, "settings", config_map).await;
    let missing_key = wait_for("the key error", Duration::from_secs(60), async || {
        let pod = get_pod(&sb, "needs-cm").await;
        let app = status_of(&pod["status"]["containerStatuses"], "app");
        let message = app["state"]["waiting"]["message"].as_str()?.to_string();
        message.contains("couldn't find key").then_some(message)
    })
    .await;
    assert_eq!(
        missing_key,
        "couldn't find key token in ConfigMap default/settings"
    );

    // The Secret created later: the node retries and the container starts with its value.
    // Written as stringData: the API server stores it base64-encoded under data.
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {token: s3cret}\n";
    apply(&sb, "creds", secret).await;
    let stored = [
        "get",
        "secret",
        "creds",
        "-o",
        "jsonpath={.type} {.data.token}",
    ];
    assert_eq!(kubectl_ok(&sb, &stored).await, "Opaque czNjcmV0");
    wait_status(&sb, "needs-secret", "Running", Duration::from_secs(60)).await;
    let logs = wait_for("the secret's value", Duration::from_secs(20), async || {
        let logs = kubectl_ok(&sb, &["logs", "needs-secret"]).await;
        (!logs.is_empty()).then_some(logs)
    })
    .await;
    assert_eq!(logs, "TOKEN=s3cret\n");
    delete_and_wait(&sb, &["needs-secret", "needs-cm"], 1).await;
    sb.shutdown().await;
}
