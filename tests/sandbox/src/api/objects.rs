//! Generic CRUD for every stored kind: get, list, watch, create, update, patch, delete,
//! deletecollection. Pods add their own rules on top (see `pods`); namespaces cascade.

use std::sync::Arc;

use http::Response;
use serde_json::{Value, json};

use super::kinds::{self, Kind};
use super::respond::{self, Body};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{self, ApiError};
use super::{ApiState, Call, meta, patch, tables, watch};

pub async fn handle(state: &Arc<ApiState>, call: Call) -> Result<Response<Body>, ApiError> {
    let kind = call.kind;
    if let Some(sub) = call.req.subresource.as_deref()
        && sub != "status"
    {
        return Err(ApiError::path_not_found());
    }
    match call.req.verb {
        "get" => get(state, &call),
        "list" => list(state, &call),
        "watch" => watch::serve(
            state,
            kind,
            call.req.namespace.clone(),
            call.req.name.clone(),
            &call.query,
            &call.accept,
        ),
        "create" => {
            let object = prepare_create(&call)?;
            let object = if kind == &kinds::NAMESPACES {
                namespace_defaults(object)
            } else if kind == &kinds::SECRETS {
                secret_defaults(object)
            } else {
                object
            };
            create(state, &call, object)
        }
        "update" => {
            let body = call.body_json()?;
            let status_only = call.req.subresource.is_some();
            let updated = state
                .store
                .update(kind, call.namespace(), call.name(), |cur| {
                    check_resource_version(kind, call.name(), &body, cur)?;
                    *cur = replace(cur, &body, status_only);
                    Ok(())
                })?;
            Ok(respond::json(200, &updated))
        }
        "patch" => {
            let status_only = call.req.subresource.is_some();
            let updated = state
                .store
                .update(kind, call.namespace(), call.name(), |cur| {
                    let patched = patch::apply(&call.content_type, cur, &call.body)?;
                    check_resource_version(kind, call.name(), &patched, cur)?;
                    *cur = replace(cur, &patched, status_only);
                    Ok(())
                })?;
            Ok(respond::json(200, &updated))
        }
        "delete" if kind == &kinds::NAMESPACES => delete_namespace(state, call.name()),
        "delete" => {
            let removed = state.store.remove(kind, call.namespace(), call.name())?;
            let uid = removed["metadata"]["uid"].as_str().unwrap_or("");
            Ok(respond::json(
                200,
                &status::success(kind.group, kind.resource, call.name(), uid),
            ))
        }
        "deletecollection" => {
            let (items, _) = state.store.list(kind, call.req.namespace.as_deref());
            let items = select(&call, items)?;
            let mut removed = Vec::new();
            for item in items {
                if let Ok(o) =
                    state
                        .store
                        .remove(kind, meta::namespace_of(&item), meta::name_of(&item))
                {
                    removed.push(o);
                }
            }
            Ok(respond::json(
                200,
                &list_object(kind, removed, state.store.current_rv()),
            ))
        }
        verb => Err(ApiError::method_not_supported(
            kind.group,
            kind.resource,
            verb,
        )),
    }
}

/// An object as the client asked for it: JSON, or a one-row Table.
pub fn respond_object(call: &Call, object: &Value) -> Response<Body> {
    if tables::wants_table(&call.accept) {
        let include = call.query.get("includeObject").unwrap_or("Metadata");
        let rv = object["metadata"]["resourceVersion"]
            .as_str()
            .map(String::from);
        return respond::json(
            200,
            &tables::table(call.kind, std::slice::from_ref(object), rv, include, true),
        );
    }
    if tables::wants_metadata(&call.accept) {
        return respond::json(200, &tables::partial(object));
    }
    respond::json(200, object)
}

pub fn get(state: &Arc<ApiState>, call: &Call) -> Result<Response<Body>, ApiError> {
    let kind = call.kind;
    let object = state
        .store
        .get(kind, call.namespace(), call.name())
        .ok_or_else(|| ApiError::not_found(kind.group, kind.resource, call.name()))?;
    Ok(respond_object(call, &object))
}

pub fn select(call: &Call, items: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    let labels = LabelSelector::parse(call.query.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(
        call.query.get("fieldSelector").unwrap_or(""),
        call.kind.resource,
    )?;
    Ok(items
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect())
}

pub fn list_object(kind: &Kind, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": format!("{}List", kind.kind),
        "apiVersion": kind.api_version(),
        "metadata": { "resourceVersion": rv.to_string() },
        "items": items,
    })
}

pub fn list(state: &Arc<ApiState>, call: &Call) -> Result<Response<Body>, ApiError> {
    let kind = call.kind;
    let (items, rv) = state.store.list(kind, call.req.namespace.as_deref());
    let items = select(call, items)?;
    if tables::wants_table(&call.accept) {
        let include = call.query.get("includeObject").unwrap_or("Metadata");
        return Ok(respond::json(
            200,
            &tables::table(kind, &items, Some(rv.to_string()), include, true),
        ));
    }
    if tables::wants_metadata(&call.accept) {
        let items = items.iter().map(tables::partial).collect();
        let mut list = list_object(kind, items, rv);
        list["kind"] = json!("PartialObjectMetadataList");
        list["apiVersion"] = json!("meta.k8s.io/v1");
        return Ok(respond::json(200, &list));
    }
    Ok(respond::json(200, &list_object(kind, items, rv)))
}

/// The body of a create, checked against the URL (kind, namespace).
pub fn prepare_create(call: &Call) -> Result<Value, ApiError> {
    let kind = call.kind;
    let mut object = call.body_json()?;
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    if let Some(k) = object["kind"].as_str()
        && k != kind.kind
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            object["apiVersion"].as_str().unwrap_or(""),
            kind.api_version()
        )));
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    if kind.namespaced {
        let body_ns = meta::namespace_of(&object);
        if !body_ns.is_empty() && body_ns != call.namespace() {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        object["metadata"]["namespace"] = json!(call.namespace());
    }
    Ok(object)
}

/// Store a prepared object (or, with `dryRun=All`, answer as if stored).
pub fn create(
    state: &Arc<ApiState>,
    call: &Call,
    object: Value,
) -> Result<Response<Body>, ApiError> {
    if call.dry_run() {
        let mut o = object;
        o["apiVersion"] = json!(call.kind.api_version());
        o["kind"] = json!(call.kind.kind);
        o["metadata"]["uid"] = json!(meta::new_uid());
        o["metadata"]["creationTimestamp"] = json!(meta::now_rfc3339());
        if meta::name_of(&o).is_empty() {
            let prefix = o["metadata"]["generateName"]
                .as_str()
                .unwrap_or("")
                .to_string();
            o["metadata"]["name"] = json!(format!("{prefix}{}", meta::random_suffix(5)));
        }
        return Ok(respond::json(201, &o));
    }
    let created = state.store.create(call.kind, object)?;
    Ok(respond::json(201, &created))
}

/// A write carrying a resourceVersion must name the current one (optimistic concurrency).
pub fn check_resource_version(
    kind: &Kind,
    name: &str,
    incoming: &Value,
    current: &Value,
) -> Result<(), ApiError> {
    match meta::resource_version_of(incoming) {
        Some(rv) if Some(rv) != meta::resource_version_of(current) => {
            Err(ApiError::conflict(kind.group, kind.resource, name))
        }
        _ => Ok(()),
    }
}

/// The object after a PUT or patch of the main resource (status kept) or of `/status`
/// (only status taken).
fn replace(current: &Value, incoming: &Value, status_only: bool) -> Value {
    if status_only {
        let mut out = current.clone();
        if let Some(status) = incoming.get("status") {
            out["status"] = status.clone();
        }
        return out;
    }
    let mut out = incoming.clone();
    if let Some(status) = current.get("status") {
        out["status"] = status.clone();
    }
    out["apiVersion"] = current["apiVersion"].clone();
    out["kind"] = current["kind"].clone();
    out
}

/// What the apiserver does to a new Secret: `stringData` folded into `data` (base64, its
/// keys winning) and dropped, `type` Opaque by default.
fn secret_defaults(mut secret: Value) -> Value {
    use base64::Engine;
    if let Some(strings) = secret
        .as_object_mut()
        .and_then(|o| o.remove("stringData"))
        .and_then(|v| v.as_object().cloned())
    {
        if !secret["data"].is_object() {
            secret["data"] = json!({});
        }
        for (k, v) in strings {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(v.as_str().unwrap_or_default().as_bytes());
            secret["data"][k] = json!(encoded);
        }
    }
    if secret["type"].as_str().is_none_or(str::is_empty) {
        secret["type"] = json!("Opaque");
    }
    secret
}

fn namespace_defaults(mut ns: Value) -> Value {
    let name = meta::name_of(&ns).to_string();
    if !ns["metadata"]["labels"].is_object() {
        ns["metadata"]["labels"] = json!({});
    }
    ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    ns["spec"] = json!({ "finalizers": ["kubernetes"] });
    ns["status"] = json!({ "phase": "Active" });
    ns
}

/// The namespaces every cluster starts with.
pub fn bootstrap(state: &ApiState) {
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ns = namespace_defaults(json!({ "metadata": { "name": name } }));
        let _ = state.store.create(&kinds::NAMESPACES, ns);
    }
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let _ = state.store.create(
            &kinds::SERVICE_ACCOUNTS,
            json!({ "metadata": { "name": "default", "namespace": ns } }),
        );
    }
}

/// Mark the namespace Terminating, delete what is in it (pods gracefully), then remove it.
fn delete_namespace(state: &Arc<ApiState>, name: &str) -> Result<Response<Body>, ApiError> {
    let terminating = state.store.update(&kinds::NAMESPACES, "", name, |ns| {
        ns["metadata"]["deletionTimestamp"] = json!(meta::now_rfc3339());
        ns["status"]["phase"] = json!("Terminating");
        Ok(())
    })?;
    let state = state.clone();
    let name = name.to_string();
    tokio::spawn(async move {
        let (pods, _) = state.store.list(&kinds::PODS, Some(&name));
        let mut waits = Vec::new();
        for pod in pods {
            let pod_name = meta::name_of(&pod).to_string();
            if let Ok(wait) = super::pods::delete_pod(&state, &name, &pod_name, None) {
                waits.push(wait);
            }
        }
        futures::future::join_all(waits).await;
        for kind in kinds::STORED.iter().filter(|k| k.namespaced) {
            let (items, _) = state.store.list(kind, Some(&name));
            for item in items {
                let _ = state.store.remove(kind, &name, meta::name_of(&item));
            }
        }
        let _ = state.store.remove(&kinds::NAMESPACES, "", &name);
    });
    Ok(respond::json(200, &terminating))
}
