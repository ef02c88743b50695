//! The copy pod, as a pure function of the options, the original pod and the resolved
//! entrypoint (docs/copy.md).
//!
//! No client and no randomness inside [`copy_pod_for`]: the name suffix and the session's
//! facts are passed in, so every rule is table-tested. The copy keeps what the target needs
//! to behave as it did (images, env, volumes, service account, security contexts, scheduling
//! constraints) and drops what would make anything else treat it as the original: its
//! labels (Services, controllers and disruption budgets select by them), owner references,
//! probes (a held target never gets ready), `nodeName` (unless `--same-node`) and status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, Pod, PodSpec, SeccompProfile,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::session::copy::options::CopyPodOptions;
use crate::session::identity::Identity;
use crate::session::options::DebugOptions;
use crate::session::spec::{
    AGENT, DebugContainer, ENV_PROFILE, ENV_REASON, ENV_STARTED, ENV_USER, SessionFacts, State,
    TargetProcess, ephemeral_container_for,
};

/// Every copy of ours carries this label (`"true"`): `ls` and `cleanup` select by it.
pub const LABEL_COPY: &str = "distroless-debug.io/copy";
/// The original pod's (or workload's) name, as a label value.
pub const LABEL_COPY_OF: &str = "distroless-debug.io/copy-of";
/// The held entrypoint, a JSON array.
pub const ANNOTATION_ORIGINAL_COMMAND: &str = "distroless-debug.io/original-command";
/// The target container's name.
pub const ANNOTATION_TARGET: &str = "distroless-debug.io/target-container";

/// The emptyDir the install init container puts the agent in, shared by the three.
pub const VOLUME: &str = "distroless-debug";
pub const MOUNT: &str = "/.distroless-debug";
/// The agent's copy in that volume, and the held agent's socket.
pub const HELD_AGENT: &str = "/.distroless-debug/agent";
pub const SOCKET: &str = "/.distroless-debug/start.sock";
/// Tells `start` in the debug container where the held agent listens.
pub const ENV_START_SOCKET: &str = "DISTROLESS_DEBUG_START_SOCKET";

/// The init container that copies the agent into the volume.
pub const INSTALL_CONTAINER: &str = "distroless-debug-install";
/// Our debug container in the copy (a regular container).
pub const DEBUG_CONTAINER: &str = "distroless-debug";

/// Annotations of the original that would mislead in a copy: the kubelet's own (a static
/// pod's mirror marks) and `kubectl apply`'s record of the original's manifest.
const DROPPED_ANNOTATION_PREFIXES: [&str; 2] = [
    "kubernetes.io/config.",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// What the copy is made from.
#[derive(Debug, Clone, Copy)]
pub struct CopySource<'a> {
    /// The original pod, or a pod made of a workload's template.
    pub pod: &'a Pod,
    /// The original's name: the pod's, or the workload's for a template.
    pub original: &'a str,
    /// The target container.
    pub container: &'a str,
}

/// The copy's name: `<original>-dbg-<suffix>`, the original cut so the whole stays a valid
/// pod name (253 characters) and ends in a letter or digit before `-dbg-`.
pub fn copy_name(original: &str, suffix: &str) -> String {
    let room = 253 - "-dbg-".len() - suffix.len();
    let base = original[..original.len().min(room)].trim_end_matches(['-', '.']);
    format!("{base}-dbg-{suffix}")
}

/// `name` as a label value (at most 63 characters, alphanumeric at both ends): as it is when
/// it fits, else its first 52 characters and 10 hex digits of its sha256, so two long names
/// stay apart.
pub fn label_value(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_string();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let hex: String = digest.as_ref()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let head = name[..52].trim_end_matches(['-', '.', '_']);
    format!("{head}-{hex}")
}

/// The held target's command: the agent from the volume, holding `argv` until `start`.
pub fn held_command(argv: &[String]) -> Vec<String> {
    let mut command = [HELD_AGENT, "entrypoint", "--socket", SOCKET, "--"]
        .map(String::from)
        .to_vec();
    command.extend_from_slice(argv);
    command
}

fn mount() -> VolumeMount {
    VolumeMount {
        name: VOLUME.to_string(),
        mount_path: MOUNT.to_string(),
        ..VolumeMount::default()
    }
}

fn without_probes(mut container: Container) -> Container {
    container.liveness_probe = None;
    container.readiness_probe = None;
    container.startup_probe = None;
    container
}

/// The init container that copies the agent's static binary into the volume, as the
/// target's uid/gid (so the held target may run it) and with no privilege at all.
fn install_container(image: &str, identity: &Identity) -> Container {
    let least = SecurityContext {
        run_as_user: identity.uid(),
        run_as_group: identity.gid(),
        run_as_non_root: identity.uid().filter(|uid| *uid != 0).map(|_| true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    };
    Container {
        name: INSTALL_CONTAINER.to_string(),
        image: Some(image.to_string()),
        command: Some(
            [&format!("/usr/local/bin/{AGENT}"), "install", HELD_AGENT]
                .map(|s| s.to_string())
                .to_vec(),
        ),
        security_context: Some(least),
        volume_mounts: Some(vec![mount()]),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..Container::default()
    }
}

/// Our debug container: a session's ephemeral container (image, `hold`, env, security context
/// of the profile) as a regular container beside the held target, with the volume and the
/// socket's path. The target's container ID is not known yet: each exec passes it, as in a
/// session.
fn debug_container(
    session: &DebugOptions,
    source: &CopySource<'_>,
    identity: &Identity,
    facts: &SessionFacts,
    suffix: &str,
) -> Container {
    let process = TargetProcess {
        container: source.container.to_string(),
        ..TargetProcess::default()
    };
    let ephemeral =
        ephemeral_container_for(session, source.container, &process, identity, facts, suffix);
    let mut env = ephemeral.env.unwrap_or_default();
    env.push(EnvVar {
        name: ENV_START_SOCKET.to_string(),
        value: Some(SOCKET.to_string()),
        value_from: None,
    });
    Container {
        name: DEBUG_CONTAINER.to_string(),
        image: ephemeral.image,
        command: ephemeral.command,
        env: Some(env),
        security_context: ephemeral.security_context,
        termination_message_policy: ephemeral.termination_message_policy,
        volume_mounts: Some(vec![mount()]),
        stdin: Some(true),
        tty: Some(true),
        ..Container::default()
    }
}

/// The copy of `source` for a `--copy` session holding `argv` (the resolved entrypoint).
pub fn copy_pod_for(
    session: &DebugOptions,
    copy: &CopyPodOptions,
    source: &CopySource<'_>,
    argv: &[String],
    identity: &Identity,
    facts: &SessionFacts,
    suffix: &str,
) -> Pod {
    let original_spec = source.pod.spec.clone().unwrap_or_default();
    let image = session.image.reference();

    let containers = original_spec
        .containers
        .iter()
        .cloned()
        .map(without_probes)
        .map(|mut container| {
            if container.name == source.container {
                container.command = Some(held_command(argv));
                container.args = None;
                container
                    .volume_mounts
                    .get_or_insert_with(Vec::new)
                    .push(mount());
            }
            container
        })
        .chain(std::iter::once(debug_container(
            session, source, identity, facts, suffix,
        )))
        .collect();
    let init_containers = std::iter::once(install_container(&image, identity))
        .chain(
            original_spec
                .init_containers
                .iter()
                .flatten()
                .cloned()
                .map(without_probes),
        )
        .collect();
    let mut volumes = original_spec.volumes.clone().unwrap_or_default();
    volumes.push(Volume {
        name: VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    let spec = PodSpec {
        containers,
        init_containers: Some(init_containers),
        ephemeral_containers: None,
        volumes: Some(volumes),
        node_name: original_spec.node_name.clone().filter(|_| copy.same_node),
        restart_policy: Some("Never".to_string()),
        // The server's own safety net: the pod ends at --ttl even if nothing else ends it.
        active_deadline_seconds: (!session.ttl.is_zero())
            .then(|| i64::try_from(session.ttl.as_secs().max(1)).unwrap_or(i64::MAX)),
        share_process_namespace: Some(true),
        ..original_spec
    };

    let labels = BTreeMap::from([
        (LABEL_COPY.to_string(), "true".to_string()),
        (LABEL_COPY_OF.to_string(), label_value(source.original)),
    ]);
    let mut annotations: BTreeMap<String, String> = source
        .pod
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| {
            !DROPPED_ANNOTATION_PREFIXES
                .iter()
                .any(|p| key.starts_with(p))
        })
        .collect();
    annotations.insert(
        ANNOTATION_ORIGINAL_COMMAND.to_string(),
        serde_json::to_string(argv).unwrap_or_default(),
    );
    annotations.insert(ANNOTATION_TARGET.to_string(), source.container.to_string());
    // The default container of `kubectl exec` and `logs` on the copy is the held target.
    annotations.insert(
        "kubectl.kubernetes.io/default-container".to_string(),
        source.container.to_string(),
    );

    Pod {
        metadata: ObjectMeta {
            name: Some(copy_name(source.original, suffix)),
            namespace: source.pod.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Whether `pod` is a copy of ours (by its label).
pub fn is_copy(pod: &Pod) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_COPY))
        .is_some_and(|v| v == "true")
}

/// The debug container of a copy of ours, as `ls` lists it beside ephemeral ones: the pod is
/// the copy, the target its held container.
pub fn copy_in(pod: &Pod) -> Option<DebugContainer> {
    if !is_copy(pod) {
        return None;
    }
    let debug = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == DEBUG_CONTAINER)?;
    let env_of = |name: &str| {
        debug
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.iter().find(|s| s.name == DEBUG_CONTAINER));
    Some(DebugContainer {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        name: DEBUG_CONTAINER.to_string(),
        target: pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_TARGET))
            .cloned()
            .unwrap_or_default(),
        image: debug.image.clone().unwrap_or_default(),
        state: State::of(status.and_then(|s| s.state.as_ref())),
        user: env_of(ENV_USER).unwrap_or_default(),
        reason: env_of(ENV_REASON).unwrap_or_default(),
        started: env_of(ENV_STARTED),
        profile: env_of(ENV_PROFILE).unwrap_or_default(),
        has_agent: true,
        target_id: None,
    })
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
