//! A minimal OpenAPI v3 document per group version (`/openapi/v3`, `/openapi/v3/api/v1`, ...).
//!
//! kubectl reads it for one thing in the verbs the sandbox serves: whether the server
//! validates fields itself (`fieldValidation` on the PATCH operation of the kind,
//! k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go). Without it kubectl falls
//! back to client-side validation with `/openapi/v2` and refuses `create -f`. Schemas are not
//! served; `kubectl explain` is out of scope.

use serde_json::{Map, Value, json};

use super::kinds::{self, Kind};

/// The group versions with a document, as `/openapi/v3` lists them (`api/v1`, `apis/apps/v1`).
fn group_versions() -> Vec<(String, &'static str, &'static str)> {
    let mut out: Vec<(String, &'static str, &'static str)> = Vec::new();
    for k in kinds::STORED {
        let path = k.group_version_path().trim_start_matches('/').to_string();
        if !out.iter().any(|(p, _, _)| *p == path) {
            out.push((path, k.group, k.version));
        }
    }
    out
}

/// A stable hash of a document's content, as the `hash` query of its serverRelativeURL.
fn hash(text: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

pub fn root() -> Value {
    let mut paths = Map::new();
    for (path, group, version) in group_versions() {
        let doc = group_version_doc(group, version).to_string();
        paths.insert(
            path.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&doc)) }),
        );
    }
    json!({ "paths": paths })
}

fn param(name: &str) -> Value {
    json!({ "name": name, "in": "query", "schema": { "type": "string", "uniqueItems": true } })
}

fn operation(kind: &Kind, action: &str, id: &str, write: bool) -> Value {
    let mut params = vec![param("pretty")];
    if write {
        params.extend([
            param("dryRun"),
            param("fieldManager"),
            param("fieldValidation"),
        ]);
    }
    json!({
        "operationId": id,
        "parameters": params,
        "responses": { "200": { "description": "OK" } },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": { "group": kind.group, "version": kind.version, "kind": kind.kind },
    })
}

pub fn group_version_doc(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    for k in kinds::STORED
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        let base = if k.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}",
                k.group_version_path(),
                k.resource
            )
        } else {
            format!("{}/{}", k.group_version_path(), k.resource)
        };
        let id = |verb: &str| format!("{verb}{}", k.kind);
        paths.insert(
            base.clone(),
            json!({
                "get": operation(k, "list", &id("list"), false),
                "post": operation(k, "post", &id("create"), true),
            }),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": operation(k, "get", &id("read"), false),
                "put": operation(k, "put", &id("replace"), true),
                "patch": operation(k, "patch", &id("patch"), true),
                "delete": operation(k, "delete", &id("delete"), true),
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": super::discovery::GIT_VERSION },
        "paths": paths,
        "components": { "schemas": {} },
    })
}

/// The document for `/openapi/v3/<rest>`.
pub fn document(rest: &str) -> Option<Value> {
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["api", "v1"] => Some(group_version_doc("", "v1")),
        ["apis", g, v]
            if kinds::STORED
                .iter()
                .any(|k| k.group == *g && k.version == *v) =>
        {
            Some(group_version_doc(g, v))
        }
        _ => None,
    }
}
