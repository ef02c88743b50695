//! Mock-client tests of a whole session's requests: which, in what order, which in parallel.
//!
//! The fake API server has no exec (a websocket upgrade), so each session here ends at the
//! exec with a 404; what is asserted is everything a user waits for before the shell.

use std::time::Duration;

use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStatus, EphemeralContainer, Pod,
    SecurityContext,
};
use serde_json::{Value, json};

use super::*;
use crate::kube::fake_apiserver::{FakeApiServer, Reply, Seen};
use crate::session::identity::Identity;
use crate::session::options::{DebugOptions, Mode};
use crate::session::profile::{PodSecurityRefusal, Profile, PsaLevel};
use crate::session::spec::TargetProcess;
use crate::session::spec::{SessionFacts, ephemeral_container_for};
use crate::session::target::{TargetKind, TargetRef};
use crate::toolkit::catalog::{ImageChoice, Toolkit, VERSION};

const POD: &str = "/api/v1/namespaces/default/pods/web";
const PODS: &str = "/api/v1/namespaces/default/pods";
const NAMESPACE: &str = "/api/v1/namespaces/default";
const REVIEW: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const ACCESS_REVIEW: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

fn cluster(fake: &FakeApiServer) -> Cluster {
    Cluster {
        kubeconfig_user: "kubeconfig-user".into(),
        request_timeout: Some(Duration::from_secs(5)),
        ..fake.cluster()
    }
}

pub(crate) fn options(profile: Profile, reuse: bool) -> DebugOptions {
    DebugOptions {
        target: TargetRef {
            kind: TargetKind::Pod,
            name: "web".into(),
        },
        container: None,
        image: ImageChoice::Toolkit {
            toolkit: Toolkit::Base,
            registry: None,
        },
        profile,
        timeout: Duration::from_secs(5),
        ttl: Duration::from_secs(3600),
        idle: Duration::from_secs(900),
        reason: None,
        reuse,
        mode: Mode::Command {
            argv: vec!["true".into()],
            stdin: false,
            tty: false,
        },
        dry_run: None,
        format: None,
        mirror_volumes: false,
        copy_env: false,
        record: crate::output::recording::RecordOptions::off(),
        target_pid: None,
    }
}

/// A distroless app running as 65532:65532, resourceVersion 100.
fn distroless_pod() -> Pod {
    let mut pod = crate::session::target::tests::running_pod("web", &["app"]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers[0].security_context = Some(SecurityContext {
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            ..SecurityContext::default()
        });
    }
    pod
}

fn with_debug_container(
    mut pod: Pod,
    container: EphemeralContainer,
    running: bool,
    version: &str,
) -> Pod {
    let name = container.name.clone();
    if let Some(spec) = pod.spec.as_mut() {
        spec.ephemeral_containers
            .get_or_insert_with(Vec::new)
            .push(container);
    }
    if running && let Some(status) = pod.status.as_mut() {
        status
            .ephemeral_container_statuses
            .get_or_insert_with(Vec::new)
            .push(ContainerStatus {
                name,
                state: Some(ContainerState {
                    running: Some(ContainerStateRunning::default()),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            });
    }
    pod.metadata.resource_version = Some(version.into());
    pod
}

fn ours(name: &str) -> EphemeralContainer {
    let facts = SessionFacts {
        user: "alice".into(),
        started: jiff::Timestamp::UNIX_EPOCH,
        version: VERSION.into(),
    };
    let mut c = ephemeral_container_for(
        &options(Profile::Auto, true),
        "app",
        &TargetProcess::default(),
        &Identity::default(),
        &facts,
        "xxxxx",
    );
    c.name = name.into();
    c
}

fn json_of(pod: &Pod) -> Value {
    serde_json::to_value(pod).unwrap_or_default()
}

fn namespace(enforce: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "default", "labels": {"pod-security.kubernetes.io/enforce": enforce}}})
}

fn review() -> Value {
    json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
           "status": {"userInfo": {"username": "alice@example.com"}}})
}

fn reads(fake: &FakeApiServer, pod: &Pod, enforce: &str) {
    fake.route(
        Method::GET,
        POD,
        Some(false),
        Reply::Json(StatusCode::OK, json_of(pod)),
    )
    .route(
        Method::GET,
        NAMESPACE,
        None,
        Reply::Json(StatusCode::OK, namespace(enforce)),
    )
    .route(
        Method::POST,
        REVIEW,
        None,
        Reply::Json(StatusCode::CREATED, review()),
    )
    // May we exec? (Else the session runs in attach mode.)
    .route(
        Method::POST,
        ACCESS_REVIEW,
        None,
        Reply::Json(
            StatusCode::CREATED,
            json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                   "spec": {}, "status": {"allowed": true}}),
        ),
    );
}

/// The distroless pod with a running `base` debug container of ours named `name`.
fn with_running_base(name: &str) -> Pod {
    let mut existing = ours(name);
    existing.image = Some(
        ImageChoice::Toolkit {
            toolkit: Toolkit::Base,
            registry: None,
        }
        .reference(),
    );
    with_debug_container(distroless_pod(), existing, true, "100")
}

fn is_list(seen: &Seen) -> bool {
    seen.method == Method::GET
        && !seen.is_watch()
        && (seen.path == PODS || seen.path.ends_with("/events"))
}

fn is_discovery(seen: &Seen) -> bool {
    ["/api", "/apis", "/version"].contains(&seen.path.as_str()) || seen.path == "/api/v1"
}

/// The PATCH answers with our container added; the watch then sees it running.
fn inject_and_run(fake: &FakeApiServer) {
    fake.route(
        Method::PATCH,
        &format!("{POD}/ephemeralcontainers"),
        None,
        Reply::Json(StatusCode::OK, {
            let mut pod = distroless_pod();
            pod.metadata.resource_version = Some("123".into());
            json_of(&pod)
        }),
    );
    // The watch's answer must name the container the PATCH added, whose name is random: the
    // route is filled in after the PATCH is seen (see `running_after_patch`).
}

#[tokio::test]
async fn a_fresh_session_makes_three_sequential_round_trips_and_no_list() {
    let fake = FakeApiServer::with_latency(Duration::from_millis(40));
    let mut read = distroless_pod();
    read.metadata.resource_version = Some("100".into());
    reads(&fake, &read, "restricted");
    inject_and_run(&fake);
    // Watch events come from a closure over the PATCH body: answer with whatever was added.
    let fake_for_watch = fake.clone();
    let watcher = tokio::spawn(async move {
        loop {
            if let Some(patch) = fake_for_watch
                .log()
                .iter()
                .find(|s| s.method == Method::PATCH)
            {
                let container: EphemeralContainer = serde_json::from_value(
                    patch
                        .body
                        .as_ref()
                        .map(|b| b["spec"]["ephemeralContainers"][0].clone())
                        .unwrap_or_default(),
                )
                .unwrap_or_default();
                let pod = with_debug_container(distroless_pod(), container, true, "124");
                fake_for_watch.route(
                    Method::GET,
                    PODS,
                    Some(true),
                    Reply::Watch(vec![json!({"type": "MODIFIED", "object": json_of(&pod)})]),
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let result = run(
        &options(Profile::Auto, true),
        &cluster(&fake),
        &Printer::plain(),
    )
    .await;
    let _ = watcher.await;
    assert!(
        matches!(result, Err(Error::Exec { .. })),
        "the fake has no exec: {result:?}"
    );

    let log = fake.log();
    let lines: Vec<String> = log.iter().map(Seen::line).collect();
    // Round trip 1: the four reads, in parallel.
    let mut first: Vec<&str> = lines[..4].iter().map(String::as_str).collect();
    first.sort();
    assert_eq!(
        first,
        [
            format!("GET {NAMESPACE}"),
            format!("GET {POD}"),
            format!("POST {REVIEW}"),
            format!("POST {ACCESS_REVIEW}"),
        ]
    );
    assert_eq!(
        log[..4].iter().map(|s| s.in_flight).max(),
        Some(4),
        "the reads overlap: {log:?}"
    );
    // Round trip 2: the PATCH, and beside it the WATCH from the GET's resourceVersion.
    let mut second: Vec<&str> = lines[4..6].iter().map(String::as_str).collect();
    second.sort();
    assert_eq!(
        second,
        [
            format!("GET {PODS}"),
            format!("PATCH {POD}/ephemeralcontainers")
        ]
    );
    assert_eq!(
        log[4..6].iter().map(|s| s.in_flight).max(),
        Some(2),
        "the watch overlaps the PATCH: {log:?}"
    );
    let patch = &log[if log[4].is_watch() { 5 } else { 4 }];
    assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
    let watch = &log[if log[4].is_watch() { 4 } else { 5 }];
    assert!(watch.is_watch() && watch.path == PODS, "{watch:?}");
    assert_eq!(
        watch.query_param("resourceVersion").as_deref(),
        Some("100"),
        "the GET's version: the PATCH's event is seen too"
    );
    assert_eq!(
        watch.query_param("fieldSelector").as_deref(),
        Some("metadata.name=web")
    );
    // Round trip 3: the exec, with the first Event of the trail written beside it.
    let mut last: Vec<&str> = lines[6..8].iter().map(String::as_str).collect();
    last.sort();
    assert_eq!(
        last,
        [
            format!("GET {POD}/exec"),
            "POST /api/v1/namespaces/default/events".to_string()
        ]
    );
    assert_eq!(
        log[6..8].iter().map(|s| s.in_flight).max(),
        Some(2),
        "the Event costs no round trip: {log:?}"
    );
    let exec = &log[if lines[6].ends_with("/exec") { 6 } else { 7 }];
    assert!(
        exec.query
            .contains("command=distroless-debug-agent&command=run&command=--end-container&command=--&command=true"),
        "{}",
        exec.query
    );
    // Nothing else before the shell: no LIST, no discovery.
    assert!(!log[..7].iter().any(is_list), "{lines:?}");
    assert!(!log.iter().any(is_discovery), "{lines:?}");
}

#[tokio::test]
async fn a_second_session_reuses_the_running_container_without_a_patch() {
    let fake = FakeApiServer::default();
    reads(&fake, &with_running_base("dbg-first"), "restricted");
    let result = run(
        &options(Profile::Auto, true),
        &cluster(&fake),
        &Printer::plain(),
    )
    .await;
    assert!(
        matches!(&result, Err(Error::Exec { container, .. }) if container == "dbg-first"),
        "{result:?}"
    );
    let log = fake.log();
    assert!(
        !log.iter().any(|s| s.method == Method::PATCH),
        "no PATCH: {log:?}"
    );
    let exec = log.iter().position(|s| s.path.ends_with("/exec"));
    assert!(
        matches!(exec, Some(4 | 5)),
        "the reads, then the exec (beside the Event): {log:?}"
    );
    assert!(log[exec.unwrap_or(4)].query.contains("container=dbg-first"));
}

#[tokio::test]
async fn new_adds_a_container_even_when_one_could_be_reused() {
    let fake = FakeApiServer::default();
    reads(&fake, &with_running_base("dbg-first"), "restricted");
    // The PATCH is refused, which is enough to see that it was sent.
    fake.route(
        Method::PATCH,
        &format!("{POD}/ephemeralcontainers"),
        None,
        Reply::Json(
            StatusCode::UNPROCESSABLE_ENTITY,
            crate::kube::fake_apiserver::status(422, "Invalid", "invalid"),
        ),
    );
    let result = run(
        &options(Profile::Auto, false),
        &cluster(&fake),
        &Printer::plain(),
    )
    .await;
    assert!(matches!(result, Err(Error::Rejected { .. })), "{result:?}");
    assert!(fake.log().iter().any(|s| s.method == Method::PATCH));
}

#[tokio::test]
async fn sysadmin_in_a_restricted_namespace_is_refused_before_any_patch() {
    let fake = FakeApiServer::default();
    reads(&fake, &distroless_pod(), "restricted");
    let result = run(
        &options(Profile::Sysadmin, true),
        &cluster(&fake),
        &Printer::plain(),
    )
    .await;
    match result {
        Err(error) if error.step::<PodSecurityRefusal>().is_some() => {
            let refusal = error.step::<PodSecurityRefusal>().unwrap();
            assert_eq!(
                (refusal.fits, refusal.enforced),
                (Some(Profile::Auto), PsaLevel::Restricted)
            );
        }
        other => panic!("expected a Pod Security refusal, got {other:?}"),
    }
    assert!(!fake.log().iter().any(|s| s.method == Method::PATCH));
}

#[tokio::test]
async fn client_dry_run_sends_no_write() {
    let fake = FakeApiServer::default();
    reads(&fake, &distroless_pod(), "restricted");
    let mut o = options(Profile::Auto, true);
    o.dry_run = Some(DryRun::Client);
    o.format = Some(OutputFormat::Json);
    o.mode = Mode::Interactive;
    assert_eq!(
        run(&o, &cluster(&fake), &Printer::plain()).await.ok(),
        Some(ExitStatus::Success)
    );
    assert!(fake.log().iter().all(|s| s.method != Method::PATCH));
}

#[tokio::test]
async fn server_dry_run_sends_the_patch_with_dry_run_all() {
    let fake = FakeApiServer::default();
    reads(&fake, &distroless_pod(), "restricted");
    inject_and_run(&fake);
    let mut o = options(Profile::Auto, true);
    o.dry_run = Some(DryRun::Server);
    o.mode = Mode::Interactive;
    assert_eq!(
        run(&o, &cluster(&fake), &Printer::plain()).await.ok(),
        Some(ExitStatus::Success)
    );
    let log = fake.log();
    let patch = log.iter().find(|s| s.method == Method::PATCH);
    assert_eq!(
        patch.and_then(|p| p.query_param("dryRun")).as_deref(),
        Some("All")
    );
}

#[tokio::test]
async fn a_missing_pod_is_named_with_its_namespace() {
    let fake = FakeApiServer::default();
    fake.route(
        Method::GET,
        NAMESPACE,
        None,
        Reply::Json(StatusCode::OK, namespace("baseline")),
    );
    let result = run(
        &options(Profile::Auto, true),
        &cluster(&fake),
        &Printer::plain(),
    )
    .await;
    match result {
        Err(e @ Error::PodNotFound { .. }) => {
            assert_eq!(e.to_string(), "pod web not found in namespace default")
        }
        other => panic!("{other:?}"),
    }
}
