//! Validation and admission the sandbox applies to pods: the apiserver's ephemeral container
//! validation and Pod Security admission from the namespace's `enforce` label (both from
//! `policy`), turned into the HTTP answers a real apiserver gives.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::ApiState;
use super::kinds::NAMESPACES;
use super::status::ApiError;
use crate::policy;
use crate::policy::psa;

fn status_error(status: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> ApiError {
    ApiError::from_status(serde_json::to_value(status).unwrap_or_default())
}

/// `ValidatePodCreate`: 422 with the field causes for a pod that cannot be created.
pub fn validate_create(pod: &Pod) -> Result<(), ApiError> {
    policy::validation::validate_pod_create(pod).map_err(status_error)
}

/// `validate_ephemeral_containers_update` as a 422 (or 403 for mirror pods, as upstream).
pub fn validate_ephemeral_update(new: &Pod, old: &Pod) -> Result<(), ApiError> {
    policy::validation::validate_ephemeral_containers_update(new, old).map_err(status_error)
}

/// The namespace label that selects the level PSA warns about.
const WARN_LABEL: &str = "pod-security.kubernetes.io/warn";

/// Pod Security admission for the whole pod, from its namespace's labels: the 403
/// `pods "x" is forbidden: violates PodSecurity ...` when the `enforce` level fails, and the
/// warnings (`would violate PodSecurity ...`) the `warn` level produces, which the response
/// carries as `Warning` headers. Run on create and on ephemeral-container updates, the
/// operations the real admission plugin checks for pods.
pub fn admit_pod(
    state: &Arc<ApiState>,
    namespace: &str,
    pod: &Pod,
) -> Result<Vec<String>, ApiError> {
    let Some(ns) = state.store.get(&NAMESPACES, "", namespace) else {
        return Ok(Vec::new());
    };
    let labels: BTreeMap<String, String> =
        serde_json::from_value(ns["metadata"]["labels"].clone()).unwrap_or_default();
    let policy = psa::Policy::from_namespace_labels(&labels);
    psa::evaluate_policy(&policy, pod).map_err(|message| {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        status_error(psa::forbidden_status(name, &message))
    })?;
    let warn = labels.get(WARN_LABEL).and_then(|v| psa::Level::parse(v));
    Ok(match warn.map(|level| psa::evaluate(level, pod)) {
        Some(Err(message)) => vec![message.replacen("violates", "would violate", 1)],
        _ => Vec::new(),
    })
}
