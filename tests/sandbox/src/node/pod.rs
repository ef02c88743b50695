//! One pod on the node: its sandbox ("pause") container that owns the network, IPC and UTS
//! namespaces, its files (/etc/hosts, ...), starting its containers in order, and its
//! teardown. Each container's life is in [`super::supervisor`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::{Mutex as AsyncMutex, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cgroups;
use super::container::{Instance, InstanceSpec, remove};
use super::spec::{ContainerPlan, Identity, Namespace, Namespaces, ProcessPlan};
use super::status::{self, Kind, PodState, Record};
use super::supervisor::Backoff;
use super::{Node, lock};
use crate::policy::qos::qos_class;
use crate::runtime::ProcessExit;

/// A running container of the pod: its name, kind and instance.
type Running = (String, Kind, Arc<Instance>);

/// The sandbox container of a pod.
pub struct Sandbox {
    pub instance: Arc<Instance>,
}

pub struct PodRuntime {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub dir: PathBuf,
    /// The pod's cgroup (`/kubepods/<qos>/pod<uid>`), parent of its containers'.
    pub cgroup: String,
    /// The latest stored Pod (updated when ephemeral containers are added).
    pub pod: Mutex<Pod>,
    pub state: Mutex<PodState>,
    pub cancel: CancellationToken,
    /// Cancelled once the native sidecars are being stopped for good (the main containers
    /// have all completed): they are restarted no more.
    pub sidecars_stopping: CancellationToken,
    /// The pause process's pid once the sandbox runs.
    pub sandbox_pid: watch::Sender<Option<i32>>,
    pub sandbox: Mutex<Option<Sandbox>>,
    /// Bumped at every status change the node publishes (waiters re-read the state).
    pub changed: watch::Sender<u64>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    pub stopping: AsyncMutex<bool>,
}

pub fn random_id() -> String {
    let mut b = [0u8; 32];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A native sidecar (KEP-753): an init container with `restartPolicy: Always`.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

pub fn restart_policy(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into())
}

fn hostname_of(pod: &Pod) -> String {
    let h = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_else(|| "pod".into());
    h.chars().take(63).collect()
}

/// A pod container (regular, init, or ephemeral as a Container) and its target, by name.
pub fn container_spec(pod: &Pod, name: &str, kind: Kind) -> Option<(Container, Option<String>)> {
    let spec = pod.spec.as_ref()?;
    match kind {
        Kind::Regular => spec
            .containers
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .map(|c| (c, None)),
        Kind::Init => spec
            .init_containers
            .iter()
            .flatten()
            .find(|c| c.name == name)
            .cloned()
            .map(|c| (c, None)),
        Kind::Ephemeral => {
            let e = spec
                .ephemeral_containers
                .iter()
                .flatten()
                .find(|c| c.name == name)?;
            // Same field names; serde drops targetContainerName and keeps the rest.
            let c: Container = serde_json::to_value(e)
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())?;
            Some((c, e.target_container_name.clone()))
        }
    }
}

impl PodRuntime {
    pub fn new(pod: Pod, dir: PathBuf) -> Arc<PodRuntime> {
        let mut records = Vec::new();
        if let Some(spec) = &pod.spec {
            for c in spec.init_containers.iter().flatten() {
                let mut r = Record::new(&c.name, Kind::Init, c.image.as_deref().unwrap_or(""));
                r.restartable = is_sidecar(c);
                records.push(r);
            }
            let has_init = spec.init_containers.as_ref().is_some_and(|i| !i.is_empty());
            for c in &spec.containers {
                let mut r = Record::new(&c.name, Kind::Regular, c.image.as_deref().unwrap_or(""));
                if has_init {
                    r.status.state = Some(status::waiting("PodInitializing", None));
                }
                records.push(r);
            }
        }
        let has_init = pod
            .spec
            .as_ref()
            .is_some_and(|s| s.init_containers.as_ref().is_some_and(|i| !i.is_empty()));
        Arc::new(PodRuntime {
            namespace: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            cgroup: cgroups::pod_cgroup(
                qos_class(&pod.spec.clone().unwrap_or_default()),
                pod.metadata.uid.as_deref().unwrap_or_default(),
            ),
            dir,
            state: Mutex::new(PodState {
                records,
                start_time: Some(status::now()),
                sandbox_ready: false,
                initialized: !has_init,
                init_failed: false,
                restart_policy: restart_policy(&pod),
                conditions: Vec::new(),
                deadline_exceeded: false,
            }),
            pod: Mutex::new(pod),
            cancel: CancellationToken::new(),
            sidecars_stopping: CancellationToken::new(),
            sandbox_pid: watch::channel(None).0,
            sandbox: Mutex::new(None),
            changed: watch::channel(0).0,
            tasks: Mutex::new(Vec::new()),
            stopping: AsyncMutex::new(false),
        })
    }

    /// Spawn a task that belongs to the pod (joined on delete); refused once the pod stops.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) -> bool {
        let mut tasks = lock(&self.tasks);
        if self.cancel.is_cancelled() {
            return false;
        }
        tasks.retain(|t| !t.is_finished());
        tasks.push(tokio::spawn(fut));
        true
    }

    /// Wait for every task of the pod (after cancelling).
    pub async fn join_tasks(&self) {
        loop {
            let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.tasks));
            if tasks.is_empty() {
                return;
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }

    pub(super) async fn wait_sandbox(&self) -> Option<i32> {
        let mut rx = self.sandbox_pid.subscribe();
        loop {
            if let Some(pid) = *rx.borrow_and_update() {
                return Some(pid);
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return None },
                _ = self.cancel.cancelled() => return None,
            }
        }
    }

    /// Wait until the container's status says `started` (running, and past its startup probe
    /// if it has one); false when the pod is being stopped first.
    pub(super) async fn wait_started(&self, name: &str, kind: Kind) -> bool {
        let mut rx = self.changed.subscribe();
        loop {
            let started = lock(&self.state)
                .record(name, kind)
                .is_some_and(|r| r.status.started == Some(true));
            if started {
                return true;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return false },
                _ = self.cancel.cancelled() => return false,
            }
        }
    }

    /// Sleep unless the pod is being stopped; false when stopped.
    pub(super) async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.cancel.cancelled() => false,
        }
    }

    pub(super) fn label(&self) -> String {
        format!("{}_{}({})", self.name, self.namespace, self.uid)
    }
}

impl Node {
    pub(super) fn event(
        &self,
        p: &PodRuntime,
        type_: &str,
        reason: &str,
        message: &str,
        field: Option<&str>,
    ) {
        self.sink
            .event(&p.namespace, &p.name, type_, reason, message, field);
    }

    /// The cgroup of a new container of the pod (`cgroupsPath`).
    pub(super) fn cgroup_for(&self, p: &PodRuntime, container_id: &str) -> String {
        let opaque = self
            .faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .opaque_cgroups;
        if opaque {
            cgroups::opaque_cgroup()
        } else {
            cgroups::container_cgroup(&p.cgroup, container_id)
        }
    }

    /// Push the node's view of the pod to the API server.
    pub(super) fn publish(&self, p: &PodRuntime) {
        {
            let mut state = lock(&p.state);
            self.sink
                .update_status(&p.namespace, &p.name, &mut |status| {
                    status::apply(&mut state, status)
                });
        }
        p.changed.send_modify(|n| *n += 1);
    }

    pub(super) fn with_record(
        &self,
        p: &PodRuntime,
        name: &str,
        kind: Kind,
        f: impl FnOnce(&mut Record),
    ) {
        if let Some(r) = lock(&p.state).record(name, kind) {
            f(r);
        }
        self.publish(p);
    }

    /// The pod's whole life on the node until it is deleted.
    pub(super) async fn run_pod(self: Arc<Self>, p: Arc<PodRuntime>) {
        self.publish(&p);
        let deadline = lock(&p.pod)
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds);
        if let Some(seconds) = deadline {
            // Not a pod task: it stops the pod, and stopping joins the pod's tasks.
            let (node, pp) = (self.clone(), p.clone());
            tokio::spawn(async move {
                node.enforce_deadline(pp, Duration::from_secs(seconds.max(0) as u64))
                    .await
            });
        }
        if let Err(e) = prepare_pod_dir(&p) {
            self.event(
                &p,
                "Warning",
                "FailedMount",
                &format!("preparing pod files: {e}"),
                None,
            );
        }
        let mut backoff = Backoff::new();
        loop {
            match self.start_sandbox(&p).await {
                Ok(()) => break,
                Err(e) => {
                    self.event(&p, "Warning", "FailedCreatePodSandBox",
                        &format!("Failed to create pod sandbox: rpc error: code = Unknown desc = failed to create containerd task: {e}"), None);
                    if !p.sleep(backoff.next()).await {
                        return;
                    }
                }
            }
        }
        lock(&p.state).sandbox_ready = true;
        self.publish(&p);

        let pod = lock(&p.pod).clone();
        let spec = pod.spec.clone().unwrap_or_default();
        for c in spec.init_containers.iter().flatten() {
            if is_sidecar(c) {
                // A native sidecar runs for the pod's whole life; the next container starts
                // once it has started, not exited (the kubelet's computeInitContainerActions).
                let node = self.clone();
                let (pp, name) = (p.clone(), c.name.clone());
                if !p.spawn(async move {
                    node.supervise(pp, name, Kind::Init, None).await;
                }) || !p.wait_started(&c.name, Kind::Init).await
                {
                    return;
                }
                continue;
            }
            match self
                .clone()
                .supervise(p.clone(), c.name.clone(), Kind::Init, None)
                .await
            {
                Some(ProcessExit::Code(0)) => continue,
                _ if p.cancel.is_cancelled() => return,
                _ => {
                    lock(&p.state).init_failed = true;
                    self.publish(&p);
                    return;
                }
            }
        }
        {
            let mut state = lock(&p.state);
            state.initialized = true;
            for r in state.records.iter_mut().filter(|r| r.kind == Kind::Regular) {
                r.status.state = Some(status::waiting("ContainerCreating", None));
            }
        }
        self.publish(&p);

        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        for c in &spec.containers {
            let (tx, rx) = oneshot::channel();
            let node = self.clone();
            let (pp, name, done) = (p.clone(), c.name.clone(), done_tx.clone());
            if !p.spawn(async move {
                // Some: it ended and will not be restarted.
                if node
                    .supervise(pp, name, Kind::Regular, Some(tx))
                    .await
                    .is_some()
                {
                    let _ = done.send(());
                }
            }) {
                return;
            }
            // Containers start in order, as the kubelet's SyncPod does.
            let _ = rx.await;
        }
        drop(done_tx);

        // Once no main container is left to run or restart, the kubelet kills the pod's
        // native sidecars rather than let them keep it alive (computePodActions).
        let has_sidecars = lock(&p.state).records.iter().any(|r| r.restartable);
        if !has_sidecars || restart_policy(&pod) == "Always" {
            return;
        }
        for _ in &spec.containers {
            if done_rx.recv().await.is_none() {
                return;
            }
        }
        let grace =
            Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64);
        tokio::select! {
            _ = self.stop_sidecars(&p, grace) => {}
            _ = p.cancel.cancelled() => {}
        }
    }

    /// `activeDeadlineSeconds`, counted from the pod's start on the node as the kubelet counts
    /// it from `status.startTime`: once it has run out, every container is killed (within
    /// the pod's grace period), nothing restarts, and the pod is Failed with reason
    /// DeadlineExceeded (pkg/kubelet/active_deadline.go).
    async fn enforce_deadline(&self, p: Arc<PodRuntime>, deadline: Duration) {
        if !p.sleep(deadline).await {
            return;
        }
        lock(&p.state).deadline_exceeded = true;
        self.event(
            &p,
            "Normal",
            status::DEADLINE_EXCEEDED,
            status::DEADLINE_MESSAGE,
            None,
        );
        self.publish(&p);
        let grace = lock(&p.pod)
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0) as u64;
        self.stop_pod(&p, Duration::from_secs(grace)).await;
    }

    /// Stop the native sidecars for good, the last one first, each once the later ones have
    /// exited, all within `grace`.
    async fn stop_sidecars(&self, p: &PodRuntime, grace: Duration) {
        p.sidecars_stopping.cancel();
        let sidecars: Vec<Running> = lock(&p.state)
            .records
            .iter()
            .filter(|r| r.restartable)
            .filter_map(|r| r.instance.clone().map(|i| (r.name.clone(), r.kind, i)))
            .collect();
        self.announce_killing(p, &sidecars);
        let groups: Vec<Vec<Running>> = sidecars.iter().rev().map(|s| vec![s.clone()]).collect();
        self.terminate_in_order(&groups, grace).await;
    }

    fn announce_killing(&self, p: &PodRuntime, running: &[Running]) {
        for (name, kind, i) in running {
            if i.exited().is_none() {
                let field = kind.field_path(name);
                self.event(
                    p,
                    "Normal",
                    "Killing",
                    &format!("Stopping container {name}"),
                    Some(&field),
                );
            }
        }
    }

    /// SIGTERM each group in turn once the one before has exited; whatever still runs at the
    /// end of `grace` gets SIGKILL.
    async fn terminate_in_order(&self, groups: &[Vec<Running>], grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        for group in groups {
            self.signal_all(group, "SIGTERM").await;
            let exited = futures::future::join_all(group.iter().map(|(_, _, i)| i.wait()));
            if tokio::time::timeout_at(deadline, exited).await.is_err() {
                let all: Vec<Running> = groups.concat();
                self.signal_all(&all, "SIGKILL").await;
                let all_exited = futures::future::join_all(all.iter().map(|(_, _, i)| i.wait()));
                let _ = tokio::time::timeout(Duration::from_secs(10), all_exited).await;
                return;
            }
        }
    }

    /// Start the pause container: new PID, network, IPC and UTS namespaces, hostname set.
    async fn start_sandbox(&self, p: &PodRuntime) -> Result<(), String> {
        let pod = lock(&p.pod).clone();
        let spec = pod.spec.clone().unwrap_or_default();
        let host_or_new = |host: Option<bool>| {
            if host == Some(true) {
                Namespace::Host
            } else {
                Namespace::New
            }
        };
        let host_network = spec.host_network == Some(true);
        let id = random_id();
        let plan = ContainerPlan {
            process: ProcessPlan {
                args: vec!["/pause".into(), "pause".into()],
                env: vec!["PATH=/".into()],
                cwd: "/".into(),
                identity: Identity {
                    uid: 65535,
                    gid: 65535,
                    additional_gids: vec![65535],
                },
                capabilities: vec![],
                no_new_privileges: true,
                terminal: false,
                console_size: None,
            },
            root: PathBuf::new(),
            readonly_root: true,
            // A hostNetwork pod also has the node's UTS namespace and hostname.
            hostname: (!host_network).then(|| hostname_of(&pod)),
            namespaces: Namespaces {
                pid: host_or_new(spec.host_pid),
                network: host_or_new(spec.host_network),
                ipc: host_or_new(spec.host_ipc),
                uts: host_or_new(spec.host_network),
            },
            binds: vec![],
            privileged: false,
            cgroups_path: self.cgroup_for(p, &id),
            seccomp: None,
        };
        let spec = InstanceSpec {
            id: id.clone(),
            dir: p.dir.join("containers").join(&id),
            lower: self.pause_rootfs.clone(),
            plan,
            stdin: false,
            stdin_once: false,
            log_path: p.dir.join("logs").join("sandbox.log"),
            owns_pid_ns: true,
        };
        let instance = Instance::create(&self.runc, self.reaper, spec).await?;
        let pid = instance.pid;
        *lock(&p.sandbox) = Some(Sandbox { instance });
        p.sandbox_pid.send_replace(Some(pid));
        Ok(())
    }

    /// Stop every process of the pod and release everything it holds.
    pub(super) async fn stop_pod(&self, p: &Arc<PodRuntime>, grace: Duration) {
        let mut stopped = p.stopping.lock().await;
        if *stopped {
            return;
        }
        p.cancel.cancel();
        p.join_tasks().await;

        let (running, sidecars) = {
            let state = lock(&p.state);
            let running: Vec<Running> = state
                .records
                .iter()
                .filter_map(|r| r.instance.clone().map(|i| (r.name.clone(), r.kind, i)))
                .collect();
            let sidecars: Vec<String> = state
                .records
                .iter()
                .filter(|r| r.restartable)
                .map(|r| r.name.clone())
                .collect();
            (running, sidecars)
        };
        self.announce_killing(p, &running);
        // The kubelet's termination order (kuberuntime_termination_order.go): the main and
        // ephemeral containers first, then the native sidecars one at a time in reverse
        // order, all within the one grace period.
        let is_sidecar =
            |(name, kind, _): &&Running| *kind == Kind::Init && sidecars.contains(name);
        let mut groups = vec![running.iter().filter(|r| !is_sidecar(r)).cloned().collect()];
        for sidecar in running.iter().filter(is_sidecar).rev() {
            groups.push(vec![sidecar.clone()]);
        }
        self.terminate_in_order(&groups, grace).await;
        {
            let mut state = lock(&p.state);
            for (name, kind, i) in &running {
                let code = i.exited().map_or(137, |e| e.code());
                if let Some(r) = state.record(name, *kind) {
                    r.status.state = Some(status::terminated(
                        code,
                        if code == 0 { "Completed" } else { "Error" },
                        None,
                        Some(i.started_at),
                        Some(status::container_id(&i.id)),
                    ));
                    r.status.ready = false;
                    r.status.started = Some(false);
                    r.instance = None;
                }
            }
        }
        self.publish(p);
        let sandbox = lock(&p.sandbox).take();
        let runc = self.runc.clone();
        let dirs: Vec<(String, PathBuf)> = running
            .iter()
            .map(|(_, _, i)| (i.id.clone(), i.dir.clone()))
            .chain(
                sandbox
                    .iter()
                    .map(|s| (s.instance.id.clone(), s.instance.dir.clone())),
            )
            .collect();
        let pod_dir = p.dir.clone();
        let uid = p.uid.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (id, dir) in &dirs {
                remove(&runc, id, dir);
            }
            cgroups::remove_pod(&uid);
            for m in super::sys::mounts_under(&pod_dir) {
                let _ = super::sys::unmount(&m);
            }
            let _ = std::fs::remove_dir_all(&pod_dir);
        })
        .await;
        if let Some(s) = sandbox {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.instance.wait()).await;
        }
        *stopped = true;
    }

    async fn signal_all(&self, running: &[Running], signal: &'static str) {
        let targets: Vec<(String, bool)> = running
            .iter()
            .filter(|(_, _, i)| i.exited().is_none())
            .map(|(_, _, i)| (i.id.clone(), !i.owns_pid_ns))
            .collect();
        let runc = self.runc.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (id, all) in targets {
                let _ = runc.kill(&id, signal, all);
            }
        })
        .await;
    }
}

/// The pod's own files: /etc/hosts, /etc/hostname, /etc/resolv.conf as the kubelet writes
/// them, and directories for logs, termination messages and volumes.
fn prepare_pod_dir(p: &PodRuntime) -> std::io::Result<()> {
    let pod = lock(&p.pod).clone();
    let hostname = hostname_of(&pod);
    for d in ["etc", "logs", "termination", "volumes", "containers"] {
        std::fs::create_dir_all(p.dir.join(d))?;
    }
    std::fs::write(
        p.dir.join("etc/hosts"),
        format!(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n{}\t{hostname}\n",
            status::POD_IP
        ),
    )?;
    std::fs::write(p.dir.join("etc/hostname"), format!("{hostname}\n"))?;
    std::fs::write(
        p.dir.join("etc/resolv.conf"),
        format!(
            "search {ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:5\n",
            ns = p.namespace
        ),
    )?;
    Ok(())
}
