//! Sessions against the sandbox cluster with real containers: what a user sees of a session,
//! its teardown on every exit path, reuse, `ls` and `cleanup`, and the round trips it costs.

mod support;

use std::time::Duration;

use kube_sandbox::SandboxOptions;
use support::{NONROOT_APP, ROOT_APP, TestCluster, base_image_ref};

const LIMIT: Duration = Duration::from_secs(60);

async fn restricted_app(c: &TestCluster) {
    c.namespace("locked", Some("restricted")).await;
    c.running_app("locked", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
}

#[tokio::test]
async fn a_distroless_nonroot_target_in_a_restricted_namespace() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let before = c.target_fingerprint("locked", "web").await;

    let run = c
        .run(
            &["-n", "locked", "pod/web", "--", "ls", "/target/etc"],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.lines().any(|l| l == "passwd"),
        "the target's /etc: {run:?}"
    );
    assert!(run.stdout.lines().any(|l| l == "os-release"), "{run:?}");

    let run = c
        .run(
            &["-n", "locked", "pod/web", "--", "sh", "-c", "exit 7"],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(7), "the remote exit code is ours: {run:?}");

    // What was added: the target's uid/gid, nothing more, and admitted under restricted.
    let pod = c.pod_json("locked", "web").await;
    let added = &pod["spec"]["ephemeralContainers"][0];
    assert_eq!(added["targetContainerName"], "app");
    assert_eq!(added["image"], base_image_ref().as_str());
    let sc = &added["securityContext"];
    assert_eq!(
        (sc["runAsUser"].as_i64(), sc["runAsGroup"].as_i64()),
        (Some(65532), Some(65532))
    );
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    // The second run reused the first container only while it ran; each ended Terminated.
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
    assert_eq!(
        c.target_fingerprint("locked", "web").await,
        before,
        "the target was never restarted"
    );
}

#[tokio::test]
async fn a_root_target_in_a_baseline_namespace() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("open", Some("baseline")).await;
    c.running_app("open", "root-app", ROOT_APP, None).await;
    let run = c
        .run(
            &[
                "-n",
                "open",
                "root-app",
                "--",
                "sh",
                "-c",
                "id -u; ls /target/etc",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout.lines().next(), Some("0"), "{run:?}");
    assert!(run.stdout.contains("passwd"), "{run:?}");
    c.wait_all_terminated("open", "root-app", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn json_result_carries_the_exit_code_and_output() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let run = c
        .run(
            &[
                "-n",
                "locked",
                "pod/web",
                "-o",
                "json",
                "--",
                "sh",
                "-c",
                "echo hi; exit 3",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(3), "{run:?}");
    let result: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON only");
    assert_eq!(result["kind"], "SessionResult");
    assert_eq!(result["exitCode"], 3);
    assert_eq!(result["stdout"], "hi\n");
    assert_eq!(result["reused"], false);
}

/// The requests before the first exec, in the order they arrived, grouped into round trips:
/// with `latency` added to every answer, a request sent after another's answer arrives at
/// least `latency` later, while requests sent together arrive within a fraction of it. The
/// trail's Events are written beside the work, not waited for: left out.
fn round_trips_before_the_exec(
    requests: &[kube_sandbox::RequestRecord],
    latency: Duration,
) -> Vec<Vec<String>> {
    let mut sorted: Vec<_> = requests
        .iter()
        .filter(|r| !r.path.ends_with("/events"))
        .collect();
    sorted.sort_by_key(|r| r.received);
    let mut trips: Vec<Vec<String>> = Vec::new();
    let mut trip_start = None;
    for r in sorted {
        let line = format!(
            "{} {}{}",
            r.method,
            r.path,
            if r.query.contains("watch=true") {
                "?watch"
            } else {
                ""
            }
        );
        match trip_start {
            Some(at) if r.received.duration_since(at) < latency / 2 => {
                trips.last_mut().expect("a trip").push(line)
            }
            _ => {
                trip_start = Some(r.received);
                trips.push(vec![line]);
            }
        }
        if r.path.ends_with("/exec") {
            break;
        }
    }
    for trip in &mut trips {
        trip.sort();
    }
    trips
}

#[tokio::test]
async fn a_fresh_session_makes_three_sequential_round_trips_and_a_reused_one_two() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    // Keep a first session open so the second can reuse its container. Its own output says
    // when it runs: polling the pod from here would add our reads to the request log.
    let mut first = c.plugin(&[
        "-n",
        "locked",
        "pod/web",
        "--",
        "sh",
        "-c",
        "echo started; sleep 8",
    ]);
    first.stdout(std::process::Stdio::piped());
    let latency = Duration::from_millis(300);
    c.sb.set_faults(kube_sandbox::Faults {
        latency_ms: latency.as_millis() as u64,
        ..Default::default()
    });
    c.sb.clear_requests();
    let mut first = first.spawn().expect("the first session starts");
    assert_eq!(
        support::first_line(&mut first, LIMIT).await.as_deref(),
        Some("started")
    );
    c.sb.set_faults(kube_sandbox::Faults::default());
    let fresh: Vec<_> = c.sb.requests();

    let trips = round_trips_before_the_exec(&fresh, latency);
    assert_eq!(
        trips,
        [
            vec![
                "GET /api/v1/namespaces/locked",
                "GET /api/v1/namespaces/locked/pods/web",
                "POST /apis/authentication.k8s.io/v1/selfsubjectreviews",
                // May we exec? Else attach mode, decided before the PATCH.
                "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            ],
            // The watch sees the PATCH land and the container start: no trip of its own.
            vec![
                "GET /api/v1/namespaces/locked/pods?watch",
                "PATCH /api/v1/namespaces/locked/pods/web/ephemeralcontainers",
            ],
            vec!["GET /api/v1/namespaces/locked/pods/web/exec"],
        ],
        "three sequential round trips, the exec the third: {trips:#?}"
    );
    let get = fresh
        .iter()
        .find(|r| r.method == "GET" && r.path.ends_with("/pods/web"))
        .expect("the GET");
    let watch = fresh
        .iter()
        .find(|r| r.query.contains("watch=true"))
        .expect("a watch");
    assert!(
        watch.query.contains("resourceVersion="),
        "from the GET's version: {}",
        watch.query
    );
    assert!(
        watch.received >= get.received + latency,
        "opened after the GET's answer, not before"
    );
    assert_eq!(
        fresh
            .iter()
            .filter(|r| r.query.contains("watch=true"))
            .count(),
        1,
        "one watch"
    );
    assert!(
        !fresh
            .iter()
            .any(|r| ["/api", "/apis", "/version", "/api/v1"].contains(&r.path.as_str())),
        "no discovery"
    );

    // With a cold cache (tests/reuse.rs has the warm one): the reads, then the exec.
    c.sb.clear_requests();
    let mut second = c.plugin(&["-n", "locked", "pod/web", "--", "true"]);
    second.env("XDG_CACHE_HOME", c.sb.dir().join("cold-cache"));
    let second = support::run_command(second, LIMIT).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert!(second.stderr.contains("reusing dbg-"), "{second:?}");
    let reused = c.sb.requests();
    let before_exec: Vec<String> = reused
        .iter()
        .filter(|r| !r.path.ends_with("/events"))
        .take_while(|r| !r.path.ends_with("/exec"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        before_exec.len(),
        4,
        "only the reads before the exec: {before_exec:#?}"
    );
    assert!(
        !reused.iter().any(|r| r.method == "PATCH"),
        "no second PATCH"
    );
    // At the end, no pod read and no exec: the agent ends the container with its last session.
    let after_exec: Vec<String> = reused
        .iter()
        .filter(|r| !r.path.ends_with("/events"))
        .skip_while(|r| !r.path.ends_with("/exec"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        after_exec,
        ["GET /api/v1/namespaces/locked/pods/web/exec"],
        "nothing after the work"
    );
    assert_eq!(support::exec_verbs(&reused), ["run"]);
    // The reuse and the end, as Events (the end's after the process: its hand-off).
    assert_eq!(support::events_created(&c, 2).await, 2);
    assert_eq!(c.debug_containers("locked", "web").await.len(), 1);
    assert!(
        c.debug_containers("locked", "web")
            .await
            .iter()
            .all(|(_, s)| s == "running"),
        "the first session still uses it"
    );

    // The first one ends normally: the agent ends the container, no `stop` is sent, and the
    // plugin reports it Terminated from the watch it kept.
    c.sb.clear_requests();
    let ended = support::exit_code(&mut first, LIMIT).await;
    assert_eq!(ended, Some(0));
    let at_the_end = c.sb.requests();
    assert!(
        support::exec_verbs(&at_the_end).is_empty(),
        "a normal end sends no exec: {:?}",
        support::exec_verbs(&at_the_end)
    );
    assert!(
        !at_the_end
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/pods/web")),
        "and reads no pod: {at_the_end:#?}"
    );
    c.wait_all_terminated("locked", "web", Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn new_adds_another_ls_shows_them_and_cleanup_stops_them() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let mut held = Vec::new();
    for args in [
        vec!["--reason", "INC-1"],
        vec!["--new", "--reason", "INC-2"],
    ] {
        let mut all = vec!["-n", "locked", "pod/web", "--idle", "0"];
        all.extend(args);
        all.extend(["--", "sleep", "60"]);
        let child = c.plugin(&all).spawn().expect("a session starts");
        held.push(child);
        let expected = held.len();
        c.wait_for("the debug container running", LIMIT, async || {
            c.debug_containers("locked", "web")
                .await
                .iter()
                .filter(|(_, s)| s == "running")
                .count()
                == expected
        })
        .await;
    }

    let ls = c.run(&["-n", "locked", "ls"], LIMIT).await;
    assert_eq!(ls.code, Some(0), "{ls:?}");
    let rows: Vec<&str> = ls.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{ls:?}");
    assert!(
        rows.iter()
            .all(|r| r.contains("running") && r.contains("web") && r.contains(" app ")),
        "{ls:?}"
    );
    assert!(
        ls.stdout.contains("INC-1") && ls.stdout.contains("INC-2"),
        "{ls:?}"
    );
    let json = c.run(&["ls", "-A", "-o", "json"], LIMIT).await;
    let list: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));

    let dry = c
        .run(&["-n", "locked", "cleanup", "--dry-run"], LIMIT)
        .await;
    assert_eq!(dry.code, Some(0), "{dry:?}");
    // It lists what it would stop, one row each, and stops nothing.
    assert!(
        dry.stderr.contains("would stop 2 debug container(s)"),
        "{dry:?}"
    );
    let listed: Vec<&str> = dry.stdout.lines().skip(1).collect();
    assert_eq!(listed.len(), 2, "{dry:?}");
    for (name, _) in c.debug_containers("locked", "web").await {
        assert!(
            listed
                .iter()
                .any(|row| row.split_whitespace().any(|w| w == name)),
            "{name} is not listed: {dry:?}"
        );
    }
    assert_eq!(
        c.debug_containers("locked", "web")
            .await
            .iter()
            .filter(|(_, s)| s == "running")
            .count(),
        2
    );

    let cleanup = c.run(&["-n", "locked", "cleanup"], LIMIT).await;
    assert_eq!(cleanup.code, Some(0), "{cleanup:?}");
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
    for mut child in held {
        let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    }
}

/// Sends `signal` to a session once its command has started (it printed `started`): the
/// signal lands during the command, not while the plugin waits for the container. The
/// session must tear down and exit 128 + signal, leaving the container Terminated and the
/// target untouched.
async fn interrupted_during_the_session(signal: i32) {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let before = c.target_fingerprint("locked", "web").await;
    let mut child = started_session(&c, "echo started; sleep 100").await;
    support::send(&child, signal);
    assert_eq!(
        support::exit_code(&mut child, Duration::from_secs(30)).await,
        Some(128 + signal)
    );
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
    assert_eq!(c.target_fingerprint("locked", "web").await, before);
}

#[tokio::test]
async fn sigterm_during_a_session_tears_down() {
    interrupted_during_the_session(libc::SIGTERM).await;
}

#[tokio::test]
async fn sighup_during_a_session_tears_down() {
    interrupted_during_the_session(libc::SIGHUP).await;
}

#[tokio::test]
async fn ctrl_c_while_waiting_for_the_container_tears_down() {
    let Some(c) = support::cluster_with(SandboxOptions {
        faults: kube_sandbox::Faults {
            pull_delay_ms: 3000,
            ..Default::default()
        },
        ..SandboxOptions::default()
    })
    .await
    else {
        return;
    };
    restricted_app(&c).await;
    let mut child = c
        .plugin(&["-n", "locked", "pod/web", "--", "true"])
        .spawn()
        .expect("starts");
    c.wait_for("the debug container added", LIMIT, async || {
        !c.debug_containers("locked", "web").await.is_empty()
    })
    .await;
    assert_ne!(
        c.debug_containers("locked", "web").await[0].1,
        "running",
        "still pulling"
    );
    support::send(&child, libc::SIGINT);
    assert_eq!(
        support::exit_code(&mut child, Duration::from_secs(40)).await,
        Some(130)
    );
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn a_killed_client_leaves_the_agent_to_end_the_container_by_idling_out() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let before = c.target_fingerprint("locked", "web").await;
    let mut child = c
        .plugin(&[
            "-n", "locked", "pod/web", "--idle", "3s", "--", "sleep", "4",
        ])
        .spawn()
        .expect("starts");
    c.wait_for("the debug container running", LIMIT, async || {
        c.debug_containers("locked", "web")
            .await
            .iter()
            .any(|(_, s)| s == "running")
    })
    .await;
    support::send(&child, libc::SIGKILL);
    let _ = child.wait().await;
    c.wait_all_terminated("locked", "web", Duration::from_secs(30))
        .await;
    assert_eq!(c.target_fingerprint("locked", "web").await, before);
}

/// Spawns a session whose command prints `started` first; returns once it has.
async fn started_session(c: &TestCluster, command: &str) -> tokio::process::Child {
    c.started_session(&["-n", "locked", "pod/web", "--", "sh", "-c", command])
        .await
}

#[tokio::test]
async fn the_last_session_out_stops_a_shared_container() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let mut creator = started_session(&c, "echo started; sleep 3").await;
    let mut reuser = started_session(&c, "echo started; sleep 10").await;
    assert_eq!(
        c.debug_containers("locked", "web").await.len(),
        1,
        "the second reused the first's"
    );

    assert_eq!(support::exit_code(&mut creator, LIMIT).await, Some(0));
    let states = c.debug_containers("locked", "web").await;
    assert_eq!(
        states[0].1, "running",
        "still in use by the second session: {states:?}"
    );

    assert_eq!(
        support::exit_code(&mut reuser, LIMIT).await,
        Some(0),
        "the second session was not cut off"
    );
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test]
async fn a_lost_connection_is_reported_and_still_torn_down() {
    let Some(c) = support::cluster_with(SandboxOptions {
        faults: kube_sandbox::Faults {
            drop_exec_after_ms: Some(1500),
            ..Default::default()
        },
        ..SandboxOptions::default()
    })
    .await
    else {
        return;
    };
    restricted_app(&c).await;
    let before = c.target_fingerprint("locked", "web").await;
    let run = c
        .run(&["-n", "locked", "pod/web", "--", "sleep", "30"], LIMIT)
        .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("broke off"), "{run:?}");
    assert!(run.took < Duration::from_secs(20), "{run:?}");
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
    assert_eq!(c.target_fingerprint("locked", "web").await, before);
}

#[tokio::test]
async fn any_image_works_in_generic_mode_with_only_sh_and_sleep() {
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    let busybox = "sandbox.local/busybox:latest";
    let run = c
        .run(
            &[
                "-n",
                "locked",
                "pod/web",
                "--image",
                busybox,
                "--",
                "ls",
                "/tmp/target/etc",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.lines().any(|l| l == "passwd"), "{run:?}");
    let pod = c.pod_json("locked", "web").await;
    assert_eq!(pod["spec"]["ephemeralContainers"][0]["command"][0], "sh");
    c.wait_all_terminated("locked", "web", Duration::from_secs(30))
        .await;
}

#[tokio::test]
async fn a_workload_target_resolves_to_its_ready_pod() {
    use k8s_openapi::api::apps::v1::Deployment;
    let Some(c) = support::cluster().await else {
        return;
    };
    restricted_app(&c).await;
    // The sandbox runs no controllers: the Deployment is an object whose selector matches the
    // pod made above (labelled app=web), which is all the plugin reads.
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "api" },
        "spec": {
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "app", "image": NONROOT_APP }] }
            }
        }
    }))
    .expect("a deployment");
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(c.client.clone(), "locked");
    deployments
        .create(&Default::default(), &deployment)
        .await
        .expect("create the deployment");
    let run = c
        .run(
            &[
                "-n",
                "locked",
                "deploy/api",
                "--",
                "cat",
                "/target/etc/hostname",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        c.debug_containers("locked", "web").await.len(),
        1,
        "the session went to pod web"
    );
    let missing = c
        .run(&["-n", "locked", "sts/nope", "--", "true"], LIMIT)
        .await;
    assert_eq!(missing.code, Some(1), "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("sts/nope not found in namespace locked"),
        "{missing:?}"
    );
}
