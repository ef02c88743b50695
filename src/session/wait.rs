//! Waiting for the debug container to run, or to fail, without polling.
//!
//! One watch of the one pod (`fieldSelector=metadata.name=NAME`) from the resourceVersion the
//! PATCH returned: no LIST, and no event between the PATCH and the watch is missed. The
//! kubelet's waiting reasons that never heal by themselves end the wait at once, with the
//! kubelet's message; anything else waits until `--timeout`, then shows the pod's events.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};

use crate::base::error::Error;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;

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
    match tokio::time::timeout(
        timeout,
        watch_until_running(pods, what, resource_version, printer),
    )
    .await
    {
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
    pods: &Api<Pod>,
    what: &Waiting<'_>,
    resource_version: &str,
    printer: &Printer,
) -> Result<Pod, Error> {
    let mut version = resource_version.to_string();
    let mut last_shown = None;
    let params = WatchParams::default()
        .fields(&format!("metadata.name={}", what.pod))
        .timeout(290);
    let watch_error = |source| Error::Watch {
        pod: what.pod.to_string(),
        container: what.container.to_string(),
        source,
    };
    loop {
        let mut events = pods
            .watch(&params, &version)
            .await
            .map_err(watch_error)?
            .boxed();
        let mut any = false;
        while let Some(event) = events.try_next().await.map_err(watch_error)? {
            any = true;
            let pod = match event {
                WatchEvent::Added(pod) | WatchEvent::Modified(pod) => pod,
                WatchEvent::Deleted(_) => return Err(progress_error(what, Progress::PodGone)),
                WatchEvent::Bookmark(mark) => {
                    version = mark.metadata.resource_version;
                    continue;
                }
                // 410 Gone: our version is too old to watch from; read the pod once and go on.
                WatchEvent::Error(status) if status.code == 410 => {
                    let pod = pods.get(what.pod).await.map_err(watch_error)?;
                    version = pod.metadata.resource_version.clone().unwrap_or_default();
                    if let Some(done) = settle(what, &pod, printer, &mut last_shown) {
                        return done;
                    }
                    break;
                }
                WatchEvent::Error(status) => {
                    return Err(watch_error(kube::Error::Api(status)));
                }
            };
            if let Some(v) = &pod.metadata.resource_version {
                version = v.clone();
            }
            if let Some(done) = settle(what, &pod, printer, &mut last_shown) {
                return done;
            }
        }
        // The server ended the watch (its timeout); carry on from where it stopped, without
        // hammering a server that ends watches at once.
        if !any {
            tokio::time::sleep(Duration::from_millis(500)).await;
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
        for reason in FATAL_WAITING_REASONS {
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
        Cluster {
            client: fake.client(),
            namespace: "default".into(),
            kubeconfig_user: "u".into(),
            request_timeout: None,
            retry: Default::default(),
        }
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
