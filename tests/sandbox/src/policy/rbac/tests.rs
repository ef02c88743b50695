use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use serde_json::json;

use super::*;

const RULES: &str = r#"
users:
  - name: alice
    token: alice-token
    groups: [oncall]
    rules:
      - verbs: [get, list, watch]
        resources: [pods, pods/log, namespaces]
        namespaces: ["*"]
      - verbs: [patch]
        resources: [pods/ephemeralcontainers]
        namespaces: [default]
  - name: bob
    token: bob-token
    uid: "42"
    rules:
      - verbs: [get]
        apiGroups: [""]
        resources: [pods]
        resourceNames: [app]
      - verbs: ["*"]
        apiGroups: [apps]
        resources: ["*/scale"]
      - verbs: [get]
        nonResourceURLs: ["/logs/*"]
groups:
  - name: oncall
    rules:
      - verbs: [create]
        resources: [pods/exec, pods/attach]
"#;

fn rules() -> Rules {
    Rules::from_yaml(RULES).unwrap()
}

fn attrs(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        api_group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: name.into(),
        path: String::new(),
    }
}

fn path(verb: &str, path: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        path: path.into(),
        ..Attributes::default()
    }
}

#[test]
fn authentication_by_token() {
    let r = rules();
    let alice = r.authenticate("alice-token").unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.groups, vec!["oncall", "system:authenticated"]);
    assert_eq!(r.authenticate("bob-token").unwrap().uid, "42");
    assert_eq!(r.authenticate("nope"), None);
    assert_eq!(r.authenticate_header(Some("Bearer alice-token")), Ok(alice));
    assert_eq!(r.authenticate_header(None), Ok(UserInfo::anonymous()));
    let denied = r.authenticate_header(Some("Bearer nope")).unwrap_err();
    assert_eq!(
        serde_json::to_value(denied).unwrap(),
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401
        })
    );
    let strict = Rules::from_yaml("allowAnonymous: false\nusers: []\n").unwrap();
    assert!(strict.authenticate_header(None).is_err());
}

#[test]
fn authorization_table() {
    let r = rules();
    let alice = r.authenticate("alice-token").unwrap();
    let bob = r.authenticate("bob-token").unwrap();
    let anon = UserInfo::anonymous();
    let cases: Vec<(&str, &UserInfo, Attributes, bool)> = vec![
        (
            "list pods anywhere",
            &alice,
            attrs("list", "", "pods", "", "kube-system", ""),
            true,
        ),
        (
            "get log",
            &alice,
            attrs("get", "", "pods", "log", "default", "app"),
            true,
        ),
        (
            "namespaces at cluster scope",
            &alice,
            attrs("get", "", "namespaces", "", "", "default"),
            true,
        ),
        (
            "delete not granted",
            &alice,
            attrs("delete", "", "pods", "", "default", "app"),
            false,
        ),
        (
            "pods does not cover subresources",
            &alice,
            attrs("get", "", "pods", "exec", "default", "app"),
            false,
        ),
        (
            "patch ephemeralcontainers in default",
            &alice,
            attrs("patch", "", "pods", "ephemeralcontainers", "default", "app"),
            true,
        ),
        (
            "patch ephemeralcontainers elsewhere",
            &alice,
            attrs("patch", "", "pods", "ephemeralcontainers", "prod", "app"),
            false,
        ),
        (
            "exec through the group",
            &alice,
            attrs("create", "", "pods", "exec", "prod", "app"),
            true,
        ),
        (
            "bob: named pod",
            &bob,
            attrs("get", "", "pods", "", "default", "app"),
            true,
        ),
        (
            "bob: other pod",
            &bob,
            attrs("get", "", "pods", "", "default", "db"),
            false,
        ),
        (
            "bob: list needs no name, so resourceNames deny it",
            &bob,
            attrs("list", "", "pods", "", "default", ""),
            false,
        ),
        (
            "bob: */scale",
            &bob,
            attrs("update", "apps", "deployments", "scale", "default", "web"),
            true,
        ),
        (
            "bob: */scale not in core",
            &bob,
            attrs(
                "update",
                "",
                "replicationcontrollers",
                "scale",
                "default",
                "web",
            ),
            false,
        ),
        (
            "bob: non-resource prefix",
            &bob,
            path("get", "/logs/kubelet.log"),
            true,
        ),
        (
            "discovery for authenticated users",
            &bob,
            path("get", "/apis/apps/v1"),
            true,
        ),
        (
            "self reviews for authenticated users",
            &bob,
            attrs(
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                "",
                "",
            ),
            true,
        ),
        ("anonymous: version", &anon, path("get", "/version"), true),
        ("anonymous: no discovery", &anon, path("get", "/api"), false),
        (
            "anonymous: no pods",
            &anon,
            attrs("list", "", "pods", "", "default", ""),
            false,
        ),
    ];
    for (name, user, a, want) in cases {
        assert_eq!(r.authorize(user, &a), want, "{name}");
    }
}

#[test]
fn allow_all_admin_may_do_anything() {
    let r = Rules::allow_all("secret");
    let admin = r.authenticate("secret").unwrap();
    assert_eq!(admin.name, "kubernetes-admin");
    assert!(admin.groups.contains(&"system:masters".to_string()));
    assert!(r.authorize(
        &admin,
        &attrs("delete", "", "namespaces", "", "", "kube-system")
    ));
    assert!(r.authorize(&admin, &path("get", "/metrics")));
}

// responsewriters.forbiddenMessage + apierrors.NewForbidden, for each request shape.
#[test]
fn forbidden_bodies_match_kube_apiserver() {
    let alice = rules().authenticate("alice-token").unwrap();
    let cases = [
        (
            attrs("patch", "", "pods", "ephemeralcontainers", "default", "app"),
            r#"pods "app" is forbidden: User "alice" cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace "default""#,
        ),
        (
            attrs("list", "", "secrets", "", "default", ""),
            r#"secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "default""#,
        ),
        (
            attrs("list", "", "nodes", "", "", ""),
            r#"nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope"#,
        ),
        (
            attrs("get", "apps", "deployments", "", "prod", "web"),
            r#"deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments" in API group "apps" in the namespace "prod""#,
        ),
        (
            path("get", "/metrics"),
            r#"forbidden: User "alice" cannot get path "/metrics""#,
        ),
    ];
    for (a, want) in cases {
        let status = forbidden_status(&alice, &a);
        assert_eq!(status.message.as_deref(), Some(want));
        assert_eq!(status.code, Some(403));
        assert_eq!(status.reason.as_deref(), Some("Forbidden"));
    }
    let json = serde_json::to_value(forbidden_status(
        &alice,
        &attrs("patch", "", "pods", "ephemeralcontainers", "default", "app"),
    ))
    .unwrap();
    assert_eq!(json["details"], json!({"name": "app", "kind": "pods"}));
    let json = serde_json::to_value(forbidden_status(
        &alice,
        &attrs("get", "apps", "deployments", "", "prod", "web"),
    ))
    .unwrap();
    assert_eq!(
        json["details"],
        json!({"name": "web", "group": "apps", "kind": "deployments"})
    );
}

#[test]
fn self_subject_access_review_is_answered_from_the_rules() {
    let r = rules();
    let alice = r.authenticate("alice-token").unwrap();
    let review = |attrs: serde_json::Value| -> SelfSubjectAccessReview {
        serde_json::from_value(json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": attrs,
        }))
        .unwrap()
    };
    let allowed = r
        .self_subject_access_review(
            &alice,
            review(json!({"resourceAttributes": {
                "namespace": "default", "verb": "patch", "resource": "pods",
                "subresource": "ephemeralcontainers", "name": "app"
            }})),
        )
        .unwrap();
    let status = allowed.status.unwrap();
    assert!(status.allowed);
    assert_eq!(
        status.reason.as_deref(),
        Some(
            r#"RBAC: allowed by ClusterRoleBinding "sandbox:alice" of ClusterRole "sandbox:alice" to User "alice""#
        )
    );
    let denied = r
        .self_subject_access_review(
            &alice,
            review(json!({"resourceAttributes": {"namespace": "default", "verb": "delete", "resource": "pods"}})),
        )
        .unwrap();
    assert!(!denied.status.as_ref().unwrap().allowed);
    assert_eq!(denied.status.unwrap().reason, None);
    let group = r
        .self_subject_access_review(
            &alice,
            review(json!({"resourceAttributes": {"namespace": "x", "verb": "create", "resource": "pods", "subresource": "exec"}})),
        )
        .unwrap();
    assert!(
        group
            .status
            .unwrap()
            .reason
            .unwrap()
            .ends_with(r#"to Group "oncall""#)
    );
    let non_resource = r
        .self_subject_access_review(
            &alice,
            review(json!({"nonResourceAttributes": {"path": "/api", "verb": "get"}})),
        )
        .unwrap();
    assert!(non_resource.status.unwrap().allowed);
    let invalid = r
        .self_subject_access_review(&alice, review(json!({})))
        .unwrap_err();
    assert_eq!(invalid.code, Some(422));
    assert_eq!(
        invalid.message.as_deref(),
        Some(
            r#"SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified"#
        )
    );
}

#[test]
fn self_subject_review_reports_the_user() {
    let bob = rules().authenticate("bob-token").unwrap();
    let review = self_subject_review(&bob, Default::default());
    assert_eq!(
        serde_json::to_value(&review).unwrap()["status"],
        json!({"userInfo": {"username": "bob", "uid": "42", "groups": ["system:authenticated"]}})
    );
}

#[test]
fn bad_rules_files_are_refused_with_the_reason() {
    let cases = [
        (
            "users: [{name: a, token: t}, {name: b, token: t}]",
            "reuses another user's token",
        ),
        ("users: [{name: a, token: ''}]", "empty token"),
        (
            "users: [{name: a, token: t, rules: [{verbs: [], resources: [pods]}]}]",
            "no verbs",
        ),
        (
            "users: [{name: a, token: t, rules: [{verbs: [get]}]}]",
            "needs resources or nonResourceURLs",
        ),
        ("users: [{name: a, token: t, rulez: []}]", "rules file:"),
    ];
    for (yaml, want) in cases {
        let err = Rules::from_yaml(yaml).unwrap_err();
        assert!(err.contains(want), "{yaml}: {err}");
    }
}
