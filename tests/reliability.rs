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
