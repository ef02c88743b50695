//! The contract between the API double (`api/`) and the node that runs containers (`node/`).
//!
//! The API server owns the objects and their resourceVersions; the node owns processes. The
//! node never touches the store directly: it reports container states and events through a
//! [`StatusSink`], and the API server turns them into status updates and watch events, exactly
//! as a kubelet reports through the apiserver. Keeping this seam narrow lets the API be tested
//! with a fake node and the node with a fake sink.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

pub type BoxRead = Pin<Box<dyn AsyncRead + Send + Unpin>>;
pub type BoxWrite = Pin<Box<dyn AsyncWrite + Send + Unpin>>;

/// Which streams a client asked for (`stdin=true&stdout=true&tty=true` on exec/attach).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Terminal size as sent on the resize channel (`{"Width":80,"Height":24}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessExit {
    /// Exited normally with this code (0 is success).
    Code(i32),
    /// Killed by this signal; kubelet/CRI reports it as exit code 128 + signal.
    Signal(i32),
    /// The process could not be started at all (e.g. runc: `exec: "sh": executable file not
    /// found in $PATH`). The message is what the runtime said; the API server reports it as a
    /// Failure Status on the error channel, as a real kubelet does.
    StartFailed(String),
}

impl ProcessExit {
    /// The exit code as Kubernetes reports it (`128 + signal` for a signal).
    pub fn code(&self) -> i32 {
        match self {
            ProcessExit::Code(c) => *c,
            ProcessExit::Signal(s) => 128 + s,
            ProcessExit::StartFailed(_) => 126,
        }
    }
}

/// A process started by `exec`, or the container's main process reached by `attach`.
///
/// With a tty, all output arrives on `stdout` and `stderr` is `None`. Dropping `stdin`
/// closes the process's standard input (EOF), as closing channel 0 does in v5.
pub struct Process {
    pub stdin: Option<BoxWrite>,
    pub stdout: Option<BoxRead>,
    pub stderr: Option<BoxRead>,
    /// Present when a tty was requested: sizes sent here are applied to the pty.
    pub resize: Option<mpsc::UnboundedSender<TerminalSize>>,
    /// Resolves when the process ends (for attach: when the container's process ends).
    pub exit: oneshot::Receiver<ProcessExit>,
}

/// Why a node request failed; the API server maps each to the real apiserver's Status.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Pod or container unknown to the node, or not running (exec/attach into it is refused).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be served in the container's current state (e.g. attach to a
    /// container without `stdin: true` while asking for stdin).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Internal(String),
}

/// Where the node reports what it observes. Implemented by the API server's store.
pub trait StatusSink: Send + Sync + 'static {
    /// Apply `update` to the current status of pod `namespace/name` (if the pod still exists),
    /// bump its resourceVersion and notify watchers. The node sets phase, conditions,
    /// containerStatuses, ephemeralContainerStatuses, podIP/hostIP and startTime through this.
    fn update_status(&self, namespace: &str, name: &str, update: &mut dyn FnMut(&mut PodStatus));

    /// Record a core/v1 Event about the pod, as a kubelet does (`reason` e.g. `Pulling`,
    /// `Pulled`, `Created`, `Started`, `Failed`, `BackOff`, `Killing`; `type_` `Normal` or
    /// `Warning`; `field_path` e.g. `spec.containers{app}` or `spec.ephemeralContainers{dbg-x}`).
    fn event(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        reason: &str,
        message: &str,
        field_path: Option<&str>,
    );

    /// The data of a ConfigMap or Secret of the pod's namespace that its containers' `env`
    /// and `envFrom` refer to, Secret values decoded; `None` when it does not exist (the
    /// kubelet's configMapManager/secretManager). The default knows none.
    fn config_data(&self, kind: ConfigKind, namespace: &str, name: &str) -> Option<ConfigData> {
        let _ = (kind, namespace, name);
        None
    }
}

/// The keys and values of a ConfigMap or Secret.
pub type ConfigData = std::collections::BTreeMap<String, String>;

/// What a container's environment can refer to by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    ConfigMap,
    Secret,
}

/// What the API server asks of the node.
///
/// Methods that start things return at once; progress and results flow back through the
/// [`StatusSink`] given to the node when it was made.
pub trait Runtime: Send + Sync + 'static {
    /// Start a newly created pod (its sandbox, then its containers). `pod` is the stored object
    /// with server-side defaults applied.
    fn run_pod(&self, pod: Pod);

    /// Start the ephemeral container `name`, just added to `pod` (the stored object after the
    /// update). Ephemeral containers start once and are never restarted.
    fn run_ephemeral(&self, pod: Pod, name: String);

    /// Stop every process of the pod, giving each `grace` after SIGTERM before SIGKILL, then
    /// release its resources (mounts, runc state). Completes when all of it is gone.
    fn delete_pod(
        &self,
        namespace: String,
        name: String,
        grace: Duration,
    ) -> BoxFuture<'static, ()>;

    /// Run `command` in a running container of the pod (regular or ephemeral), as
    /// `pods/exec` does.
    fn exec(
        &self,
        namespace: String,
        pod: String,
        container: String,
        command: Vec<String>,
        streams: StreamOptions,
    ) -> BoxFuture<'static, Result<Process, RuntimeError>>;

    /// Connect to the main process of a running container, as `pods/attach` does.
    fn attach(
        &self,
        namespace: String,
        pod: String,
        container: String,
        streams: StreamOptions,
    ) -> BoxFuture<'static, Result<Process, RuntimeError>>;

    /// The container's log (what its main process wrote to stdout and stderr), as `pods/log`.
    /// With `follow`, the stream stays open until the container ends.
    fn logs(
        &self,
        namespace: String,
        pod: String,
        container: String,
        follow: bool,
        tail_lines: Option<i64>,
    ) -> BoxFuture<'static, Result<BoxRead, RuntimeError>>;

    /// The log of the container's previous instance, the one its `lastState` reports
    /// (`pods/log?previous=true`, what `kubectl logs --previous` reads of a crash loop).
    fn previous_logs(
        &self,
        namespace: String,
        pod: String,
        container: String,
        tail_lines: Option<i64>,
    ) -> BoxFuture<'static, Result<BoxRead, RuntimeError>>;

    /// Stop everything this node started and remove every mount, runc container and file it
    /// made. Called once at sandbox shutdown.
    fn shutdown(&self) -> BoxFuture<'static, ()>;
}

/// Faults the node applies (set through the sandbox's fault controls).
#[derive(Debug, Clone, Default)]
pub struct NodeFaults {
    /// Each image pull takes at least this long.
    pub pull_delay: Duration,
    /// Image references whose pull fails (ErrImagePull, then ImagePullBackOff).
    pub fail_pulls: Vec<String>,
    /// Leave `status.containerStatuses[].user` out, as kubelets before 1.33 (or with the
    /// SupplementalGroupsPolicy gate off) do.
    pub hide_container_user: bool,
    /// New containers get cgroups that name neither the pod nor the container, as under a
    /// sandboxed runtime (gVisor, Kata): `/proc/<pid>/cgroup` gives no container ID away.
    pub opaque_cgroups: bool,
}

/// Shared handle type the API server keeps.
pub type SharedRuntime = Arc<dyn Runtime>;
