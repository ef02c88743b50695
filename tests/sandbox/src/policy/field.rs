//! Field errors and the Status bodies built from them, worded as apimachinery words them.
//!
//! Mirrors k8s.io/apimachinery/pkg/util/validation/field/errors.go (`Error`, `ErrorBody`,
//! `ErrorList.ToAggregate`) and pkg/api/errors/errors.go (`NewInvalid`, `NewForbidden`), so a
//! 422 from the sandbox reads byte for byte like one from kube-apiserver.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ListMeta, Status, StatusCause, StatusDetails,
};

/// `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
}

impl ErrorType {
    /// `ErrorType.String()`: the words in the message.
    pub fn words(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
        }
    }

    /// The `metav1.CauseType` (`reason` of a cause).
    pub fn cause(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
        }
    }
}

/// A bad value as Go's `%v`/`%q` would print it in `ErrorBody`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadValue {
    Str(String),
    Int(i64),
    Bool(bool),
    /// Already rendered (structs, lists).
    Raw(String),
}

impl BadValue {
    fn render(&self) -> String {
        match self {
            BadValue::Str(s) => go_quote(s),
            BadValue::Int(n) => n.to_string(),
            BadValue::Bool(b) => b.to_string(),
            BadValue::Raw(s) => s.clone(),
        }
    }
}

/// One `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub error_type: ErrorType,
    /// The field path, e.g. `spec.ephemeralContainers[0].ports`.
    pub field: String,
    pub bad_value: Option<BadValue>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError::new(ErrorType::Required, field, None, detail)
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError::new(ErrorType::Forbidden, field, None, detail)
    }

    pub fn not_found(field: impl Into<String>, value: &str) -> FieldError {
        FieldError::new(
            ErrorType::NotFound,
            field,
            Some(BadValue::Str(value.into())),
            "",
        )
    }

    pub fn duplicate(field: impl Into<String>, value: &str) -> FieldError {
        FieldError::new(
            ErrorType::Duplicate,
            field,
            Some(BadValue::Str(value.into())),
            "",
        )
    }

    pub fn invalid(
        field: impl Into<String>,
        value: BadValue,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError::new(ErrorType::Invalid, field, Some(value), detail)
    }

    /// `field.NotSupported`: the detail lists the supported values, quoted.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> FieldError {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError::new(
            ErrorType::NotSupported,
            field,
            Some(BadValue::Str(value.into())),
            detail,
        )
    }

    fn new(
        error_type: ErrorType,
        field: impl Into<String>,
        bad_value: Option<BadValue>,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError {
            error_type,
            field: field.into(),
            bad_value,
            detail: detail.into(),
        }
    }

    /// `Error.ErrorBody()`: the message without the field. Required, Forbidden and TooLong
    /// never print the value.
    pub fn body(&self) -> String {
        let mut s = match (self.error_type, &self.bad_value) {
            (ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong, _) | (_, None) => {
                self.error_type.words().to_string()
            }
            (t, Some(v)) => format!("{}: {}", t.words(), v.render()),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    /// `Error.Error()`: `<field>: <body>` (an empty field still gets its `: `).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// `ErrorList.ToAggregate().Error()`: duplicates dropped; one error bare, several in
/// `[a, b]`.
pub fn aggregate(errors: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// `apierrors.NewInvalid(kind, name, errs)`: 422, reason `Invalid`, message
/// `Pod "app" is invalid: <aggregate>`, one cause per error. `kind` is the Kind
/// (`Pod`), which is also what `details.kind` carries.
pub fn invalid_status(kind: &str, name: &str, causes: &[FieldError]) -> Status {
    invalid_status_in_group("", kind, name, causes)
}

/// [`invalid_status`] for a kind of a named API group: the message qualifies the kind
/// (`SelfSubjectAccessReview.authorization.k8s.io "" is invalid: ...`) and `details.group` is
/// set.
pub fn invalid_status_in_group(
    group: &str,
    kind: &str,
    name: &str,
    causes: &[FieldError],
) -> Status {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let message = if causes.is_empty() {
        format!("{qualified} {} is invalid", go_quote(name))
    } else {
        format!(
            "{qualified} {} is invalid: {}",
            go_quote(name),
            aggregate(causes)
        )
    };
    Status {
        code: Some(422),
        details: Some(StatusDetails {
            causes: Some(
                causes
                    .iter()
                    .map(|e| StatusCause {
                        field: (!e.field.is_empty()).then(|| e.field.clone()),
                        message: Some(e.body()),
                        reason: Some(e.error_type.cause().to_string()),
                    })
                    .collect(),
            ),
            group: (!group.is_empty()).then(|| group.to_string()),
            kind: Some(kind.to_string()),
            name: (!name.is_empty()).then(|| name.to_string()),
            retry_after_seconds: None,
            uid: None,
        }),
        message: Some(message),
        metadata: ListMeta::default(),
        reason: Some("Invalid".into()),
        status: Some("Failure".into()),
    }
}

/// `apierrors.NewForbidden(resource, name, err)`: 403, reason `Forbidden`. `resource` is the
/// plural resource (`pods`); with a subresource the message still names the resource
/// (`pods "app" is forbidden: ...`), as the apiserver's `qualifiedResource` does. An empty
/// resource (a non-resource path) gives `forbidden: <reason>`.
pub fn forbidden_status(group: &str, resource: &str, name: &str, reason: &str) -> Status {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let message = if resource.is_empty() {
        format!("forbidden: {reason}")
    } else if name.is_empty() {
        format!("{qualified} is forbidden: {reason}")
    } else {
        format!("{qualified} {} is forbidden: {reason}", go_quote(name))
    };
    Status {
        code: Some(403),
        details: Some(StatusDetails {
            causes: None,
            group: (!group.is_empty()).then(|| group.to_string()),
            kind: (!resource.is_empty()).then(|| resource.to_string()),
            name: (!name.is_empty()).then(|| name.to_string()),
            retry_after_seconds: None,
            uid: None,
        }),
        message: Some(message),
        metadata: ListMeta::default(),
        reason: Some("Forbidden".into()),
        status: Some("Failure".into()),
    }
}

/// Go's `strconv.Quote` for the strings that occur in names and values.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_worded_like_apimachinery() {
        let cases = [
            (
                FieldError::forbidden(
                    "spec.ephemeralContainers[0].ports",
                    "cannot be set for an Ephemeral Container",
                ),
                "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
            ),
            (
                FieldError::required("spec.ephemeralContainers[0].image", ""),
                "spec.ephemeralContainers[0].image: Required value",
            ),
            (
                FieldError::not_found("spec.ephemeralContainers[0].targetContainerName", "nope"),
                "spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\"",
            ),
            (
                FieldError::duplicate("spec.ephemeralContainers[1].name", "app"),
                "spec.ephemeralContainers[1].name: Duplicate value: \"app\"",
            ),
            (
                FieldError::not_supported("x.imagePullPolicy", "Sometimes", &["Always", "Never"]),
                "x.imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\"",
            ),
            (
                FieldError::invalid(
                    "x.runAsUser",
                    BadValue::Int(-1),
                    "must be between 0 and 2147483647, inclusive",
                ),
                "x.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
            ),
            (
                FieldError::forbidden("", "static pods do not support ephemeral containers"),
                ": Forbidden: static pods do not support ephemeral containers",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }

    #[test]
    fn aggregate_dedups_and_brackets_several() {
        let a = FieldError::required("a", "");
        let b = FieldError::required("b", "");
        assert_eq!(aggregate(std::slice::from_ref(&a)), "a: Required value");
        assert_eq!(
            aggregate(&[a.clone(), b, a]),
            "[a: Required value, b: Required value]"
        );
    }

    #[test]
    fn invalid_status_is_the_apiserver_422_body() {
        let status = invalid_status(
            "Pod",
            "app",
            &[FieldError::forbidden(
                "spec.ephemeralContainers[0].ports",
                "cannot be set for an Ephemeral Container",
            )],
        );
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Pod \"app\" is invalid: spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
                "reason": "Invalid",
                "details": {
                    "name": "app",
                    "kind": "Pod",
                    "causes": [{
                        "reason": "FieldValueForbidden",
                        "message": "Forbidden: cannot be set for an Ephemeral Container",
                        "field": "spec.ephemeralContainers[0].ports"
                    }]
                },
                "code": 422
            })
        );
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\x01""#);
        assert_eq!(go_quote("héllo"), "\"héllo\"");
    }
}
