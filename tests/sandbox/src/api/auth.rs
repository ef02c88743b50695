//! Authentication (bearer tokens) and authorization of every request.
//!
//! Without a rules file one random admin token is accepted and everything is allowed, like a
//! cluster-admin kubeconfig. With one, users, tokens and permissions come from it.

use serde_json::{Value, json};

use super::meta;
use super::routes::ResourceRequest;
use super::status::ApiError;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// What a request wants to do, as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

impl Attributes {
    pub fn of(req: &ResourceRequest) -> Attributes {
        Attributes {
            verb: req.verb.to_string(),
            group: req.group.clone(),
            resource: req.resource.clone(),
            subresource: req.subresource.clone().unwrap_or_default(),
            namespace: req.namespace.clone().unwrap_or_default(),
            name: req.name.clone().unwrap_or_default(),
        }
    }
}

pub enum Access {
    /// One admin token, everything allowed.
    AllowAll { token: String },
}

impl Access {
    pub fn allow_all() -> Access {
        Access::AllowAll {
            token: meta::random_hex(24),
        }
    }

    /// Access from a rules file (YAML).
    pub fn from_rules_yaml(yaml: &str) -> Result<Access, String> {
        let _ = yaml;
        Err("RBAC rules files are not supported in this build yet".into())
    }

    /// The user name of the sandbox's own kubeconfig.
    pub fn admin_user(&self) -> String {
        "kubernetes-admin".into()
    }

    /// The token the sandbox's own kubeconfig uses.
    pub fn admin_token(&self) -> &str {
        match self {
            Access::AllowAll { token } => token,
        }
    }

    pub fn authenticate(&self, token: Option<&str>) -> Option<UserInfo> {
        match self {
            Access::AllowAll { token: t } => (token == Some(t.as_str())).then(|| UserInfo {
                name: "kubernetes-admin".into(),
                uid: String::new(),
                groups: vec![
                    "kubeadm:cluster-admins".into(),
                    "system:authenticated".into(),
                ],
            }),
        }
    }

    pub fn allowed(&self, _user: &UserInfo, _attrs: &Attributes) -> bool {
        match self {
            Access::AllowAll { .. } => true,
        }
    }

    /// Refuse with the real RBAC 403 body unless the user may do `attrs`.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<(), ApiError> {
        if self.allowed(user, attrs) {
            return Ok(());
        }
        Err(forbidden(user, attrs))
    }

    /// The answer to a SelfSubjectAccessReview.
    pub fn access_review(&self, user: &UserInfo, review: &Value) -> Value {
        let ra = &review["spec"]["resourceAttributes"];
        let s = |k: &str| ra[k].as_str().unwrap_or("").to_string();
        let attrs = Attributes {
            verb: s("verb"),
            group: s("group"),
            resource: s("resource"),
            subresource: s("subresource"),
            namespace: s("namespace"),
            name: s("name"),
        };
        let allowed = self.allowed(user, &attrs);
        let mut out = review.clone();
        out["apiVersion"] = json!("authorization.k8s.io/v1");
        out["kind"] = json!("SelfSubjectAccessReview");
        out["metadata"] = json!({ "creationTimestamp": null });
        out["status"] = if allowed {
            json!({ "allowed": true, "reason": "RBAC: allowed by sandbox rules" })
        } else {
            json!({ "allowed": false })
        };
        out
    }
}

/// `pods "app" is forbidden: User "u" cannot patch resource "pods/ephemeralcontainers" in API
/// group "" in the namespace "default"` (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters).
pub fn forbidden(user: &UserInfo, a: &Attributes) -> ApiError {
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        " at the cluster scope".to_string()
    } else {
        format!(" in the namespace \"{}\"", a.namespace)
    };
    let reason = format!(
        "User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\"{scope}",
        user.name, a.verb, a.group
    );
    ApiError::forbidden(&a.group, &a.resource, &a.name, &reason)
}

/// The answer to a SelfSubjectReview.
pub fn self_subject_review(user: &UserInfo) -> Value {
    let mut info = json!({ "username": user.name, "groups": user.groups });
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": { "creationTimestamp": meta::now_rfc3339() },
        "status": { "userInfo": info },
    })
}
