//! Waiting for a copy: its install init container done, the held target running (as the
//! agent's `entrypoint`) and our debug container running. A container that can never start
//! (a missing Secret or ConfigMap, an image that cannot be pulled) ends the wait at once with
//! the kubelet's reason, as does the copy ending or being deleted; else `--timeout`.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::Api;
use kube::api::{WatchEvent, WatchParams};

use crate::base::error::Error;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::copy::failure::CopyFailure;
use crate::session::copy::spec::{DEBUG_CONTAINER, INSTALL_CONTAINER};
use crate::session::wait::recent_events;

const IMAGE_REASONS: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];
const CONFIG_REASONS: [&str; 3] = [
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Where a copy is, as far as the waiting session cares.
#[derive(Debug)]
pub enum CopyProgress {
    Ready,
    /// Still starting; the reason to show, if the kubelet gave one.
    Starting(Option<String>),
    Failed(CopyFailure),
}

/// The progress of copy `pod` whose held container is `target`.
pub fn copy_progress(pod: &Pod, target: &str) -> CopyProgress {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
    if phase == "Failed" || phase == "Succeeded" {
        return CopyProgress::Failed(CopyFailure::PodEnded {
            pod: name,
            phase,
            reason: status.and_then(|s| s.reason.clone().or_else(|| s.message.clone())),
        });
    }
    let init = status
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten();
    let regular = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten();
    let image_of = |c: &ContainerStatus| {
        pod.spec
            .as_ref()
            .and_then(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .find(|spec| spec.name == c.name)
            })
            .and_then(|spec| spec.image.clone())
            .unwrap_or_else(|| c.image.clone())
    };
    let mut starting = None;
    for c in init.clone().chain(regular.clone()) {
        let Some(state) = c.state.as_ref() else {
            continue;
        };
        if let Some(waiting) = &state.waiting {
            let reason = waiting.reason.clone().unwrap_or_default();
            let message = waiting.message.clone().unwrap_or_default();
            if IMAGE_REASONS.contains(&reason.as_str()) {
                return CopyProgress::Failed(CopyFailure::ImagePull {
                    pod: name,
                    container: c.name.clone(),
                    image: image_of(c),
                    reason,
                    message,
                });
            }
            if CONFIG_REASONS.contains(&reason.as_str()) {
                return CopyProgress::Failed(CopyFailure::ContainerConfig {
                    pod: name,
                    container: c.name.clone(),
                    reason,
                    message,
                });
            }
            if !reason.is_empty() && starting.is_none() {
                starting = Some(format!("{}: {reason}", c.name));
            }
        }
        if let Some(terminated) = &state.terminated {
            // An init container that ran to its end is what it is meant to do.
            let init_done = terminated.exit_code == 0 && init.clone().any(|i| i.name == c.name);
            let watched =
                c.name == target || c.name == DEBUG_CONTAINER || c.name == INSTALL_CONTAINER;
            if !init_done && (watched || terminated.exit_code != 0) {
                return CopyProgress::Failed(CopyFailure::Ended {
                    pod: name,
                    container: c.name.clone(),
                    exit_code: terminated.exit_code,
                    message: terminated
                        .message
                        .clone()
                        .or_else(|| terminated.reason.clone()),
                });
            }
        }
    }
    let running = |wanted: &str| {
        regular
            .clone()
            .any(|c| c.name == wanted && c.state.as_ref().is_some_and(|s| s.running.is_some()))
    };
    if running(target) && running(DEBUG_CONTAINER) {
        CopyProgress::Ready
    } else {
        CopyProgress::Starting(starting)
    }
}

/// Watches copy `name` from `resource_version` until it is ready; returns it as it was then.
pub async fn wait_for_copy(
    cluster: &Cluster,
    pods: &Api<Pod>,
    name: &str,
    target: &str,
    resource_version: &str,
    timeout: Duration,
    printer: &Printer,
) -> Result<Pod, Error> {
    match tokio::time::timeout(
        timeout,
        watch(pods, name, target, resource_version, printer),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(CopyFailure::Timeout {
            pod: name.to_string(),
            timeout,
            events: recent_events(cluster, name).await,
        }
        .into()),
    }
}

async fn watch(
    pods: &Api<Pod>,
    name: &str,
    target: &str,
    resource_version: &str,
    printer: &Printer,
) -> Result<Pod, Error> {
    let mut version = resource_version.to_string();
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    let watch_error = |source| -> Error {
        CopyFailure::Watch {
            pod: name.to_string(),
            source,
        }
        .into()
    };
    let mut shown: Option<String> = None;
    let mut breaks = 0;
    loop {
        let mut stream = match pods.watch(&params, &version).await {
            Ok(stream) => stream.boxed(),
            Err(kube::Error::Api(status)) if status.code == 410 => {
                // Too old to watch from: read it once and go on from there.
                let pod = pods.get(name).await.map_err(watch_error)?;
                version = pod.metadata.resource_version.clone().unwrap_or_default();
                continue;
            }
            Err(source) => return Err(watch_error(source)),
        };
        loop {
            let event = match stream.try_next().await {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(source) => {
                    breaks += 1;
                    if breaks > 5 {
                        return Err(watch_error(source));
                    }
                    break;
                }
            };
            let pod = match event {
                WatchEvent::Added(pod) | WatchEvent::Modified(pod) => pod,
                WatchEvent::Deleted(_) => {
                    return Err(CopyFailure::Gone {
                        pod: name.to_string(),
                    }
                    .into());
                }
                WatchEvent::Bookmark(mark) => {
                    version = mark.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(status) if status.code == 410 => break,
                WatchEvent::Error(status) => return Err(watch_error(kube::Error::Api(status))),
            };
            if let Some(v) = &pod.metadata.resource_version {
                version = v.clone();
            }
            match copy_progress(&pod, target) {
                CopyProgress::Ready => return Ok(pod),
                CopyProgress::Failed(failure) => return Err(failure.into()),
                CopyProgress::Starting(Some(reason)) if shown.as_ref() != Some(&reason) => {
                    printer.progress(&format!("waiting for copy {name}: {reason}"));
                    shown = Some(reason);
                }
                CopyProgress::Starting(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
#[path = "wait_tests.rs"]
mod tests;
