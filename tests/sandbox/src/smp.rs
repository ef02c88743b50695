//! Strategic merge patch for the objects the sandbox serves, plus JSON merge patch and JSON
//! patch behind the same error type.
//!
//! Mirrors k8s.io/apimachinery/pkg/util/strategicpatch (patch.go, `StrategicMergeMapPatch`)
//! for what kubectl and clients send to pods, pod templates and the ephemeralcontainers
//! subresource: maps merge recursively and `null` deletes a key; lists whose Go field carries
//! `patchStrategy:"merge"` merge by their `patchMergeKey` (containers, initContainers,
//! ephemeralContainers, volumes, env, ... by `name`; volumeMounts by `mountPath`; container
//! ports by `containerPort`; see [`list_strategy`]); every other list is replaced. The
//! directives `$patch: replace|delete|merge`, `$retainKeys`, `$setElementOrder/<list>` and
//! `$deleteFromPrimitiveList/<list>` are honoured. The strategy comes from the field's name and
//! its parent rather than from Go struct tags, which is exact for Pod, PodTemplateSpec and the
//! workload kinds that embed them.

use serde_json::{Map, Value};

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// The patch's list replaces the original (no `patchStrategy`).
    Replace,
    /// Elements are maps merged by this key (`patchStrategy:"merge"`, `patchMergeKey`).
    MergeByKey(&'static str),
    /// A list of scalars merged as a set (`patchStrategy:"merge"` without a key).
    MergePrimitive,
}

/// The strategy of list field `key`, whose enclosing map is field `parent` (the nearest map
/// key above it, list positions skipped; `""` at the top).
pub fn list_strategy(parent: &str, key: &str) -> ListStrategy {
    use ListStrategy::*;
    match key {
        // PodSpec
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "schedulingGates"
        | "resourceClaims" => MergeByKey("name"),
        "hostAliases" => MergeByKey("ip"),
        "topologySpreadConstraints" => MergeByKey("topologyKey"),
        // Container / EphemeralContainer
        "env" => MergeByKey("name"),
        "volumeMounts" => MergeByKey("mountPath"),
        "volumeDevices" => MergeByKey("devicePath"),
        "ports" if is_container_list(parent) => MergeByKey("containerPort"),
        // ServiceSpec
        "ports" => MergeByKey("port"),
        // PodStatus and other statuses
        "conditions" => MergeByKey("type"),
        // ObjectMeta
        "ownerReferences" => MergeByKey("uid"),
        "finalizers" => MergePrimitive,
        _ => Replace,
    }
}

fn is_container_list(key: &str) -> bool {
    matches!(key, "containers" | "initContainers" | "ephemeralContainers")
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Apply a strategic merge patch (`application/strategic-merge-patch+json`) to `original`.
pub fn strategic_merge(original: &Value, patch: &Value) -> Result<Value, String> {
    let Value::Object(patch) = patch else {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type(patch)
        ));
    };
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type(other)
            ));
        }
    };
    Ok(merge_map(original, patch, "")?
        .map(Value::Object)
        .unwrap_or_else(|| Value::Object(Map::new())))
}

/// Apply a JSON merge patch (RFC 7386, `application/merge-patch+json`).
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value, String> {
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

/// Apply a JSON patch (RFC 6902, `application/json-patch+json`).
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, String> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| e.to_string())?;
    Ok(doc)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Merge `patch` into `original`, the value of field `field`. `None`: the map is deleted
/// (`$patch: delete`).
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>, String> {
    match patch.get(DIRECTIVE) {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "replace" => {
            let mut replaced = Map::new();
            for (k, v) in patch {
                if k != DIRECTIVE {
                    replaced.insert(k.clone(), strip(v, field, k)?);
                }
            }
            return Ok(Some(replaced));
        }
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        Some(other) => return Err(format!("invalid patch type: {other}")),
    }

    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let Value::Array(keys) = retain else {
            return Err(format!("invalid $retainKeys: {retain}"));
        };
        let keep: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keep.contains(&k.as_str()));
    }

    for (key, value) in patch {
        if key == DIRECTIVE
            || key == RETAIN_KEYS
            || key.starts_with(SET_ELEMENT_ORDER)
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        {
            continue;
        }
        if value.is_null() {
            original.remove(key);
            continue;
        }
        let merged = match (original.remove(key), value) {
            (Some(Value::Object(o)), Value::Object(p)) => merge_map(o, p, key)?.map(Value::Object),
            (Some(Value::Array(o)), Value::Array(p)) => Some(merge_list(o, p, field, key)?),
            (_, Value::Object(p)) => merge_map(Map::new(), p, key)?.map(Value::Object),
            (_, Value::Array(p)) => Some(merge_list(Vec::new(), p, field, key)?),
            (_, scalar) => Some(scalar.clone()),
        };
        if let Some(v) = merged {
            original.insert(key.clone(), v);
        }
    }

    for (key, value) in patch {
        if let Some(list) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let remove = value.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(items)) = original.get_mut(list) {
                items.retain(|item| !remove.contains(item));
            }
        }
    }
    for (key, value) in patch {
        if let Some(list) = key.strip_prefix(SET_ELEMENT_ORDER)
            && let Value::Array(order) = value
            && let Some(Value::Array(items)) = original.get_mut(list)
        {
            reorder(items, order, list_strategy(field, list));
        }
    }
    Ok(Some(original))
}

/// A patch value with directives applied against nothing (what `$patch: replace` keeps).
fn strip(value: &Value, parent: &str, key: &str) -> Result<Value, String> {
    Ok(match value {
        Value::Object(p) => merge_map(Map::new(), p, key)?
            .map(Value::Object)
            .unwrap_or(Value::Null),
        Value::Array(p) => merge_list(Vec::new(), p, parent, key)?,
        other => other.clone(),
    })
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    parent: &str,
    key: &str,
) -> Result<Value, String> {
    let strategy = list_strategy(parent, key);
    // A `{"$patch": "replace"}` element replaces the whole list with the rest of the patch.
    let replace = patch
        .iter()
        .any(|e| e.get(DIRECTIVE).and_then(Value::as_str) == Some("replace"));
    if replace {
        let rest: Vec<Value> = patch
            .iter()
            .filter(|e| e.get(DIRECTIVE).is_none())
            .cloned()
            .collect();
        return merge_list(Vec::new(), &rest, parent, key);
    }
    match strategy {
        ListStrategy::Replace => {
            let mut out = Vec::with_capacity(patch.len());
            for item in patch {
                out.push(strip(item, parent, key)?);
            }
            Ok(Value::Array(out))
        }
        ListStrategy::MergePrimitive => {
            let mut out = original;
            for item in patch {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(Value::Array(out))
        }
        ListStrategy::MergeByKey(merge_key) => {
            let mut out = original;
            for item in patch {
                let Value::Object(element) = item else {
                    return Err(format!(
                        "list {key}: element {item} is not a map, but the list merges by {merge_key}"
                    ));
                };
                let Some(id) = element.get(merge_key) else {
                    return Err(format!(
                        "map: {item} does not contain declared merge key: {merge_key}"
                    ));
                };
                let position = out.iter().position(|o| o.get(merge_key) == Some(id));
                let delete = element.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        out.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        let existing = match std::mem::take(&mut out[i]) {
                            Value::Object(map) => map,
                            _ => Map::new(),
                        };
                        match merge_map(existing, element, key)? {
                            Some(merged) => out[i] = Value::Object(merged),
                            None => {
                                out.remove(i);
                            }
                        }
                    }
                    (None, false) => {
                        if let Some(merged) = merge_map(Map::new(), element, key)? {
                            out.push(Value::Object(merged));
                        }
                    }
                }
            }
            Ok(Value::Array(out))
        }
    }
}

/// `$setElementOrder`: elements named in `order` come first, in that order; the rest keep
/// their relative order after them.
fn reorder(items: &mut Vec<Value>, order: &[Value], strategy: ListStrategy) {
    let id = |v: &Value| -> Value {
        match strategy {
            ListStrategy::MergeByKey(k) => v.get(k).cloned().unwrap_or(Value::Null),
            _ => v.clone(),
        }
    };
    let wanted: Vec<Value> = order.iter().map(id).collect();
    let mut rest = std::mem::take(items);
    for w in &wanted {
        if let Some(i) = rest.iter().position(|v| id(v) == *w) {
            items.push(rest.remove(i));
        }
    }
    items.append(&mut rest);
}

#[cfg(test)]
mod tests;
