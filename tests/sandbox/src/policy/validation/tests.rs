use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::*;

/// A running pod `app` with one container `app`, one init container `init` and a volume.
fn pod(ephemeral: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {
            "containers": [{"name": "app", "image": "sandbox.local/distroless-app:nonroot"}],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "ephemeralContainers": ephemeral,
        }
    }))
    .unwrap()
}

fn dbg(extra: Value) -> Value {
    let mut ec = json!({
        "name": "dbg-abcde",
        "image": "busybox",
        "targetContainerName": "app",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    });
    for (k, v) in extra.as_object().unwrap() {
        ec[k] = v.clone();
    }
    ec
}

fn messages(new: &Pod, old: &Pod) -> Vec<String> {
    ephemeral_containers_update_errors(new, old)
        .iter()
        .map(|e| e.to_string())
        .collect()
}

// Each row: the ephemeral container added to a pod without any, and the errors
// validateEphemeralContainers reports (pkg/apis/core/validation/validation.go).
#[test]
fn added_ephemeral_container_rules() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("compliant", dbg(json!({})), vec![]),
        (
            "ports",
            dbg(json!({"ports": [{"containerPort": 8080}]})),
            vec![
                "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
            ],
        ),
        (
            "probes, lifecycle and resources, in Go struct order",
            dbg(json!({
                "lifecycle": {"preStop": {"exec": {"command": ["true"]}}},
                "readinessProbe": {"exec": {"command": ["true"]}},
                "livenessProbe": {"exec": {"command": ["true"]}},
                "startupProbe": {"exec": {"command": ["true"]}},
                "resources": {"limits": {"cpu": "1"}},
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                "restartPolicy": "Always",
            })),
            vec![
                "spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].resizePolicy: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].restartPolicy: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].livenessProbe: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].startupProbe: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].lifecycle: Forbidden: cannot be set for an Ephemeral Container",
            ],
        ),
        (
            "empty resources are the zero value",
            dbg(json!({"resources": {}})),
            vec![],
        ),
        (
            "subPath and subPathExpr",
            dbg(json!({"volumeMounts": [
                {"name": "data", "mountPath": "/a", "subPath": "x"},
                {"name": "data", "mountPath": "/b", "subPathExpr": "$(POD)"},
            ]})),
            vec![
                "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].volumeMounts[1].subPathExpr: Forbidden: cannot be set for an Ephemeral Container",
            ],
        ),
        (
            "volume mount of an unknown volume",
            dbg(json!({"volumeMounts": [{"name": "nope", "mountPath": "/a"}]})),
            vec!["spec.ephemeralContainers[0].volumeMounts[0].name: Not found: \"nope\""],
        ),
        (
            "name of a container",
            dbg(json!({"name": "app"})),
            vec!["spec.ephemeralContainers[0].name: Duplicate value: \"app\""],
        ),
        (
            "name of an init container",
            dbg(json!({"name": "init"})),
            vec!["spec.ephemeralContainers[0].name: Duplicate value: \"init\""],
        ),
        (
            "missing name and image",
            json!({"name": "", "targetContainerName": "app"}),
            vec![
                "spec.ephemeralContainers[0].name: Required value",
                "spec.ephemeralContainers[0].image: Required value",
            ],
        ),
        (
            "name not a DNS label",
            dbg(json!({"name": "Debug_1"})),
            vec![
                "spec.ephemeralContainers[0].name: Invalid value: \"Debug_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ],
        ),
        (
            "name with dots",
            dbg(json!({"name": "dbg.x"})),
            vec![
                "spec.ephemeralContainers[0].name: Invalid value: \"dbg.x\": must not contain dots",
            ],
        ),
        (
            "unknown target",
            dbg(json!({"targetContainerName": "nope"})),
            vec!["spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\""],
        ),
        (
            "image with whitespace",
            dbg(json!({"image": " busybox"})),
            vec![
                "spec.ephemeralContainers[0].image: Invalid value: \" busybox\": must not have leading or trailing whitespace",
            ],
        ),
        (
            "bad pull policy",
            dbg(json!({"imagePullPolicy": "Sometimes"})),
            vec![
                "spec.ephemeralContainers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            ],
        ),
        (
            "negative uid",
            dbg(json!({"securityContext": {"runAsUser": -1}})),
            vec![
                "spec.ephemeralContainers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
            ],
        ),
        (
            "undefaulted policies are left to defaulting",
            json!({"name": "dbg", "image": "busybox"}),
            vec![],
        ),
    ];
    let old = pod(json!([]));
    for (name, ec, want) in cases {
        let new = pod(json!([ec]));
        assert_eq!(messages(&new, &old), want, "{name}");
    }
}

#[test]
fn target_may_not_be_an_ephemeral_container() {
    let old = pod(json!([dbg(json!({"name": "first"}))]));
    let new = pod(json!([
        dbg(json!({"name": "first"})),
        dbg(json!({"name": "second", "targetContainerName": "first"})),
    ]));
    assert_eq!(
        messages(&new, &old),
        vec!["spec.ephemeralContainers[1].targetContainerName: Not found: \"first\""]
    );
}

#[test]
fn names_are_unique_among_ephemeral_containers() {
    let old = pod(json!([]));
    let new = pod(json!([dbg(json!({})), dbg(json!({}))]));
    assert_eq!(
        messages(&new, &old),
        vec!["spec.ephemeralContainers[1].name: Duplicate value: \"dbg-abcde\""]
    );
}

#[test]
fn existing_ephemeral_containers_may_not_be_removed() {
    let old = pod(json!([dbg(json!({}))]));
    let new = pod(json!([]));
    let status = validate_ephemeral_containers_update(&new, &old).unwrap_err();
    assert_eq!(
        status.message.as_deref(),
        Some(
            "Pod \"app\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"dbg-abcde\" may not be removed\n"
        )
    );
}

#[test]
fn existing_ephemeral_containers_may_not_be_changed() {
    let old = pod(json!([dbg(json!({}))]));
    let new = pod(json!([dbg(json!({"image": "alpine"}))]));
    let errors = ephemeral_containers_update_errors(&new, &old);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "spec.ephemeralContainers");
    assert!(
        errors[0]
            .detail
            .starts_with("existing ephemeral containers \"dbg-abcde\" may not be changed\n"),
        "{}",
        errors[0].detail
    );
    assert!(errors[0].detail.contains("- \timage: \"busybox\""));
    assert!(errors[0].detail.contains("+ \timage: \"alpine\""));
}

#[test]
fn reordering_or_resending_existing_ones_is_not_a_change() {
    let a = dbg(json!({"name": "a"}));
    let b = dbg(json!({"name": "b", "env": []}));
    let old = pod(json!([a.clone(), dbg(json!({"name": "b"}))]));
    let new = pod(json!([b, a, dbg(json!({"name": "c"}))]));
    assert_eq!(messages(&new, &old), Vec::<String>::new());
}

#[test]
fn changes_outside_ephemeral_containers_are_dropped_not_validated() {
    let old = pod(json!([]));
    let mut new = pod(json!([dbg(json!({}))]));
    new.spec.as_mut().unwrap().containers[0].image = Some("evil".into());
    new.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
    assert!(validate_ephemeral_containers_update(&new, &old).is_ok());
    let stored = ephemeral_containers_update(&new, &old);
    assert_eq!(
        stored.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("sandbox.local/distroless-app:nonroot")
    );
    assert_eq!(stored.metadata.labels, None);
    assert_eq!(
        stored.spec.unwrap().ephemeral_containers.unwrap()[0].name,
        "dbg-abcde"
    );
}

// ValidatePodEphemeralContainersUpdate: "static pods don't support ephemeral containers
// #113935" replaces every other error, with an empty field path.
#[test]
fn static_pods_are_refused() {
    let mut old = pod(json!([]));
    old.metadata.annotations =
        Some([(MIRROR_POD_ANNOTATION.to_string(), "abc".to_string())].into());
    let new = pod(json!([dbg(json!({"ports": [{"containerPort": 1}]}))]));
    let status = validate_ephemeral_containers_update(&new, &old).unwrap_err();
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(
        json,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Pod \"app\" is invalid: : Forbidden: static pods do not support ephemeral containers",
            "reason": "Invalid",
            "details": {
                "name": "app",
                "kind": "Pod",
                "causes": [{
                    "reason": "FieldValueForbidden",
                    "message": "Forbidden: static pods do not support ephemeral containers"
                }]
            },
            "code": 422
        })
    );
}

#[test]
fn several_errors_are_aggregated_in_brackets() {
    let old = pod(json!([]));
    let new = pod(json!([dbg(
        json!({"name": "app", "ports": [{"containerPort": 80}]})
    )]));
    let status = validate_ephemeral_containers_update(&new, &old).unwrap_err();
    assert_eq!(
        status.message.as_deref(),
        Some(
            "Pod \"app\" is invalid: [spec.ephemeralContainers[0].name: Duplicate value: \"app\", spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container]"
        )
    );
    let causes = status.details.unwrap().causes.unwrap();
    assert_eq!(causes.len(), 2);
    assert_eq!(causes[0].reason.as_deref(), Some("FieldValueDuplicate"));
    assert_eq!(
        causes[0].message.as_deref(),
        Some("Duplicate value: \"app\"")
    );
    assert_eq!(
        causes[0].field.as_deref(),
        Some("spec.ephemeralContainers[0].name")
    );
}

#[test]
fn dns1123_label_rules() {
    assert!(dns1123_label_errors("dbg-abcde").is_empty());
    assert!(dns1123_label_errors("0abc").is_empty());
    assert_eq!(
        dns1123_label_errors(&"a".repeat(64)),
        vec!["must be no more than 63 characters"]
    );
    assert_eq!(dns1123_label_errors("-a").len(), 1);
    assert_eq!(dns1123_label_errors("a-").len(), 1);
}

// ValidatePodUpdate: what `kubectl edit`, `apply` and `patch` of a running pod may change.
#[test]
fn regular_pod_updates() {
    let old = pod(json!([]));
    let with = |f: &dyn Fn(&mut Pod)| {
        let mut p = old.clone();
        f(&mut p);
        p
    };
    let spec_forbidden = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n";
    let cases: Vec<(&str, Pod, Option<&str>)> = vec![
        ("nothing", old.clone(), None),
        (
            "labels",
            with(&|p| p.metadata.labels = Some([("a".to_string(), "b".to_string())].into())),
            None,
        ),
        (
            "an image",
            with(&|p| p.spec.as_mut().unwrap().containers[0].image = Some("app:2".into())),
            None,
        ),
        (
            "a security context",
            with(&|p| {
                p.spec.as_mut().unwrap().containers[0].security_context = Some(Default::default());
                p.spec.as_mut().unwrap().containers[0].stdin = Some(true);
            }),
            Some(spec_forbidden),
        ),
        (
            "ephemeral containers through the pod itself",
            pod(json!([dbg(json!({}))])),
            Some(spec_forbidden),
        ),
        (
            "a container removed",
            with(&|p| p.spec.as_mut().unwrap().containers.clear()),
            Some("spec.containers: Forbidden: pod updates may not add or remove containers"),
        ),
        (
            "the name",
            with(&|p| p.metadata.name = Some("other".into())),
            Some("metadata.name: Invalid value: \"other\": field is immutable"),
        ),
    ];
    for (name, new, want) in cases {
        let got = pod_update_errors(&new, &old);
        match want {
            None => assert_eq!(got, vec![], "{name}"),
            Some(want) => {
                assert_eq!(got.len(), 1, "{name}: {got:?}");
                assert!(got[0].to_string().starts_with(want), "{name}: {}", got[0]);
            }
        }
    }
    let status = validate_pod_update(&pod(json!([dbg(json!({}))])), &old).unwrap_err();
    assert!(
        status
            .message
            .unwrap()
            .starts_with("Pod \"app\" is invalid: spec: Forbidden: pod updates may not change")
    );
}

fn new_pod(spec: Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "app"}, "spec": spec})).unwrap()
}

// ValidatePodCreate: one row per rule a manifest can break.
#[test]
fn pod_create_rules() {
    let app = json!({"name": "app", "image": "x", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"});
    let cases: Vec<(&str, Pod, Vec<&str>)> = vec![
        (
            "valid",
            new_pod(json!({"containers": [app.clone()], "restartPolicy": "Always"})),
            vec![],
        ),
        (
            "no containers",
            new_pod(json!({"containers": []})),
            vec!["spec.containers: Required value"],
        ),
        (
            "duplicate container names across init and regular",
            new_pod(
                json!({"containers": [app.clone()], "initContainers": [{"name": "app", "image": "x"}]}),
            ),
            vec!["spec.initContainers[0].name: Duplicate value: \"app\""],
        ),
        (
            "ephemeral containers on create",
            new_pod(
                json!({"containers": [app.clone()], "ephemeralContainers": [{"name": "dbg", "image": "b"}]}),
            ),
            vec!["spec.ephemeralContainers: Forbidden: cannot be set on create"],
        ),
        (
            "image missing and a mount of an unknown volume",
            new_pod(
                json!({"containers": [{"name": "app", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]}),
            ),
            vec![
                "spec.containers[0].image: Required value",
                "spec.containers[0].volumeMounts[0].name: Not found: \"v\"",
            ],
        ),
        (
            "restartPolicy on a regular container; probes on an init container",
            new_pod(json!({
                "containers": [{"name": "app", "image": "x", "restartPolicy": "Always"}],
                "initContainers": [{"name": "init", "image": "x", "readinessProbe": {"exec": {"command": ["true"]}}}],
            })),
            vec![
                "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers",
                "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
            ],
        ),
        (
            "a sidecar may have probes",
            new_pod(json!({
                "containers": [app.clone()],
                "initContainers": [{"name": "side", "image": "x", "restartPolicy": "Always", "readinessProbe": {"exec": {"command": ["true"]}}}],
            })),
            vec![],
        ),
        (
            "policies",
            new_pod(
                json!({"containers": [app.clone()], "restartPolicy": "Sometimes", "dnsPolicy": "Google"}),
            ),
            vec![
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ],
        ),
        (
            "volumes",
            new_pod(
                json!({"containers": [app.clone()], "volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}, {"name": "b"}]}),
            ),
            vec![
                "spec.volumes[1].name: Duplicate value: \"a\"",
                "spec.volumes[2]: Required value: must specify a volume type",
            ],
        ),
    ];
    for (name, pod, want) in cases {
        let got: Vec<String> = pod_create_errors(&pod)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(got, want, "{name}");
    }
    let mut bad_name = new_pod(json!({"containers": [app]}));
    bad_name.metadata.name = Some("My_App".into());
    let status = validate_pod_create(&bad_name).unwrap_err();
    assert_eq!(
        status.message.as_deref(),
        Some(
            r#"Pod "My_App" is invalid: metadata.name: Invalid value: "My_App": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
        )
    );
}
