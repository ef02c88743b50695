//! The sandbox's node: runs pods as real containers with runc, as a kubelet with containerd's
//! CRI plugin would.
//!
//! Per pod a sandbox ("pause") container owns the network, IPC and UTS namespaces; each
//! container joins them, gets its own mount namespace and overlay root over a local image,
//! and its own PID namespace unless the pod shares one (`shareProcessNamespace`) or it is an
//! ephemeral container targeting another container, which joins the target's — exactly what
//! CRI does, so uid/gid/capability and ptrace rules are the kernel's own. The node reports
//! through a [`StatusSink`] like a kubelet through the apiserver.
//!
//! What is not a real node: pods have no network beyond their own loopback (podIP and hostIP
//! are reported as 127.0.0.1), images come from local directories (a "pull" is a lookup),
//! back-offs are shorter than the kubelet's (1 s doubling to 30 s), the RuntimeDefault seccomp
//! profile is containerd's rules in deny-list form, API-backed volumes (configMap, secret,
//! projected) are empty directories (plus a placeholder service account token), gRPC and
//! HTTPS probes are not run, there are no resource limits.
//!
//! Modules: `images`/`builtin`/`oci_layout` (the image store), `plan`/`spec`/`seccomp` (pod
//! spec → OCI config), `runc`/`container`/`console`/`reaper`/`fdio` (processes), `cgroups`
//! (where containers' cgroups go),
//! `pod`/`supervisor`/`pull`/`probe`/`status` (lifecycle), `logs` (output).

mod at_exit;
mod builtin;
mod cgroups;
mod console;
mod container;
mod digest;
mod fdio;
mod images;
mod logs;
mod oci_layout;
mod plan;
mod pod;
mod probe;
mod pull;
mod reaper;
mod runc;
mod seccomp;
mod spec;
mod status;
mod supervisor;
mod sys;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;

pub use builtin::{
    BUSYBOX, CRASHING_APP, DISTROLESS_NONROOT, DISTROLESS_ROOT, crashing_app_config,
    register_builtin_images,
};
pub use digest::sha256_hex;
pub use images::{Image, ImageConfig, ImageStore, normalize_reference};
pub use runc::prerequisites;

use crate::runtime::{
    BoxRead, NodeFaults, Process, Runtime, RuntimeError, StatusSink, StreamOptions,
};
use logs::LogBuffer;
use pod::PodRuntime;
use reaper::Reaper;
use runc::Runc;
use status::{Kind, Record};

/// Lock a std mutex, ignoring poisoning (a panicked holder leaves consistent-enough state for
/// a test double, and teardown must still run).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Node {
    me: Weak<Node>,
    state_dir: PathBuf,
    sink: Arc<dyn StatusSink>,
    faults: Arc<RwLock<NodeFaults>>,
    images: ImageStore,
    runc: Arc<Runc>,
    reaper: &'static Reaper,
    handle: tokio::runtime::Handle,
    pods: Mutex<HashMap<(String, String), Arc<PodRuntime>>>,
    /// Normalised references pulled at least once (for `IfNotPresent`).
    pulled: Mutex<HashSet<String>>,
    /// How long each container start took, from the node taking it up (pull included) to
    /// its process running: (namespace, pod, container, time).
    starts: Mutex<Vec<(String, String, String, Duration)>>,
    /// How long each exec took to start, from the node taking it up to its process running
    /// (`runc exec` returned): (namespace, pod, container, time).
    exec_starts: Mutex<Vec<(String, String, String, Duration)>>,
    pause_rootfs: PathBuf,
    shut_down: std::sync::atomic::AtomicBool,
}

fn internal(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Internal(format!("{what}: {e}"))
}

impl Node {
    /// The log of container `container` of a pod on the node, as `pick` chooses it from the
    /// container's record (`pods/log`).
    fn log_of(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        pick: impl FnOnce(&Record) -> Result<Arc<LogBuffer>, RuntimeError>,
    ) -> Result<Arc<LogBuffer>, RuntimeError> {
        let p = self.pod(namespace, pod).ok_or_else(|| {
            RuntimeError::NotFound(format!("pod {namespace}/{pod} is not running on the node"))
        })?;
        let state = lock(&p.state);
        let record = state.find(container).ok_or_else(|| {
            RuntimeError::BadRequest(format!("container {container} is not valid for pod {pod}"))
        })?;
        pick(record)
    }

    fn read_log(
        &self,
        log: Result<Arc<LogBuffer>, RuntimeError>,
        follow: bool,
        tail_lines: Option<i64>,
    ) -> BoxFuture<'static, Result<BoxRead, RuntimeError>> {
        let _guard = self.handle.enter();
        let reader = log.map(|log| log.reader(follow, tail_lines));
        Box::pin(async move { reader })
    }

    /// A node keeping everything under `state_dir` (bundles, overlays, logs, runc state via
    /// `runc --root`); shutdown removes all of it. Must be called inside a tokio runtime.
    pub fn new(
        state_dir: PathBuf,
        sink: Arc<dyn StatusSink>,
        faults: Arc<RwLock<NodeFaults>>,
    ) -> Result<Arc<Node>, RuntimeError> {
        prerequisites().map_err(RuntimeError::Internal)?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            RuntimeError::Internal("Node::new must be called inside a tokio runtime".into())
        })?;
        std::fs::create_dir_all(&state_dir).map_err(|e| internal("state dir", e))?;
        let state_dir = state_dir
            .canonicalize()
            .map_err(|e| internal("state dir", e))?;
        // The directory is the node's alone (shutdown removes it): refuse anything else.
        let ours = state_dir.join("pods").is_dir() && state_dir.join("runc").is_dir();
        let empty = std::fs::read_dir(&state_dir).map_or(true, |mut d| d.next().is_none());
        if !ours && !empty {
            return Err(RuntimeError::Internal(format!(
                "node state dir {} is not empty and not a sandbox node's: give the node a directory of its own",
                state_dir.display()
            )));
        }
        // A node that died without shutting down (killed test, crash) left this behind.
        sweep(
            &Runc::new(state_dir.join("runc"), state_dir.join("runc-logs")),
            &state_dir,
        );
        for d in ["runc", "runc-logs", "pods"] {
            std::fs::create_dir_all(state_dir.join(d)).map_err(|e| internal("state dir", e))?;
        }
        let pause_rootfs = state_dir.join("pause/rootfs");
        make_pause_rootfs(&pause_rootfs)?;
        at_exit::register(state_dir.clone());
        let reaper = Reaper::global().map_err(|e| internal("reaper", e))?;
        let runc = Arc::new(Runc::new(
            state_dir.join("runc"),
            state_dir.join("runc-logs"),
        ));
        Ok(Arc::new_cyclic(|me| Node {
            me: me.clone(),
            state_dir,
            sink,
            faults,
            images: ImageStore::default(),
            runc,
            reaper,
            handle,
            pods: Mutex::new(HashMap::new()),
            pulled: Mutex::new(HashSet::new()),
            starts: Mutex::new(Vec::new()),
            exec_starts: Mutex::new(Vec::new()),
            pause_rootfs,
            shut_down: false.into(),
        }))
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// The directory given to `runc --root` (tests list it to prove nothing is left).
    pub fn runc_root(&self) -> &Path {
        self.runc.root()
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Every container start so far, oldest first: (namespace, pod, container, how long
    /// from the node taking it up, pull included, to its process running).
    pub fn container_starts(&self) -> Vec<(String, String, String, Duration)> {
        lock(&self.starts).clone()
    }

    /// Every exec start so far, oldest first: (namespace, pod, container, how long from the
    /// node taking the exec up to its process running). Execs without a terminal only: one
    /// with a terminal starts after the answer, once the client's terminal size arrives.
    pub fn exec_starts(&self) -> Vec<(String, String, String, Duration)> {
        lock(&self.exec_starts).clone()
    }

    pub(crate) fn record_start(&self, pod: &Pod, container: &str, took: Duration) {
        lock(&self.starts).push((
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
            container.to_string(),
            took,
        ));
    }

    /// Host pid of a running container's main process (tests read `/proc/<pid>/status`).
    pub fn container_pid(&self, namespace: &str, pod: &str, container: &str) -> Option<i32> {
        let p = self.pod(namespace, pod)?;
        let state = lock(&p.state);
        state
            .find(container)?
            .instance
            .as_ref()
            .filter(|i| i.exited().is_none())
            .map(|i| i.pid)
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodRuntime>> {
        lock(&self.pods)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn running_instance(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<Arc<container::Instance>, RuntimeError> {
        let p = self.pod(namespace, pod).ok_or_else(|| {
            RuntimeError::NotFound(format!("pod {namespace}/{pod} is not running on the node"))
        })?;
        let state = lock(&p.state);
        state
            .find(container)
            .and_then(|r| r.instance.clone())
            .filter(|i| i.exited().is_none())
            .ok_or_else(|| RuntimeError::NotFound(format!("container not found ({container:?})")))
    }

    /// The running instance, or one that already ended but was started to be attached to
    /// (`stdin: true`) and never was: the client still gets its output and exit, as if the
    /// process had waited for it (see [`container::Instance::attach`]).
    fn attachable_instance(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<Arc<container::Instance>, RuntimeError> {
        let not_running = match self.running_instance(namespace, pod, container) {
            Ok(running) => return Ok(running),
            Err(e) => e,
        };
        let late = self.pod(namespace, pod).and_then(|p| {
            let state = lock(&p.state);
            let r = state.find(container)?;
            r.instance
                .as_ref()
                .or(r.last.as_ref())
                .filter(|i| i.awaits_first_attach())
                .cloned()
        });
        late.ok_or(not_running)
    }
}

/// The pause image: the static sandbox-app binary alone (`/pause pause`).
fn make_pause_rootfs(root: &Path) -> Result<(), RuntimeError> {
    let app = crate::static_bin::static_binary("sandbox-app", "sandbox-app")
        .map_err(|e| internal("static sandbox-app for the pause container", e))?;
    for d in ["proc", "sys", "dev", "etc"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| internal("pause rootfs", e))?;
    }
    std::fs::copy(&app, root.join("pause")).map_err(|e| internal("pause rootfs", e))?;
    Ok(())
}

impl Runtime for Node {
    fn run_pod(&self, pod: Pod) {
        let Some(node) = self.me.upgrade() else {
            return;
        };
        let key = (
            pod.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        let dir_name = format!(
            "{}_{}_{}",
            key.0,
            key.1,
            pod.metadata.uid.clone().unwrap_or_else(pod::random_id)
        );
        let p = PodRuntime::new(pod, self.state_dir.join("pods").join(dir_name));
        let previous = {
            let mut pods = lock(&self.pods);
            if self.shut_down.load(std::sync::atomic::Ordering::SeqCst)
                || pods.get(&key).is_some_and(|old| old.uid == p.uid)
            {
                return;
            }
            pods.insert(key, p.clone())
        };
        let _guard = self.handle.enter();
        // A new pod of the same name (new UID) while the old one is still going away: the old
        // one finishes stopping on its own; one the API forgot to delete is stopped now.
        if let Some(old) = previous.filter(|old| !old.cancel.is_cancelled()) {
            let node = node.clone();
            tokio::spawn(async move { node.stop_pod(&old, Duration::from_secs(1)).await });
        }
        p.spawn(node.run_pod(p.clone()));
    }

    fn run_ephemeral(&self, pod: Pod, name: String) {
        let Some(node) = self.me.upgrade() else {
            return;
        };
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let Some(p) = self.pod(&ns, pod.metadata.name.as_deref().unwrap_or("")) else {
            return;
        };
        let Some((c, _)) = pod::container_spec(&pod, &name, Kind::Ephemeral) else {
            return;
        };
        *lock(&p.pod) = pod;
        {
            let mut state = lock(&p.state);
            if state.find(&name).is_some() {
                return;
            }
            state.records.push(Record::new(
                &name,
                Kind::Ephemeral,
                c.image.as_deref().unwrap_or(""),
            ));
        }
        self.publish(&p);
        let _guard = self.handle.enter();
        let pp = p.clone();
        p.spawn(async move {
            node.supervise(pp, name, Kind::Ephemeral, None).await;
        });
    }

    fn delete_pod(
        &self,
        namespace: String,
        name: String,
        grace: Duration,
    ) -> BoxFuture<'static, ()> {
        // The pod meant is the one on the node now, not one created under the same name by
        // the time the future runs.
        let node = self.me.upgrade();
        let p = self.pod(&namespace, &name);
        Box::pin(async move {
            let (Some(node), Some(p)) = (node, p) else {
                return;
            };
            node.stop_pod(&p, grace).await;
            let mut pods = lock(&node.pods);
            let key = (namespace, name);
            if pods
                .get(&key)
                .is_some_and(|current| Arc::ptr_eq(current, &p))
            {
                pods.remove(&key);
            }
        })
    }

    fn exec(
        &self,
        namespace: String,
        pod: String,
        container: String,
        command: Vec<String>,
        streams: StreamOptions,
    ) -> BoxFuture<'static, Result<Process, RuntimeError>> {
        let found = self.running_instance(&namespace, &pod, &container);
        let (runc, reaper, me) = (self.runc.clone(), self.reaper, self.me.clone());
        Box::pin(async move {
            let taken_up = Instant::now();
            let tty = streams.tty;
            let process = found?.exec(&runc, reaper, command, streams).await?;
            if let (false, Some(node)) = (tty, me.upgrade()) {
                lock(&node.exec_starts).push((namespace, pod, container, taken_up.elapsed()));
            }
            Ok(process)
        })
    }

    fn attach(
        &self,
        namespace: String,
        pod: String,
        container: String,
        streams: StreamOptions,
    ) -> BoxFuture<'static, Result<Process, RuntimeError>> {
        let found = self.attachable_instance(&namespace, &pod, &container);
        let _guard = self.handle.enter();
        let attached = found.and_then(|i| i.attach(&container, streams));
        Box::pin(async move { attached })
    }

    fn logs(
        &self,
        namespace: String,
        pod: String,
        container: String,
        follow: bool,
        tail_lines: Option<i64>,
    ) -> BoxFuture<'static, Result<BoxRead, RuntimeError>> {
        let log = self.log_of(&namespace, &pod, &container, |record| {
            if let Some(i) = record.instance.as_ref().or(record.last.as_ref()) {
                return Ok(i.log.clone());
            }
            let reason = record
                .status
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
                .unwrap_or_else(|| "ContainerCreating".into());
            // The kubelet's words (validateContainerLogStatus).
            let why = match reason.as_str() {
                "ErrImagePull" => "image can't be pulled".to_string(),
                "ImagePullBackOff" => "trying and failing to pull image".to_string(),
                _ => reason,
            };
            Err(RuntimeError::BadRequest(format!(
                "container {container:?} in pod {pod:?} is waiting to start: {why}"
            )))
        });
        self.read_log(log, follow, tail_lines)
    }

    fn previous_logs(
        &self,
        namespace: String,
        pod: String,
        container: String,
        tail_lines: Option<i64>,
    ) -> BoxFuture<'static, Result<BoxRead, RuntimeError>> {
        let log = self.log_of(&namespace, &pod, &container, |record| {
            // The kubelet reads the instance `lastState.terminated` names; that is the one
            // kept in `last` (a restarted instance runs as `instance`, a crash-looping one
            // waits for its next start).
            let has_previous = record
                .status
                .last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some());
            match record.last.as_ref().filter(|_| has_previous) {
                Some(i) => Ok(i.log.clone()),
                // The kubelet's words (validateContainerLogStatus).
                None => Err(RuntimeError::BadRequest(format!(
                    "previous terminated container {container:?} in pod {pod:?} not found"
                ))),
            }
        });
        self.read_log(log, false, tail_lines)
    }

    fn shutdown(&self) -> BoxFuture<'static, ()> {
        self.shut_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let node = self.me.upgrade();
        Box::pin(async move {
            let Some(node) = node else { return };
            let pods: Vec<Arc<PodRuntime>> = lock(&node.pods).values().cloned().collect();
            futures::future::join_all(
                pods.iter()
                    .map(|p| node.stop_pod(p, Duration::from_secs(1))),
            )
            .await;
            lock(&node.pods).clear();
            let n = node.clone();
            let _ = tokio::task::spawn_blocking(move || n.sweep()).await;
        })
    }
}

impl Node {
    fn sweep(&self) {
        sweep(&self.runc, &self.state_dir);
        at_exit::forget(&self.state_dir);
    }
}

/// Blocking: remove whatever runc containers, cgroups and mounts are left under `state_dir`,
/// then the directory itself.
fn sweep(runc: &Runc, state_dir: &Path) {
    if runc.root().is_dir() {
        for id in runc.list() {
            let _ = runc.delete_force(&id);
        }
    }
    // Pod directories are named `<namespace>_<name>_<uid>`.
    for entry in std::fs::read_dir(state_dir.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Some((_, uid)) = entry.file_name().to_string_lossy().rsplit_once('_') {
            cgroups::remove_pod(uid);
        }
    }
    for m in sys::mounts_under(state_dir) {
        let _ = sys::unmount(&m);
    }
    let _ = std::fs::remove_dir_all(state_dir);
}

impl Drop for Node {
    /// A node dropped without `shutdown` still leaves no container or mount behind.
    fn drop(&mut self) {
        if !self.shut_down.load(std::sync::atomic::Ordering::SeqCst) {
            self.sweep();
        }
    }
}
