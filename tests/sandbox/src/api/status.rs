//! `meta/v1` Status bodies with the codes, reasons and messages the real apiserver uses.
//!
//! Clients key on these: kubectl prints `message`, client-go maps `reason` to typed errors,
//! kube-rs surfaces `code` and `reason`. See k8s.io/apimachinery/pkg/api/errors.

use serde_json::{Value, json};

/// A failed request: the HTTP code and the Status object sent as the body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub body: Value,
    /// Seconds for a `Retry-After` header (429, and 500/503 bursts that ask for a retry).
    pub retry_after: Option<u64>,
}

/// `pods`, `deployments.apps`: how a resource is named in messages.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn status(code: u16, reason: &str, message: String, details: Option<Value>) -> ApiError {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    if reason.is_empty() {
        body.as_object_mut().map(|o| o.remove("reason"));
    }
    ApiError {
        code,
        body,
        retry_after: None,
    }
}

fn details(group: &str, resource: &str, name: &str) -> Value {
    let mut d = json!({ "name": name, "kind": resource });
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

impl ApiError {
    /// From a Status value built elsewhere (policy checks); the code is read from the body.
    pub fn from_status(body: Value) -> ApiError {
        let code = body
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        ApiError {
            code,
            body,
            retry_after: None,
        }
    }

    /// The same error with another message.
    pub fn with_message(mut self, message: String) -> ApiError {
        self.body["message"] = json!(message);
        self
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> ApiError {
        status(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, resource)),
            Some(details(group, resource, name)),
        )
    }

    /// A path the server does not serve at all.
    pub fn path_not_found() -> ApiError {
        status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Some(json!({})),
        )
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> ApiError {
        status(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, resource)),
            Some(details(group, resource, name)),
        )
    }

    /// The optimistic-concurrency conflict of an update with a stale resourceVersion.
    pub fn conflict(group: &str, resource: &str, name: &str) -> ApiError {
        status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                qualified(group, resource)
            ),
            Some(details(group, resource, name)),
        )
    }

    /// 422 Invalid with field causes: `Kind "name" is invalid: field: Reason: detail`.
    /// `causes` are `(reason type, field, message)`, e.g. `("FieldValueForbidden",
    /// "spec.ephemeralContainers[0].ports", "Forbidden: cannot be set for an Ephemeral Container")`.
    pub fn invalid(
        group: &str,
        kind: &str,
        name: &str,
        causes: &[(&str, &str, String)],
    ) -> ApiError {
        let summary = causes
            .iter()
            .map(|(_, field, msg)| format!("{field}: {msg}"))
            .collect::<Vec<_>>();
        let summary = if summary.len() == 1 {
            summary[0].clone()
        } else {
            format!("[{}]", summary.join(", "))
        };
        let qualified_kind = qualified(group, kind);
        let mut d = json!({
            "name": name,
            "kind": kind,
            "causes": causes.iter().map(|(reason, field, msg)| json!({
                "reason": reason, "message": msg, "field": field,
            })).collect::<Vec<_>>(),
        });
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        status(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {summary}"),
            Some(d),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        status(400, "BadRequest", message.into(), None)
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        status(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {content_type:?}"
            ),
            None,
        )
    }

    pub fn method_not_supported(group: &str, resource: &str, verb: &str) -> ApiError {
        status(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind \"{}\"",
                qualified(group, resource)
            ),
            Some(json!({ "kind": resource })),
        )
    }

    /// 403 with an arbitrary message (admission, and `pods "x" is forbidden: ...`).
    pub fn forbidden(group: &str, resource: &str, name: &str, message: &str) -> ApiError {
        let what = if name.is_empty() {
            qualified(group, resource)
        } else {
            format!("{} \"{name}\"", qualified(group, resource))
        };
        status(
            403,
            "Forbidden",
            format!("{what} is forbidden: {message}"),
            Some(details(group, resource, name)),
        )
    }

    pub fn unauthorized() -> ApiError {
        status(401, "Unauthorized", "Unauthorized".into(), None)
    }

    /// 410 Gone for a watch or list from a compacted resourceVersion.
    pub fn expired(message: impl Into<String>) -> ApiError {
        status(410, "Expired", message.into(), None)
    }

    pub fn too_many_requests(retry_after: u64) -> ApiError {
        let mut e = status(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.".into(),
            Some(json!({ "retryAfterSeconds": retry_after })),
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        status(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
            Some(json!({ "causes": [{ "message": message }] })),
        )
    }

    pub fn service_unavailable(message: impl Into<String>) -> ApiError {
        status(503, "ServiceUnavailable", message.into(), None)
    }

    pub fn timeout(message: impl Into<String>) -> ApiError {
        status(504, "Timeout", message.into(), None)
    }
}

/// The `Success` Status some deletes answer with.
pub fn success(group: &str, resource: &str, name: &str, uid: &str) -> Value {
    let mut d = details(group, resource, name);
    d["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": d,
    })
}
