use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::*;

/// The security context that passes `restricted`, as the plugin's `auto` profile builds it.
fn restricted_sc() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// A pod whose own container passes `restricted`, with `ephemeral` added and `spec_extra`
/// merged into its spec.
fn pod(ephemeral: Value, spec_extra: Value) -> Pod {
    let mut spec = json!({
        "containers": [{"name": "app", "image": "app", "securityContext": restricted_sc()}],
        "ephemeralContainers": ephemeral,
    });
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": "app"}, "spec": spec})).unwrap()
}

fn dbg(sc: Value) -> Value {
    json!({"name": "dbg-abcde", "image": "busybox", "targetContainerName": "app", "securityContext": sc})
}

#[test]
fn root_debug_container_in_restricted_namespace() {
    let p = pod(
        json!([{"name": "dbg-abcde", "image": "busybox"}]),
        json!({}),
    );
    assert_eq!(
        evaluate(Level::Restricted, &p).unwrap_err(),
        r#"violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "dbg-abcde" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "dbg-abcde" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "dbg-abcde" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "dbg-abcde" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    // Baseline has nothing against a plain root container.
    assert_eq!(evaluate(Level::Baseline, &p), Ok(()));
    assert_eq!(evaluate(Level::Privileged, &p), Ok(()));
}

#[test]
fn compliant_debug_container_is_admitted_everywhere() {
    let p = pod(json!([dbg(restricted_sc())]), json!({}));
    for level in [Level::Privileged, Level::Baseline, Level::Restricted] {
        assert_eq!(evaluate(level, &p), Ok(()), "{level:?}");
    }
}

// One row per check: the pod change, the level, and the violation text upstream produces.
#[test]
fn each_check_words_its_violation_like_upstream() {
    let cases: Vec<(&str, Level, Value, Value, &str)> = vec![
        (
            "privileged",
            Level::Baseline,
            json!([dbg(json!({"privileged": true}))]),
            json!({}),
            r#"privileged (container "dbg-abcde" must not set securityContext.privileged=true)"#,
        ),
        (
            "host namespaces",
            Level::Baseline,
            json!([]),
            json!({"hostNetwork": true, "hostPID": true, "hostIPC": true}),
            "host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)",
        ),
        (
            "capabilities beyond the default set",
            Level::Baseline,
            json!([dbg(
                json!({"capabilities": {"add": ["SYS_PTRACE", "CHOWN", "NET_ADMIN"]}})
            )]),
            json!({}),
            r#"non-default capabilities (container "dbg-abcde" must not include "NET_ADMIN", "SYS_PTRACE" in securityContext.capabilities.add)"#,
        ),
        (
            "hostPath volume",
            Level::Baseline,
            json!([]),
            json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
            r#"hostPath volumes (volume "root")"#,
        ),
        (
            "host ports sort as strings",
            Level::Baseline,
            json!([]),
            json!({"containers": [
                {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 80}, {"containerPort": 8080, "hostPort": 8080}]},
                {"name": "b", "image": "x", "ports": [{"containerPort": 9000, "hostPort": 9000}]},
            ]}),
            r#"hostPort (containers "a", "b" use hostPorts 80, 8080, 9000)"#,
        ),
        (
            "AppArmor unconfined",
            Level::Baseline,
            json!([dbg(json!({"appArmorProfile": {"type": "Unconfined"}}))]),
            json!({}),
            r#"forbidden AppArmor profile (container "dbg-abcde" must not set AppArmor profile type to "Unconfined")"#,
        ),
        (
            "SELinux type",
            Level::Baseline,
            json!([dbg(
                json!({"seLinuxOptions": {"type": "spc_t", "user": "root"}})
            )]),
            json!({}),
            r#"seLinuxOptions (container "dbg-abcde" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)"#,
        ),
        (
            "procMount",
            Level::Baseline,
            json!([dbg(json!({"procMount": "Unmasked"}))]),
            json!({}),
            r#"procMount (container "dbg-abcde" must not set securityContext.procMount to "Unmasked")"#,
        ),
        (
            "seccomp unconfined, baseline",
            Level::Baseline,
            json!([dbg(json!({"seccompProfile": {"type": "Unconfined"}}))]),
            json!({}),
            r#"seccompProfile (container "dbg-abcde" must not set securityContext.seccompProfile.type to "Unconfined")"#,
        ),
        (
            "unsafe sysctl",
            Level::Baseline,
            json!([]),
            json!({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}]}}),
            "forbidden sysctls (kernel.msgmax)",
        ),
        (
            "root uid",
            Level::Restricted,
            json!([dbg(json!({
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
                "runAsUser": 0,
                "runAsNonRoot": false,
                "seccompProfile": {"type": "RuntimeDefault"},
            }))]),
            json!({}),
            r#"runAsNonRoot != true (container "dbg-abcde" must not set securityContext.runAsNonRoot=false), runAsUser=0 (container "dbg-abcde" must not set runAsUser=0)"#,
        ),
        (
            "ptrace profile in restricted",
            Level::Restricted,
            json!([dbg(json!({
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["SYS_PTRACE", "NET_BIND_SERVICE"]},
                "runAsNonRoot": true,
                "seccompProfile": {"type": "RuntimeDefault"},
            }))]),
            json!({}),
            r#"unrestricted capabilities (container "dbg-abcde" must not include "SYS_PTRACE" in securityContext.capabilities.add)"#,
        ),
        (
            "no drop ALL and a forbidden add",
            Level::Restricted,
            json!([dbg(json!({
                "allowPrivilegeEscalation": false,
                "capabilities": {"add": ["NET_ADMIN"]},
                "runAsNonRoot": true,
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
            }))]),
            json!({}),
            r#"unrestricted capabilities (container "dbg-abcde" must set securityContext.capabilities.drop=["ALL"]; container "dbg-abcde" must not include "NET_ADMIN" in securityContext.capabilities.add)"#,
        ),
        (
            "restricted volume types",
            Level::Restricted,
            json!([]),
            json!({"volumes": [
                {"name": "root", "hostPath": {"path": "/"}},
                {"name": "share", "nfs": {"server": "s", "path": "/"}},
                {"name": "tmp", "emptyDir": {}},
            ]}),
            r#"restricted volume types (volumes "root", "share" use restricted volume types "hostPath", "nfs")"#,
        ),
        (
            "pod-level settings cover containers",
            Level::Restricted,
            json!([dbg(
                json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
            )]),
            json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}}),
            "",
        ),
        (
            "pod-level bad seccomp and a bad container",
            Level::Restricted,
            json!([dbg(
                json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true, "seccompProfile": {"type": "Unconfined"}})
            )]),
            json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
            r#"seccompProfile (pod and container "dbg-abcde" must not set securityContext.seccompProfile.type to "Unconfined")"#,
        ),
        (
            "windows hostProcess",
            Level::Baseline,
            json!([dbg(json!({"windowsOptions": {"hostProcess": true}}))]),
            json!({}),
            r#"hostProcess (container "dbg-abcde" must not set securityContext.windowsOptions.hostProcess=true)"#,
        ),
    ];
    for (name, level, ephemeral, spec_extra, want) in cases {
        let p = pod(ephemeral, spec_extra);
        let got = match evaluate(level, &p) {
            Ok(()) => String::new(),
            Err(msg) => msg
                .strip_prefix(&format!(
                    "violates PodSecurity \"{}:latest\": ",
                    level.as_str()
                ))
                .expect("message prefix")
                .to_string(),
        };
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn baseline_failures_come_first_at_restricted_and_overridden_ones_are_replaced() {
    // A privileged, capability-adding, hostPath-mounting root debug container: at restricted
    // the baseline "privileged" comes first, and the restricted checks replace the baseline
    // capability, hostPath and seccomp checks. At baseline all run, sorted by check ID, as in
    // a real cluster's `host namespaces (hostNetwork=true), hostPath volumes (...),
    // privileged (...)`.
    let p = pod(
        json!([dbg(
            json!({"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}})
        )]),
        json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
    );
    assert_eq!(
        evaluate(Level::Restricted, &p).unwrap_err(),
        r#"violates PodSecurity "restricted:latest": privileged (container "dbg-abcde" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "dbg-abcde" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "dbg-abcde" must set securityContext.capabilities.drop=["ALL"]; container "dbg-abcde" must not include "SYS_ADMIN" in securityContext.capabilities.add), restricted volume types (volume "root" uses restricted volume type "hostPath"), runAsNonRoot != true (pod or container "dbg-abcde" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "dbg-abcde" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    assert_eq!(
        evaluate(Level::Baseline, &p).unwrap_err(),
        r#"violates PodSecurity "baseline:latest": non-default capabilities (container "dbg-abcde" must not include "SYS_ADMIN" in securityContext.capabilities.add), hostPath volumes (volume "root"), privileged (container "dbg-abcde" must not set securityContext.privileged=true)"#
    );
}

// An earlier non-compliant ephemeral container keeps failing the pod: every container is
// evaluated, not just the one being added.
#[test]
fn earlier_ephemeral_containers_are_evaluated_too() {
    let p = pod(
        json!([
            {"name": "debugger-old", "image": "busybox"},
            {"name": "dbg-new", "image": "busybox", "securityContext": restricted_sc()},
        ]),
        json!({"initContainers": [{"name": "init", "image": "busybox", "securityContext": restricted_sc()}]}),
    );
    let msg = evaluate(Level::Restricted, &p).unwrap_err();
    assert!(
        msg.contains(r#"allowPrivilegeEscalation != false (container "debugger-old" must set"#),
        "{msg}"
    );
}

#[test]
fn containers_are_listed_init_first_then_regular_then_ephemeral() {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "spec": {
            "initContainers": [{"name": "i", "image": "x"}],
            "containers": [{"name": "c", "image": "x"}],
            "ephemeralContainers": [{"name": "e", "image": "x"}],
        }
    }))
    .unwrap();
    let v = violations(Level::Restricted, &p);
    assert_eq!(
        v[0].detail,
        r#"containers "i", "c", "e" must set securityContext.allowPrivilegeEscalation=false"#
    );
}

#[test]
fn level_and_version_from_namespace_labels() {
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let cases = [
        (labels(&[]), Level::Privileged, "latest"),
        (
            labels(&[(ENFORCE_LABEL, "baseline")]),
            Level::Baseline,
            "latest",
        ),
        (
            labels(&[(ENFORCE_LABEL, "restricted")]),
            Level::Restricted,
            "latest",
        ),
        (
            labels(&[(ENFORCE_LABEL, "privileged")]),
            Level::Privileged,
            "latest",
        ),
        (
            labels(&[(ENFORCE_LABEL, "strict")]),
            Level::Restricted,
            "latest",
        ),
        (
            labels(&[
                (ENFORCE_LABEL, "restricted"),
                (ENFORCE_VERSION_LABEL, "v1.30"),
            ]),
            Level::Restricted,
            "v1.30",
        ),
        (
            labels(&[
                (ENFORCE_LABEL, "restricted"),
                (ENFORCE_VERSION_LABEL, "soon"),
            ]),
            Level::Restricted,
            "latest",
        ),
        (
            labels(&[("pod-security.kubernetes.io/warn", "restricted")]),
            Level::Privileged,
            "latest",
        ),
    ];
    for (labels, level, version) in cases {
        assert_eq!(Level::from_namespace_labels(&labels), level, "{labels:?}");
        let policy = Policy::from_namespace_labels(&labels);
        assert_eq!((policy.level, policy.version.as_str()), (level, version));
    }
}

#[test]
fn forbidden_status_is_the_403_body() {
    let msg =
        "violates PodSecurity \"restricted:latest\": runAsUser=0 (pod must not set runAsUser=0)";
    let json = serde_json::to_value(forbidden_status("app", msg)).unwrap();
    assert_eq!(
        json,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": format!("pods \"app\" is forbidden: {msg}"),
            "reason": "Forbidden",
            "details": {"name": "app", "kind": "pods"},
            "code": 403
        })
    );
}

#[test]
fn significant_updates_are_the_ones_upstream_evaluates() {
    let base = pod(json!([dbg(restricted_sc())]), json!({}));
    let with = |f: &dyn Fn(&mut Pod)| {
        let mut p = base.clone();
        f(&mut p);
        p
    };
    let cases: Vec<(&str, Pod, bool)> = vec![
        ("nothing", base.clone(), false),
        (
            "labels",
            with(&|p| p.metadata.labels = Some([("a".to_string(), "b".to_string())].into())),
            false,
        ),
        (
            "image of a container",
            with(&|p| p.spec.as_mut().unwrap().containers[0].image = Some("app:2".into())),
            true,
        ),
        (
            "an ephemeral container added",
            with(&|p| {
                let list = p
                    .spec
                    .as_mut()
                    .unwrap()
                    .ephemeral_containers
                    .as_mut()
                    .unwrap();
                let mut extra = list[0].clone();
                extra.name = "dbg-2".into();
                list.push(extra);
            }),
            true,
        ),
        (
            "security context of an existing container (not evaluated upstream)",
            with(&|p| p.spec.as_mut().unwrap().containers[0].security_context = None),
            false,
        ),
        (
            "seccomp annotation of a container",
            with(&|p| {
                p.metadata.annotations = Some(
                    [(
                        "container.seccomp.security.alpha.kubernetes.io/app".to_string(),
                        "unconfined".to_string(),
                    )]
                    .into(),
                )
            }),
            true,
        ),
    ];
    for (name, new, want) in cases {
        assert_eq!(is_significant_pod_update(&new, &base), want, "{name}");
    }
}

// The order of a real cluster's message for an ingress controller on hostNetwork with host
// ports and a hostPath volume: checks sorted by ID.
#[test]
fn baseline_order_matches_a_real_cluster() {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "ds"},
        "spec": {
            "hostNetwork": true,
            "volumes": [{"name": "run", "hostPath": {"path": "/run"}}],
            "containers": [{"name": "controller", "image": "x",
                "securityContext": {"privileged": true},
                "ports": [{"containerPort": 443, "hostPort": 443}, {"containerPort": 80, "hostPort": 80}]}],
        }
    }))
    .unwrap();
    assert_eq!(
        evaluate(Level::Baseline, &p).unwrap_err(),
        r#"violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), hostPath volumes (volume "run"), hostPort (container "controller" uses hostPorts 443, 80), privileged (container "controller" must not set securityContext.privileged=true)"#
    );
}

// Version-dependent details of the 1.33 policy: container_engine_t (1.31), image volumes
// (1.33) and the Windows exemption of the Linux-only restricted checks (1.25).
#[test]
fn policy_details_as_of_1_33() {
    let engine = pod(
        json!([dbg(
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"},
            "seLinuxOptions": {"type": "container_engine_t"}})
        )]),
        json!({"volumes": [{"name": "img", "image": {"reference": "sandbox.local/busybox:latest"}}]}),
    );
    assert_eq!(evaluate(Level::Restricted, &engine), Ok(()));
    let windows: Pod = serde_json::from_value(json!({
        "metadata": {"name": "win"},
        "spec": {"os": {"name": "windows"}, "containers": [{"name": "c", "image": "x",
            "securityContext": {"runAsNonRoot": true}}]}
    }))
    .unwrap();
    assert_eq!(evaluate(Level::Restricted, &windows), Ok(()));
}
