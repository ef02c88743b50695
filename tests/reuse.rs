//! A reused session in one round trip (src/session/handshake.rs), against the sandbox: the
//! exec into the container the last session on the pod used opens beside the reads, and the
//! command runs only once they confirm that container. Each command counts its runs in a
//! file of the target, so "once" is seen, not assumed.

mod support;

use std::time::Duration;

use kube_sandbox::Faults;
use support::{NONROOT_APP, TestCluster};

const LIMIT: Duration = Duration::from_secs(90);
/// Added to every request, so that what overlaps shows in the request log.
const LATENCY_MS: u64 = 300;
/// Adds one to `/target/tmp/runs` and prints the new count.
const COUNT: &str = "n=$(cat /target/tmp/runs 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /target/tmp/runs; echo runs=$n";

async fn app(c: &TestCluster, namespace: &str) {
    c.namespace(namespace, Some("restricted")).await;
    c.running_app(namespace, "web", NONROOT_APP, Some((65532, 65532)))
        .await;
}

/// A session on `pod/web` of `namespace` whose command counts its runs.
async fn counting(c: &TestCluster, namespace: &str, extra: &[&str]) -> support::Run {
    let mut args = vec!["-n", namespace, "pod/web"];
    args.extend(extra);
    args.extend(["--", "sh", "-c", COUNT]);
    c.run(&args, LIMIT).await
}

/// The container a run's stderr says it reused.
fn reused_name(run: &support::Run) -> Option<String> {
    let at = run.stderr.find("reusing ")? + "reusing ".len();
    run.stderr.get(at..at + 9).map(str::to_string)
}

/// The execs into `container` that waited for the handshake.
fn gated_execs_into(c: &TestCluster, container: &str) -> Vec<kube_sandbox::RequestRecord> {
    let wanted = format!("container={container}");
    c.sb.requests()
        .into_iter()
        .filter(|r| {
            r.path.ends_with("/exec")
                && r.query.contains(&wanted)
                && r.query.contains("command=--handshake")
        })
        .collect()
}

/// A first session, held open so that its container keeps running; returns it and the name
/// of its container.
async fn held(c: &TestCluster, namespace: &str, extra: &[&str]) -> (tokio::process::Child, String) {
    let mut args = vec!["-n", namespace, "pod/web"];
    args.extend(extra);
    args.extend(["--", "sh", "-c", "echo started; sleep 30"]);
    let first = c.started_session(&args).await;
    let containers = c.debug_containers(namespace, "web").await;
    assert_eq!(containers.len(), 1, "{containers:?}");
    (first, containers[0].0.clone())
}

#[tokio::test]
async fn a_warm_cache_opens_the_exec_beside_the_reads_and_runs_the_command_once() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c, "warm").await;
    let (mut first, container) = held(&c, "warm", &[]).await;

    c.sb.set_faults(Faults {
        latency_ms: LATENCY_MS,
        ..Faults::default()
    });
    c.sb.clear_requests();
    let second = counting(&c, "warm", &[]).await;
    c.sb.set_faults(Faults::default());
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(second.stdout.trim(), "runs=1", "{second:?}");
    assert_eq!(reused_name(&second).as_deref(), Some(container.as_str()));

    let requests = c.sb.requests();
    let get_pod = requests
        .iter()
        .find(|r| r.method == "GET" && r.path == "/api/v1/namespaces/warm/pods/web")
        .expect("the pod is read");
    let execs = gated_execs_into(&c, &container);
    assert_eq!(execs.len(), 1, "one gated exec: {requests:#?}");
    assert!(
        execs[0].received < get_pod.received + get_pod.duration,
        "the exec opened before the pod's read was answered: {requests:#?}"
    );
    let runs = requests
        .iter()
        .filter(|r| r.path.ends_with("/exec") && r.query.contains("command=run&"))
        .count();
    assert_eq!(
        runs, 1,
        "the command went through the gated exec only: {requests:#?}"
    );
    assert!(!requests.iter().any(|r| r.method == "PATCH"), "no PATCH");
    // After the work, one round trip: the last Event is sent as the command ends, without
    // waiting for the first Event's answer (the first is written beside the work).
    let events: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/events"))
        .collect();
    assert_eq!(events.len(), 2, "{requests:#?}");
    let (started, ended) = if events[0].received <= events[1].received {
        (events[0], events[1])
    } else {
        (events[1], events[0])
    };
    assert!(
        ended.received < started.received + started.duration,
        "the last Event waited for the first's answer: {events:#?}"
    );

    assert_eq!(support::exit_code(&mut first, LIMIT).await, Some(0));
    c.wait_all_terminated("warm", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn a_container_the_reads_do_not_confirm_runs_nothing_and_a_new_one_runs_the_command_once() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c, "unconfirmed").await;
    // The cache names a running container of ours made with another profile: the reads will
    // not reuse it, but the exec into it opens before they are answered.
    let (mut first, container) = held(&c, "unconfirmed", &["--profile", "restricted"]).await;
    c.sb.clear_requests();
    let second = counting(&c, "unconfirmed", &[]).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(
        second.stdout.trim(),
        "runs=1",
        "once, in the new container: {second:?}"
    );
    assert!(!second.stderr.contains("reusing"), "{second:?}");
    assert_eq!(
        gated_execs_into(&c, &container).len(),
        1,
        "the early exec into {container}, aborted: {:#?}",
        c.sb.requests()
    );
    assert_eq!(c.debug_containers("unconfirmed", "web").await.len(), 2);

    assert_eq!(support::exit_code(&mut first, LIMIT).await, Some(0));
    c.wait_all_terminated("unconfirmed", "web", Duration::from_secs(20))
        .await;
    let third = counting(&c, "unconfirmed", &[]).await;
    assert_eq!(third.stdout.trim(), "runs=2", "{third:?}");
}

#[tokio::test]
async fn a_stale_entry_is_aborted_a_new_container_is_added_and_the_command_runs_once() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c, "stale").await;
    // The first session ends, and its container with it: the cache names a stopped one.
    let first = counting(&c, "stale", &[]).await;
    assert_eq!(first.stdout.trim(), "runs=1", "{first:?}");
    c.wait_all_terminated("stale", "web", Duration::from_secs(20))
        .await;
    let stopped = c.debug_containers("stale", "web").await[0].0.clone();

    c.sb.clear_requests();
    let second = counting(&c, "stale", &[]).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(
        second.stdout.trim(),
        "runs=2",
        "once more, not twice: {second:?}"
    );
    let requests = c.sb.requests();
    assert_eq!(
        gated_execs_into(&c, &stopped).len(),
        1,
        "the exec into the stopped container was tried: {requests:#?}"
    );
    assert_eq!(
        requests.iter().filter(|r| r.method == "PATCH").count(),
        1,
        "a new container was added"
    );
    assert_eq!(c.debug_containers("stale", "web").await.len(), 2);
}
