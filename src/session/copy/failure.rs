//! How a `--copy` session fails, each with the object it concerns and the fix.

use std::time::Duration;

use crate::base::duration::Human;
use crate::base::error::{Failure, Permission, describe, role_snippet};
use crate::base::exit::ExitStatus;

const fn pods(verb: &'static str, subresource: Option<&'static str>) -> Permission {
    Permission {
        verb,
        resource: "pods",
        subresource,
    }
}

/// What a `--copy` session needs, for the Role in a 403's hint.
pub const COPY_PERMISSIONS: [Permission; 6] = [
    pods("get", None),
    pods("list", None),
    pods("watch", None),
    pods("create", None),
    pods("delete", None),
    pods("create", Some("exec")),
];

#[derive(Debug, thiserror::Error)]
pub enum CopyFailure {
    #[error(
        "not allowed to {permission} in namespace {namespace}, which a `--copy` session needs to {step} (copy {pod}){}",
        if *.created { "" } else { "; nothing was created" }
    )]
    Forbidden {
        namespace: String,
        pod: String,
        permission: Permission,
        step: &'static str,
        /// Whether the copy exists (a forbidden delete leaves it).
        created: bool,
        #[source]
        source: kube::Error,
    },

    #[error("the API server rejected copy {pod} of {original}: {}; nothing was created", describe(.source))]
    Rejected {
        pod: String,
        original: String,
        pod_security: bool,
        #[source]
        source: kube::Error,
    },

    #[error("could not create copy {pod} of {original}")]
    Create {
        pod: String,
        original: String,
        #[source]
        source: kube::Error,
    },

    #[error(
        "container {container} of copy {pod} cannot be created: {message} ({reason}); the copy is deleted"
    )]
    ContainerConfig {
        pod: String,
        container: String,
        reason: String,
        message: String,
    },

    #[error(
        "container {container} of copy {pod} cannot start: the node cannot pull image {image}: {reason}: {message}; the copy is deleted"
    )]
    ImagePull {
        pod: String,
        container: String,
        image: String,
        reason: String,
        message: String,
    },

    #[error("container {container} of copy {pod} ended before the session could start (exit code {exit_code}{}); the copy is deleted", .message.as_deref().map(|m| format!(": {}", m.trim())).unwrap_or_default())]
    Ended {
        pod: String,
        container: String,
        exit_code: i32,
        message: Option<String>,
    },

    #[error("copy {pod} is {phase}{} before the session could start", .reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    PodEnded {
        pod: String,
        phase: String,
        reason: Option<String>,
    },

    #[error("copy {pod} was deleted while the session waited for it")]
    Gone { pod: String },

    #[error(
        "copy {pod} did not start within {}{}; the copy is deleted",
        Human(*.timeout),
        if .events.is_empty() { String::new() } else { format!("; recent events:\n  {}", .events.join("\n  ")) }
    )]
    Timeout {
        pod: String,
        timeout: Duration,
        events: Vec<String>,
    },

    #[error("lost the watch on copy {pod} while waiting for it")]
    Watch {
        pod: String,
        #[source]
        source: kube::Error,
    },

    #[error("{workload} in namespace {namespace} has no pod template to copy")]
    NoTemplate { namespace: String, workload: String },

    #[error("{container} is an init container of {pod}; `--copy` holds a regular container: {}", .containers.join(", "))]
    InitContainer {
        pod: String,
        container: String,
        containers: Vec<String>,
    },

    #[error(
        "`--copy` needs one of our images (the held target runs our agent, copied from it): `--image {image}` has none"
    )]
    NeedsAgent { image: String },
}

impl Failure for CopyFailure {
    fn hint(&self) -> Option<String> {
        Some(match self {
            CopyFailure::Forbidden {
                namespace,
                permission,
                ..
            } => format!(
                "ask an admin to grant `{permission}` (`kubectl auth can-i {permission} -n {namespace}` checks it); a Role with everything a `--copy` session needs (bind it with a RoleBinding):\n{}",
                role_snippet(namespace, &COPY_PERMISSIONS)
            ),
            CopyFailure::Rejected {
                pod_security: true, ..
            } => "the namespace's Pod Security level refuses the fields named above; a copy of a target that runs as root, or a stronger `--profile`, needs a namespace whose level allows it".to_string(),
            CopyFailure::ContainerConfig { .. } => {
                "the copy uses the original's env and volumes: create the Secret or ConfigMap it names (or its missing key), then try again; `kubectl describe pod` on the original shows the same".to_string()
            }
            CopyFailure::ImagePull { .. } => {
                "check the image name and that the node can reach its registry; for our debug image, set DISTROLESS_DEBUG_REGISTRY to a mirror".to_string()
            }
            CopyFailure::Timeout { .. } => {
                "a slow image pull or no node to schedule on? raise --timeout; `--same-node` puts the copy where the original ran".to_string()
            }
            CopyFailure::InitContainer { containers, .. } => match containers.first() {
                Some(first) => format!("pass `-c` with one of them, e.g. `-c {first}`"),
                None => return None,
            },
            CopyFailure::NeedsAgent { .. } => {
                "drop `--image`, or pick one of ours with `--toolkit`".to_string()
            }
            _ => return None,
        })
    }

    fn exit_status(&self) -> ExitStatus {
        match self {
            CopyFailure::InitContainer { .. } | CopyFailure::NeedsAgent { .. } => ExitStatus::Usage,
            _ => ExitStatus::Failure,
        }
    }
}
