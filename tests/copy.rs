//! `--copy` against the sandbox cluster with real containers (docs/copy.md): a crash-looping
//! distroless target debugged in a copy of its pod, held before its entrypoint; `start`; the
//! entrypoint from the registry or `--entrypoint`; a workload's template; teardown on a
//! signal and by `cleanup`; Pod Security. The interactive run is in tests/terminal.rs.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::TestCluster;

const LIMIT: Duration = Duration::from_secs(90);

/// What must never change on the original: its spec, labels and (no) ephemeral containers.
async fn original(c: &TestCluster, namespace: &str, pod: &str) -> (Value, Value, Value) {
    let json = c.pod_json(namespace, pod).await;
    let mut spec = json["spec"].clone();
    // The sandbox may fill defaults, but never an ephemeral container.
    let ephemeral = spec["ephemeralContainers"].take();
    (spec, json["metadata"]["labels"].clone(), ephemeral)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_looping_target_is_refused_then_debugged_in_a_copy() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.crash_looping("default", "crashy", Some((65532, 65532)))
        .await;
    let before = original(&c, "default", "crashy").await;

    let plain = c
        .run(&["pod/crashy", "--", "ls", "/target/etc"], LIMIT)
        .await;
    assert_eq!(plain.code, Some(1), "{plain:?}");
    assert!(
        plain
            .stderr
            .contains("`kubectl distroless-debug pod/crashy -n default --copy -- ls /target/etc`"),
        "the refusal names --copy with the command line: {plain:?}"
    );

    let run = c
        .run(&["pod/crashy", "--copy", "--", "ls", "/target/etc"], LIMIT)
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.lines().any(|l| l == "passwd"),
        "the target image's /etc: {run:?}"
    );
    c.wait_no_copies("default").await;
    assert_eq!(original(&c, "default", "crashy").await, before);
    assert_eq!(
        before.2,
        Value::Null,
        "no ephemeral container was ever added"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn start_gives_the_apps_error_and_code_and_serves_with_an_override() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.crash_looping("default", "crashy", None).await;

    let run = c.run(&["pod/crashy", "--copy", "--", "start"], LIMIT).await;
    assert_eq!(run.code, Some(1), "the app's own exit code: {run:?}");
    assert!(
        run.stderr.contains("sandbox-app: PORT is not set")
            || run.stdout.contains("sandbox-app: PORT is not set"),
        "the app's own error: {run:?}"
    );
    c.wait_no_copies("default").await;

    // PORT set by `start`: the app serves until Ctrl-C ends it, the session and the copy.
    let mut plugin = c.plugin(&["pod/crashy", "--copy", "--", "start", "PORT=8080"]);
    plugin
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = plugin.spawn().expect("the session starts");
    let line = support::first_line(&mut child, LIMIT).await;
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains("serving on :8080")),
        "the app serves: {line:?}"
    );
    support::send(&child, libc::SIGINT);
    assert_eq!(support::exit_code(&mut child, LIMIT).await, Some(130));
    c.wait_no_copies("default").await;
}

/// A pod of the crashing app without `command`: its entrypoint is in the image config only.
async fn pod_without_command(c: &TestCluster, name: &str, image: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "app", "image": image }] }
    }))
    .unwrap();
    c.pods("default")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

/// The held argv in a `--dry-run=client -o json` copy.
fn held_argv(printed: &str) -> Vec<String> {
    let copy: Value = serde_json::from_str(printed).expect("the copy as JSON");
    let annotation = copy["metadata"]["annotations"]["distroless-debug.io/original-command"]
        .as_str()
        .expect("the original command")
        .to_string();
    serde_json::from_str(&annotation).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_spec_command_the_entrypoint_comes_from_the_registry_and_the_flag_wins() {
    let Some(c) = support::cluster().await else {
        return;
    };
    // The crashing app as the sandbox's registry serves it: its command only in the image
    // config. Its pod crash-loops on that entrypoint.
    pod_without_command(&c, "from-registry", &c.sb.registry_crashing_app()).await;
    let run = c
        .run(&["pod/from-registry", "--copy", "--", "start"], LIMIT)
        .await;
    assert_eq!(run.code, Some(1), "the app's own exit code: {run:?}");
    assert!(
        run.stderr.contains("sandbox-app: PORT is not set"),
        "the entrypoint of the image config ran: {run:?}"
    );
    let read = c.sb.registry_requests();
    assert!(
        read.iter().any(|r| r.contains("/manifests/v1"))
            && read.iter().any(|r| r.contains("/blobs/sha256:")),
        "the manifest and the config were read: {read:?}"
    );
    c.wait_no_copies("default").await;

    // `--entrypoint` wins: the registry is not even asked.
    let before = c.sb.registry_requests().len();
    let run = c
        .run(
            &[
                "pod/from-registry",
                "--copy",
                "--entrypoint",
                "/sandbox-app require-port --verbose",
                "--dry-run=client",
                "-o",
                "json",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(
        held_argv(&run.stdout),
        ["/sandbox-app", "require-port", "--verbose"],
        "{run:?}"
    );
    assert_eq!(c.sb.registry_requests().len(), before);

    // The registry unreachable, and neither the spec nor the flag says: refused, naming both.
    c.sb.stop_registry().await;
    let run = c.run(&["pod/from-registry", "--copy"], LIMIT).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("--entrypoint 'CMD ARGS'"), "{run:?}");
    assert!(run.stderr.contains("`command`"), "{run:?}");
    assert!(c.copies("default").await.is_empty(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_flag_wins_and_without_spec_or_registry_the_refusal_names_both() {
    let Some(c) = support::cluster().await else {
        return;
    };
    // A registry nothing answers on: no port listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    pod_without_command(
        &c,
        "unreachable",
        &format!("127.0.0.1:{port}/distroless/app:v1"),
    )
    .await;
    let run = c.run(&["pod/unreachable", "--copy"], LIMIT).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("--entrypoint 'CMD ARGS'"), "{run:?}");
    assert!(run.stderr.contains("`command`"), "{run:?}");
    assert!(run.stderr.contains("unreachable"), "{run:?}");
    assert!(c.copies("default").await.is_empty(), "nothing was created");

    // `--entrypoint` needs no registry, and wins over the pod spec's command too.
    let run = c
        .run(
            &[
                "pod/unreachable",
                "--copy",
                "--entrypoint",
                "/sandbox-app serve --port '9 0'",
                "--dry-run=client",
                "-o",
                "json",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        held_argv(&run.stdout),
        ["/sandbox-app", "serve", "--port", "9 0"]
    );
    c.crash_looping("default", "crashy", None).await;
    let run = c
        .run(
            &["pod/crashy", "--copy", "--dry-run=client", "-o", "json"],
            LIMIT,
        )
        .await;
    assert_eq!(
        held_argv(&run.stdout),
        ["/sandbox-app", "require-port"],
        "{run:?}"
    );
    let run = c
        .run(
            &[
                "pod/crashy",
                "--copy",
                "--entrypoint",
                "/bin/true",
                "--dry-run=client",
                "-o",
                "json",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(held_argv(&run.stdout), ["/bin/true"], "{run:?}");
    assert!(
        c.copies("default").await.is_empty(),
        "a dry run creates nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_whose_pods_crash_is_copied_from_its_template_and_cleanup_deletes_it() {
    let Some(c) = support::cluster().await else {
        return;
    };
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": { "name": "api" },
        "spec": {
            "selector": { "matchLabels": { "app": "api" } },
            "template": {
                "metadata": { "labels": { "app": "api" } },
                "spec": { "containers": [{
                    "name": "app",
                    "image": kube_sandbox::fixtures::CRASHING_APP,
                    "command": ["/sandbox-app", "require-port"]
                }] }
            }
        }
    }))
    .unwrap();
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(c.client.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let run = c
        .run(
            &["deploy/api", "--copy", "--keep-copy", "--", "start"],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(1), "the app's error: {run:?}");
    assert!(run.stderr.contains("pod template"), "{run:?}");
    let copies = c.copies("default").await;
    assert_eq!(copies.len(), 1, "kept: {run:?}");
    assert!(copies[0].starts_with("api-dbg-"), "{copies:?}");
    let selected = c
        .pods("default")
        .list(&ListParams::default().labels("app=api"))
        .await
        .unwrap();
    assert!(
        selected.items.is_empty(),
        "the Deployment's selector does not select the copy"
    );
    let ls = c.run(&["ls"], LIMIT).await;
    assert!(ls.stdout.contains(&copies[0]), "ls lists the copy: {ls:?}");

    let cleanup = c.run(&["cleanup"], LIMIT).await;
    assert_eq!(cleanup.code, Some(0), "{cleanup:?}");
    assert!(cleanup.stderr.contains(&copies[0]), "{cleanup:?}");
    c.wait_no_copies("default").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_session_deletes_the_copy() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.crash_looping("default", "crashy", None).await;
    let mut child = c
        .started_session(&[
            "pod/crashy",
            "--copy",
            "--",
            "sh",
            "-c",
            "echo started; sleep 60",
        ])
        .await;
    assert_eq!(c.copies("default").await.len(), 1);
    support::send(&child, libc::SIGTERM);
    assert_eq!(support::exit_code(&mut child, LIMIT).await, Some(143));
    c.wait_no_copies("default").await;
}

/// A cluster whose namespace `locked` enforces restricted, with a non-root crash-looping pod
/// `crashy` in it.
async fn locked_crashy() -> Option<TestCluster> {
    let c = support::cluster().await?;
    c.namespace("locked", Some("restricted")).await;
    c.crash_looping("locked", "crashy", Some((65532, 65532)))
        .await;
    Some(c)
}

#[tokio::test(flavor = "multi_thread")]
async fn restricted_namespace_admits_a_nonroot_copy_and_refuses_a_root_one_before_creating() {
    let Some(c) = locked_crashy().await else {
        return;
    };
    let run = c
        .run(
            &[
                "-n",
                "locked",
                "pod/crashy",
                "--copy",
                "--",
                "ls",
                "/target/etc",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "admitted: {run:?}");
    c.wait_no_copies("locked").await;

    // A root target, made before the namespace was locked down.
    c.namespace("tightened", None).await;
    c.crash_looping("tightened", "rooty", Some((0, 0))).await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    namespaces
        .patch(
            "tightened",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": {
                "pod-security.kubernetes.io/enforce": "restricted" } } })),
        )
        .await
        .unwrap();
    let run = c
        .run(
            &[
                "-n",
                "tightened",
                "pod/rooty",
                "--copy",
                "--",
                "ls",
                "/target",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("refused before sending anything"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("runAsNonRoot"),
        "the field is named: {run:?}"
    );
    assert!(
        c.copies("tightened").await.is_empty(),
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_is_named_at_once_and_the_copy_deleted() {
    let Some(c) = support::cluster().await else {
        return;
    };
    // The original cannot start either: its env refers to a Secret that does not exist.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "needs-secret" },
        "spec": { "containers": [{
            "name": "app",
            "image": kube_sandbox::fixtures::CRASHING_APP,
            "command": ["/sandbox-app", "require-port"],
            "env": [{ "name": "DB_PASSWORD", "valueFrom": {
                "secretKeyRef": { "name": "db", "key": "password" } } }]
        }] }
    }))
    .unwrap();
    c.pods("default")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let run = c
        .run(
            &[
                "pod/needs-secret",
                "--copy",
                "--timeout",
                "60s",
                "--",
                "start",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("CreateContainerConfigError"), "{run:?}");
    assert!(run.stderr.contains(r#"secret "db" not found"#), "{run:?}");
    assert!(
        run.stderr.contains("Secret or ConfigMap"),
        "the fix: {run:?}"
    );
    assert!(
        run.took < Duration::from_secs(30),
        "said at once, not after --timeout: {run:?}"
    );
    c.wait_no_copies("default").await;
}

/// RBAC of `dave` (token `dave-token`), who may read and exec but not create pods.
const NO_CREATE: &str = r#"
users:
  - name: dave
    token: dave-token
    rules:
      - verbs: [get, list, watch]
        resources: [pods, namespaces]
      - verbs: [create]
        resources: [pods/exec]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn without_create_pods_the_permission_is_named_with_a_role() {
    let Some(c) = support::cluster_with(kube_sandbox::SandboxOptions {
        rbac: Some(NO_CREATE.into()),
        ..kube_sandbox::SandboxOptions::default()
    })
    .await
    else {
        return;
    };
    c.crash_looping("default", "crashy", None).await;
    let dave = c.sb.dir().join("dave.kubeconfig");
    c.sb.write_kubeconfig_for("dave-token", "dave", &dave)
        .expect("dave's kubeconfig");
    let run = support::run_command(
        c.plugin_with_kubeconfig(&dave, &["pod/crashy", "--copy", "--", "start"]),
        LIMIT,
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("not allowed to create pods"), "{run:?}");
    assert!(run.stderr.contains("kind: Role"), "{run:?}");
    assert!(run.stderr.contains(r#"verbs: ["delete"]"#), "{run:?}");
    assert!(c.copies("default").await.is_empty(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_dry_run_asks_admission_and_creates_nothing() {
    let Some(c) = locked_crashy().await else {
        return;
    };
    let run = c
        .run(
            &[
                "-n",
                "locked",
                "pod/crashy",
                "--copy",
                "--dry-run=server",
                "-o",
                "json",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains("admission accepted copy crashy-dbg-"),
        "{run:?}"
    );
    assert_eq!(held_argv(&run.stdout), ["/sandbox-app", "require-port"]);
    assert!(c.copies("locked").await.is_empty(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_registry_is_read_with_docker_credentials_or_the_pods_pull_secret() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.sb.require_registry_credentials(Some(("ci", "s3cret")));
    let host = c.sb.registry_host().to_string();
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ci:s3cret");
    let docker_config = json!({ "auths": { host.clone(): { "auth": auth } } }).to_string();
    let image = c.sb.registry_crashing_app();
    let dry_run = ["--copy", "--dry-run=client", "-o", "json"];

    // The user's docker credentials ($DOCKER_CONFIG/config.json).
    pod_without_command(&c, "private", &image).await;
    let with_login = c.sb.dir().join("docker-login");
    std::fs::create_dir_all(&with_login).unwrap();
    std::fs::write(with_login.join("config.json"), &docker_config).unwrap();
    let mut args = vec!["pod/private"];
    args.extend(dry_run);
    let mut plugin = c.plugin(&args);
    plugin.env("DOCKER_CONFIG", &with_login);
    let run = support::run_command(plugin, LIMIT).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(held_argv(&run.stdout), ["/sandbox-app", "require-port"]);

    // No docker login: the pod's imagePullSecret gets in.
    let no_login = c.sb.dir().join("no-docker-login");
    std::fs::create_dir_all(&no_login).unwrap();
    let mut plugin = c.plugin(&args);
    plugin.env("DOCKER_CONFIG", &no_login);
    let run = support::run_command(plugin, LIMIT).await;
    assert_eq!(run.code, Some(2), "denied without credentials: {run:?}");
    assert!(run.stderr.contains("tried: anonymous"), "{run:?}");

    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": { "name": "regcred" },
        "type": "kubernetes.io/dockerconfigjson",
        "data": { ".dockerconfigjson": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD, &docker_config) }
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(c.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "pulls-with-secret" },
        "spec": {
            "imagePullSecrets": [{ "name": "regcred" }],
            "containers": [{ "name": "app", "image": image }]
        }
    }))
    .unwrap();
    c.pods("default")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let mut args = vec!["pod/pulls-with-secret"];
    args.extend(dry_run);
    let mut plugin = c.plugin(&args);
    plugin.env("DOCKER_CONFIG", &no_login);
    let run = support::run_command(plugin, LIMIT).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(held_argv(&run.stdout), ["/sandbox-app", "require-port"]);
}
