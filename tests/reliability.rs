//! Sessions against a struggling sandbox API server (docs/reliability.md): a burst of 500s is
//! ridden out and said so, a longer one ends the session within the retry bound with the last
//! error, and a PATCH whose answer is lost after it landed adds exactly one container.

mod support;

use std::time::Duration;

use kube_sandbox::{DropResponse, ErrorBurst, Faults};
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

/// Fault × command: each run ends with its normal result or a clear error (exit 1, an
/// `error:` line) within the bound; afterwards, with the faults lifted, `cleanup` leaves no
/// debug container running, and no pod holds more containers than attempts were made on it.
/// A `cp` that fails leaves no file at the destination. Prints the table (docs/reliability.md).
#[tokio::test]
async fn fault_matrix() {
    let Some(c) = support::cluster().await else {
        return;
    };
    let burst = |code: u16, path: &str| Faults {
        error_burst: Some(ErrorBurst {
            code,
            count: 3,
            path_contains: Some(path.into()),
        }),
        ..Faults::default()
    };
    let faults: Vec<(&str, Faults)> = vec![
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
    let out = std::env::temp_dir().join(format!("dd-matrix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("a scratch directory");
    let mut table = vec![
        "| fault | command | outcome | time |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    for (row, (name, fault)) in faults.into_iter().enumerate() {
        let pod = format!("web-{row}");
        c.running_app("default", &pod, NONROOT_APP, Some((65532, 65532)))
            .await;
        let target = format!("pod/{pod}");
        let copied = out.join(format!("hostname-{row}"));
        let from = format!("{pod}:/etc/hostname");
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
                vec!["cp".into(), from, copied.display().to_string()],
            ),
            ("ls", vec!["ls".into()]),
            ("cleanup", vec!["cleanup".into()]),
        ];
        let mut attempts = 0;
        for (command, args) in commands {
            c.sb.set_faults(fault.clone());
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = c.run(&argv, LIMIT).await;
            c.sb.set_faults(Faults::default());
            let outcome = match run.code {
                Some(0) => "ok".to_string(),
                Some(1) if run.stderr.contains("error:") => {
                    let first = run.stderr.lines().find(|l| l.starts_with("error:"));
                    format!(
                        "exit 1: {}",
                        first.unwrap_or_default().trim_start_matches("error: ")
                    )
                }
                _ => panic!("{name} × {command}: neither a result nor a clear error: {run:?}"),
            };
            assert!(
                run.took < Duration::from_secs(45),
                "{name} × {command}: {run:?}"
            );
            if command == "session" || command == "cp from the pod" {
                attempts += 1;
            }
            if command == "cp from the pod" && run.code != Some(0) {
                assert!(
                    !copied.exists(),
                    "{name}: a failed cp left {}",
                    copied.display()
                );
            }
            table.push(format!(
                "| {name} | {command} | {outcome} | {:.1} s |",
                run.took.as_secs_f64()
            ));
        }
        let cleanup = c.run(&["cleanup"], LIMIT).await;
        assert_eq!(cleanup.code, Some(0), "{name}: {cleanup:?}");
        let added = c.debug_containers("default", &pod).await;
        assert!(
            added.len() <= attempts,
            "{name}: {added:?} for {attempts} attempts"
        );
        if !added.is_empty() {
            c.wait_all_terminated("default", &pod, Duration::from_secs(30))
                .await;
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    println!("{}", table.join("\n"));
}
