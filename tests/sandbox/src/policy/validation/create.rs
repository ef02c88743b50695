//! `ValidatePodCreate` (pkg/apis/core/validation/validation.go) for what a pod manifest can get
//! wrong: its name, volumes, containers and init containers, restart and DNS policies, and
//! ephemeral containers, which only the subresource may add.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

use super::{BadValue, FieldError, invalid_status, validate_container_common};

/// Validate a pod about to be created, with the server-side defaults applied. `Err` is the 422
/// kubectl shows as `The Pod "app" is invalid: ...`.
#[expect(
    clippy::result_large_err,
    reason = "the Status is the response body; it is built once per rejected request"
)]
pub fn validate_pod_create(pod: &Pod) -> Result<(), Status> {
    let errors = pod_create_errors(pod);
    if errors.is_empty() {
        Ok(())
    } else {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        Err(invalid_status("Pod", name, &errors))
    }
}

/// The field errors behind [`validate_pod_create`], in upstream order.
pub fn pod_create_errors(pod: &Pod) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // ValidateObjectMeta with ValidatePodName (a DNS subdomain).
    if let Some(name) = pod.metadata.name.as_deref().filter(|n| !n.is_empty()) {
        for msg in dns1123_subdomain_errors(name) {
            errors.push(FieldError::invalid(
                "metadata.name",
                BadValue::Str(name.into()),
                msg,
            ));
        }
    }
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);

    // ValidateVolumes
    let mut volumes = BTreeSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let p = format!("spec.volumes[{i}]");
        let sources = serde_json::to_value(v)
            .ok()
            .and_then(|v| {
                v.as_object()
                    .map(|m| m.keys().filter(|k| *k != "name").count())
            })
            .unwrap_or(0);
        if sources == 0 {
            errors.push(FieldError::required(
                p.clone(),
                "must specify a volume type",
            ));
        }
        if v.name.is_empty() {
            errors.push(FieldError::required(format!("{p}.name"), ""));
        } else {
            for msg in super::dns1123_label_errors(&v.name) {
                errors.push(FieldError::invalid(
                    format!("{p}.name"),
                    BadValue::Str(v.name.clone()),
                    msg,
                ));
            }
        }
        if !volumes.insert(v.name.as_str()) {
            errors.push(FieldError::duplicate(format!("{p}.name"), &v.name));
        }
    }

    // validateContainers
    let mut names = BTreeSet::new();
    if spec.containers.is_empty() {
        errors.push(FieldError::required("spec.containers", ""));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let p = format!("spec.containers[{i}]");
        validate_container_common(&as_ephemeral(c), &volumes, &p, &mut errors);
        if !names.insert(c.name.as_str()) {
            errors.push(FieldError::duplicate(format!("{p}.name"), &c.name));
        }
        if c.restart_policy.is_some() {
            errors.push(FieldError::forbidden(
                format!("{p}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }

    // validateInitContainers
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let p = format!("spec.initContainers[{i}]");
        validate_container_common(&as_ephemeral(c), &volumes, &p, &mut errors);
        let restart_always = match c.restart_policy.as_deref() {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errors.push(FieldError::not_supported(
                    format!("{p}.restartPolicy"),
                    other,
                    &["Always"],
                ));
                false
            }
        };
        if !names.insert(c.name.as_str()) {
            errors.push(FieldError::duplicate(format!("{p}.name"), &c.name));
        }
        if !restart_always {
            let set = [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ];
            for (field, present) in set {
                if present {
                    errors.push(FieldError::forbidden(
                        format!("{p}.{field}"),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }

    errors.extend(super::validate_ephemeral_containers(
        spec,
        "spec.ephemeralContainers",
    ));

    if let Some(policy) = spec.restart_policy.as_deref()
        && !["Always", "OnFailure", "Never"].contains(&policy)
    {
        errors.push(FieldError::not_supported(
            "spec.restartPolicy",
            policy,
            &["Always", "OnFailure", "Never"],
        ));
    }
    if let Some(policy) = spec.dns_policy.as_deref()
        && !["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"].contains(&policy)
    {
        errors.push(FieldError::not_supported(
            "spec.dnsPolicy",
            policy,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ));
    }

    // EphemeralContainers can only be set on update using the ephemeralcontainers subresource.
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|l| !l.is_empty())
    {
        errors.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    errors
}

/// The fields `validateContainerCommon` reads are the same in both types.
fn as_ephemeral(c: &Container) -> EphemeralContainer {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_else(|| EphemeralContainer {
            name: c.name.clone(),
            image: c.image.clone(),
            ..Default::default()
        })
}

/// `validation.IsDNS1123Subdomain` (the rule for pod names).
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    const FMT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
    const MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        !b.is_empty()
            && alnum(&b[0])
            && alnum(&b[b.len() - 1])
            && b.iter().all(|c| alnum(c) || *c == b'-')
    };
    if !value.split('.').all(label_ok) {
        errs.push(format!(
            "{MSG} (e.g. 'example.com', regex used for validation is '{FMT}')"
        ));
    }
    errs
}
