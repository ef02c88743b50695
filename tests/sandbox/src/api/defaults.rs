//! Server-side defaults of a Pod, as the real apiserver fills them on create (the defaulting
//! functions of k8s.io/kubernetes/pkg/apis/core/v1/defaults.go) plus what the scheduler and
//! kubelet set first (node name, Pending phase, QoS class, PodScheduled condition).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EphemeralContainer, Pod, PodCondition, PodSecurityContext, PodSpec, PodStatus,
    ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The single node of the sandbox.
pub const NODE_NAME: &str = "sandbox-node";

/// `Always` for `:latest` or an untagged reference, `IfNotPresent` otherwise.
pub fn image_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Container) {
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    if c.image_pull_policy.is_none() {
        c.image_pull_policy = Some(image_pull_policy(c.image.as_deref().unwrap_or("")).into());
    }
    let resources = c
        .resources
        .get_or_insert_with(ResourceRequirements::default);
    // SetDefaults_Pod: a limit without a request sets the request.
    if let Some(limits) = &resources.limits {
        let requests = resources.requests.get_or_insert_with(BTreeMap::new);
        for (k, v) in limits {
            requests.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    for p in c.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
}

/// Defaults applied to an ephemeral container when it is added (same as regular ones).
pub fn default_ephemeral(c: &mut EphemeralContainer) {
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    if c.image_pull_policy.is_none() {
        c.image_pull_policy = Some(image_pull_policy(c.image.as_deref().unwrap_or("")).into());
    }
}

fn toleration(key: &str) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        toleration_seconds: Some(300),
        ..Toleration::default()
    }
}

/// Fill in what the apiserver defaults and schedule the pod onto the sandbox node.
pub fn default_pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    if spec.service_account_name.is_none() {
        spec.service_account_name = Some(
            spec.service_account
                .clone()
                .unwrap_or_else(|| "default".into()),
        );
    }
    spec.service_account = spec.service_account_name.clone();
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.enable_service_links.get_or_insert(true);
    spec.priority.get_or_insert(0);
    spec.preemption_policy
        .get_or_insert_with(|| "PreemptLowerPriority".into());
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerations.iter().any(|t| t.key.as_deref() == Some(key)) {
            tolerations.push(toleration(key));
        }
    }
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        default_ephemeral(c);
    }
    if spec.node_name.as_deref().unwrap_or("").is_empty() {
        spec.node_name = Some(NODE_NAME.into());
    }
    let qos = crate::policy::qos::qos_class(spec).as_str();
    let now = Time(jiff::Timestamp::now());
    pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        qos_class: Some(qos.into()),
        conditions: Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "True".into(),
            last_transition_time: Some(now),
            ..PodCondition::default()
        }]),
        ..PodStatus::default()
    });
    let md = &mut pod.metadata;
    if md.labels.as_ref().is_some_and(BTreeMap::is_empty) {
        md.labels = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("busybox"), "Always");
        assert_eq!(image_pull_policy("sandbox.local/busybox:latest"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(
            image_pull_policy("sandbox.local/app:nonroot"),
            "IfNotPresent"
        );
        assert_eq!(image_pull_policy("app@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn defaults_match_a_real_apiserver() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "app"},
            "spec": {"containers": [{"name": "app", "image": "sandbox.local/distroless-app:nonroot"}]}
        }))
        .unwrap();
        default_pod(&mut pod);
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["spec"]["securityContext"], serde_json::json!({}));
        assert_eq!(
            v["spec"]["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(
            v["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            v["spec"]["containers"][0]["resources"],
            serde_json::json!({})
        );
        assert_eq!(v["spec"]["nodeName"], NODE_NAME);
        assert_eq!(v["status"]["qosClass"], "BestEffort");
        assert_eq!(v["spec"]["tolerations"].as_array().unwrap().len(), 2);
    }
}
