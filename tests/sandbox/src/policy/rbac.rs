//! Authentication by bearer token and RBAC-style authorization from a rules file, answered in
//! kube-apiserver's words.
//!
//! The rules file is YAML:
//!
//! ```yaml
//! allowAnonymous: true          # optional (default true): requests without a token are
//!                               # "system:anonymous"; false answers them 401 instead
//! users:
//!   - name: alice
//!     token: alice-token
//!     uid: "1001"               # optional
//!     groups: [oncall]          # optional; "system:authenticated" is always added
//!     rules:
//!       - verbs: [get, list, watch]
//!         resources: [pods, pods/log, namespaces]
//!         namespaces: ["*"]     # optional; absent or "*" = every namespace and cluster scope
//!       - verbs: [patch]
//!         resources: [pods/ephemeralcontainers]
//!         apiGroups: [""]       # optional; absent = any group
//!         resourceNames: [app]  # optional; absent = any name
//!       - verbs: [get]
//!         nonResourceURLs: ["/metrics", "/logs/*"]
//! groups:                       # optional: rules for every member of a group
//!   - name: oncall
//!     rules:
//!       - verbs: [create]
//!         resources: [pods/exec]
//! ```
//!
//! Rules match as RBAC's `PolicyRule`s do (plugin/pkg/auth/authorizer/rbac/rbac.go,
//! pkg/apis/rbac/v1/evaluation_helpers.go): `*` is a wildcard for verbs, groups and
//! resources, `pods/log` names a subresource, `*/scale` any resource's subresource, and a
//! non-resource URL ending in `*` is a prefix. On top of the file, as on a kubeadm cluster:
//! members of `system:masters` may do anything; every authenticated user has the default
//! bindings `system:basic-user` (self reviews), `system:discovery` and
//! `system:public-info-viewer` (the discovery and health paths kubectl reads), and anonymous
//! users only the last.

use std::collections::BTreeSet;

use k8s_openapi::api::authentication::v1 as authn;
use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReviewStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status};
use serde::Deserialize;

use super::field::{BadValue, FieldError, go_quote, invalid_status_in_group};

/// The user of requests that carry no credentials.
pub const ANONYMOUS: &str = "system:anonymous";
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group the apiserver lets do anything, before any authorizer runs.
pub const MASTERS_GROUP: &str = "system:masters";
/// The user [`Rules::allow_all`] authenticates, as kubeadm names its admin.
pub const ADMIN_USER: &str = "kubernetes-admin";

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    /// Including `system:authenticated` (or `system:unauthenticated` for anonymous).
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS.into(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
        }
    }
}

/// What a request wants to do (`authorizer.Attributes`). A request with an empty `resource`
/// is a non-resource request for `path` (`/api`, `/version`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// `""` for the core group, e.g. `apps`.
    pub api_group: String,
    /// Plural resource, e.g. `pods`; empty for a non-resource request.
    pub resource: String,
    /// e.g. `ephemeralcontainers`, `exec`, `log`.
    pub subresource: String,
    /// Empty for a cluster-scoped request.
    pub namespace: String,
    /// Empty for list, watch and create.
    pub name: String,
    /// The URL path of a non-resource request.
    pub path: String,
}

impl Attributes {
    pub fn is_resource_request(&self) -> bool {
        !self.resource.is_empty()
    }
}

/// One permission, in RBAC's shape.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub verbs: Vec<String>,
    #[serde(default)]
    pub api_groups: Option<Vec<String>>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserEntry {
    name: String,
    token: String,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupEntry {
    name: String,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    allow_anonymous: Option<bool>,
    #[serde(default)]
    users: Vec<UserEntry>,
    #[serde(default)]
    groups: Vec<GroupEntry>,
}

/// The sandbox's authentication and authorization configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    allow_anonymous: bool,
    users: Vec<UserEntry>,
    groups: Vec<GroupEntry>,
}

/// The outcome of authorization, with RBAC's reason for an allow (empty for a deny and for
/// `system:masters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

impl Rules {
    /// Parse and check a rules file (format in the module doc).
    pub fn from_yaml(yaml: &str) -> Result<Rules, String> {
        let file: RulesFile =
            serde_saphyr::from_str(yaml).map_err(|e| format!("rules file: {e}"))?;
        let mut tokens = BTreeSet::new();
        for user in &file.users {
            if user.name.is_empty() {
                return Err("rules file: a user has an empty name".into());
            }
            if user.token.is_empty() {
                return Err(format!(
                    "rules file: user {:?} has an empty token",
                    user.name
                ));
            }
            if !tokens.insert(user.token.as_str()) {
                return Err(format!(
                    "rules file: user {:?} reuses another user's token",
                    user.name
                ));
            }
        }
        let named_rules = file
            .users
            .iter()
            .map(|u| (&u.name, &u.rules))
            .chain(file.groups.iter().map(|g| (&g.name, &g.rules)));
        for (owner, rules) in named_rules {
            for (i, rule) in rules.iter().enumerate() {
                if rule.verbs.is_empty() {
                    return Err(format!("rules file: {owner:?} rule {i}: no verbs"));
                }
                if rule.resources.is_empty() && rule.non_resource_urls.is_empty() {
                    return Err(format!(
                        "rules file: {owner:?} rule {i}: needs resources or nonResourceURLs"
                    ));
                }
            }
        }
        Ok(Rules {
            allow_anonymous: file.allow_anonymous.unwrap_or(true),
            users: file.users,
            groups: file.groups,
        })
    }

    /// One admin user (`kubernetes-admin` in `system:masters`) with this token: everything
    /// is allowed to it.
    pub fn allow_all(token: &str) -> Rules {
        Rules {
            allow_anonymous: true,
            users: vec![UserEntry {
                name: ADMIN_USER.into(),
                token: token.into(),
                uid: None,
                groups: vec![MASTERS_GROUP.into()],
                rules: Vec::new(),
            }],
            groups: Vec::new(),
        }
    }

    /// The user a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let user = self.users.iter().find(|u| u.token == token)?;
        let mut groups = user.groups.clone();
        if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.into());
        }
        Some(UserInfo {
            name: user.name.clone(),
            uid: user.uid.clone().unwrap_or_default(),
            groups,
        })
    }

    /// Authenticate from the `Authorization` header: a known `Bearer` token is its user; no
    /// header is the anonymous user (when allowed); anything else is the apiserver's 401.
    #[expect(
        clippy::result_large_err,
        reason = "the Status is the response body; it is built once per rejected request"
    )]
    pub fn authenticate_header(&self, authorization: Option<&str>) -> Result<UserInfo, Status> {
        match authorization {
            None if self.allow_anonymous => Ok(UserInfo::anonymous()),
            None => Err(unauthorized_status()),
            Some(value) => {
                let token = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .map(str::trim);
                token
                    .and_then(|t| self.authenticate(t))
                    .ok_or_else(unauthorized_status)
            }
        }
    }

    /// Whether `user` may do `attrs`.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        self.decide(user, attrs).allowed
    }

    /// [`Rules::authorize`] with RBAC's reason, as a SubjectAccessReview reports it.
    pub fn decide(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        if user.groups.iter().any(|g| g == MASTERS_GROUP) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        let allow = |binding: &str, subject: String| Decision {
            allowed: true,
            reason: format!(
                "RBAC: allowed by ClusterRoleBinding {} of ClusterRole {} to {subject}",
                go_quote(binding),
                go_quote(binding)
            ),
        };
        if let Some(entry) = self.users.iter().find(|u| u.name == user.name)
            && user.name != ANONYMOUS
            && entry.rules.iter().any(|r| rule_allows(r, attrs))
        {
            return allow(
                &format!("sandbox:{}", user.name),
                format!("User {}", go_quote(&user.name)),
            );
        }
        for group in &user.groups {
            if let Some(entry) = self.groups.iter().find(|g| &g.name == group)
                && entry.rules.iter().any(|r| rule_allows(r, attrs))
            {
                return allow(
                    &format!("sandbox:{group}"),
                    format!("Group {}", go_quote(group)),
                );
            }
        }
        for (binding, group, rule) in default_bindings() {
            if user.groups.iter().any(|g| g == group) && rule_allows(&rule, attrs) {
                return allow(binding, format!("Group {}", go_quote(group)));
            }
        }
        Decision {
            allowed: false,
            reason: String::new(),
        }
    }

    /// Answer a `SelfSubjectAccessReview` for `user`: the request with `status` filled in,
    /// or the 422 for a spec without exactly one kind of attributes.
    #[expect(
        clippy::result_large_err,
        reason = "the Status is the response body; it is built once per rejected request"
    )]
    pub fn self_subject_access_review(
        &self,
        user: &UserInfo,
        mut review: SelfSubjectAccessReview,
    ) -> Result<SelfSubjectAccessReview, Status> {
        let spec = &review.spec;
        let attrs = match (&spec.resource_attributes, &spec.non_resource_attributes) {
            (Some(ra), None) => Attributes {
                verb: ra.verb.clone().unwrap_or_default(),
                api_group: ra.group.clone().unwrap_or_default(),
                resource: ra.resource.clone().unwrap_or_default(),
                subresource: ra.subresource.clone().unwrap_or_default(),
                namespace: ra.namespace.clone().unwrap_or_default(),
                name: ra.name.clone().unwrap_or_default(),
                path: String::new(),
            },
            (None, Some(nra)) => Attributes {
                verb: nra.verb.clone().unwrap_or_default(),
                path: nra.path.clone().unwrap_or_default(),
                ..Attributes::default()
            },
            // ValidateSelfSubjectAccessReviewSpec (pkg/apis/authorization/validation).
            (Some(_), Some(_)) => {
                return Err(invalid_review(FieldError::invalid(
                    "spec.nonResourceAttributes",
                    BadValue::Raw("authorization.NonResourceAttributes{...}".into()),
                    "cannot be specified in combination with resourceAttributes",
                )));
            }
            (None, None) => {
                return Err(invalid_review(FieldError::invalid(
                    "spec.resourceAttributes",
                    BadValue::Str("null".into()),
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )));
            }
        };
        let decision = self.decide(user, &attrs);
        review.status = Some(SubjectAccessReviewStatus {
            allowed: decision.allowed,
            denied: None,
            evaluation_error: None,
            reason: (!decision.reason.is_empty()).then_some(decision.reason),
        });
        Ok(review)
    }
}

fn invalid_review(error: FieldError) -> Status {
    invalid_status_in_group(
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        "",
        &[error],
    )
}

/// Answer a `SelfSubjectReview` (`kubectl auth whoami`): the request with
/// `status.userInfo` filled in.
pub fn self_subject_review(
    user: &UserInfo,
    mut review: authn::SelfSubjectReview,
) -> authn::SelfSubjectReview {
    review.status = Some(authn::SelfSubjectReviewStatus {
        user_info: Some(authn::UserInfo {
            extra: None,
            groups: Some(user.groups.clone()),
            uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
            username: Some(user.name.clone()),
        }),
    });
    review
}

/// The default cluster role bindings every cluster has, as (binding, group, rule).
fn default_bindings() -> Vec<(&'static str, &'static str, Rule)> {
    let non_resource = |urls: &[&str]| Rule {
        verbs: vec!["get".into()],
        api_groups: None,
        resources: Vec::new(),
        resource_names: Vec::new(),
        namespaces: None,
        non_resource_urls: urls.iter().map(|u| u.to_string()).collect(),
    };
    let public_info = &["/healthz", "/livez", "/readyz", "/version", "/version/"];
    vec![
        (
            "system:basic-user",
            AUTHENTICATED_GROUP,
            Rule {
                verbs: vec!["create".into()],
                api_groups: Some(vec![
                    "authorization.k8s.io".into(),
                    "authentication.k8s.io".into(),
                ]),
                resources: vec![
                    "selfsubjectaccessreviews".into(),
                    "selfsubjectrulesreviews".into(),
                    "selfsubjectreviews".into(),
                ],
                resource_names: Vec::new(),
                namespaces: None,
                non_resource_urls: Vec::new(),
            },
        ),
        (
            "system:discovery",
            AUTHENTICATED_GROUP,
            non_resource(&[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ]),
        ),
        (
            "system:public-info-viewer",
            AUTHENTICATED_GROUP,
            non_resource(public_info),
        ),
        (
            "system:public-info-viewer",
            UNAUTHENTICATED_GROUP,
            non_resource(public_info),
        ),
    ]
}

/// `RuleAllows` (evaluation_helpers.go), plus the file's namespace restriction.
fn rule_allows(rule: &Rule, attrs: &Attributes) -> bool {
    if !matches_any(&rule.verbs, &attrs.verb) {
        return false;
    }
    if !attrs.is_resource_request() {
        return rule.non_resource_urls.iter().any(|url| {
            url == "*"
                || *url == attrs.path
                || url
                    .strip_suffix('*')
                    .is_some_and(|prefix| attrs.path.starts_with(prefix))
        });
    }
    let group_ok = match &rule.api_groups {
        None => true,
        Some(groups) => matches_any(groups, &attrs.api_group),
    };
    let namespace_ok = match &rule.namespaces {
        None => true,
        Some(list) => list
            .iter()
            .any(|n| n == "*" || (!attrs.namespace.is_empty() && *n == attrs.namespace)),
    };
    let names_ok = rule.resource_names.is_empty()
        || (!attrs.name.is_empty() && rule.resource_names.contains(&attrs.name));
    group_ok && namespace_ok && names_ok && resource_matches(rule, attrs)
}

fn matches_any(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

/// `ResourceMatches`: `*`, an exact `resource[/subresource]`, or `*/subresource`.
fn resource_matches(rule: &Rule, attrs: &Attributes) -> bool {
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    rule.resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    })
}

/// `forbiddenMessage` (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/
/// errors.go).
pub fn forbidden_message(user: &UserInfo, attrs: &Attributes) -> String {
    let who = go_quote(&user.name);
    if !attrs.is_resource_request() {
        return format!(
            "User {who} cannot {} path {}",
            attrs.verb,
            go_quote(&attrs.path)
        );
    }
    let mut resource = attrs.resource.clone();
    if !attrs.subresource.is_empty() {
        resource = format!("{resource}/{}", attrs.subresource);
    }
    if attrs.namespace.is_empty() {
        format!(
            "User {who} cannot {} resource {} in API group {} at the cluster scope",
            attrs.verb,
            go_quote(&resource),
            go_quote(&attrs.api_group)
        )
    } else {
        format!(
            "User {who} cannot {} resource {} in API group {} in the namespace {}",
            attrs.verb,
            go_quote(&resource),
            go_quote(&attrs.api_group),
            go_quote(&attrs.namespace)
        )
    }
}

/// The 403 of a denied request (`responsewriters.Forbidden`): `NewForbidden` of the request's
/// group and resource (without the subresource) and name.
pub fn forbidden_status(user: &UserInfo, attrs: &Attributes) -> Status {
    super::field::forbidden_status(
        &attrs.api_group,
        &attrs.resource,
        &attrs.name,
        &forbidden_message(user, attrs),
    )
}

/// The 401 of a request whose credentials are not accepted (`NewUnauthorized("Unauthorized")`).
pub fn unauthorized_status() -> Status {
    Status {
        code: Some(401),
        details: None,
        message: Some("Unauthorized".into()),
        metadata: ListMeta::default(),
        reason: Some("Unauthorized".into()),
        status: Some("Failure".into()),
    }
}

#[cfg(test)]
mod tests;
