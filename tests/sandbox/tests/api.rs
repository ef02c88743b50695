//! The API double without a node (pods stay Pending): what clients see of the protocol,
//! validation, admission, RBAC and faults. Real kube-rs over TLS with a token, real kubectl.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_sandbox::{ErrorBurst, Faults, Sandbox, SandboxOptions};
use serde_json::json;

async fn client(sb: &Sandbox) -> Client {
    let kubeconfig = Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn app_pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app": name } },
        "spec": { "containers": [{ "name": "app", "image": "sandbox.local/distroless-app:nonroot" }] }
    }))
    .unwrap()
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_client_over_tls_gets_patches_ephemeral_containers_and_watches() {
    let sb = Sandbox::start(SandboxOptions::api_only()).await.unwrap();
    assert!(sb.server_url().starts_with("https://127.0.0.1:"));
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    let created = pods
        .create(&PostParams::default(), &app_pod("app"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();

    let got = pods.get("app").await.unwrap();
    let spec = got.spec.unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("sandbox-node"));
    assert_eq!(
        spec.containers[0].termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );

    let mut events = pods
        .watch(&WatchParams::default().fields("metadata.name=app"), &rv)
        .await
        .unwrap()
        .boxed();
    let patch = json!({ "spec": { "ephemeralContainers": [{
        "name": "dbg-abcde", "image": "sandbox.local/busybox:latest", "targetContainerName": "app",
        "command": ["sleep", "3600"],
    }]}});
    let patched = pods
        .patch_ephemeral_containers("app", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    let ecs = patched.spec.unwrap().ephemeral_containers.unwrap();
    assert_eq!(ecs[0].name, "dbg-abcde");
    assert_eq!(ecs[0].termination_message_policy.as_deref(), Some("File"));

    let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("a watch event within 5s")
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Modified(p) => {
            assert_eq!(
                p.spec.unwrap().ephemeral_containers.unwrap()[0].name,
                "dbg-abcde"
            )
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    let log = sb.requests();
    let patch_record = log
        .iter()
        .find(|r| r.method == "PATCH" && r.path.ends_with("/pods/app/ephemeralcontainers"))
        .expect("the PATCH is in the request log");
    assert_eq!(
        patch_record.content_type,
        "application/strategic-merge-patch+json"
    );
    assert_eq!(
        (patch_record.status, patch_record.user.as_str()),
        (200, "kubernetes-admin")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn ephemeral_container_validation_answers_like_the_apiserver() {
    let sb = Sandbox::start(SandboxOptions::api_only()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    pods.create(&PostParams::default(), &app_pod("app"))
        .await
        .unwrap();
    let patch = |ec: serde_json::Value| {
        let pods = pods.clone();
        async move {
            pods.patch_ephemeral_containers(
                "app",
                &PatchParams::default(),
                &Patch::Strategic(json!({ "spec": { "ephemeralContainers": [ec] } })),
            )
            .await
        }
    };
    let (code, reason, message) = api_error(
        patch(json!({"name": "dbg-1", "image": "busybox", "ports": [{"containerPort": 80}]}))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        message,
        "Pod \"app\" is invalid: spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container"
    );
    let (code, _, message) = api_error(
        patch(json!({"name": "app", "image": "busybox"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.ephemeralContainers[0].name: Duplicate value: \"app\""),
        "{message}"
    );
    let (code, _, message) = api_error(
        patch(json!({"name": "dbg-2", "image": "busybox", "targetContainerName": "nope"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("targetContainerName: Not found: \"nope\""),
        "{message}"
    );

    patch(json!({"name": "dbg-3", "image": "busybox"}))
        .await
        .unwrap();
    let (code, _, message) = api_error(
        patch(json!({"name": "dbg-3", "image": "other"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("existing ephemeral containers \"dbg-3\" may not be changed"),
        "{message}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn restricted_namespace_refuses_a_root_debug_container_and_admits_a_compliant_one() {
    let sb = Sandbox::start(SandboxOptions::api_only()).await.unwrap();
    let c = client(&sb).await;
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "locked",
        "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(c, "locked");
    let restricted = json!({ "runAsNonRoot": true, "runAsUser": 65532, "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"] }, "seccompProfile": { "type": "RuntimeDefault" } });
    let mut pod = app_pod("app");
    pod.spec.as_mut().unwrap().containers[0].security_context =
        Some(serde_json::from_value(restricted.clone()).unwrap());
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let root = json!({"spec": {"ephemeralContainers": [{"name": "dbg-root", "image": "busybox",
        "securityContext": {"runAsUser": 0}}]}});
    let (code, reason, message) = api_error(
        pods.patch_ephemeral_containers("app", &PatchParams::default(), &Patch::Strategic(root))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert!(
        message
            .starts_with("pods \"app\" is forbidden: violates PodSecurity \"restricted:latest\": "),
        "{message}"
    );
    let ok = json!({"spec": {"ephemeralContainers": [{"name": "dbg-ok", "image": "busybox",
        "securityContext": restricted}]}});
    pods.patch_ephemeral_containers("app", &PatchParams::default(), &Patch::Strategic(ok))
        .await
        .unwrap();
    sb.shutdown().await;
}

const RULES: &str = r#"
users:
  - name: alice
    token: alice-token
    rules:
      - verbs: [get, list, watch]
        resources: [pods]
"#;

#[tokio::test]
async fn without_the_permission_the_patch_gets_the_real_403() {
    let sb = Sandbox::start(SandboxOptions {
        rbac: Some(RULES.into()),
        ..SandboxOptions::api_only()
    })
    .await
    .unwrap();
    let admin: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    admin
        .create(&PostParams::default(), &app_pod("app"))
        .await
        .unwrap();
    let alice_config = sb.dir().join("alice.kubeconfig");
    sb.write_kubeconfig_for("alice-token", "alice", &alice_config)
        .unwrap();
    let kubeconfig = Kubeconfig::read_from(&alice_config).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let alice: Api<Pod> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    alice.get("app").await.unwrap();
    let patch = json!({"spec": {"ephemeralContainers": [{"name": "dbg-1", "image": "busybox"}]}});
    let (code, reason, message) = api_error(
        alice
            .patch_ephemeral_containers("app", &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "pods \"app\" is forbidden: User \"alice\" cannot patch resource \"pods/ephemeralcontainers\" in API group \"\" in the namespace \"default\""
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn added_latency_applies_to_every_request() {
    let sb = Sandbox::start(SandboxOptions {
        faults: Faults {
            latency_ms: 50,
            ..Faults::default()
        },
        ..SandboxOptions::api_only()
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    pods.create(&PostParams::default(), &app_pod("app"))
        .await
        .unwrap();
    pods.get("app").await.unwrap();
    pods.list(&Default::default()).await.unwrap();
    let log = sb.requests();
    assert!(log.len() >= 3);
    for r in &log {
        assert!(r.duration >= Duration::from_millis(50), "{r:?}");
    }
    sb.shutdown().await;
}

/// One raw HTTP/1.1 request, to see status line and headers as sent.
fn raw_get(addr: &str, path: &str, token: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test]
async fn an_error_burst_reaches_the_client_with_retry_after() {
    let sb = Sandbox::start(SandboxOptions {
        tls: false,
        ..SandboxOptions::api_only()
    })
    .await
    .unwrap();
    sb.set_faults(Faults {
        error_burst: Some(ErrorBurst {
            code: 429,
            count: 2,
            path_contains: Some("/pods".into()),
        }),
        ..Faults::default()
    });
    let addr = sb.server_url().trim_start_matches("http://").to_string();
    let token = sb.token().to_string();
    let first = tokio::task::spawn_blocking({
        let (addr, token) = (addr.clone(), token.clone());
        move || raw_get(&addr, "/api/v1/namespaces/default/pods", &token)
    })
    .await
    .unwrap();
    assert!(first.starts_with("HTTP/1.1 429"), "{first}");
    assert!(
        first.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{first}"
    );
    assert!(first.contains("\"reason\":\"TooManyRequests\""), "{first}");
    // kube-rs gets the second 429, honours Retry-After and retries: the log shows both.
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    let (code, _, _) = api_error(pods.get("x").await.unwrap_err());
    assert_eq!(code, 404);
    let statuses: Vec<u16> = sb
        .requests()
        .iter()
        .filter(|r| r.path.contains("/pods"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![429, 429, 404]);
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_get_prints_the_servers_table_and_dry_run_stores_nothing() {
    let Some(kubectl) = support::kubectl(33) else {
        return;
    };
    let sb = Sandbox::start(SandboxOptions::api_only()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    pods.create(&PostParams::default(), &app_pod("app"))
        .await
        .unwrap();
    let out = tokio::task::spawn_blocking({
        let mut cmd = sb.kubectl_at(&kubectl);
        cmd.args(["get", "pods"]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("NAME   READY   STATUS    RESTARTS   AGE\napp    0/1     Pending   0"),
        "{stdout}"
    );
    assert!(
        out.stderr.is_empty(),
        "kubectl warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dry = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let patch = json!({"spec": {"ephemeralContainers": [{"name": "dbg-1", "image": "busybox"}]}});
    let answer = pods
        .patch_ephemeral_containers("app", &dry, &Patch::Strategic(patch))
        .await
        .unwrap();
    assert_eq!(answer.spec.unwrap().ephemeral_containers.unwrap().len(), 1);
    assert!(
        pods.get("app")
            .await
            .unwrap()
            .spec
            .unwrap()
            .ephemeral_containers
            .is_none()
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn watch_follows_the_apiservers_resource_version_rules() {
    let sb = Sandbox::start(SandboxOptions::api_only()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    pods.create(&PostParams::default(), &app_pod("a"))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &app_pod("b"))
        .await
        .unwrap();

    // resourceVersion 0: the current state as ADDED, then the stream ends at timeoutSeconds.
    let started = std::time::Instant::now();
    let events: Vec<_> = pods
        .watch(&WatchParams::default().labels("app=a").timeout(1), "0")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let added: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(p) => p.metadata.name.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(added, vec!["a"]);

    // sendInitialEvents: the current objects, then a BOOKMARK marking their end.
    let mut stream = pods
        .watch(&WatchParams::default().initial_events().timeout(5), "")
        .await
        .unwrap()
        .boxed();
    let mut names = Vec::new();
    loop {
        match stream
            .try_next()
            .await
            .unwrap()
            .expect("events until the bookmark")
        {
            WatchEvent::Added(p) => names.push(p.metadata.name.unwrap()),
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    names.sort();
    assert_eq!(names, vec!["a", "b"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_dropped_watch_stream_ends_for_the_client() {
    let sb = Sandbox::start(SandboxOptions {
        faults: Faults {
            drop_watch_after_ms: Some(200),
            ..Faults::default()
        },
        ..SandboxOptions::api_only()
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    let started = std::time::Instant::now();
    let stream = pods.watch(&WatchParams::default(), "0").await.unwrap();
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(5), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends soon after the drop");
    assert!(events.is_empty(), "{events:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    sb.shutdown().await;
}

#[tokio::test]
async fn static_pods_refuse_ephemeral_containers_and_warn_labels_warn() {
    let sb = Sandbox::start(SandboxOptions::api_only()).await.unwrap();
    let c = client(&sb).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let mut mirror = app_pod("etcd");
    mirror.metadata.annotations =
        Some([("kubernetes.io/config.mirror".to_string(), "abc".to_string())].into());
    pods.create(&PostParams::default(), &mirror).await.unwrap();
    let patch = json!({"spec": {"ephemeralContainers": [{"name": "dbg-1", "image": "busybox"}]}});
    let (code, _, message) = api_error(
        pods.patch_ephemeral_containers("etcd", &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("static pods do not support ephemeral containers"),
        "{message}"
    );

    // The warning half needs kubectl (a failure under CI=true without it).
    let Some(kubectl) = support::kubectl(33) else {
        return;
    };
    let namespaces: Api<Namespace> = Api::all(c);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "warned",
        "labels": {"pod-security.kubernetes.io/warn": "restricted"}}}))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let manifest = sb.dir().join("pod.json");
    std::fs::write(&manifest, serde_json::to_vec(&app_pod("app")).unwrap()).unwrap();
    let out = tokio::task::spawn_blocking({
        let mut cmd = sb.kubectl_at(&kubectl);
        cmd.args(["-n", "warned", "create", "-f"]).arg(&manifest);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("Warning: would violate PodSecurity \"restricted:latest\": "),
        "{stderr}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn metadata_only_requests_get_partial_object_metadata() {
    let sb = Sandbox::start(SandboxOptions {
        tls: false,
        ..SandboxOptions::api_only()
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    pods.create(&PostParams::default(), &app_pod("app"))
        .await
        .unwrap();
    let meta = pods.get_metadata("app").await.unwrap();
    assert_eq!(meta.metadata.name.as_deref(), Some("app"));
    assert_eq!(
        pods.list_metadata(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // What went over the wire: metadata only, no spec.
    let addr = sb.server_url().trim_start_matches("http://").to_string();
    let token = sb.token().to_string();
    let raw = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(
        raw.contains("\"kind\":\"PartialObjectMetadataList\""),
        "{raw}"
    );
    assert!(!raw.contains("\"spec\""), "{raw}");
    sb.shutdown().await;
}
