//! Adding the debug container: one strategic-merge PATCH of `pods/NAME/ephemeralcontainers`.
//!
//! The subresource is the only write a session makes to the pod (DESIGN.md, non-negotiables).
//! Strategic merge keys `ephemeralContainers` by name, so the body names only our container
//! and cannot disturb others added meanwhile. The response is the updated pod, whose
//! resourceVersion the wait watches from: no extra GET or LIST.
//!
//! The PATCH is not safe to repeat blindly, so the connection's retry layer sends it once.
//! After an ambiguous failure (no answer in time, the connection reset or closed before the
//! answer, a 429 or 5xx) it may or may not have landed: the pod is read and, if a container of
//! our name is there, that is our container and the session goes on with it; only if it is not
//! is the PATCH sent again, under the same policy (count and time) as every other retry. The
//! name is random per attempt of a session, so finding it means this PATCH landed.

use http::StatusCode;
use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::base::error::{Error, PATCH_EPHEMERAL, api_message, status_code};
use crate::kube::access::missing_permissions;
use crate::kube::cluster::Cluster;
use crate::kube::retry::{is_retryable_status, is_transient};

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
    patch_until_known(
        cluster,
        pods,
        pod,
        container,
        &params,
        &Patch::Strategic(patch_body(container)),
    )
    .await
}

/// Adds `container` with a JSON patch of the caller's (presume.rs: one that `test`s the pod
/// first), with the same handling of failures as [`add_debug_container`].
pub async fn add_with_patch(
    cluster: &Cluster,
    pods: &Api<Pod>,
    pod: &str,
    container: &EphemeralContainer,
    ops: serde_json::Value,
) -> Result<Pod, Error> {
    let patch = serde_json::from_value(ops)
        .map_err(|e| crate::base::error::UsageError(format!("a JSON patch of ours: {e}")))?;
    let params = PatchParams::default();
    patch_until_known(
        cluster,
        pods,
        pod,
        container,
        &params,
        &Patch::Json::<()>(patch),
    )
    .await
}

/// The PATCH, until its outcome is known: a failure after which it may or may not have been
/// applied reads the pod to see whether the container is there, and else sends it again.
async fn patch_until_known<P: serde::Serialize + std::fmt::Debug>(
    cluster: &Cluster,
    pods: &Api<Pod>,
    pod: &str,
    container: &EphemeralContainer,
    params: &PatchParams,
    patch: &Patch<P>,
) -> Result<Pod, Error> {
    let dry_run = params.dry_run;
    let mut attempts = cluster.retry.start();
    loop {
        let source = match cluster
            .bounded(pods.patch_ephemeral_containers(pod, params, patch))
            .await
        {
            Ok(updated) => return Ok(updated),
            Err(source) => source,
        };
        // A dry run changes nothing: the retry layer has already repeated it.
        if dry_run || !is_ambiguous(&source) {
            return Err(patch_error(cluster, pod, source).await);
        }
        if let Ok(current) = cluster.bounded(pods.get(pod)).await
            && has_ephemeral_container(&current, &container.name)
        {
            return Ok(current);
        }
        match attempts.next(None) {
            Some(retry) => tokio::time::sleep(retry.delay).await,
            None => return Err(patch_error(cluster, pod, source).await),
        }
    }
}

/// A failure after which the PATCH may or may not have been applied: no status at all (reset,
/// closed, timed out) or one that a busy server gives before or after doing the work.
fn is_ambiguous(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            is_retryable_status(StatusCode::from_u16(status.code).unwrap_or_default())
        }
        other => is_transient(other),
    }
}

fn has_ephemeral_container(pod: &Pod, name: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.ephemeral_containers.as_ref())
        .is_some_and(|containers| containers.iter().any(|c| c.name == name))
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

#[cfg(test)]
mod mock_tests {
    use std::time::Duration;

    use http::{Method, StatusCode};

    use super::*;
    use crate::kube::fake_apiserver::{FakeApiServer, Reply, status};

    const PATCH_PATH: &str = "/api/v1/namespaces/default/pods/web/ephemeralcontainers";
    const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

    fn cluster(fake: &FakeApiServer) -> Cluster {
        Cluster {
            request_timeout: Some(Duration::from_secs(5)),
            ..fake.cluster()
        }
    }

    fn container() -> EphemeralContainer {
        EphemeralContainer {
            name: "dbg-abcde".into(),
            image: Some("busybox".into()),
            ..EphemeralContainer::default()
        }
    }

    async fn patch_with_reply(
        code: u16,
        reason: &str,
        message: &str,
    ) -> (Result<Pod, Error>, FakeApiServer) {
        let fake = FakeApiServer::default();
        let code_status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        fake.route(
            Method::PATCH,
            PATCH_PATH,
            None,
            Reply::Json(code_status, status(code, reason, message)),
        );
        // The user may do everything but patch the subresource.
        let review = |seen: &crate::kube::fake_apiserver::Seen| {
            let body = seen.body.clone().unwrap_or_default();
            let allowed =
                body["spec"]["resourceAttributes"]["subresource"] != "ephemeralcontainers";
            let mut answer = body;
            answer["status"] = json!({ "allowed": allowed });
            (StatusCode::CREATED, answer)
        };
        fake.route(
            Method::POST,
            ACCESS_REVIEWS,
            None,
            Reply::With(std::sync::Arc::new(review)),
        );
        let c = cluster(&fake);
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
        (
            add_debug_container(&c, &pods, "web", &container(), false).await,
            fake,
        )
    }

    #[tokio::test]
    async fn one_strategic_merge_patch_of_the_subresource_with_exactly_our_body() {
        let fake = FakeApiServer::default();
        let answer = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "resourceVersion": "123"}});
        fake.route(
            Method::PATCH,
            PATCH_PATH,
            None,
            Reply::Json(StatusCode::OK, answer),
        );
        let c = cluster(&fake);
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
        let pod = add_debug_container(&c, &pods, "web", &container(), false).await;
        assert_eq!(
            pod.ok()
                .and_then(|p| p.metadata.resource_version)
                .as_deref(),
            Some("123")
        );
        let log = fake.log();
        assert_eq!(log.len(), 1);
        assert_eq!(
            log[0].content_type,
            "application/strategic-merge-patch+json"
        );
        assert_eq!(log[0].body, Some(patch_body(&container())));
        assert_eq!(log[0].query_param("dryRun"), None);
    }

    fn pod_with(ephemeral: &[&str]) -> Value {
        let containers: Vec<Value> = ephemeral
            .iter()
            .map(|name| json!({"name": name, "image": "busybox"}))
            .collect();
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web", "resourceVersion": "9"},
               "spec": {"containers": [{"name": "app"}], "ephemeralContainers": containers}})
    }

    fn patches(fake: &FakeApiServer) -> usize {
        fake.log()
            .iter()
            .filter(|s| s.method == Method::PATCH)
            .count()
    }

    #[tokio::test]
    async fn after_an_ambiguous_failure_a_patch_that_landed_is_not_sent_again() {
        let fake = FakeApiServer::default();
        let failure = status(500, "InternalError", "etcdserver: request timed out");
        fake.route(
            Method::PATCH,
            PATCH_PATH,
            None,
            Reply::Json(StatusCode::INTERNAL_SERVER_ERROR, failure),
        );
        fake.route(
            Method::GET,
            "/api/v1/namespaces/default/pods/web",
            None,
            Reply::Json(StatusCode::OK, pod_with(&["other", "dbg-abcde"])),
        );
        let c = cluster(&fake);
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
        let pod = add_debug_container(&c, &pods, "web", &container(), false).await;
        assert!(pod.is_ok(), "{pod:?}");
        assert_eq!(patches(&fake), 1, "{:?}", fake.log());
    }

    #[tokio::test]
    async fn after_an_ambiguous_failure_a_patch_that_did_not_land_is_sent_again() {
        let fake = FakeApiServer::default();
        let failure = status(503, "ServiceUnavailable", "try again");
        fake.route(
            Method::PATCH,
            PATCH_PATH,
            None,
            Reply::Json(StatusCode::SERVICE_UNAVAILABLE, failure),
        );
        fake.route(
            Method::PATCH,
            PATCH_PATH,
            None,
            Reply::Json(StatusCode::OK, pod_with(&["dbg-abcde"])),
        );
        fake.route(
            Method::GET,
            "/api/v1/namespaces/default/pods/web",
            None,
            Reply::Json(StatusCode::OK, pod_with(&["other"])),
        );
        let c = cluster(&fake);
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
        let pod = add_debug_container(&c, &pods, "web", &container(), false).await;
        assert!(pod.is_ok(), "{pod:?}");
        let lines: Vec<String> = fake.log().iter().map(|s| s.line()).collect();
        assert_eq!(
            lines,
            [
                format!("PATCH {PATCH_PATH}"),
                "GET /api/v1/namespaces/default/pods/web".to_string(),
                format!("PATCH {PATCH_PATH}"),
            ]
        );
    }

    #[tokio::test]
    async fn a_refusal_is_not_ambiguous_and_the_pod_is_not_read() {
        let (result, fake) =
            patch_with_reply(422, "Invalid", "spec.ephemeralContainers: Forbidden").await;
        assert!(matches!(result, Err(Error::Rejected { .. })), "{result:?}");
        assert!(
            fake.log().iter().all(|s| s.method != Method::GET),
            "{:?}",
            fake.log()
        );
        assert_eq!(patches(&fake), 1);
    }

    #[tokio::test]
    async fn rbac_403_names_the_missing_permission() {
        let (result, fake) = patch_with_reply(403, "Forbidden", "pods \"web\" is forbidden: User \"bob\" cannot patch resource \"pods/ephemeralcontainers\"").await;
        match result {
            Err(e @ Error::Forbidden { .. }) => {
                assert!(
                    e.to_string()
                        .ends_with("missing `patch pods/ephemeralcontainers`"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
        let reviews = fake
            .log()
            .iter()
            .filter(|s| s.path == ACCESS_REVIEWS)
            .count();
        assert_eq!(reviews, 4, "one review per permission a session needs");
    }

    #[tokio::test]
    async fn pod_security_403_is_a_rejection_not_rbac() {
        let (result, _) = patch_with_reply(
            403,
            "Forbidden",
            "pods \"web\" is forbidden: violates PodSecurity \"restricted:latest\": privileged",
        )
        .await;
        assert!(
            matches!(
                result,
                Err(Error::Rejected {
                    pod_security: true,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_404_of_the_subresource_means_no_ephemeral_containers() {
        let (result, _) = patch_with_reply(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .await;
        assert!(
            matches!(result, Err(Error::EphemeralContainersUnsupported { .. })),
            "{result:?}"
        );
    }
}
