//! `meta.k8s.io/v1` Table output, which `kubectl get` asks for
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`). Columns follow the real
//! printers (k8s.io/kubernetes/pkg/printers/internalversion/printers.go).

use serde_json::{Value, json};

use super::kinds::Kind;
use super::meta;

/// Whether the client asked for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p = part.replace(' ', "");
        p.contains("as=Table") && p.contains("g=meta.k8s.io")
    })
}

/// Whether the client asked for metadata only (`as=PartialObjectMetadata` or `...List`,
/// kube-rs's metadata API and kubectl's `-o name` paths).
pub fn wants_metadata(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p = part.replace(' ', "");
        p.contains("as=PartialObjectMetadata") && p.contains("g=meta.k8s.io")
    })
}

/// An object reduced to `PartialObjectMetadata`.
pub fn partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"],
    })
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age(time: Option<&str>) -> String {
    time.and_then(meta::age_seconds)
        .map(human_duration)
        .unwrap_or_else(|| "<unknown>".into())
}

fn column(name: &str, type_: &str, format: &str, priority: i32, description: &str) -> Value {
    json!({ "name": name, "type": type_, "format": format, "description": description, "priority": priority })
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn columns(kind: &Kind) -> Vec<Value> {
    let name = column("Name", "string", "name", 0, NAME_DESC);
    let age_col = column("Age", "string", "", 0, AGE_DESC);
    match kind.resource {
        "pods" => vec![
            name,
            column(
                "Ready",
                "string",
                "",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            column(
                "Status",
                "string",
                "",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            column(
                "Restarts",
                "string",
                "",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age_col,
            column(
                "IP",
                "string",
                "",
                1,
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            column(
                "Node",
                "string",
                "",
                1,
                "NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler simply schedules this pod onto that node, assuming that it fits resource requirements.",
            ),
            column(
                "Nominated Node",
                "string",
                "",
                1,
                "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
            ),
            column(
                "Readiness Gates",
                "string",
                "",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
            ),
        ],
        "namespaces" => vec![
            name,
            column("Status", "string", "", 0, "The status of the namespace"),
            age_col,
        ],
        "events" => vec![
            column(
                "Last Seen",
                "string",
                "",
                0,
                "Time when this Event was last observed.",
            ),
            column(
                "Type",
                "string",
                "",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            column(
                "Reason",
                "string",
                "",
                0,
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            column(
                "Object",
                "string",
                "",
                0,
                "The object that this event is about.",
            ),
            column(
                "Message",
                "string",
                "",
                0,
                "A human-readable description of the status of this operation.",
            ),
        ],
        _ => vec![name, age_col],
    }
}

/// The READY, STATUS and RESTARTS columns of a pod, as `printPod` computes them
/// (k8s.io/kubernetes/pkg/printers/internalversion/printers.go): native sidecars (init
/// containers with `restartPolicy: Always`) count in READY once started, and their restarts
/// count in RESTARTS.
pub struct PodColumns {
    pub ready: String,
    pub status: String,
    pub restarts: String,
}

fn has_true_condition(pod: &Value, type_: &str) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .is_some_and(|c| c["status"] == "True")
}

/// The newest of `current` and a status's `lastState.terminated.finishedAt` (RFC 3339 in UTC
/// sorts as text).
fn later<'a>(current: Option<&'a str>, status: &'a Value) -> Option<&'a str> {
    let finished = status["lastState"]["terminated"]["finishedAt"].as_str();
    match (current, finished) {
        (Some(a), Some(b)) => Some(if b > a { b } else { a }),
        (a, b) => a.or(b),
    }
}

pub fn pod_columns(pod: &Value) -> PodColumns {
    let status = &pod["status"];
    let mut reason = status["reason"]
        .as_str()
        .filter(|r| !r.is_empty())
        .or(status["phase"].as_str())
        .unwrap_or("")
        .to_string();
    for c in status["conditions"].as_array().into_iter().flatten() {
        if c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }
    let init_specs = pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let restartable = |name: &Value| {
        init_specs
            .iter()
            .any(|c| c["name"] == *name && c["restartPolicy"] == "Always")
    };
    let mut total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    total += init_specs
        .iter()
        .filter(|c| c["restartPolicy"] == "Always")
        .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart: Option<&str> = None;
    let mut last_sidecar_restart: Option<&str> = None;

    let mut initializing = false;
    let init_statuses = status["initContainerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, c) in init_statuses.iter().enumerate() {
        let count = c["restartCount"].as_i64().unwrap_or(0);
        restarts += count;
        last_restart = later(last_restart, c);
        let sidecar = restartable(&c["name"]);
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, c);
        }
        let terminated = &c["state"]["terminated"];
        let waiting_reason = c["state"]["waiting"]["reason"].as_str().unwrap_or("");
        if terminated.is_object() && terminated["exitCode"].as_i64() == Some(0) {
            continue;
        }
        if sidecar && c["started"].as_bool() == Some(true) {
            if c["ready"].as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if terminated.is_object() {
            match terminated["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => match terminated["signal"].as_i64().filter(|s| *s != 0) {
                    Some(s) => format!("Init:Signal:{s}"),
                    None => format!(
                        "Init:ExitCode:{}",
                        terminated["exitCode"].as_i64().unwrap_or(0)
                    ),
                },
            }
        } else if c["state"]["waiting"].is_object()
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || has_true_condition(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        let mut error_reason = String::new();
        for c in status["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
        {
            restarts += c["restartCount"].as_i64().unwrap_or(0);
            last_restart = later(last_restart, c);
            let state = &c["state"];
            let terminated = &state["terminated"];
            if let Some(r) = state["waiting"]["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
            {
                reason = r.to_string();
            } else if terminated.is_object() {
                reason = match terminated["reason"].as_str().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None => match terminated["signal"].as_i64().filter(|s| *s != 0) {
                        Some(s) => format!("Signal:{s}"),
                        None => {
                            format!("ExitCode:{}", terminated["exitCode"].as_i64().unwrap_or(0))
                        }
                    },
                };
                if terminated["exitCode"].as_i64().unwrap_or(0) != 0 {
                    error_reason = reason.clone();
                }
            } else if c["ready"].as_bool() == Some(true) && state["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" {
            if has_running && has_true_condition(pod, "Ready") {
                reason = "Running".into();
            } else if !error_reason.is_empty() {
                reason = error_reason;
            } else if has_running {
                reason = "NotReady".into();
            }
        }
    }

    let phase = status["phase"].as_str().unwrap_or("");
    if pod["metadata"].get("deletionTimestamp").is_some() {
        if status["reason"].as_str() == Some("NodeLost") {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }

    let restarts = match last_restart.and_then(meta::age_seconds) {
        Some(ago) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(ago)),
        _ => restarts.to_string(),
    };
    PodColumns {
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts,
    }
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let columns = pod_columns(pod);
    let gates = pod["spec"]["readinessGates"].as_array().map_or(0, Vec::len);
    vec![
        json!(meta::name_of(pod)),
        json!(columns.ready),
        json!(columns.status),
        json!(columns.restarts),
        json!(age(pod["metadata"]["creationTimestamp"].as_str())),
        json!(pod["status"]["podIP"].as_str().unwrap_or("<none>")),
        json!(pod["spec"]["nodeName"].as_str().unwrap_or("<none>")),
        json!(
            pod["status"]["nominatedNodeName"]
                .as_str()
                .unwrap_or("<none>")
        ),
        json!(if gates == 0 {
            "<none>".to_string()
        } else {
            format!("0/{gates}")
        }),
    ]
}

fn event_cells(ev: &Value) -> Vec<Value> {
    let last = ev["lastTimestamp"]
        .as_str()
        .or(ev["eventTime"].as_str())
        .or(ev["metadata"]["creationTimestamp"].as_str());
    let obj = &ev["involvedObject"];
    let object = format!(
        "{}/{}",
        obj["kind"].as_str().unwrap_or("").to_lowercase(),
        obj["name"].as_str().unwrap_or("")
    );
    vec![
        json!(age(last)),
        json!(ev["type"].as_str().unwrap_or("")),
        json!(ev["reason"].as_str().unwrap_or("")),
        json!(object),
        json!(ev["message"].as_str().unwrap_or("").trim()),
    ]
}

fn cells(kind: &Kind, object: &Value) -> Vec<Value> {
    let created = object["metadata"]["creationTimestamp"].as_str();
    match kind.resource {
        "pods" => pod_cells(object),
        "events" => event_cells(object),
        "namespaces" => vec![
            json!(meta::name_of(object)),
            json!(object["status"]["phase"].as_str().unwrap_or("Active")),
            json!(age(created)),
        ],
        _ => vec![json!(meta::name_of(object)), json!(age(created))],
    }
}

/// What each row carries besides its cells (`includeObject`: None, Metadata, Object).
fn row_object(object: &Value, include: &str) -> Option<Value> {
    match include {
        "None" => None,
        "Object" => Some(object.clone()),
        _ => Some(partial(object)),
    }
}

/// A Table of `objects`. `with_columns` is false for the watch events after the first.
pub fn table(
    kind: &Kind,
    objects: &[Value],
    resource_version: Option<String>,
    include: &str,
    with_columns: bool,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({ "cells": cells(kind, o) });
            if let Some(obj) = row_object(o, include) {
                row["object"] = obj;
            }
            row
        })
        .collect();
    let mut md = json!({});
    if let Some(rv) = resource_version {
        md["resourceVersion"] = json!(rv);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": md,
        "columnDefinitions": if with_columns { json!(columns(kind)) } else { Value::Null },
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_matches_apimachinery() {
        for (s, want) in [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (10 * 3600, "10h"),
            (3 * 86400, "3d"),
        ] {
            assert_eq!(human_duration(s), want);
        }
    }

    #[test]
    fn pod_status_column() {
        let pod = json!({
            "metadata": {"name": "app"},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "app", "ready": false, "state": {"waiting": {"reason": "ErrImagePull"}}}
            ]}
        });
        assert_eq!(pod_columns(&pod).status, "ErrImagePull");
        let running = json!({"metadata": {}, "status": {"phase": "Running", "containerStatuses": [
            {"name": "app", "ready": true, "state": {"running": {}}}]}});
        assert_eq!(pod_columns(&running).status, "Running");
    }

    #[test]
    fn native_sidecars_count_in_ready_and_restarts() {
        let pod = |sidecar_started: bool| {
            json!({
                "metadata": {"name": "p"},
                "spec": {
                    "initContainers": [
                        {"name": "setup"},
                        {"name": "proxy", "restartPolicy": "Always"}
                    ],
                    "containers": [{"name": "app"}]
                },
                "status": {
                    "phase": if sidecar_started { "Running" } else { "Pending" },
                    "conditions": [{"type": "Initialized", "status": if sidecar_started { "True" } else { "False" }}],
                    "initContainerStatuses": [
                        {"name": "setup", "ready": false, "restartCount": 0,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                        {"name": "proxy", "ready": sidecar_started, "started": sidecar_started, "restartCount": 2,
                         "state": if sidecar_started { json!({"running": {}}) } else { json!({"waiting": {"reason": "ContainerCreating"}}) }}
                    ],
                    "containerStatuses": [
                        {"name": "app", "ready": sidecar_started, "restartCount": 1,
                         "state": if sidecar_started { json!({"running": {}}) } else { json!({"waiting": {"reason": "PodInitializing"}}) }}
                    ]
                }
            })
        };
        let running = pod_columns(&pod(true));
        assert_eq!(
            (
                running.ready.as_str(),
                running.status.as_str(),
                running.restarts.as_str()
            ),
            ("2/2", "Running", "3")
        );
        let starting = pod_columns(&pod(false));
        assert_eq!(
            (starting.ready.as_str(), starting.status.as_str()),
            ("0/2", "Init:ContainerCreating")
        );
    }
}
