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
        STRATEGIC => crate::smp::strategic_merge(current, &doc).map_err(ApiError::bad_request),
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
