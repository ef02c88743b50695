//! A reused session in one round trip (src/session/handshake.rs), against the sandbox: the
//! exec into the container the last session on the pod used opens beside the reads, and the
//! command runs only once they confirm that container. Each command counts its runs in a
//! file of the target, so "once" is seen, not assumed.

mod support;

use std::time::Duration;

use kube_sandbox::{Faults, Slow};
use support::{NONROOT_APP, TestCluster};

const LIMIT: Duration = Duration::from_secs(90);
/// Added to every request, so that what overlaps shows in the request log.
const LATENCY_MS: u64 = 300;
/// Added on top for the exec where it must show against the rest.
const SLOW_EXEC_MS: u64 = 500;
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

    // The exec is answered later than the rest, as a slow node's would be, so that what
    // the session does before its command shows against it.
    c.sb.set_faults(Faults {
        latency_ms: LATENCY_MS,
        slow: Some(Slow {
            ms: SLOW_EXEC_MS,
            path_contains: "/exec".to_string(),
            method: None,
        }),
        ..Faults::default()
    });
    c.sb.clear_requests();
    let second = counting(&c, "warm", &[]).await;
    c.sb.set_faults(Faults::default());
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(second.stdout.trim(), "runs=1", "{second:?}");
    assert_eq!(reused_name(&second).as_deref(), Some(container.as_str()));

    // The trail: the reuse and the end, each written once, the last after the process ended
    // (its hand-off; tests/trail.rs shows the session does not wait for it).
    assert_eq!(support::events_created(&c, 2).await, 2);

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
    // What the session does before its command it does while the exec opens, not after: its
    // first Event is on its way before the exec is answered.
    let first_event = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v1/namespaces/warm/events")
        .map(|r| r.received)
        .min()
        .expect("the trail's first Event");
    assert!(
        first_event < execs[0].received + execs[0].duration,
        "the first Event waited for the exec to open: {requests:#?}"
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
    // The cache names a container that is stopped meanwhile by someone else (`cleanup`), so
    // no session of ours saw it end: the session that used it was killed before.
    let (mut first, stopped) = held(&c, "stale", &[]).await;
    support::send(&first, libc::SIGKILL);
    support::exit_code(&mut first, LIMIT).await;
    let cleanup = c.run(&["cleanup", "-n", "stale"], LIMIT).await;
    assert_eq!(cleanup.code, Some(0), "{cleanup:?}");
    c.wait_all_terminated("stale", "web", Duration::from_secs(20))
        .await;

    c.sb.clear_requests();
    let second = counting(&c, "stale", &[]).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(
        second.stdout.trim(),
        "runs=1",
        "once, not twice: {second:?}"
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

use support::{JSON_PATCH, patches};

#[tokio::test]
async fn a_pod_whose_last_container_was_seen_to_end_gets_its_patch_beside_the_reads() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c, "presumed").await;
    // The first session sees its container end, and remembers the pod as it was then.
    let first = counting(&c, "presumed", &[]).await;
    assert_eq!(first.stdout.trim(), "runs=1", "{first:?}");
    c.wait_all_terminated("presumed", "web", Duration::from_secs(20))
        .await;

    c.sb.set_faults(Faults {
        latency_ms: LATENCY_MS,
        ..Faults::default()
    });
    c.sb.clear_requests();
    let second = counting(&c, "presumed", &[]).await;
    c.sb.set_faults(Faults::default());
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(second.stdout.trim(), "runs=2", "{second:?}");

    let requests = c.sb.requests();
    assert_eq!(
        patches(&requests),
        [(JSON_PATCH.to_string(), 200)],
        "one guarded PATCH: {requests:#?}"
    );
    let get_pod = requests
        .iter()
        .find(|r| r.method == "GET" && r.path == "/api/v1/namespaces/presumed/pods/web")
        .expect("the pod is read");
    let answered = get_pod.received + get_pod.duration;
    let patch = requests.iter().find(|r| r.method == "PATCH").unwrap();
    let watch = requests
        .iter()
        .find(|r| r.path == "/api/v1/namespaces/presumed/pods" && r.query.contains("watch=true"))
        .expect("the pod is watched");
    assert!(
        patch.received < answered && watch.received < answered,
        "the PATCH and the watch went out beside the reads: {requests:#?}"
    );
    // Two round trips before the exec: the reads with the PATCH and the watch, then the exec
    // once the watch shows the container running.
    let runs: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/exec") && r.query.contains("command=run&"))
        .collect();
    assert_eq!(runs.len(), 1, "{requests:#?}");
    assert!(runs[0].received > patch.received + patch.duration);
    assert_eq!(c.debug_containers("presumed", "web").await.len(), 2);
    c.wait_all_terminated("presumed", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn a_target_that_restarted_refuses_the_guarded_patch_and_one_container_is_added() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c, "restarted").await;
    let first = counting(&c, "restarted", &[]).await;
    assert_eq!(first.stdout.trim(), "runs=1", "{first:?}");
    c.wait_all_terminated("restarted", "web", Duration::from_secs(20))
        .await;
    // The same pod, the target restarted: another container ID than the cache's pod shows.
    let id = |pod: serde_json::Value| {
        let status = &pod["status"]["containerStatuses"][0];
        let running = !status["state"]["running"].is_null();
        running.then(|| status["containerID"].as_str().unwrap_or("").to_string())
    };
    let old = id(c.pod_json("restarted", "web").await).expect("running");
    support::kill_on_host(&old);
    c.wait_for("the target restarted", LIMIT, async || {
        id(c.pod_json("restarted", "web").await).is_some_and(|now| now != old)
    })
    .await;

    c.sb.clear_requests();
    let second = counting(&c, "restarted", &[]).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(second.stdout.lines().count(), 1, "once: {second:?}");
    let requests = c.sb.requests();
    let sent = patches(&requests);
    assert_eq!(sent.len(), 2, "{requests:#?}");
    assert_eq!(
        sent[0],
        (JSON_PATCH.to_string(), 422),
        "the guarded PATCH was refused: {sent:?}"
    );
    assert!(
        sent[1].0 != JSON_PATCH && sent[1].1 == 200,
        "then the container was added as usual: {sent:?}"
    );
    assert_eq!(
        c.debug_containers("restarted", "web").await.len(),
        2,
        "one container added, none by the refused PATCH"
    );
    c.wait_all_terminated("restarted", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn a_container_the_reads_do_not_confirm_is_stopped_and_the_reused_one_runs_the_command() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c, "withdrawn").await;
    let first = counting(&c, "withdrawn", &[]).await;
    assert_eq!(first.stdout.trim(), "runs=1", "{first:?}");
    c.wait_all_terminated("withdrawn", "web", Duration::from_secs(20))
        .await;
    // Meanwhile a session with a cache of its own starts a container of ours: the reads will
    // reuse it, which the pod the cache remembers does not show.
    let elsewhere = c.cache_home().join("elsewhere");
    let mut holder = c.plugin(&[
        "-n",
        "withdrawn",
        "pod/web",
        "--",
        "sh",
        "-c",
        "echo started; sleep 30",
    ]);
    holder
        .env("XDG_CACHE_HOME", &elsewhere)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut holder = holder.spawn().expect("a session starts");
    assert_eq!(
        support::first_line(&mut holder, LIMIT).await.as_deref(),
        Some("started")
    );
    let held = c.running_debug_container("withdrawn", "web").await;

    let second = counting(&c, "withdrawn", &[]).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(second.stdout.trim(), "runs=2", "once: {second:?}");
    assert_eq!(reused_name(&second).as_deref(), Some(held.as_str()));
    assert!(
        second.stderr.starts_with(
            "the reads of pod web differ from what the last session saw: stopping dbg-"
        ),
        "the container sent beside the reads, stopped: {second:?}"
    );
    let containers = c.debug_containers("withdrawn", "web").await;
    assert_eq!(containers.len(), 3, "{containers:?}");

    assert_eq!(support::exit_code(&mut holder, LIMIT).await, Some(0));
    c.wait_all_terminated("withdrawn", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn a_new_session_between_leaves_the_reused_container_in_the_cache() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c, "between").await;
    let (mut first, container) = held(&c, "between", &[]).await;
    // A `--new` session adds its own container and sees it end.
    let fresh = counting(&c, "between", &["--new"]).await;
    assert_eq!(fresh.stdout.trim(), "runs=1", "{fresh:?}");

    c.sb.clear_requests();
    let reused = counting(&c, "between", &[]).await;
    assert_eq!(reused.code, Some(0), "{reused:?}");
    assert_eq!(reused.stdout.trim(), "runs=2", "{reused:?}");
    assert_eq!(reused_name(&reused).as_deref(), Some(container.as_str()));
    assert_eq!(
        gated_execs_into(&c, &container).len(),
        1,
        "the cache still named {container}: {:#?}",
        c.sb.requests()
    );

    assert_eq!(support::exit_code(&mut first, LIMIT).await, Some(0));
    c.wait_all_terminated("between", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn ctrl_c_while_the_patch_beside_the_reads_is_in_flight_stops_what_it_added() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c, "inflight").await;
    let first = counting(&c, "inflight", &[]).await;
    assert_eq!(first.stdout.trim(), "runs=1", "{first:?}");
    c.wait_all_terminated("inflight", "web", Duration::from_secs(20))
        .await;
    let before = c.target_fingerprint("inflight", "web").await;

    c.sb.set_faults(Faults {
        latency_ms: LATENCY_MS,
        ..Faults::default()
    });
    c.sb.clear_requests();
    let mut second = c.plugin(&["-n", "inflight", "pod/web", "--", "sh", "-c", COUNT]);
    second
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut second = second.spawn().expect("starts");
    // While the first round trip is on its way: each request waits LATENCY_MS at the server.
    tokio::time::sleep(Duration::from_millis(LATENCY_MS * 2 / 3)).await;
    assert!(
        !c.sb.requests().iter().any(|r| r.method == "PATCH"),
        "the PATCH was answered already: {:#?}",
        c.sb.requests()
    );
    support::send(&second, libc::SIGINT);
    assert_eq!(support::exit_code(&mut second, LIMIT).await, Some(130));
    c.sb.set_faults(Faults::default());
    let containers = c.debug_containers("inflight", "web").await;
    assert_eq!(containers.len(), 2, "the PATCH landed: {containers:?}");
    c.wait_all_terminated("inflight", "web", Duration::from_secs(20))
        .await;
    assert_eq!(c.target_fingerprint("inflight", "web").await, before);
    let runs = c
        .run(
            &["-n", "inflight", "pod/web", "--", "cat", "/target/tmp/runs"],
            LIMIT,
        )
        .await;
    assert_eq!(runs.stdout.trim(), "1", "the command never ran: {runs:?}");
}

#[tokio::test]
async fn cp_and_info_on_a_pod_seen_before_send_their_patch_beside_the_reads() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c, "copying").await;
    // `info` sees its container end, and remembers the pod.
    let info = c.run(&["-n", "copying", "info", "pod/web"], LIMIT).await;
    assert_eq!(info.code, Some(0), "{info:?}");
    c.wait_all_terminated("copying", "web", Duration::from_secs(20))
        .await;

    let dir = tempfile_dir("copying");
    let local = dir.join("os-release");
    let local_arg = local.to_string_lossy().to_string();
    c.sb.clear_requests();
    let cp = c
        .run(
            &["-n", "copying", "cp", "pod/web:/etc/os-release", &local_arg],
            LIMIT,
        )
        .await;
    assert_eq!(cp.code, Some(0), "{cp:?}");
    let copied = std::fs::read_to_string(&local).unwrap_or_default();
    assert!(copied.contains("Distroless (sandbox)"), "{copied:?}");
    assert_eq!(
        patches(&c.sb.requests()),
        [(JSON_PATCH.to_string(), 200)],
        "cp: {:#?}",
        c.sb.requests()
    );
    c.wait_all_terminated("copying", "web", Duration::from_secs(20))
        .await;

    // And `cp` remembered the pod it saw its container end in, for `info`.
    c.sb.clear_requests();
    let info = c.run(&["-n", "copying", "info", "pod/web"], LIMIT).await;
    assert_eq!(info.code, Some(0), "{info:?}");
    assert_eq!(
        patches(&c.sb.requests()),
        [(JSON_PATCH.to_string(), 200)],
        "info: {:#?}",
        c.sb.requests()
    );
    assert_eq!(c.debug_containers("copying", "web").await.len(), 3);
    let _ = std::fs::remove_dir_all(dir);
}

/// An empty scratch directory for this process.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("reuse-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}
