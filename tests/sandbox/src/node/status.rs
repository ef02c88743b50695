//! The node's view of a pod, and how it becomes `PodStatus` (phase, conditions, container
//! statuses) with the kubelet's rules.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::container::Instance;

/// The pod and host IP we report. Pods have their own network namespace (with only `lo`), so
/// this is not an address of the pod: the sandbox has no pod network, and says so in
/// docs/sandbox.md.
pub const POD_IP: &str = "127.0.0.1";

/// How `containerID` in a container status starts: containerd's, as most nodes report it
/// (`containerd://<64 hex>`), and the ID after it is the one in the container's cgroup path.
pub const CONTAINER_ID_PREFIX: &str = "containerd://";

pub fn container_id(id: &str) -> String {
    format!("{CONTAINER_ID_PREFIX}{id}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Init,
    Regular,
    Ephemeral,
}

impl Kind {
    pub fn field_path(self, name: &str) -> String {
        match self {
            Kind::Init => format!("spec.initContainers{{{name}}}"),
            Kind::Regular => format!("spec.containers{{{name}}}"),
            Kind::Ephemeral => format!("spec.ephemeralContainers{{{name}}}"),
        }
    }
}

pub struct Record {
    pub name: String,
    pub kind: Kind,
    /// A native sidecar: an init container with `restartPolicy: Always`.
    pub restartable: bool,
    pub status: ContainerStatus,
    /// The running instance.
    pub instance: Option<Arc<Instance>>,
    /// The instance that ran last, after it ended (its log, its exit).
    pub last: Option<Arc<Instance>>,
}

impl Record {
    pub fn new(name: &str, kind: Kind, image: &str) -> Record {
        Record {
            name: name.to_string(),
            kind,
            restartable: false,
            status: ContainerStatus {
                name: name.to_string(),
                image: image.to_string(),
                image_id: String::new(),
                ready: false,
                started: Some(false),
                restart_count: 0,
                state: Some(waiting("ContainerCreating", None)),
                ..Default::default()
            },
            instance: None,
            last: None,
        }
    }
}

pub struct PodState {
    pub records: Vec<Record>,
    pub start_time: Option<Time>,
    pub sandbox_ready: bool,
    pub initialized: bool,
    pub init_failed: bool,
    pub restart_policy: String,
    pub conditions: Vec<PodCondition>,
    /// `activeDeadlineSeconds` ran out: the kubelet killed the pod and failed it for good.
    pub deadline_exceeded: bool,
}

/// The kubelet's status reason and message for a pod past its `activeDeadlineSeconds`
/// (pkg/kubelet/active_deadline.go).
pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

impl PodState {
    pub fn record(&mut self, name: &str, kind: Kind) -> Option<&mut Record> {
        self.records
            .iter_mut()
            .find(|r| r.name == name && r.kind == kind)
    }

    pub fn find(&self, name: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.name == name)
    }
}

pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

pub fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..Default::default()
    }
}

pub fn running(started: jiff::Timestamp) -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(Time(started)),
        }),
        ..Default::default()
    }
}

pub fn terminated(
    exit_code: i32,
    reason: &str,
    message: Option<String>,
    started: Option<jiff::Timestamp>,
    container_id: Option<String>,
) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            reason: Some(reason.to_string()),
            message,
            started_at: started.map(Time),
            finished_at: Some(now()),
            container_id,
            signal: None,
        }),
        ..Default::default()
    }
}

/// The kubelet's `getPhase` over regular containers and native sidecars (a running sidecar
/// counts as running; an exited one does not count).
pub fn phase(state: &PodState) -> &'static str {
    if state.init_failed || state.deadline_exceeded {
        return "Failed";
    }
    if !state.initialized {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for r in state.records.iter().filter(|r| r.restartable) {
        let s = r.status.state.clone().unwrap_or_default();
        let ever_ended = r
            .status
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some());
        if s.running.is_some() {
            running += 1;
        } else if s.waiting.is_some() && !ever_ended {
            waiting += 1;
        }
    }
    for r in state.records.iter().filter(|r| r.kind == Kind::Regular) {
        let s = r.status.state.clone().unwrap_or_default();
        if s.running.is_some() {
            running += 1;
        } else if let Some(t) = s.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if r
            .status
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match state.restart_policy.as_str() {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

fn set_condition(
    conditions: &mut Vec<PodCondition>,
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
) {
    let status = if ok { "True" } else { "False" };
    let (reason, message) = if ok { (None, None) } else { (reason, message) };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(now());
            }
            c.status = status.to_string();
            c.reason = reason.map(String::from);
            c.message = message;
        }
        None => conditions.push(PodCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.map(String::from),
            message,
            last_transition_time: Some(now()),
            last_probe_time: None,
            observed_generation: None,
        }),
    }
}

/// Recompute conditions and write the node-owned parts of `status`.
pub fn apply(state: &mut PodState, status: &mut PodStatus) {
    let phase = phase(state);
    let unready: Vec<String> = state
        .records
        .iter()
        .filter(|r| (r.kind == Kind::Regular || r.restartable) && !r.status.ready)
        .map(|r| r.name.clone())
        .collect();
    let uninitialized: Vec<String> = state
        .records
        .iter()
        .filter(|r| {
            let succeeded = r
                .status
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code == 0);
            let started = r.status.started == Some(true);
            r.kind == Kind::Init && if r.restartable { !started } else { !succeeded }
        })
        .map(|r| r.name.clone())
        .collect();
    let mut conditions = std::mem::take(&mut state.conditions);
    set_condition(
        &mut conditions,
        "PodReadyToStartContainers",
        state.sandbox_ready,
        None,
        None,
    );
    set_condition(
        &mut conditions,
        "Initialized",
        state.initialized,
        Some("ContainersNotInitialized"),
        Some(format!(
            "containers with incomplete status: [{}]",
            uninitialized.join(" ")
        )),
    );
    let completed = phase == "Succeeded" || phase == "Failed";
    let ready = unready.is_empty() && !completed && phase == "Running";
    let (reason, message) = if completed {
        ("PodCompleted", None)
    } else {
        (
            "ContainersNotReady",
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    set_condition(
        &mut conditions,
        "Ready",
        ready,
        Some(reason),
        message.clone(),
    );
    set_condition(
        &mut conditions,
        "ContainersReady",
        ready,
        Some(reason),
        message,
    );
    set_condition(&mut conditions, "PodScheduled", true, None, None);
    state.conditions = conditions.clone();

    // Keep conditions other components own (e.g. DisruptionTarget) that we do not compute.
    let mut merged: Vec<PodCondition> = conditions;
    for c in status.conditions.take().unwrap_or_default() {
        if !merged.iter().any(|m| m.type_ == c.type_) {
            merged.push(c);
        }
    }
    status.conditions = Some(merged);
    status.phase = Some(phase.to_string());
    if state.deadline_exceeded {
        status.reason = Some(DEADLINE_EXCEEDED.into());
        status.message = Some(DEADLINE_MESSAGE.into());
    }
    status.host_ip = Some(POD_IP.into());
    status.host_ips = Some(vec![HostIP { ip: POD_IP.into() }]);
    if state.sandbox_ready {
        status.pod_ip = Some(POD_IP.into());
        status.pod_ips = Some(vec![PodIP { ip: POD_IP.into() }]);
    }
    status.start_time = state.start_time.clone();
    if status.qos_class.is_none() {
        status.qos_class = Some("BestEffort".into());
    }
    let collect = |kind: Kind| -> Option<Vec<ContainerStatus>> {
        let mut v: Vec<ContainerStatus> = state
            .records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.status.clone())
            .collect();
        if kind == Kind::Regular {
            // The kubelet sorts container statuses by name.
            v.sort_by(|a, b| a.name.cmp(&b.name));
        }
        (!v.is_empty()).then_some(v)
    };
    status.container_statuses = collect(Kind::Regular);
    status.init_container_statuses = collect(Kind::Init);
    status.ephemeral_container_statuses = collect(Kind::Ephemeral);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(policy: &str, states: Vec<ContainerState>) -> PodState {
        PodState {
            records: states
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut r = Record::new(&format!("c{i}"), Kind::Regular, "img");
                    r.status.state = Some(s);
                    r
                })
                .collect(),
            start_time: None,
            sandbox_ready: true,
            initialized: true,
            init_failed: false,
            restart_policy: policy.into(),
            deadline_exceeded: false,
            conditions: vec![],
        }
    }

    #[test]
    fn phase_follows_kubelet_rules() {
        let run = running(jiff::Timestamp::now());
        let ok = terminated(0, "Completed", None, None, None);
        let bad = terminated(1, "Error", None, None, None);
        let pull = waiting("ErrImagePull", None);
        assert_eq!(phase(&state("Always", vec![run.clone()])), "Running");
        assert_eq!(phase(&state("Always", vec![run.clone(), pull])), "Pending");
        assert_eq!(phase(&state("Never", vec![ok.clone()])), "Succeeded");
        assert_eq!(
            phase(&state("Never", vec![ok.clone(), bad.clone()])),
            "Failed"
        );
        assert_eq!(phase(&state("OnFailure", vec![bad])), "Running");
        assert_eq!(phase(&state("Never", vec![ok, run])), "Running");
    }

    #[test]
    fn ready_condition_names_unready_containers() {
        let mut s = state("Always", vec![waiting("ContainerCreating", None)]);
        let mut status = PodStatus::default();
        apply(&mut s, &mut status);
        let conds = status.conditions.unwrap();
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [c0]")
        );
        assert_eq!(status.phase.as_deref(), Some("Pending"));
    }
}
