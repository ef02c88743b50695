//! Adding the debug container: one strategic-merge PATCH of `pods/NAME/ephemeralcontainers`.
//!
//! The subresource is the only write a session makes to the pod (DESIGN.md, non-negotiables).
//! Strategic merge keys `ephemeralContainers` by name, so the body names only our container
//! and cannot disturb others added meanwhile. The response is the updated pod, whose
//! resourceVersion the wait watches from: no extra GET or LIST.

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::access::missing_permissions;
use crate::cluster::Cluster;
use crate::error::{Error, PATCH_EPHEMERAL, api_message, status_code};

/// The exact body of the PATCH (what `--dry-run=client` prints).
pub fn patch_body(container: &EphemeralContainer) -> Value {
    json!({ "spec": { "ephemeralContainers": [container] } })
}

/// Sends the PATCH (with `dryRun=All` when `dry_run`) and returns the pod the server answered.
pub async fn add_debug_container(
    cluster: &Cluster,
    pods: &Api<Pod>,
    pod: &str,
    container: &EphemeralContainer,
    dry_run: bool,
) -> Result<Pod, Error> {
    let params = PatchParams {
        dry_run,
        ..PatchParams::default()
    };
    let body = patch_body(container);
    match cluster
        .bounded(pods.patch_ephemeral_containers(pod, &params, &Patch::Strategic(&body)))
        .await
    {
        Ok(updated) => Ok(updated),
        Err(source) => Err(patch_error(cluster, pod, source).await),
    }
}

/// Says what a failed PATCH means: RBAC, Pod Security, a cluster without the subresource, or
/// the pod gone.
async fn patch_error(cluster: &Cluster, pod: &str, source: kube::Error) -> Error {
    let message = api_message(&source).unwrap_or_default().to_string();
    match status_code(&source) {
        // Pod Security admission answers 403 too, with its own words.
        Some(403) if message.contains("PodSecurity") => Error::Rejected {
            pod: pod.to_string(),
            pod_security: true,
            source,
        },
        Some(403) => Error::Forbidden {
            namespace: cluster.namespace.clone(),
            pod: pod.to_string(),
            step: "add a debug container",
            missing: missing_permissions(cluster, &cluster.namespace, PATCH_EPHEMERAL).await,
            source,
        },
        Some(404) if names_the_pod(&source, pod) => Error::PodNotFound {
            namespace: cluster.namespace.clone(),
            pod: pod.to_string(),
        },
        Some(404) => Error::EphemeralContainersUnsupported {
            pod: pod.to_string(),
            source,
        },
        Some(400 | 422) => Error::Rejected {
            pod: pod.to_string(),
            pod_security: message.contains("PodSecurity"),
            source,
        },
        _ => Error::Inject {
            pod: pod.to_string(),
            source,
        },
    }
}

/// A 404 about the pod itself carries its name in the Status details; a 404 of a subresource
/// the server does not have is the generic "the server could not find the requested resource".
fn names_the_pod(error: &kube::Error, pod: &str) -> bool {
    match error {
        kube::Error::Api(status) => status.details.as_ref().is_some_and(|d| d.name == pod),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_only_our_container() {
        let container = EphemeralContainer {
            name: "dbg-abcde".into(),
            image: Some("busybox".into()),
            target_container_name: Some("app".into()),
            ..EphemeralContainer::default()
        };
        assert_eq!(
            patch_body(&container),
            json!({"spec": {"ephemeralContainers": [
                {"name": "dbg-abcde", "image": "busybox", "targetContainerName": "app"}
            ]}})
        );
    }
}
