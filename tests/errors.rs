//! Each failure a user can meet, against the sandbox: it ends within 10 s, says what happened
//! and what to do, exits with its documented code, and leaves nothing running.

mod support;

use std::time::Duration;

use kube_sandbox::SandboxOptions;
use support::{NONROOT_APP, TestCluster};

const TEN_SECONDS: Duration = Duration::from_secs(10);

async fn app(c: &TestCluster) {
    c.namespace("locked", Some("restricted")).await;
    c.running_app("locked", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
}

fn assert_nothing_running(containers: &[(String, String)]) {
    assert!(
        containers.iter().all(|(_, state)| state != "running"),
        "{containers:?}"
    );
}

#[tokio::test]
async fn a_missing_pod() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("locked", Some("restricted")).await;
    let run = c
        .run(&["-n", "locked", "pod/nope", "--", "true"], TEN_SECONDS)
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("error: pod nope not found in namespace locked"),
        "{run:?}"
    );
    assert!(run.stderr.contains("hint:"), "{run:?}");
}

#[tokio::test]
async fn a_missing_container_lists_the_ones_there_are() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c).await;
    let run = c
        .run(
            &["-n", "locked", "pod/web", "-c", "nginx", "--", "true"],
            TEN_SECONDS,
        )
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("pod web has no container \"nginx\"; its containers are: app"),
        "{run:?}"
    );
    assert!(run.stderr.contains("`-c app`"), "{run:?}");
    assert!(c.debug_containers("locked", "web").await.is_empty());
}

#[tokio::test]
async fn a_pending_pod() {
    let Some(c) = support::cluster_with(SandboxOptions {
        faults: kube_sandbox::Faults {
            fail_pulls: vec!["registry.local/missing:1".into()],
            ..Default::default()
        },
        ..SandboxOptions::default()
    })
    .await
    else {
        return;
    };
    c.namespace("locked", Some("restricted")).await;
    c.app_pod(
        "locked",
        "stuck",
        "registry.local/missing:1",
        Some((65532, 65532)),
    )
    .await;
    let run = c
        .run(&["-n", "locked", "pod/stuck", "--", "true"], TEN_SECONDS)
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("pod stuck is Pending"), "{run:?}");
    assert!(c.debug_containers("locked", "stuck").await.is_empty());
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_fast_with_the_kubelets_message() {
    let Some(c) = support::cluster_with(SandboxOptions {
        faults: kube_sandbox::Faults {
            fail_pulls: vec!["registry.local/nope:1".into()],
            ..Default::default()
        },
        ..SandboxOptions::default()
    })
    .await
    else {
        return;
    };
    app(&c).await;
    let run = c
        .run(
            &[
                "-n",
                "locked",
                "pod/web",
                "--image",
                "registry.local/nope:1",
                "--",
                "true",
            ],
            TEN_SECONDS,
        )
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("cannot start: ErrImagePull")
            || run.stderr.contains("cannot start: ImagePullBackOff"),
        "{run:?}"
    );
    assert!(run.stderr.contains("--image"), "the hint: {run:?}");
    assert_nothing_running(&c.debug_containers("locked", "web").await);
}

const NO_PATCH: &str = r#"
users:
  - name: bob
    token: bob-token
    rules:
      - verbs: [get, list, watch]
        resources: [pods]
      - verbs: [create]
        resources: [pods/exec]
"#;

#[tokio::test]
async fn rbac_without_patch_names_the_missing_permission() {
    let Some(c) = support::cluster_with(SandboxOptions {
        rbac: Some(NO_PATCH.into()),
        ..SandboxOptions::default()
    })
    .await
    else {
        return;
    };
    app(&c).await;
    let bob = c.sb.dir().join("bob.kubeconfig");
    c.sb.write_kubeconfig_for("bob-token", "bob", &bob)
        .expect("bob's kubeconfig");
    let run = support::run_command(
        c.plugin_with_kubeconfig(&bob, &["-n", "locked", "pod/web", "--", "true"]),
        TEN_SECONDS,
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("missing `patch pods/ephemeralcontainers`"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("kind: Role"),
        "a Role to apply: {run:?}"
    );
    assert!(c.debug_containers("locked", "web").await.is_empty());
}

#[tokio::test]
async fn sysadmin_in_a_restricted_namespace_is_refused_before_any_patch() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c).await;
    c.sb.clear_requests();
    let run = c
        .run(
            &[
                "-n",
                "locked",
                "pod/web",
                "--profile",
                "sysadmin",
                "--",
                "true",
            ],
            TEN_SECONDS,
        )
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("refused before sending anything: the sysadmin profile needs Pod Security level privileged"), "{run:?}");
    assert!(run.stderr.contains("`--profile auto` fits"), "{run:?}");
    assert!(
        !c.sb.requests().iter().any(|r| r.method == "PATCH"),
        "no PATCH was sent"
    );
    assert!(
        c.debug_containers("locked", "web").await.is_empty(),
        "the pod is not poisoned"
    );
}

#[tokio::test]
async fn a_cluster_without_the_ephemeralcontainers_subresource() {
    let Some(c) = support::cluster_with(SandboxOptions {
        tls: false,
        ..SandboxOptions::default()
    })
    .await
    else {
        return;
    };
    app(&c).await;
    let proxy = support::proxy_hiding(c.sb.server_url(), "/ephemeralcontainers").await;
    let kubeconfig = std::fs::read_to_string(c.sb.kubeconfig_path()).expect("kubeconfig");
    let hidden = c.sb.dir().join("no-subresource.kubeconfig");
    std::fs::write(&hidden, kubeconfig.replace(c.sb.server_url(), &proxy)).expect("write");
    let run = support::run_command(
        c.plugin_with_kubeconfig(&hidden, &["-n", "locked", "pod/web", "--", "true"]),
        TEN_SECONDS,
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("ephemeral containers are unavailable here"),
        "{run:?}"
    );
    assert!(run.stderr.contains("hint:"), "{run:?}");
    assert!(c.debug_containers("locked", "web").await.is_empty());
}
