//! Every way a run can fail, one variant per step, each naming the pod or container.
//!
//! Messages are one paragraph a person at 3 a.m. can act on; the fix goes in [`Error::hint`],
//! next to the variant, for the failures we recognise: RBAC 403 (the missing permission and a
//! Role to apply), a 404 of the ephemeralcontainers subresource (the cluster does not offer
//! them), Pod Security rejections (which fields, which profile fits) and image pulls.

use std::time::Duration;

use crate::base::duration::Human;
use crate::base::exit::ExitStatus;

/// A command line that cannot work, said in terms of its flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A permission a step needs, as RBAC spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.subresource {
            Some(sub) => write!(f, "{} {}/{}", self.verb, self.resource, sub),
            None => write!(f, "{} {}", self.verb, self.resource),
        }
    }
}

pub const GET_PODS: Permission = Permission {
    verb: "get",
    resource: "pods",
    subresource: None,
};
pub const PATCH_EPHEMERAL: Permission = Permission {
    verb: "patch",
    resource: "pods",
    subresource: Some("ephemeralcontainers"),
};
pub const CREATE_EXEC: Permission = Permission {
    verb: "create",
    resource: "pods",
    subresource: Some("exec"),
};
pub const WATCH_PODS: Permission = Permission {
    verb: "watch",
    resource: "pods",
    subresource: None,
};

/// Everything a session needs, for the ready-to-apply Role in 403 hints.
pub const SESSION_PERMISSIONS: [Permission; 4] =
    [GET_PODS, WATCH_PODS, PATCH_EPHEMERAL, CREATE_EXEC];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] UsageError),

    #[error("could not load the kubeconfig{}", .path.as_deref().map(|p| format!(" {p}")).unwrap_or_default())]
    Kubeconfig {
        path: Option<String>,
        #[source]
        source: BoxError,
    },

    #[error(
        "no kubeconfig found: --kubeconfig, $KUBECONFIG and ~/.kube/config are all unset or missing"
    )]
    NoKubeconfig,

    #[error(
        "`--context {context}`: the kubeconfig{} has no context {context:?}{}; nothing was sent to any cluster",
        .path.as_deref().map(|p| format!(" {p}")).unwrap_or_default(),
        if .known.is_empty() { String::new() } else { format!(" (its contexts: {})", .known.join(", ")) }
    )]
    UnknownContext {
        context: String,
        path: Option<String>,
        /// Every context the kubeconfig has, in its order.
        known: Vec<String>,
    },

    #[error("could not set up a client for the cluster")]
    Client {
        #[source]
        source: kube::Error,
    },

    #[error("pod {pod} not found in namespace {namespace}")]
    PodNotFound { namespace: String, pod: String },

    #[error("could not read pod {pod} in namespace {namespace}")]
    ReadPod {
        namespace: String,
        pod: String,
        #[source]
        source: kube::Error,
    },

    #[error("{workload} not found in namespace {namespace}")]
    WorkloadNotFound { namespace: String, workload: String },

    #[error("could not read {workload} or its pods in namespace {namespace}")]
    ReadWorkload {
        namespace: String,
        workload: String,
        #[source]
        source: kube::Error,
    },

    #[error("{workload} in namespace {namespace} has no Running and ready pod to debug")]
    NoReadyPod { namespace: String, workload: String },

    #[error("pod {pod} is {phase}{}, not Running: an ephemeral container can only join running containers", .reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    PodNotRunning {
        pod: String,
        phase: String,
        reason: Option<String>,
    },

    #[error(
        "pod {pod} is a static (mirror) pod: the API server does not allow ephemeral containers in static pods"
    )]
    StaticPod { pod: String },

    #[error("pod {pod} runs on a Windows node{}: our debug images and process-namespace targeting are Linux only", if .node.is_empty() { String::new() } else { format!(" ({})", .node) })]
    WindowsNode { pod: String, node: String },

    #[error("pod {pod} has no container {container:?}; its containers are: {}", .containers.join(", "))]
    ContainerNotFound {
        pod: String,
        container: String,
        containers: Vec<String>,
    },

    #[error("{container} is a run-to-completion init container of pod {pod} (it has ended by the time the pod runs); only its regular containers and native sidecars (init containers with restartPolicy: Always) can be targets: {}", .containers.join(", "))]
    InitContainerTarget {
        pod: String,
        container: String,
        containers: Vec<String>,
    },

    #[error("{container} is an ephemeral container of pod {pod}; only its regular containers can be targets: {}", .containers.join(", "))]
    EphemeralContainerTarget {
        pod: String,
        container: String,
        containers: Vec<String>,
    },

    #[error(
        "container {container} of pod {pod} is not running (restarting or finished), so there is no process to join"
    )]
    ContainerNotRunning { pod: String, container: String },

    #[error("not allowed to {step} (pod {pod}, namespace {namespace}): missing {}", list(.missing))]
    Forbidden {
        namespace: String,
        pod: String,
        step: &'static str,
        missing: Vec<Permission>,
        #[source]
        source: kube::Error,
    },

    #[error(
        "this cluster does not serve pods/{pod}/ephemeralcontainers (404): ephemeral containers are unavailable here"
    )]
    EphemeralContainersUnsupported {
        pod: String,
        #[source]
        source: kube::Error,
    },

    #[error("the API server rejected the debug container for pod {pod}")]
    Rejected {
        pod: String,
        pod_security: bool,
        #[source]
        source: kube::Error,
    },

    #[error("could not add the debug container to pod {pod}")]
    Inject {
        pod: String,
        #[source]
        source: kube::Error,
    },

    #[error("debug container {container} in pod {pod} cannot start: {reason}: {message}")]
    StartFailed {
        pod: String,
        container: String,
        image: String,
        reason: String,
        message: String,
    },

    #[error(
        "debug container {container} in pod {pod} did not start within {}{}",
        Human(*.timeout),
        if .events.is_empty() { String::new() } else { format!("; recent events:\n  {}", .events.join("\n  ")) }
    )]
    StartTimeout {
        pod: String,
        container: String,
        timeout: Duration,
        events: Vec<String>,
    },

    #[error("debug container {container} in pod {pod} exited right after starting (exit code {exit_code}{})", .message.as_deref().map(|m| format!(": {}", m.trim())).unwrap_or_default())]
    ContainerExited {
        pod: String,
        container: String,
        exit_code: i32,
        message: Option<String>,
    },

    #[error("lost the watch on pod {pod} while waiting for {container}")]
    Watch {
        pod: String,
        container: String,
        #[source]
        source: kube::Error,
    },

    #[error("could not exec into debug container {container} of pod {pod}")]
    Exec {
        pod: String,
        container: String,
        #[source]
        source: kube::Error,
    },

    #[error("the session with debug container {container} of pod {pod} broke off")]
    Stream {
        pod: String,
        container: String,
        #[source]
        source: BoxError,
    },

    #[error("the terminal could not be set up")]
    Terminal {
        #[source]
        source: std::io::Error,
    },

    #[error("could not list pods {scope}")]
    List {
        scope: String,
        #[source]
        source: kube::Error,
    },

    #[error("could not write the output")]
    Output {
        #[source]
        source: BoxError,
    },

    #[error("{what} {}", .path.display())]
    LocalFile {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} in container {container} of pod {pod}: {message}")]
    RemoteFile {
        pod: String,
        container: String,
        path: String,
        message: String,
    },

    #[error(
        "{path} is read-only in the target (container {container} of pod {pod}): {why}; {}",
        if .writable.is_empty() { "the container has no writable volume to copy into".to_string() } else { format!("copy into a writable volume such as {}", .writable.join(", ")) }
    )]
    ReadOnlyTarget {
        pod: String,
        container: String,
        path: String,
        why: String,
        writable: Vec<String>,
    },

    #[error("could not write {path} in container {container} of pod {pod}: {message}")]
    Upload {
        pod: String,
        container: String,
        path: String,
        uid: Option<i64>,
        message: String,
    },

    /// A failure a higher layer owns ([`Failure`]): a Pod Security refusal, a copy the
    /// extractor stopped, a snapshot not written, a runbook that cannot run.
    #[error(transparent)]
    Step(StepFailure),

    #[error("no pods to run on: none {scope}")]
    NoPodsSelected { scope: String },

    #[error("could not write to --out-dir {}", .path.display())]
    OutDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn list(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The HTTP status of an API error, if that is what `error` is.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        kube::Error::UpgradeConnection(kube::client::UpgradeConnectionError::ProtocolSwitch(
            code,
        )) => Some(code.as_u16()),
        _ => None,
    }
}

/// The API server's message, if `error` carries one.
pub fn api_message(error: &kube::Error) -> Option<&str> {
    match error {
        kube::Error::Api(status) => Some(status.message.as_str()),
        _ => None,
    }
}

/// A kube error in one line: the server's message and status for API errors.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => other.to_string(),
    }
}

/// A Role granting `permissions` in `namespace`, ready for `kubectl apply -f -`.
pub fn role_snippet(namespace: &str, permissions: &[Permission]) -> String {
    let mut rules = String::new();
    for p in permissions {
        let resource = match p.subresource {
            Some(sub) => format!("{}/{}", p.resource, sub),
            None => p.resource.to_string(),
        };
        rules.push_str(&format!(
            "  - apiGroups: [\"\"]\n    resources: [\"{resource}\"]\n    verbs: [\"{}\"]\n",
            p.verb
        ));
    }
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: distroless-debug\n  namespace: {namespace}\nrules:\n{rules}"
    )
}

impl Error {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            // A runbook that cannot run is a command line that cannot work: nothing was sent.
            Error::Usage(_) | Error::UnknownContext { .. } => ExitStatus::Usage,
            Error::Step(step) => step.0.exit_status(),
            _ => ExitStatus::Failure,
        }
    }

    /// What to do about it, for the failures we recognise.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::NoKubeconfig => "pass --kubeconfig PATH or set KUBECONFIG".to_string(),
            Error::UnknownContext { known, .. } if known.is_empty() => {
                "no kubeconfig was found to name contexts: pass --kubeconfig PATH or set KUBECONFIG".to_string()
            }
            Error::UnknownContext { .. } => {
                "`kubectl config get-contexts` lists them; a context from another file needs --kubeconfig PATH or KUBECONFIG (several files joined by `:`)".to_string()
            }
            Error::Kubeconfig { .. } => {
                "check that the file exists and is a kubeconfig (`kubectl config view` reads the same files); pass --kubeconfig PATH or set KUBECONFIG (several files joined by `:`)".to_string()
            }
            Error::PodNotFound { namespace, .. } => format!(
                "check the name and the namespace (`-n`; this looked in {namespace}); `kubectl get pods -n {namespace}` lists them"
            ),
            Error::WorkloadNotFound { .. } => "check the name and the namespace (`-n`)".to_string(),
            Error::NoReadyPod { .. } => {
                "wait until one of its pods is ready, or name a pod directly: pod/NAME".to_string()
            }
            Error::PodNotRunning { .. } | Error::ContainerNotRunning { .. } => {
                "`kubectl describe pod` shows why; debug it once it runs, or look at `kubectl logs --previous`".to_string()
            }
            Error::StaticPod { .. } => {
                "debug it on the node instead, e.g. `kubectl debug node/NODE`".to_string()
            }
            Error::ContainerNotFound { containers, .. }
            | Error::InitContainerTarget { containers, .. }
            | Error::EphemeralContainerTarget { containers, .. } => match containers.first() {
                Some(first) => format!("pass `-c` with one of them, e.g. `-c {first}`"),
                None => "the pod has no regular containers".to_string(),
            },
            Error::Forbidden { namespace, missing, .. } => {
                let mut needed: Vec<Permission> = SESSION_PERMISSIONS.to_vec();
                for p in missing {
                    if !needed.contains(p) {
                        needed.push(*p);
                    }
                }
                format!(
                    "ask an admin to grant {} (`kubectl auth can-i {} -n {namespace}` checks it); a Role with everything a session needs (bind it with a RoleBinding):\n{}",
                    list(missing),
                    missing.first().map(|p| p.to_string()).unwrap_or_default(),
                    role_snippet(namespace, &needed)
                )
            }
            Error::EphemeralContainersUnsupported { .. } => {
                "ephemeral containers are GA since Kubernetes 1.25; an older cluster or an API proxy that hides subresources cannot be debugged this way".to_string()
            }
            Error::Rejected { pod_security: true, .. } => {
                "the namespace's Pod Security level refused the fields named above; a lower profile (`--profile auto` or `restricted`) usually fits".to_string()
            }
            Error::StartFailed { image, reason, .. } if reason.contains("Image") || reason == "ErrImagePull" => {
                format!(
                    "the node could not pull {image}: check the name and that the node can reach the registry; set DISTROLESS_DEBUG_REGISTRY to a mirror, or pass --image with an image the node already has"
                )
            }
            Error::NoPodsSelected { .. } => {
                "check the selector and the namespace (`-n`, or `-A` for all namespaces); `kubectl get pods -l SELECTOR` shows what it matches".to_string()
            }
            Error::StartTimeout { .. } => {
                "a slow image pull? raise --timeout, or use a smaller --toolkit".to_string()
            }
            Error::Exec { source, .. } if status_code(source) == Some(403) => {
                format!("ask an admin to grant `{CREATE_EXEC}` in this namespace")
            }
            Error::RemoteFile { pod, .. } => format!(
                "paths are as the target sees them (its root, its symlinks); `kubectl distroless-debug pod/{pod} -- ls -la /target/DIR` lists a directory"
            ),
            Error::ReadOnlyTarget { writable, .. } if writable.is_empty() => {
                "mount an emptyDir volume in the pod spec for files you need to drop in, or copy into a debug session's own /tmp (`kubectl distroless-debug pod/NAME`)".to_string()
            }
            Error::Upload { uid, message, .. } if message.contains("Permission denied") => format!(
                "the debug container runs as the target's uid{}: it may write only where the target may; copy into a directory it owns or a writable volume",
                uid.map(|u| format!(" {u}")).unwrap_or_default()
            ),
            Error::Stream { .. } => {
                "the debug container stops by itself (--idle, --ttl); `kubectl distroless-debug cleanup` stops it now".to_string()
            }
            Error::Step(step) => return step.0.hint(),
            _ => return None,
        })
    }

    /// The higher layer's failure this carries, if it is an `F`.
    #[cfg(test)]
    pub fn step<F: Failure>(&self) -> Option<&F> {
        match self {
            Error::Step(step) => (&*step.0 as &(dyn std::error::Error + 'static)).downcast_ref(),
            _ => None,
        }
    }
}

/// A failure of a step above this layer, carried through [`Error`] as itself: its type, its
/// message, its sources and its hint stay with the code that owns them, the way kube-rs's
/// higher errors wrap lower ones, so that this module never names a type from above.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// What to do about it, for the failures we recognise.
    fn hint(&self) -> Option<String> {
        None
    }

    /// How the run ends: a failure, unless the command line itself cannot work.
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Failure
    }
}

/// A boxed [`Failure`], shown exactly as the failure itself (message and sources).
pub struct StepFailure(Box<dyn Failure>);

impl std::fmt::Debug for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for StepFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl<F: Failure> From<F> for Error {
    fn from(failure: F) -> Self {
        Error::Step(StepFailure(Box::new(failure)))
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
