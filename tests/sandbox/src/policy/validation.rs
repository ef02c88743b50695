//! The apiserver's validation of pod updates: through the `pods/ephemeralcontainers`
//! subresource, and of the pod itself.
//!
//! Mirrors `ValidatePodEphemeralContainersUpdate` and `validateEphemeralContainers` in
//! pkg/apis/core/validation/validation.go, and `dropNonEphemeralContainerUpdates` in
//! pkg/registry/core/pod/strategy.go: the subresource ignores every change but the list of
//! ephemeral containers, validates the new containers against the pod, refuses to change or
//! remove existing ones, and refuses static (mirror) pods outright. `ValidatePodUpdate`
//! ([`validate_pod_update`]) keeps the rest of a running pod's spec immutable, ephemeral
//! containers included; `ValidatePodCreate` ([`validate_pod_create`]) checks a new pod.
//!
//! Inputs are expected to carry the server-side defaults a real apiserver applies before it
//! validates (terminationMessagePolicy, imagePullPolicy); an absent value is taken as "will be
//! defaulted" rather than reported as `Required value`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod, PodSpec, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde_json::Value;

pub use super::field::{BadValue, ErrorType, FieldError, aggregate, go_quote, invalid_status};
pub use create::{dns1123_subdomain_errors, pod_create_errors, validate_pod_create};

mod create;

/// `core.MirrorPodAnnotationKey`: set by the kubelet on the API mirror of a static pod.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The detail of every allow-list and subPath error.
const NOT_FOR_EPHEMERAL: &str = "cannot be set for an Ephemeral Container";

/// Validate the update of `old` to `new` through `pods/ephemeralcontainers`. `Err` is the
/// apiserver's 422 `Invalid` Status for the pod.
///
/// Only `new.spec.ephemeralContainers` is looked at: the apiserver drops every other change
/// before validating (store [`ephemeral_containers_update`], not `new`).
#[expect(
    clippy::result_large_err,
    reason = "the Status is the response body; it is built once per rejected request"
)]
pub fn validate_ephemeral_containers_update(new: &Pod, old: &Pod) -> Result<(), Status> {
    let errors = ephemeral_containers_update_errors(new, old);
    if errors.is_empty() {
        Ok(())
    } else {
        let name = old.metadata.name.as_deref().unwrap_or_default();
        Err(invalid_status("Pod", name, &errors))
    }
}

/// The field errors behind [`validate_ephemeral_containers_update`], in upstream order.
pub fn ephemeral_containers_update_errors(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let updated = ephemeral_containers_update(new, old);
    let empty = PodSpec::default();
    let spec = updated.spec.as_ref().unwrap_or(&empty);
    let mut errors = validate_ephemeral_containers(spec, "spec.ephemeralContainers");

    // static pods don't support ephemeral containers #113935: this replaces every other error.
    if is_mirror_pod(old) {
        return vec![FieldError::forbidden(
            "",
            "static pods do not support ephemeral containers",
        )];
    }

    // Existing ephemeral containers may not be changed. Order isn't preserved by patch, so
    // each is looked up by name.
    let new_list = ephemeral_containers(&updated);
    for old_ec in ephemeral_containers(old) {
        match new_list.iter().find(|ec| ec.name == old_ec.name) {
            None => errors.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!(
                    "existing ephemeral containers {} may not be removed\n",
                    go_quote(&old_ec.name)
                ),
            )),
            Some(new_ec) => {
                let (before, after) = (semantic(old_ec), semantic(new_ec));
                if before != after {
                    errors.push(FieldError::forbidden(
                        "spec.ephemeralContainers",
                        format!(
                            "existing ephemeral containers {} may not be changed\n{}",
                            go_quote(&old_ec.name),
                            diff("v1.EphemeralContainer", &before, &after)
                        ),
                    ));
                }
            }
        }
    }
    errors
}

/// What the apiserver stores for an ephemeral-containers update: `old` with only its
/// `spec.ephemeralContainers` taken from `new` (`dropNonEphemeralContainerUpdates`).
pub fn ephemeral_containers_update(new: &Pod, old: &Pod) -> Pod {
    let mut pod = old.clone();
    let list = new
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.clone());
    pod.spec
        .get_or_insert_with(Default::default)
        .ephemeral_containers = list;
    pod
}

/// Whether the pod is the mirror of a static pod.
pub fn is_mirror_pod(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
}

fn ephemeral_containers(pod: &Pod) -> &[EphemeralContainer] {
    pod.spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_deref())
        .unwrap_or_default()
}

/// `validateEphemeralContainers` for `spec`, with `path` the list's path
/// (`spec.ephemeralContainers`).
pub fn validate_ephemeral_containers(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(list) = spec.ephemeral_containers.as_deref() else {
        return errors;
    };
    let others: BTreeSet<&str> = spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| c.name.as_str()),
        )
        .collect();
    let mut all_names = others.clone();
    let volumes: BTreeSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();

    for (i, ec) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        validate_container_common(ec, &volumes, &p, &mut errors);

        // validateContainerOnlyForPod
        if let Some(image) = &ec.image
            && image.trim() != image
        {
            errors.push(FieldError::invalid(
                format!("{p}.image"),
                BadValue::Str(image.clone()),
                "must not have leading or trailing whitespace",
            ));
        }

        // Ephemeral containers must have a name unique across all container types.
        if !all_names.insert(ec.name.as_str()) {
            errors.push(FieldError::duplicate(format!("{p}.name"), &ec.name));
        }

        // The target container name must exist and be non-ephemeral.
        if let Some(target) = ec.target_container_name.as_deref()
            && !target.is_empty()
            && !others.contains(target)
        {
            errors.push(FieldError::not_found(
                format!("{p}.targetContainerName"),
                target,
            ));
        }

        // validateFieldAllowList(ec.EphemeralContainerCommon, allowedEphemeralContainerFields):
        // any field outside the allow list that differs from its Go zero value, in the order
        // of the Go struct. A present list or pointer counts even when empty, as in Go.
        let resources_set = ec
            .resources
            .as_ref()
            .is_some_and(|r| r.limits.is_some() || r.requests.is_some() || r.claims.is_some());
        let forbidden = [
            ("ports", ec.ports.is_some()),
            ("resources", resources_set),
            ("resizePolicy", ec.resize_policy.is_some()),
            ("restartPolicy", ec.restart_policy.is_some()),
            ("livenessProbe", ec.liveness_probe.is_some()),
            ("readinessProbe", ec.readiness_probe.is_some()),
            ("startupProbe", ec.startup_probe.is_some()),
            ("lifecycle", ec.lifecycle.is_some()),
        ];
        for (field, set) in forbidden {
            if set {
                errors.push(FieldError::forbidden(
                    format!("{p}.{field}"),
                    NOT_FOR_EPHEMERAL,
                ));
            }
        }

        // VolumeMount subpaths are bind mounts that outlive the container; disallowed.
        for (j, vm) in ec.volume_mounts.iter().flatten().enumerate() {
            if vm.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
                errors.push(FieldError::forbidden(
                    format!("{p}.volumeMounts[{j}].subPath"),
                    NOT_FOR_EPHEMERAL,
                ));
            }
            if vm.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty()) {
                errors.push(FieldError::forbidden(
                    format!("{p}.volumeMounts[{j}].subPathExpr"),
                    NOT_FOR_EPHEMERAL,
                ));
            }
        }
    }
    errors
}

/// The parts of `validateContainerCommon` that apply to what clients put in an ephemeral
/// container.
fn validate_container_common(
    ec: &EphemeralContainer,
    volumes: &BTreeSet<&str>,
    p: &str,
    errors: &mut Vec<FieldError>,
) {
    if ec.name.is_empty() {
        errors.push(FieldError::required(format!("{p}.name"), ""));
    } else {
        for msg in dns1123_label_errors(&ec.name) {
            errors.push(FieldError::invalid(
                format!("{p}.name"),
                BadValue::Str(ec.name.clone()),
                msg,
            ));
        }
    }
    if ec.image.as_deref().unwrap_or_default().is_empty() {
        errors.push(FieldError::required(format!("{p}.image"), ""));
    }
    if let Some(policy) = ec.termination_message_policy.as_deref()
        && !["File", "FallbackToLogsOnError"].contains(&policy)
    {
        errors.push(FieldError::not_supported(
            format!("{p}.terminationMessagePolicy"),
            policy,
            &["File", "FallbackToLogsOnError"],
        ));
    }
    // validateContainerPorts
    for (j, port) in ec.ports.iter().flatten().enumerate() {
        let field = format!("{p}.ports[{j}].containerPort");
        if port.container_port == 0 {
            errors.push(FieldError::required(field, ""));
        } else if !(1..=65535).contains(&port.container_port) {
            errors.push(FieldError::invalid(
                field,
                BadValue::Int(port.container_port.into()),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    // ValidateEnv
    for (j, env) in ec.env.iter().flatten().enumerate() {
        if env.name.is_empty() {
            errors.push(FieldError::required(format!("{p}.env[{j}].name"), ""));
        }
    }
    // ValidateVolumeMounts
    let mut mount_points = BTreeSet::new();
    for (j, vm) in ec.volume_mounts.iter().flatten().enumerate() {
        let vp = format!("{p}.volumeMounts[{j}]");
        if vm.name.is_empty() {
            errors.push(FieldError::required(format!("{vp}.name"), ""));
        }
        if !volumes.contains(vm.name.as_str()) {
            errors.push(FieldError::not_found(format!("{vp}.name"), &vm.name));
        }
        if vm.mount_path.is_empty() {
            errors.push(FieldError::required(format!("{vp}.mountPath"), ""));
        }
        if !mount_points.insert(vm.mount_path.as_str()) {
            errors.push(FieldError::invalid(
                format!("{vp}.mountPath"),
                BadValue::Str(vm.mount_path.clone()),
                "must be unique",
            ));
        }
    }
    // validatePullPolicy
    if let Some(policy) = ec.image_pull_policy.as_deref()
        && !["Always", "IfNotPresent", "Never"].contains(&policy)
    {
        errors.push(FieldError::not_supported(
            format!("{p}.imagePullPolicy"),
            policy,
            &["Always", "IfNotPresent", "Never"],
        ));
    }
    if let Some(sc) = &ec.security_context {
        validate_security_context(sc, &format!("{p}.securityContext"), errors);
    }
}

/// The checks of `ValidateSecurityContext` a debug container can trip.
fn validate_security_context(sc: &SecurityContext, p: &str, errors: &mut Vec<FieldError>) {
    const ID_RANGE: &str = "must be between 0 and 2147483647, inclusive";
    for (field, id) in [
        ("runAsUser", sc.run_as_user),
        ("runAsGroup", sc.run_as_group),
    ] {
        if let Some(id) = id
            && !(0..=i64::from(i32::MAX)).contains(&id)
        {
            errors.push(FieldError::invalid(
                format!("{p}.{field}"),
                BadValue::Int(id),
                ID_RANGE,
            ));
        }
    }
    if let Some(proc_mount) = sc.proc_mount.as_deref()
        && !["Default", "Unmasked"].contains(&proc_mount)
    {
        errors.push(FieldError::not_supported(
            format!("{p}.procMount"),
            proc_mount,
            &["Default", "Unmasked"],
        ));
    }
    if sc.allow_privilege_escalation == Some(false) {
        // Upstream prints the whole struct with %#v; we print it as JSON.
        let value = || BadValue::Raw(serde_json::to_string(sc).unwrap_or_default());
        if sc.privileged == Some(true) {
            errors.push(FieldError::invalid(
                p,
                value(),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds_sys_admin = sc
            .capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_some_and(|add| add.iter().any(|c| c == "CAP_SYS_ADMIN"));
        if adds_sys_admin {
            errors.push(FieldError::invalid(
                p,
                value(),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
}

/// The fields a regular pod update may change, as `ValidatePodUpdate` lists them.
const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Validate a regular update (PUT or PATCH of the pod itself) of `old` to `new`: the pod's
/// spec is immutable but for images, activeDeadlineSeconds, added tolerations, removed
/// scheduling gates and a negative grace period set to 1 (`ValidatePodUpdate`). Adding
/// ephemeral containers this way is refused too: only the subresource may. `Err` is the 422
/// kubectl shows as `The Pod "app" is invalid: spec: Forbidden: pod updates may not change
/// fields other than ...`. Status changes are not checked: the apiserver drops them from a
/// regular update before validating.
#[expect(
    clippy::result_large_err,
    reason = "the Status is the response body; it is built once per rejected request"
)]
pub fn validate_pod_update(new: &Pod, old: &Pod) -> Result<(), Status> {
    let errors = pod_update_errors(new, old);
    if errors.is_empty() {
        Ok(())
    } else {
        let name = old.metadata.name.as_deref().unwrap_or_default();
        Err(invalid_status("Pod", name, &errors))
    }
}

/// The field errors behind [`validate_pod_update`].
pub fn pod_update_errors(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // ValidateObjectMetaUpdate: identity fields are immutable.
    for (field, n, o) in [
        ("metadata.name", &new.metadata.name, &old.metadata.name),
        (
            "metadata.namespace",
            &new.metadata.namespace,
            &old.metadata.namespace,
        ),
        ("metadata.uid", &new.metadata.uid, &old.metadata.uid),
    ] {
        if n.is_some() && n != o {
            errors.push(FieldError::invalid(
                field,
                BadValue::Str(n.clone().unwrap_or_default()),
                "field is immutable",
            ));
        }
    }
    let empty = PodSpec::default();
    let (new_spec, old_spec) = (
        new.spec.as_ref().unwrap_or(&empty),
        old.spec.as_ref().unwrap_or(&empty),
    );
    if new_spec.containers.len() != old_spec.containers.len() {
        errors.push(FieldError::forbidden(
            "spec.containers",
            "pod updates may not add or remove containers",
        ));
        return errors;
    }
    let (new_init, old_init) = (
        new_spec.init_containers.as_deref().unwrap_or_default(),
        old_spec.init_containers.as_deref().unwrap_or_default(),
    );
    // Munge what may change back to the old values, then nothing else may differ.
    let mut munged = new_spec.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old_spec.containers) {
        c.image = o.image.clone();
    }
    if new_init.len() == old_init.len()
        && let Some(list) = munged.init_containers.as_mut()
    {
        for (c, o) in list.iter_mut().zip(old_init) {
            c.image = o.image.clone();
        }
    }
    munged.active_deadline_seconds = old_spec.active_deadline_seconds;
    munged.scheduling_gates = old_spec.scheduling_gates.clone();
    munged.tolerations = old_spec.tolerations.clone();
    if old_spec
        .termination_grace_period_seconds
        .is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
    }
    let (before, after) = (semantic(old_spec), semantic(&munged));
    if before != after {
        errors.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}",
                diff("core.PodSpec", &before, &after)
            ),
        ));
    }
    errors
}

/// `validation.IsDNS1123Label` (k8s.io/apimachinery/pkg/util/validation/validation.go).
pub fn dns1123_label_errors(value: &str) -> Vec<String> {
    const FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    const MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !is_dns1123_label(value) {
        if value.split('.').all(is_dns1123_label) {
            // A valid subdomain but not a label: it must be the dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(format!(
                "{MSG} (e.g. 'my-name',  or '123-abc', regex used for validation is '{FMT}')"
            ));
        }
    }
    errs
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// A value as `apiequality.Semantic.DeepEqual` sees it: empty and absent lists and maps are
/// equal.
fn semantic<T: serde::Serialize>(value: &T) -> Value {
    fn prune(v: Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::Array(items) if items.is_empty() => None,
            Value::Array(items) => Some(Value::Array(
                items
                    .into_iter()
                    .map(|i| prune(i).unwrap_or(Value::Null))
                    .collect(),
            )),
            Value::Object(map) => {
                let map: serde_json::Map<String, Value> = map
                    .into_iter()
                    .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                    .collect();
                (!map.is_empty()).then_some(Value::Object(map))
            }
            other => Some(other),
        }
    }
    prune(serde_json::to_value(value).unwrap_or(Value::Null)).unwrap_or(Value::Null)
}

/// A `cmp.Diff`-like rendering of what changed (upstream prints Go structs; we print JSON).
fn diff(type_name: &str, before: &Value, after: &Value) -> String {
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut out = format!("  {type_name}{{\n");
    for key in keys {
        match (b.get(key), a.get(key)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("- \t{key}: {x},\n"));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+ \t{key}: {y},\n"));
                }
            }
        }
    }
    out.push_str("  }\n");
    out
}

#[cfg(test)]
mod tests;
