use serde_json::{Value, json};

use super::*;

/// A table row: what the case shows, the patch, and (JSON pointer, expected value) pairs.
type Case = (&'static str, Value, Vec<(&'static str, Value)>);

fn pod() -> Value {
    json!({
        "metadata": {"name": "app", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a", "b"]},
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1", "args": ["--x"],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                 "securityContext": {"runAsUser": 1000, "runAsGroup": 1000}},
                {"name": "side", "image": "side:1"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "ephemeralContainers": [{"name": "dbg-old", "image": "busybox", "targetContainerName": "app"}],
        }
    })
}

// One row per rule: the patch, and the parts of the result it must produce.
#[test]
fn strategic_merge_table() {
    let cases: Vec<Case> = vec![
        (
            "kubectl debug adds an ephemeral container after the existing ones",
            json!({"spec": {"ephemeralContainers": [{"name": "dbg-new", "image": "tools"}]}}),
            vec![(
                "/spec/ephemeralContainers",
                json!([
                    {"name": "dbg-old", "image": "busybox", "targetContainerName": "app"},
                    {"name": "dbg-new", "image": "tools"},
                ]),
            )],
        ),
        (
            "containers merge by name, scalars replace, untouched fields stay",
            json!({"spec": {"containers": [{"name": "app", "image": "app:2"}]}}),
            vec![
                ("/spec/containers/0/image", json!("app:2")),
                ("/spec/containers/0/args", json!(["--x"])),
                ("/spec/containers/1/image", json!("side:1")),
            ],
        ),
        (
            "env merges by name; $patch delete removes one",
            json!({"spec": {"containers": [{"name": "app", "env": [
                {"name": "A", "value": "10"}, {"name": "B", "$patch": "delete"}, {"name": "C", "value": "3"}
            ]}]}}),
            vec![(
                "/spec/containers/0/env",
                json!([{"name": "A", "value": "10"}, {"name": "C", "value": "3"}]),
            )],
        ),
        (
            "ports merge by containerPort, volumeMounts by mountPath",
            json!({"spec": {"containers": [{"name": "app",
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                "volumeMounts": [{"mountPath": "/data", "readOnly": true}]}]}}),
            vec![
                (
                    "/spec/containers/0/ports",
                    json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}]),
                ),
                (
                    "/spec/containers/0/volumeMounts",
                    json!([{"name": "data", "mountPath": "/data", "readOnly": true}]),
                ),
            ],
        ),
        (
            "lists without a merge strategy are replaced",
            json!({"spec": {"containers": [{"name": "app", "args": ["--y"]}]}}),
            vec![("/spec/containers/0/args", json!(["--y"]))],
        ),
        (
            "null deletes",
            json!({"metadata": {"labels": {"tier": null}}, "spec": {"containers": [{"name": "app", "securityContext": {"runAsGroup": null}}]}}),
            vec![
                ("/metadata/labels", json!({"app": "web"})),
                (
                    "/spec/containers/0/securityContext",
                    json!({"runAsUser": 1000}),
                ),
            ],
        ),
        (
            "$patch replace on a map",
            json!({"spec": {"containers": [{"name": "app", "securityContext": {"$patch": "replace", "runAsNonRoot": true}}]}}),
            vec![(
                "/spec/containers/0/securityContext",
                json!({"runAsNonRoot": true}),
            )],
        ),
        (
            "$patch delete on a map",
            json!({"spec": {"containers": [{"name": "app", "securityContext": {"$patch": "delete"}}]}}),
            vec![("/spec/containers/0/securityContext", Value::Null)],
        ),
        (
            "$patch replace element replaces the list",
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}),
            vec![("/spec/containers", json!([{"name": "only", "image": "x"}]))],
        ),
        (
            "$setElementOrder reorders merged lists",
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "new"}, {"name": "app"}],
                "containers": [{"name": "new", "image": "n"}],
            }}),
            vec![
                ("/spec/containers/0/name", json!("side")),
                ("/spec/containers/1/name", json!("new")),
                ("/spec/containers/2/name", json!("app")),
            ],
        ),
        (
            "$retainKeys drops the other volume source",
            json!({"spec": {"volumes": [{"name": "data", "hostPath": {"path": "/x"}, "$retainKeys": ["hostPath", "name"]}]}}),
            vec![(
                "/spec/volumes",
                json!([{"name": "data", "hostPath": {"path": "/x"}}]),
            )],
        ),
        (
            "finalizers merge as a set; $deleteFromPrimitiveList removes",
            json!({"metadata": {"finalizers": ["b", "c"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
            vec![("/metadata/finalizers", json!(["b", "c"]))],
        ),
        (
            "new nested maps are created with nulls dropped",
            json!({"metadata": {"annotations": {"x": "1", "y": null}}}),
            vec![("/metadata/annotations", json!({"x": "1"}))],
        ),
    ];
    for (name, patch, expectations) in cases {
        let got = strategic_merge(&pod(), &patch).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (pointer, want) in expectations {
            let actual = got.pointer(pointer).cloned().unwrap_or(Value::Null);
            assert_eq!(actual, want, "{name}: {pointer}");
        }
        assert!(
            !got.to_string().contains('$'),
            "{name}: directive left in {got}"
        );
    }
}

#[test]
fn strategic_merge_errors() {
    assert_eq!(
        strategic_merge(&pod(), &json!([1])).unwrap_err(),
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    assert_eq!(
        strategic_merge(
            &pod(),
            &json!({"spec": {"ephemeralContainers": [{"image": "x"}]}})
        )
        .unwrap_err(),
        r#"map: {"image":"x"} does not contain declared merge key: name"#
    );
    assert_eq!(
        strategic_merge(&pod(), &json!({"spec": {"$patch": "explode"}})).unwrap_err(),
        r#"invalid patch type: "explode""#
    );
}

#[test]
fn service_ports_merge_by_port() {
    let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    let got = strategic_merge(
        &svc,
        &json!({"spec": {"ports": [{"port": 80, "name": "http"}]}}),
    )
    .unwrap();
    assert_eq!(
        got["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080, "name": "http"}])
    );
}

#[test]
fn merge_patch_replaces_lists() {
    let got = merge_patch(
        &pod(),
        &json!({"metadata": {"labels": {"tier": null}}, "spec": {"ephemeralContainers": [{"name": "x", "image": "y"}]}}),
    )
    .unwrap();
    assert_eq!(got["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        got["spec"]["ephemeralContainers"],
        json!([{"name": "x", "image": "y"}])
    );
}

#[test]
fn json_patch_applies_and_reports_failures() {
    let got = json_patch(
        &pod(),
        &json!([{"op": "add", "path": "/spec/ephemeralContainers/-", "value": {"name": "dbg", "image": "b"}}]),
    )
    .unwrap();
    assert_eq!(got["spec"]["ephemeralContainers"][1]["name"], "dbg");
    let err = json_patch(
        &pod(),
        &json!([{"op": "test", "path": "/metadata/name", "value": "other"}]),
    )
    .unwrap_err();
    assert!(!err.is_empty());
    let err = json_patch(&pod(), &json!({"op": "add"})).unwrap_err();
    assert!(err.starts_with("invalid JSON patch"), "{err}");
}
