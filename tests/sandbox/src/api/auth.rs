//! Authentication (bearer tokens) and authorization of every request, through the RBAC
//! rules of `policy::rbac`.
//!
//! The sandbox's own kubeconfig carries a random admin token (user `kubernetes-admin`, group
//! `system:masters`, like a kubeadm admin.conf). A rules file adds users, groups and their
//! permissions; without one only the admin exists.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use serde_json::Value;

use super::meta;
use super::routes::ResourceRequest;
use super::status::ApiError;
use crate::policy::rbac::{self, Rules};

pub use crate::policy::rbac::{Attributes, UserInfo};

fn status_error(status: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> ApiError {
    ApiError::from_status(serde_json::to_value(status).unwrap_or_default())
}

/// The attributes RBAC sees for a resource request.
pub fn resource_attributes(req: &ResourceRequest) -> Attributes {
    Attributes {
        verb: req.verb.to_string(),
        api_group: req.group.clone(),
        resource: req.resource.clone(),
        subresource: req.subresource.clone().unwrap_or_default(),
        namespace: req.namespace.clone().unwrap_or_default(),
        name: req.name.clone().unwrap_or_default(),
        path: String::new(),
    }
}

/// The attributes of a non-resource request (`/version`, `/api`, `/openapi/v3`).
pub fn non_resource_attributes(method: &http::Method, path: &str) -> Attributes {
    Attributes {
        verb: method.as_str().to_ascii_lowercase(),
        path: path.to_string(),
        ..Attributes::default()
    }
}

pub struct Access {
    admin_token: String,
    rules: Rules,
}

impl Access {
    /// Only the admin token.
    pub fn allow_all() -> Access {
        let admin_token = meta::random_hex(24);
        Access {
            rules: Rules::allow_all(&admin_token),
            admin_token,
        }
    }

    /// The admin token plus the users and permissions of a rules file (YAML).
    pub fn from_rules_yaml(yaml: &str) -> Result<Access, String> {
        Ok(Access {
            admin_token: meta::random_hex(24),
            rules: Rules::from_yaml(yaml)?,
        })
    }

    /// The user name of the sandbox's own kubeconfig.
    pub fn admin_user(&self) -> String {
        rbac::ADMIN_USER.into()
    }

    /// The token the sandbox's own kubeconfig uses.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Who sent a request with this `Authorization` header; 401 for an unknown token.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<UserInfo, ApiError> {
        let token = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        if token == Some(self.admin_token.as_str()) {
            return Ok(UserInfo {
                name: rbac::ADMIN_USER.into(),
                uid: String::new(),
                groups: vec![rbac::MASTERS_GROUP.into(), rbac::AUTHENTICATED_GROUP.into()],
            });
        }
        self.rules
            .authenticate_header(authorization)
            .map_err(status_error)
    }

    /// Refuse with the real RBAC 403 body unless the user may do `attrs`.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<(), ApiError> {
        if self.rules.authorize(user, attrs) {
            return Ok(());
        }
        Err(status_error(rbac::forbidden_status(user, attrs)))
    }

    /// The answer to a SelfSubjectAccessReview (the request body).
    pub fn access_review(&self, user: &UserInfo, body: &[u8]) -> Result<Value, ApiError> {
        let review: SelfSubjectAccessReview = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("decoding SelfSubjectAccessReview: {e}")))?;
        let answer = self
            .rules
            .self_subject_access_review(user, review)
            .map_err(status_error)?;
        let mut v = serde_json::to_value(answer).unwrap_or_default();
        v["apiVersion"] = "authorization.k8s.io/v1".into();
        v["kind"] = "SelfSubjectAccessReview".into();
        Ok(v)
    }
}

/// The answer to a SelfSubjectReview.
pub fn self_subject_review(user: &UserInfo, body: &[u8]) -> Value {
    let review: SelfSubjectReview = serde_json::from_slice(body).unwrap_or_default();
    let mut v = serde_json::to_value(rbac::self_subject_review(user, review)).unwrap_or_default();
    v["apiVersion"] = "authentication.k8s.io/v1".into();
    v["kind"] = "SelfSubjectReview".into();
    v
}
