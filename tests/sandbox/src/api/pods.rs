//! Pods: create (with the server-side defaults, then handed to the node), update and patch
//! (with the apiserver's pod update rules), graceful delete, and the subresource dispatch.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use http::Response;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::kinds::PODS;
use super::respond::{self, Body};
use super::status::ApiError;
use super::{ApiState, Call, admission, defaults, ephemeral, meta, objects, patch, streams};

pub async fn handle(
    state: &Arc<ApiState>,
    call: Call,
    request: Option<http::Request<hyper::body::Incoming>>,
) -> Result<Response<Body>, ApiError> {
    match call.req.subresource.as_deref() {
        Some("ephemeralcontainers") => return ephemeral::handle(state, &call),
        Some("exec") | Some("attach") => {
            let request = request.ok_or_else(|| ApiError::internal("connection not upgradable"))?;
            return streams::exec_or_attach(state, &call, request).await;
        }
        Some("log") => return streams::log(state, &call).await,
        Some("status") | None => {}
        Some(_) => return Err(ApiError::path_not_found()),
    }
    let status_only = call.req.subresource.is_some();
    match call.req.verb {
        "create" if !status_only => create(state, &call),
        "update" if !status_only => {
            let body = call.body_json()?;
            update(state, &call, |_| Ok(body.clone()))
        }
        "patch" if !status_only => update(state, &call, |cur| {
            patch::apply(&call.content_type, cur, &call.body)
        }),
        "delete" => {
            let grace = grace_period(&call)?;
            let (object, _) = delete_pod_returning(state, call.namespace(), call.name(), grace)?;
            Ok(respond::json(200, &object))
        }
        "deletecollection" => {
            // Each pod goes the graceful way, as the apiserver deletes collections item by
            // item with the same options.
            let grace = grace_period(&call)?;
            let (items, _) = state.store.list(&PODS, call.req.namespace.as_deref());
            let mut marked = Vec::new();
            for pod in objects::select(&call, items)? {
                let (ns, name) = (meta::namespace_of(&pod), meta::name_of(&pod));
                if let Ok((object, _)) = delete_pod_returning(state, ns, name, grace) {
                    marked.push(object);
                }
            }
            let list = objects::list_object(&PODS, marked, state.store.current_rv());
            Ok(respond::json(200, &list))
        }
        _ => objects::handle(state, call).await,
    }
}

/// Parse a pod body into the typed Pod (as the apiserver decodes it): a body that is not a
/// Pod is a 400.
pub fn decode(object: &Value) -> Result<Pod, ApiError> {
    serde_json::from_value(object.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "Pod in version \"v1\" cannot be handled as a Pod: {e}"
        ))
    })
}

pub fn encode(pod: &Pod) -> Value {
    let mut v = serde_json::to_value(pod).unwrap_or_default();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Pod");
    v
}

fn create(state: &Arc<ApiState>, call: &Call) -> Result<Response<Body>, ApiError> {
    let object = objects::prepare_create(call)?;
    let mut pod = decode(&object)?;
    // The apiserver names a generateName pod before it validates it.
    if pod.metadata.name.as_deref().unwrap_or("").is_empty()
        && let Some(prefix) = pod.metadata.generate_name.clone().filter(|p| !p.is_empty())
    {
        pod.metadata.name = Some(format!("{prefix}{}", meta::random_suffix(5)));
    }
    defaults::default_pod(&mut pod);
    admission::validate_create(&pod)?;
    let warnings = admission::admit_pod(state, call.namespace(), &pod)?;
    if call.dry_run() {
        let resp = objects::create(state, call, encode(&pod))?;
        return Ok(respond::with_warnings(resp, &warnings));
    }
    let created = state.store.create(&PODS, encode(&pod))?;
    state.runtime.run_pod(decode(&created)?);
    Ok(respond::with_warnings(
        respond::json(201, &created),
        &warnings,
    ))
}

/// The pod update rule: only images, activeDeadlineSeconds, tolerations (additions) and
/// terminationGracePeriodSeconds may change in `spec` (ValidatePodUpdate upstream).
fn check_spec_update(name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
    let mut candidate = new.clone();
    for list in ["containers", "initContainers"] {
        let current = candidate.get_mut(list).and_then(Value::as_array_mut);
        if let (Some(c), Some(o)) = (current, old[list].as_array())
            && c.len() == o.len()
        {
            for (c, o) in c.iter_mut().zip(o) {
                if let (Some(m), Some(image)) = (c.as_object_mut(), o.get("image")) {
                    m.insert("image".into(), image.clone());
                }
            }
        }
    }
    for field in [
        "activeDeadlineSeconds",
        "tolerations",
        "terminationGracePeriodSeconds",
        "ephemeralContainers",
    ] {
        if let Some(m) = candidate.as_object_mut() {
            match old.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
    }
    if candidate == *old {
        return Ok(());
    }
    Err(ApiError::invalid(
        "",
        "Pod",
        name,
        &[(
            "FieldValueForbidden",
            "spec",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into(),
        )],
    ))
}

/// The stored pod after a write of the main resource: the pod update rules checked, status,
/// ephemeral containers and deletion marks kept from `cur`.
fn next_pod(name: &str, cur: &Value, mut incoming: Value) -> Result<Value, ApiError> {
    objects::check_resource_version(&PODS, name, &incoming, cur)?;
    decode(&incoming)?;
    check_spec_update(name, &cur["spec"], &incoming["spec"])?;
    incoming["status"] = cur["status"].clone();
    match cur["spec"].get("ephemeralContainers") {
        Some(e) => incoming["spec"]["ephemeralContainers"] = e.clone(),
        None => {
            incoming["spec"]
                .as_object_mut()
                .map(|m| m.remove("ephemeralContainers"));
        }
    }
    incoming["apiVersion"] = json!("v1");
    incoming["kind"] = json!("Pod");
    for f in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        match cur["metadata"].get(f) {
            Some(v) => incoming["metadata"][f] = v.clone(),
            None => {
                incoming["metadata"].as_object_mut().map(|m| m.remove(f));
            }
        }
    }
    Ok(incoming)
}

fn update(
    state: &Arc<ApiState>,
    call: &Call,
    next: impl Fn(&Value) -> Result<Value, ApiError>,
) -> Result<Response<Body>, ApiError> {
    let name = call.name();
    if call.dry_run() {
        let cur = state
            .store
            .get(&PODS, call.namespace(), name)
            .ok_or_else(|| ApiError::not_found("", "pods", name))?;
        return Ok(respond::json(200, &next_pod(name, &cur, next(&cur)?)?));
    }
    let stored = state.store.update(&PODS, call.namespace(), name, |cur| {
        *cur = next_pod(name, cur, next(cur)?)?;
        Ok(())
    })?;
    Ok(respond::json(200, &stored))
}

/// The grace period of a delete: `gracePeriodSeconds` in the query or the DeleteOptions body.
fn grace_period(call: &Call) -> Result<Option<i64>, ApiError> {
    if let Some(g) = call.query.int("gracePeriodSeconds") {
        return Ok(Some(g));
    }
    if call.body.is_empty() {
        return Ok(None);
    }
    let opts = call.body_json()?;
    Ok(opts["gracePeriodSeconds"].as_i64())
}

/// Start a graceful delete; the returned future completes when the pod is gone.
pub fn delete_pod(
    state: &Arc<ApiState>,
    namespace: &str,
    name: &str,
    grace: Option<i64>,
) -> Result<BoxFuture<'static, ()>, ApiError> {
    delete_pod_returning(state, namespace, name, grace).map(|(_, wait)| wait)
}

fn delete_pod_returning(
    state: &Arc<ApiState>,
    namespace: &str,
    name: &str,
    grace: Option<i64>,
) -> Result<(Value, BoxFuture<'static, ()>), ApiError> {
    let current = state
        .store
        .get(&PODS, namespace, name)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let uid = current["metadata"]["uid"].clone();
    let spec_grace = current["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(30);
    let grace = grace.unwrap_or(spec_grace).max(0);
    if current["metadata"].get("deletionTimestamp").is_some() && grace > 0 {
        // Already terminating: the first delete's teardown is under way.
        let (state, ns, n) = (state.clone(), namespace.to_string(), name.to_string());
        let wait = async move { wait_gone(&state, &ns, &n, &uid).await }.boxed();
        return Ok((current, wait));
    }
    let marked = state.store.update(&PODS, namespace, name, |pod| {
        pod["metadata"]["deletionTimestamp"] = json!(meta::rfc3339_in(grace));
        pod["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        Ok(())
    })?;
    let runtime = state.runtime.clone();
    let stop = runtime.delete_pod(
        namespace.to_string(),
        name.to_string(),
        Duration::from_secs(grace as u64),
    );
    let (state2, ns, n) = (state.clone(), namespace.to_string(), name.to_string());
    let remove_same_pod = move || {
        if state2
            .store
            .get(&PODS, &ns, &n)
            .is_some_and(|p| p["metadata"]["uid"] == uid)
        {
            let _ = state2.store.remove(&PODS, &ns, &n);
        }
    };
    if grace == 0 {
        // Forced: gone from the API at once; the node cleans up in the background.
        remove_same_pod();
        tokio::spawn(stop);
        return Ok((marked, async {}.boxed()));
    }
    let task = tokio::spawn(async move {
        stop.await;
        remove_same_pod();
    });
    Ok((
        marked,
        async move {
            let _ = task.await;
        }
        .boxed(),
    ))
}

async fn wait_gone(state: &Arc<ApiState>, namespace: &str, name: &str, uid: &Value) {
    loop {
        let present = state
            .store
            .get(&PODS, namespace, name)
            .is_some_and(|p| p["metadata"]["uid"] == *uid);
        if !present {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
