//! Sessions against a struggling sandbox API server (docs/reliability.md): a burst of 500s is
//! ridden out and said so, a longer one ends the session within the retry bound with the last
//! error, and a PATCH whose answer is lost after it landed adds exactly one container.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube_sandbox::{DropResponse, ErrorBurst, Faults};
use serde_json::json;
use support::{NONROOT_APP, TestCluster};

const LIMIT: Duration = Duration::from_secs(60);

async fn app(c: &TestCluster) {
    c.running_app("default", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
}

fn burst(count: u32) -> Faults {
    Faults {
        error_burst: Some(ErrorBurst {
            code: 500,
            count,
            path_contains: Some("/pods".into()),
        }),
        ..Faults::default()
    }
}

#[tokio::test]
async fn a_burst_of_500s_on_the_pods_is_ridden_out_and_said() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c).await;
    c.sb.set_faults(burst(3));
    let run = c
        .run(&["pod/web", "--", "cat", "/etc/hostname"], LIMIT)
        .await;
    c.sb.set_faults(Faults::default());
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr
            .contains("note: API server busy, retrying (3/5): HTTP 500 on GET /api/v1/namespaces/default/pods/web"),
        "{run:?}"
    );
    let failed = c.sb.requests().iter().filter(|r| r.status == 500).count();
    assert_eq!(failed, 3, "the burst was consumed by the plugin's retries");
    assert_eq!(c.debug_containers("default", "web").await.len(), 1);
}

#[tokio::test]
async fn a_burst_longer_than_the_bound_ends_the_session_within_it_with_the_last_error() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c).await;
    c.sb.set_faults(burst(1000));
    let run = c
        .run(
            &[
                "--api-retries",
                "3",
                "--api-retry-within",
                "2s",
                "pod/web",
                "--",
                "true",
            ],
            LIMIT,
        )
        .await;
    c.sb.set_faults(Faults::default());
    assert_eq!(run.code, Some(1), "{run:?}");
    // Three waits of at most 200, 400 and 800 ms, each attempt fast on a local server.
    assert!(run.took < Duration::from_secs(4), "{run:?}");
    assert!(run.stderr.contains("retrying (3/3)"), "{run:?}");
    assert!(!run.stderr.contains("retrying (4/"), "{run:?}");
    assert!(
        run.stderr
            .contains("gave up on GET /api/v1/namespaces/default/pods/web after 3 retries"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("injected fault: the server had an internal error"),
        "the last error is the one reported: {run:?}"
    );
    assert!(c.debug_containers("default", "web").await.is_empty());
}

#[tokio::test]
async fn a_patch_whose_answer_is_lost_after_it_landed_adds_exactly_one_container() {
    let Some(c) = support::cluster().await else {
        return;
    };
    app(&c).await;
    c.sb.clear_requests();
    c.sb.set_faults(Faults {
        drop_response: Some(DropResponse {
            count: 1,
            path_contains: Some("/ephemeralcontainers".into()),
            method: Some("PATCH".into()),
        }),
        ..Faults::default()
    });
    let run = c
        .run(&["pod/web", "--", "cat", "/etc/hostname"], LIMIT)
        .await;
    c.sb.set_faults(Faults::default());
    assert_eq!(run.code, Some(0), "{run:?}");
    let patches: Vec<u16> =
        c.sb.requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.ends_with("/ephemeralcontainers"))
            .map(|r| r.status)
            .collect();
    assert_eq!(
        patches,
        [0],
        "one PATCH, its answer dropped, not sent again"
    );
    assert_eq!(c.debug_containers("default", "web").await.len(), 1);
}

/// The runbook of the matrix's `run`: one short step.
const MATRIX_RUNBOOK: &str =
    "name: matrix\nsteps:\n  - name: hostname\n    run: cat /etc/hostname\n";

/// Pods in `default` labelled `matrix=fleet`, running, for the matrix's `run`.
async fn fleet(c: &TestCluster, count: usize) -> Vec<String> {
    let names: Vec<String> = (1..=count).map(|i| format!("fleet-{i}")).collect();
    for name in &names {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "matrix": "fleet" } },
            "spec": { "containers": [{ "name": "app", "image": NONROOT_APP, "securityContext": {
                "runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": true } }] }
        }))
        .expect("a pod");
        c.pods("default")
            .create(&PostParams::default(), &pod)
            .await
            .expect("create a pod");
    }
    for name in &names {
        c.wait_for(&format!("pod {name} Running"), LIMIT, async || {
            c.pod_json("default", name).await["status"]["phase"] == "Running"
        })
        .await;
    }
    names
}

/// What a run ended with, for the table; panics unless it is the command's result or a clear
/// error with a documented exit code (1, or for `run` 4 and 5: some step failed, some pod
/// was not debugged).
fn outcome(fault: &str, command: &str, run: &support::Run) -> String {
    let first_error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error: ").to_string());
    match (run.code, first_error) {
        (Some(0), _) => "ok".to_string(),
        (Some(1), Some(error)) => format!("exit 1: {error}"),
        (Some(code @ (4 | 5)), _) if command.starts_with("run") => {
            format!("exit {code}: some pods failed")
        }
        _ => panic!("{fault} × {command}: neither a result nor a clear error: {run:?}"),
    }
}

/// Fault × command: each run ends with its normal result or a clear error (exit 1 and an
/// `error:` line; `run`: its documented 4 or 5) within the bound; afterwards, with the faults
/// lifted, `cleanup` leaves no debug container running, and no pod holds more containers
/// than attempts were made on it. A `cp` or `snapshot` that fails leaves nothing at its
/// destination, and one that succeeds a whole file. Prints the table (docs/reliability.md).
#[tokio::test]
async fn fault_matrix() {
    let Some(c) = support::cluster().await else {
        return;
    };
    let started = Instant::now();
    let burst = |code: u16, path: &str| Faults {
        error_burst: Some(ErrorBurst {
            code,
            count: 3,
            path_contains: Some(path.into()),
        }),
        ..Faults::default()
    };
    // The slow pull comes first: the node keeps an image once pulled (as a kubelet does with
    // IfNotPresent), so only the first debug container of the sandbox waits for it.
    let faults: Vec<(&str, Faults)> = vec![
        (
            "slow pull (2 s)",
            Faults {
                pull_delay_ms: 2000,
                ..Faults::default()
            },
        ),
        (
            "latency 200 ms",
            Faults {
                latency_ms: 200,
                ..Faults::default()
            },
        ),
        ("429 burst (3)", burst(429, "/pods")),
        ("500 burst on /pods (3)", burst(500, "/pods")),
        ("503 on the PATCH", burst(503, "/ephemeralcontainers")),
        (
            "PATCH applied, answer dropped",
            Faults {
                drop_response: Some(DropResponse {
                    count: 1,
                    path_contains: Some("/ephemeralcontainers".into()),
                    method: Some("PATCH".into()),
                }),
                ..Faults::default()
            },
        ),
        (
            "dropped watch (300 ms)",
            Faults {
                drop_watch_after_ms: Some(300),
                ..Faults::default()
            },
        ),
        (
            "dropped exec (300 ms)",
            Faults {
                drop_exec_after_ms: Some(300),
                ..Faults::default()
            },
        ),
    ];
    let fleet = fleet(&c, 10).await;
    let out = std::env::temp_dir().join(format!("dd-matrix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("a scratch directory");
    let runbook = out.join("matrix.yaml");
    std::fs::write(&runbook, MATRIX_RUNBOOK).expect("the runbook");
    // 256 KiB: more than one exec frame each way.
    let upload: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    let local = out.join("upload");
    std::fs::write(&local, &upload).expect("the file to upload");
    let mut table = vec![
        "| fault | command | outcome | time |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    let mut fleet_attempts = 0;
    for (row, (name, fault)) in faults.into_iter().enumerate() {
        let pod = format!("web-{row}");
        c.running_app("default", &pod, NONROOT_APP, Some((65532, 65532)))
            .await;
        let target = format!("pod/{pod}");
        let copied = out.join(format!("hostname-{row}"));
        let snapshot = out.join(format!("snapshot-{row}.tar.gz"));
        let commands: Vec<(&str, Vec<String>)> = vec![
            (
                "session",
                vec![
                    target.clone(),
                    "--".into(),
                    "cat".into(),
                    "/etc/hostname".into(),
                ],
            ),
            (
                "cp from the pod",
                vec![
                    "cp".into(),
                    format!("{pod}:/etc/hostname"),
                    copied.display().to_string(),
                ],
            ),
            (
                "cp to the pod",
                vec![
                    "cp".into(),
                    local.display().to_string(),
                    format!("{pod}:/tmp/upload"),
                ],
            ),
            (
                "snapshot",
                vec![
                    "snapshot".into(),
                    target.clone(),
                    "--include".into(),
                    "/etc/**".into(),
                    "-o".into(),
                    snapshot.display().to_string(),
                ],
            ),
            ("info", vec!["info".into(), target.clone()]),
            (
                "run over 10 pods",
                vec![
                    "run".into(),
                    runbook.display().to_string(),
                    "-l".into(),
                    "matrix=fleet".into(),
                ],
            ),
            ("ls", vec!["ls".into()]),
            ("cleanup", vec!["cleanup".into()]),
        ];
        let mut attempts = 0;
        let mut uploaded = false;
        // What the session printed of /etc/hostname, to compare the copy with.
        let mut hostname = None;
        for (command, args) in commands {
            c.sb.set_faults(fault.clone());
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = c.run(&argv, LIMIT).await;
            c.sb.set_faults(Faults::default());
            let outcome = outcome(name, command, &run);
            assert!(
                run.took < Duration::from_secs(45),
                "{name} × {command}: {run:?}"
            );
            let ok = run.code == Some(0);
            match command {
                "run over 10 pods" => fleet_attempts += 1,
                "ls" | "cleanup" => {}
                _ => attempts += 1,
            }
            match command {
                "session" if ok => hostname = Some(run.stdout.clone()),
                "cp from the pod" if ok => {
                    let copy = std::fs::read_to_string(&copied).unwrap_or_default();
                    assert!(!copy.is_empty(), "{name}: an empty copy");
                    if let Some(hostname) = &hostname {
                        assert_eq!(&copy, hostname, "{name}: the copy is whole");
                    }
                }
                "cp from the pod" => assert!(
                    !copied.exists(),
                    "{name}: a failed cp left {}",
                    copied.display()
                ),
                "cp to the pod" => uploaded = ok,
                "snapshot" => {
                    let partial = snapshot.with_extension("gz.partial");
                    assert!(!partial.exists(), "{name}: {} left", partial.display());
                    assert_eq!(snapshot.exists(), ok, "{name}: {run:?}");
                }
                _ => {}
            }
            table.push(format!(
                "| {name} | {command} | {outcome} | {:.1} s |",
                run.took.as_secs_f64()
            ));
        }
        // What the upload left in the pod, fetched back without faults: the whole file, or
        // (only when the upload failed) nothing. A cut-short file would come back short.
        let back = out.join(format!("back-{row}"));
        let fetched = c
            .run(
                &[
                    "cp",
                    &format!("{pod}:/tmp/upload"),
                    &back.display().to_string(),
                ],
                LIMIT,
            )
            .await;
        attempts += 1;
        match fetched.code {
            Some(0) => assert!(
                std::fs::read(&back).ok().as_deref() == Some(upload.as_slice()),
                "{name}: the upload left a different file in the pod (cp ok: {uploaded})"
            ),
            _ => assert!(
                !uploaded,
                "{name}: the upload is not in the pod: {fetched:?}"
            ),
        }
        let cleanup = c.run(&["cleanup"], LIMIT).await;
        assert_eq!(cleanup.code, Some(0), "{name}: {cleanup:?}");
        for (pod, tried) in
            std::iter::once((&pod, attempts)).chain(fleet.iter().map(|p| (p, fleet_attempts)))
        {
            let added = c.debug_containers("default", pod).await;
            assert!(
                added.len() <= tried,
                "{name}: {pod} holds {added:?} after {tried} attempts"
            );
            if !added.is_empty() {
                c.wait_all_terminated("default", pod, Duration::from_secs(30))
                    .await;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    table.push(String::new());
    table.push(format!(
        "The whole matrix, pods included: {:.0} s.",
        started.elapsed().as_secs_f64()
    ));
    println!("{}", table.join("\n"));
}
