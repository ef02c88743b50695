//! Waiting for the debug container to run, or to fail, without polling.
//!
//! One watch of the one pod (`fieldSelector=metadata.name=NAME`, watch.rs) from a
//! resourceVersion read before the PATCH landed (the GET's, when it is opened beside the
//! PATCH): no LIST, and no event between the PATCH and the watch is missed. The kubelet's
//! waiting reasons that never heal by themselves end the wait at once, with the kubelet's
//! message; anything else waits until `--timeout`, then shows the pod's events.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::ListParams;

use crate::base::error::Error;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::watch::{PodWatch, Seen};

/// Waiting reasons that will not resolve on their own (kubelet `images` and `kuberuntime`).
pub const FATAL_WAITING_REASONS: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Where an ephemeral container is, as far as a waiting client cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// No status yet (the kubelet has not seen the new spec).
    Pending,
    Waiting {
        reason: String,
        message: String,
    },
    Running,
    Failed {
        reason: String,
        message: String,
    },
    Exited {
        exit_code: i32,
        message: Option<String>,
    },
    PodGone,
}

/// The progress of ephemeral container `container` in `pod`.
pub fn progress_of(pod: &Pod, container: &str) -> Progress {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|s| s.iter().find(|s| s.name == container));
    let Some(state) = status.and_then(|s| s.state.as_ref()) else {
        return Progress::Pending;
    };
    if state.running.is_some() {
        return Progress::Running;
    }
    if let Some(t) = &state.terminated {
        return Progress::Exited {
            exit_code: t.exit_code,
            message: t.message.clone().or_else(|| t.reason.clone()),
        };
    }
    match &state.waiting {
        Some(w) => {
            let reason = w.reason.clone().unwrap_or_default();
            let message = w.message.clone().unwrap_or_default();
            if FATAL_WAITING_REASONS.contains(&reason.as_str()) {
                Progress::Failed { reason, message }
            } else {
                Progress::Waiting { reason, message }
            }
        }
        None => Progress::Pending,
    }
}

/// What the wait is about, for messages.
pub struct Waiting<'a> {
    pub pod: &'a str,
    pub container: &'a str,
    pub image: &'a str,
}

/// Watches `pod` from `resource_version` until `container` runs; returns the pod as it was then.
pub async fn wait_until_running(
    cluster: &Cluster,
    pods: &Api<Pod>,
    what: &Waiting<'_>,
    resource_version: &str,
    timeout: Duration,
    printer: &Printer,
) -> Result<Pod, Error> {
    let mut watch = PodWatch::new(pods, what.pod, resource_version, cluster.retry);
    wait_on(cluster, &mut watch, what, timeout, printer).await
}

/// As [`wait_until_running`], on a watch the caller opened (beside its PATCH) and keeps.
pub async fn wait_on(
    cluster: &Cluster,
    watch: &mut PodWatch,
    what: &Waiting<'_>,
    timeout: Duration,
    printer: &Printer,
) -> Result<Pod, Error> {
    match tokio::time::timeout(timeout, watch_until_running(watch, what, printer)).await {
        Ok(result) => result,
        Err(_) => Err(Error::StartTimeout {
            pod: what.pod.to_string(),
            container: what.container.to_string(),
            timeout,
            events: recent_events(cluster, what.pod).await,
        }),
    }
}

async fn watch_until_running(
    watch: &mut PodWatch,
    what: &Waiting<'_>,
    printer: &Printer,
) -> Result<Pod, Error> {
    let mut last_shown = None;
    loop {
        let seen = watch.next().await.map_err(|source| Error::Watch {
            pod: what.pod.to_string(),
            container: what.container.to_string(),
            source,
        })?;
        match seen {
            Seen::Gone => return Err(progress_error(what, Progress::PodGone)),
            Seen::Pod(pod) => {
                if let Some(done) = settle(what, &pod, printer, &mut last_shown) {
                    return done;
                }
            }
        }
    }
}

/// Some(result) when the wait is over; shows progress when the waiting reason changes.
fn settle(
    what: &Waiting<'_>,
    pod: &Pod,
    printer: &Printer,
    last_shown: &mut Option<String>,
) -> Option<Result<Pod, Error>> {
    match progress_of(pod, what.container) {
        Progress::Running => Some(Ok(pod.clone())),
        Progress::Pending => None,
        Progress::Waiting { reason, .. } => {
            if last_shown.as_deref() != Some(reason.as_str()) {
                printer.progress(&format!(
                    "waiting for {} to start: {reason}",
                    what.container
                ));
                *last_shown = Some(reason);
            }
            None
        }
        done => Some(Err(progress_error(what, done))),
    }
}

fn progress_error(what: &Waiting<'_>, progress: Progress) -> Error {
    match progress {
        Progress::Failed { reason, message } => Error::StartFailed {
            pod: what.pod.to_string(),
            container: what.container.to_string(),
            image: what.image.to_string(),
            reason,
            message,
        },
        Progress::Exited { exit_code, message } => Error::ContainerExited {
            pod: what.pod.to_string(),
            container: what.container.to_string(),
            exit_code,
            message,
        },
        _ => Error::PodNotFound {
            namespace: String::new(),
            pod: what.pod.to_string(),
        },
    }
}

/// The pod's last few events, oldest first, as `Reason: message` lines.
pub async fn recent_events(cluster: &Cluster, pod: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={pod}"));
    let Ok(list) = cluster.bounded(events.list(&params)).await else {
        return Vec::new();
    };
    let mut items = list.items;
    items.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
    });
    let skip = items.len().saturating_sub(5);
    items
        .into_iter()
        .skip(skip)
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default().trim()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    };

    use super::*;
    use crate::session::target::tests::running_pod;

    fn with_state(state: Option<ContainerState>) -> Pod {
        let mut pod = running_pod("web", &["app"]);
        if let Some(status) = pod.status.as_mut() {
            status.ephemeral_container_statuses = Some(vec![ContainerStatus {
                name: "dbg-abcde".into(),
                state,
                ..ContainerStatus::default()
            }]);
        }
        pod
    }

    fn waiting(reason: &str) -> Option<ContainerState> {
        Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: Some("the kubelet says".into()),
            }),
            ..ContainerState::default()
        })
    }

    #[test]
    fn image_and_config_errors_end_the_wait_with_the_kubelets_message() {
        // Spelled out as docs/usage.md lists them, not read from the table under test.
        for reason in [
            "ErrImagePull",
            "ImagePullBackOff",
            "InvalidImageName",
            "CreateContainerConfigError",
            "CreateContainerError",
            "RunContainerError",
        ] {
            assert_eq!(
                progress_of(&with_state(waiting(reason)), "dbg-abcde"),
                Progress::Failed {
                    reason: reason.into(),
                    message: "the kubelet says".into()
                }
            );
        }
    }

    #[test]
    fn creating_and_pulling_keep_waiting() {
        for reason in ["ContainerCreating", "PodInitializing", ""] {
            assert!(matches!(
                progress_of(&with_state(waiting(reason)), "dbg-abcde"),
                Progress::Waiting { .. }
            ));
        }
        assert_eq!(
            progress_of(&running_pod("web", &["app"]), "dbg-abcde"),
            Progress::Pending
        );
    }

    #[test]
    fn a_container_that_exits_at_once_is_a_failure_with_its_message() {
        let state = Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 127,
                message: Some("exec: distroless-debug-agent: not found".into()),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        });
        assert_eq!(
            progress_of(&with_state(state), "dbg-abcde"),
            Progress::Exited {
                exit_code: 127,
                message: Some("exec: distroless-debug-agent: not found".into())
            }
        );
    }
}

#[cfg(test)]
mod mock_tests {
    use std::time::Instant;

    use http::{Method, StatusCode};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus,
    };
    use serde_json::json;

    use super::*;
    use crate::kube::fake_apiserver::{FakeApiServer, Reply};
    use crate::session::target::tests::running_pod;

    const PODS: &str = "/api/v1/namespaces/default/pods";

    fn cluster(fake: &FakeApiServer) -> Cluster {
        fake.cluster()
    }

    fn event(state: ContainerState, version: &str) -> serde_json::Value {
        let mut pod = running_pod("web", &["app"]);
        pod.metadata.resource_version = Some(version.into());
        if let Some(status) = pod.status.as_mut() {
            status.ephemeral_container_statuses = Some(vec![ContainerStatus {
                name: "dbg-abcde".into(),
                state: Some(state),
                ..ContainerStatus::default()
            }]);
        }
        json!({"type": "MODIFIED", "object": serde_json::to_value(pod).unwrap_or_default()})
    }

    fn waiting(reason: &str, message: &str) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: Some(message.into()),
            }),
            ..ContainerState::default()
        }
    }

    async fn wait(fake: &FakeApiServer, timeout: Duration) -> Result<Pod, Error> {
        let c = cluster(fake);
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
        let what = Waiting {
            pod: "web",
            container: "dbg-abcde",
            image: "nope:1",
        };
        wait_until_running(&c, &pods, &what, "123", timeout, &Printer::plain()).await
    }

    #[tokio::test]
    async fn watches_the_one_pod_from_the_patch_version_until_running() {
        let fake = FakeApiServer::default();
        let running = ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        };
        fake.route(
            Method::GET,
            PODS,
            Some(true),
            Reply::Watch(vec![
                event(waiting("ContainerCreating", ""), "124"),
                event(running, "125"),
            ]),
        );
        let pod = wait(&fake, Duration::from_secs(5)).await;
        assert_eq!(
            pod.ok()
                .and_then(|p| p.metadata.resource_version)
                .as_deref(),
            Some("125")
        );
        let log = fake.log();
        assert_eq!(log.len(), 1, "one watch, no LIST: {log:?}");
        assert!(log[0].is_watch());
        assert_eq!(
            log[0].query_param("resourceVersion").as_deref(),
            Some("123")
        );
        assert_eq!(
            log[0].query_param("fieldSelector").as_deref(),
            Some("metadata.name=web")
        );
    }

    fn running() -> ContainerState {
        ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        }
    }

    fn watch_versions(fake: &FakeApiServer) -> Vec<String> {
        fake.log()
            .iter()
            .filter(|s| s.is_watch())
            .map(|s| s.query_param("resourceVersion").unwrap_or_default())
            .collect()
    }

    #[tokio::test]
    async fn a_broken_watch_resumes_from_the_last_version_it_saw() {
        let fake = FakeApiServer::default();
        fake.route(
            Method::GET,
            PODS,
            Some(true),
            Reply::BrokenWatch(vec![event(waiting("ContainerCreating", ""), "124")]),
        );
        fake.route(
            Method::GET,
            PODS,
            Some(true),
            Reply::Watch(vec![event(running(), "125")]),
        );
        let pod = wait(&fake, Duration::from_secs(5)).await;
        assert!(pod.is_ok(), "{pod:?}");
        assert_eq!(watch_versions(&fake), ["123", "124"]);
    }

    #[tokio::test]
    async fn a_watch_that_keeps_breaking_ends_with_its_error_within_the_retry_bound() {
        let fake = FakeApiServer::default();
        fake.route(
            Method::GET,
            PODS,
            Some(true),
            Reply::BrokenWatch(Vec::new()),
        );
        let result = wait(&fake, Duration::from_secs(30)).await;
        assert!(matches!(result, Err(Error::Watch { .. })), "{result:?}");
        assert_eq!(
            watch_versions(&fake).len(),
            1 + 5,
            "the first watch and five retries"
        );
    }

    #[tokio::test]
    async fn a_410_expired_at_watch_start_rereads_the_pod_and_watches_on_from_there() {
        let fake = FakeApiServer::default();
        fake.route(
            Method::GET,
            PODS,
            Some(true),
            Reply::Json(
                StatusCode::GONE,
                crate::kube::fake_apiserver::status(
                    410,
                    "Expired",
                    "too old resource version: 123",
                ),
            ),
        );
        fake.route(
            Method::GET,
            PODS,
            Some(true),
            Reply::Watch(vec![event(running(), "201")]),
        );
        fake.route(
            Method::GET,
            &format!("{PODS}/web"),
            Some(false),
            Reply::Json(
                StatusCode::OK,
                event(waiting("ContainerCreating", ""), "200")["object"].clone(),
            ),
        );
        let pod = wait(&fake, Duration::from_secs(5)).await;
        assert_eq!(
            pod.ok()
                .and_then(|p| p.metadata.resource_version)
                .as_deref(),
            Some("201")
        );
        assert_eq!(watch_versions(&fake), ["123", "200"]);
    }

    #[tokio::test]
    async fn image_pull_back_off_fails_fast_with_the_kubelets_message() {
        let fake = FakeApiServer::default();
        fake.route(
            Method::GET,
            PODS,
            Some(true),
            Reply::Watch(vec![event(
                waiting("ImagePullBackOff", "Back-off pulling image \"nope:1\""),
                "124",
            )]),
        );
        let started = Instant::now();
        let result = wait(&fake, Duration::from_secs(120)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        match result {
            Err(e @ Error::StartFailed { .. }) => {
                assert!(
                    e.to_string()
                        .contains("ImagePullBackOff: Back-off pulling image \"nope:1\""),
                    "{e}"
                );
                assert!(
                    e.hint()
                        .unwrap_or_default()
                        .contains("could not pull nope:1")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_timeout_shows_the_pods_recent_events() {
        let fake = FakeApiServer::default();
        fake.route(
            Method::GET,
            PODS,
            Some(true),
            Reply::Watch(vec![event(waiting("ContainerCreating", ""), "124")]),
        );
        fake.route(
            Method::GET,
            "/api/v1/namespaces/default/events",
            None,
            Reply::Json(StatusCode::OK, json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [
                {"metadata": {"name": "e1"}, "involvedObject": {}, "reason": "Pulling", "message": "Pulling image \"big:1\"", "lastTimestamp": "2026-11-26T10:00:00Z"}
            ]})),
        );
        let result = wait(&fake, Duration::from_millis(700)).await;
        match result {
            Err(e @ Error::StartTimeout { .. }) => {
                assert!(e.to_string().contains("did not start within 700ms; recent events:\n  Pulling: Pulling image \"big:1\""), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
}
