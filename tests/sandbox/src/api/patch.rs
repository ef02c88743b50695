//! The three patch types kubectl and clients send: strategic merge, JSON merge, JSON patch.

use serde_json::Value;

use super::status::ApiError;

pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
pub const MERGE: &str = "application/merge-patch+json";
pub const JSON_PATCH: &str = "application/json-patch+json";
pub const APPLY: &str = "application/apply-patch+yaml";

/// The media type without parameters.
pub fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Apply `patch` (of `content_type`) to `current`.
pub fn apply(content_type: &str, current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let media = media_type(content_type);
    if media == APPLY {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    let doc: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match media {
        STRATEGIC => strategic_merge(current, &doc).map_err(ApiError::bad_request),
        MERGE => {
            let mut out = current.clone();
            json_patch::merge(&mut out, &doc);
            Ok(out)
        }
        JSON_PATCH => {
            let ops: json_patch::Patch = serde_json::from_value(doc).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            let mut out = current.clone();
            json_patch::patch(&mut out, &ops).map_err(|e| {
                ApiError::invalid("", "", "", &[("FieldValueInvalid", "", e.to_string())])
                    .with_message(format!(
                        "the server rejected our request due to an error in our request: {e}"
                    ))
            })?;
            Ok(out)
        }
        _ => Err(ApiError::unsupported_media_type(content_type)),
    }
}

/// The list merge keys of the Pod fields kubectl patches (`patchMergeKey` in core/v1 types).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        _ => return None,
    })
}

/// Strategic merge patch for the fields the sandbox's objects use: maps merge, `null`
/// deletes, lists with a merge key merge element-wise, other lists are replaced; `$patch`
/// directives `replace` and `delete` and `$setElementOrder` are honoured or dropped.
pub fn strategic_merge(current: &Value, patch: &Value) -> Result<Value, String> {
    Ok(merge_value(current, patch, None))
}

fn merge_value(current: &Value, patch: &Value, field: Option<&str>) -> Value {
    match (current, patch) {
        (Value::Object(cur), Value::Object(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut out = p.clone();
                out.remove("$patch");
                return Value::Object(out);
            }
            let mut out = cur.clone();
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                } else if let Some(existing) = cur.get(k) {
                    out.insert(k.clone(), merge_value(existing, v, Some(k)));
                } else {
                    out.insert(k.clone(), strip_directives(v));
                }
            }
            Value::Object(out)
        }
        (Value::Array(cur), Value::Array(p)) => match field.and_then(merge_key) {
            Some(key) if p.iter().all(Value::is_object) => {
                let mut out = cur.clone();
                for item in p {
                    let id = item.get(key);
                    let directive = item.get("$patch").and_then(Value::as_str);
                    let pos = out.iter().position(|c| c.get(key) == id && id.is_some());
                    match (pos, directive) {
                        (Some(i), Some("delete")) => {
                            out.remove(i);
                        }
                        (None, Some("delete")) => {}
                        (Some(i), _) => out[i] = merge_value(&out[i], item, None),
                        (None, _) => out.push(strip_directives(item)),
                    }
                }
                Value::Array(out)
            }
            _ => strip_directives(patch),
        },
        _ => strip_directives(patch),
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ephemeral_containers_merge_by_name() {
        let pod = json!({"spec": {"ephemeralContainers": [{"name": "a", "image": "x"}]}});
        let patch = json!({"spec": {"ephemeralContainers": [{"name": "b", "image": "y"}]}});
        let out = apply(STRATEGIC, &pod, &serde_json::to_vec(&patch).unwrap()).unwrap();
        assert_eq!(
            out["spec"]["ephemeralContainers"].as_array().unwrap().len(),
            2
        );
        let out = apply(MERGE, &pod, &serde_json::to_vec(&patch).unwrap()).unwrap();
        assert_eq!(
            out["spec"]["ephemeralContainers"].as_array().unwrap().len(),
            1
        );
    }
}
