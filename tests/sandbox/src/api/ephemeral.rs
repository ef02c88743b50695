//! `pods/ephemeralcontainers`: GET, PATCH (all three patch types) and PUT, with the real
//! apiserver's order: (authorization already done by the server) decode, default, validate
//! (422), Pod Security admission over the whole resulting pod (403), store, then the node
//! starts each newly added container.

use std::sync::Arc;

use http::Response;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::kinds::PODS;
use super::respond::{self, Body};
use super::status::ApiError;
use super::{ApiState, Call, admission, defaults, objects, patch, pods};
use crate::policy;

pub fn handle(state: &Arc<ApiState>, call: &Call) -> Result<Response<Body>, ApiError> {
    match call.req.verb {
        "get" => objects::get(state, call),
        "patch" => change(state, call, |cur| {
            patch::apply(&call.content_type, cur, &call.body)
        }),
        "update" => {
            let body = call.body_json()?;
            change(state, call, |cur| {
                objects::check_resource_version(&PODS, call.name(), &body, cur)?;
                Ok(body.clone())
            })
        }
        verb => Err(ApiError::method_not_supported(
            "",
            "pods/ephemeralcontainers",
            verb,
        )),
    }
}

/// Names of ephemeral containers in `new` that `old` does not have.
fn added(new: &Pod, old: &Pod) -> Vec<String> {
    let names = |p: &Pod| -> Vec<String> {
        p.spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.as_ref())
            .map(|l| l.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default()
    };
    let old = names(old);
    names(new)
        .into_iter()
        .filter(|n| !old.contains(n))
        .collect()
}

/// The pod that results from the update, validated and admitted.
fn admitted(
    state: &Arc<ApiState>,
    namespace: &str,
    current: &Value,
    incoming: Value,
) -> Result<Admitted, ApiError> {
    let old = pods::decode(current)?;
    let mut new = pods::decode(&incoming)?;
    if let Some(list) = new
        .spec
        .as_mut()
        .and_then(|s| s.ephemeral_containers.as_mut())
    {
        for c in list.iter_mut() {
            defaults::default_ephemeral(c);
        }
    }
    admission::validate_ephemeral_update(&new, &old)?;
    let updated = policy::validation::ephemeral_containers_update(&new, &old);
    let warnings = admission::admit_pod(state, namespace, &updated)?;
    let new_names = added(&updated, &old);
    Ok(Admitted {
        pod: updated,
        new_names,
        warnings,
    })
}

/// The outcome of validation and admission of an update.
struct Admitted {
    pod: Pod,
    /// Ephemeral containers the update adds (the node starts them).
    new_names: Vec<String>,
    /// PodSecurity `warn` messages for `Warning` headers.
    warnings: Vec<String>,
}

fn change(
    state: &Arc<ApiState>,
    call: &Call,
    next: impl Fn(&Value) -> Result<Value, ApiError>,
) -> Result<Response<Body>, ApiError> {
    let (namespace, name) = (call.namespace(), call.name());
    if call.dry_run() {
        let current = state
            .store
            .get(&PODS, namespace, name)
            .ok_or_else(|| ApiError::not_found("", "pods", name))?;
        let a = admitted(state, namespace, &current, next(&current)?)?;
        let mut v = pods::encode(&a.pod);
        v["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        return Ok(respond::with_warnings(respond::json(200, &v), &a.warnings));
    }
    // Admission reads the namespace, so it runs outside the store's lock; the write then
    // only lands if the pod did not change meanwhile (else the whole step is redone).
    let (stored, started, warnings) = loop {
        let current = state
            .store
            .get(&PODS, namespace, name)
            .ok_or_else(|| ApiError::not_found("", "pods", name))?;
        let a = admitted(state, namespace, &current, next(&current)?)?;
        let mut v = pods::encode(&a.pod);
        v["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        let mut raced = false;
        let result = state.store.update(&PODS, namespace, name, |cur| {
            if cur["metadata"]["resourceVersion"] != v["metadata"]["resourceVersion"] {
                raced = true;
                return Err(ApiError::conflict("", "pods", name));
            }
            *cur = v;
            Ok(())
        });
        match result {
            Err(_) if raced => continue,
            other => break (other?, a.new_names, a.warnings),
        }
    };
    if !started.is_empty() {
        let pod = pods::decode(&stored)?;
        for name in started {
            state.runtime.run_ephemeral(pod.clone(), name);
        }
    }
    Ok(respond::with_warnings(
        respond::json(200, &stored),
        &warnings,
    ))
}
