//! What the user pointed at, and the one pod and container it resolves to.
//!
//! Parsing a reference (`pod/web`, `deploy/api`, `web`) is pure; resolving it reads the cluster
//! once for a pod (GET) and twice for a workload (GET the workload, LIST its pods by selector).
//! Every refusal happens here, before anything is written, with the reason and what to do:
//! a pod that is not Running, a static (mirror) pod, a Windows node, a container that does not
//! exist, or a run-to-completion init / ephemeral container as the target (a native sidecar,
//! an init container with `restartPolicy: Always`, is a valid target).

use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::ListParams;

use crate::base::error::Error;
use crate::kube::cluster::Cluster;

/// The kinds of thing a TARGET can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
}

impl TargetKind {
    fn from_prefix(prefix: &str) -> Option<Self> {
        Some(match prefix.to_ascii_lowercase().as_str() {
            "pod" | "pods" | "po" => TargetKind::Pod,
            "deploy" | "deployment" | "deployments" => TargetKind::Deployment,
            "sts" | "statefulset" | "statefulsets" => TargetKind::StatefulSet,
            "ds" | "daemonset" | "daemonsets" => TargetKind::DaemonSet,
            "rs" | "replicaset" | "replicasets" => TargetKind::ReplicaSet,
            "job" | "jobs" => TargetKind::Job,
            _ => return None,
        })
    }

    /// The short form kubectl users type.
    pub fn short(self) -> &'static str {
        match self {
            TargetKind::Pod => "pod",
            TargetKind::Deployment => "deploy",
            TargetKind::StatefulSet => "sts",
            TargetKind::DaemonSet => "ds",
            TargetKind::ReplicaSet => "rs",
            TargetKind::Job => "job",
        }
    }
}

/// A parsed TARGET argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    pub kind: TargetKind,
    pub name: String,
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.short(), self.name)
    }
}

impl FromStr for TargetRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, name) = match text.split_once('/') {
            None => (TargetKind::Pod, text),
            Some((prefix, name)) => match TargetKind::from_prefix(prefix) {
                Some(kind) => (kind, name),
                None => {
                    return Err(format!(
                        "`{text}`: {prefix:?} is not a kind we can debug; use pod/NAME, NAME, \
                         deploy/NAME, sts/NAME, ds/NAME, rs/NAME or job/NAME"
                    ));
                }
            },
        };
        if !is_dns_subdomain(name) {
            return Err(format!(
                "`{text}`: {name:?} is not a valid name (lowercase letters, digits, '-' and '.', \
                 at most 253 characters)"
            ));
        }
        Ok(TargetRef {
            kind,
            name: name.to_string(),
        })
    }
}

/// RFC 1123 label: what namespace and container names must be.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// RFC 1123 subdomain: what pod and workload names must be.
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && !name.is_empty() && name.split('.').all(is_dns_label)
}

/// The pod and container a session is about.
#[derive(Debug, Clone)]
pub struct Target {
    pub pod: Pod,
    pub container: String,
    /// The container's ID as the pod status reports it (`containerd://<64hex>`), which the
    /// agent matches against `/proc/<pid>/cgroup` to find the target process exactly.
    pub container_id: Option<String>,
}

impl Target {
    pub fn pod_name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    /// The target's spec: a regular container or a native sidecar.
    pub fn spec(&self) -> Option<&Container> {
        container_spec(&self.pod, &self.container)
    }
}

/// Container `name` of `pod`: a regular container, or an init container (a native sidecar
/// when it is a target: [`target_in`] refuses the others).
pub fn container_spec<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// Whether an init container keeps running beside the others (a native sidecar, Kubernetes
/// ≥ 1.29): only those can be targets; a run-to-completion one is gone once the pod runs.
pub fn is_native_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// Whether the pod's containers share one PID namespace (`shareProcessNamespace: true`): PID 1
/// is then the pause process and every container's processes are visible.
pub fn shares_pid_namespace(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.share_process_namespace)
        .unwrap_or(false)
}

/// The status of container `name` of `pod`: in `containerStatuses`, or in
/// `initContainerStatuses` for a native sidecar.
pub fn status_of<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    let status = pod.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
}

/// Every container name of `pod` by its ID as the status reports it, without the runtime's
/// `containerd://` prefix (what the agent's candidates show), for naming candidates.
pub fn container_names_by_id(pod: &Pod) -> Vec<(String, String)> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .chain(status.ephemeral_container_statuses.iter().flatten())
        .filter_map(|c| {
            Some((
                bare_id(c.container_id.as_deref()?).to_string(),
                c.name.clone(),
            ))
        })
        .collect()
}

/// A container ID without its `runtime://` prefix.
pub fn bare_id(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, bare)| bare)
}

/// Reads the pod a reference names (for a workload: one Running and ready pod of it).
pub async fn fetch_pod(
    cluster: &Cluster,
    pods: &Api<Pod>,
    namespace: &str,
    target: &TargetRef,
) -> Result<Pod, Error> {
    if target.kind == TargetKind::Pod {
        return named_pod(cluster, pods, namespace, &target.name).await;
    }
    choose_ready_pod(workload_pods(cluster, pods, namespace, target).await?).ok_or_else(|| {
        Error::NoReadyPod {
            namespace: namespace.to_string(),
            workload: target.to_string(),
        }
    })
}

async fn named_pod(
    cluster: &Cluster,
    pods: &Api<Pod>,
    namespace: &str,
    name: &str,
) -> Result<Pod, Error> {
    match cluster.bounded(pods.get_opt(name)).await {
        Ok(Some(pod)) => Ok(pod),
        Ok(None) => Err(Error::PodNotFound {
            namespace: namespace.to_string(),
            pod: name.to_string(),
        }),
        Err(source) => Err(Error::ReadPod {
            namespace: namespace.to_string(),
            pod: name.to_string(),
            source,
        }),
    }
}

/// Every pod of a workload reference (one LIST by the workload's selector), whatever its
/// state; for a pod reference, that pod.
pub async fn workload_pods(
    cluster: &Cluster,
    pods: &Api<Pod>,
    namespace: &str,
    target: &TargetRef,
) -> Result<Vec<Pod>, Error> {
    let selector = match target.kind {
        TargetKind::Pod => {
            return Ok(vec![
                named_pod(cluster, pods, namespace, &target.name).await?,
            ]);
        }
        TargetKind::Deployment => {
            workload_selector::<Deployment>(cluster, namespace, target, |d| {
                d.spec.as_ref().map(|s| s.selector.clone())
            })
            .await?
        }
        TargetKind::StatefulSet => {
            workload_selector::<StatefulSet>(cluster, namespace, target, |s| {
                s.spec.as_ref().map(|s| s.selector.clone())
            })
            .await?
        }
        TargetKind::DaemonSet => {
            workload_selector::<DaemonSet>(cluster, namespace, target, |d| {
                d.spec.as_ref().map(|s| s.selector.clone())
            })
            .await?
        }
        TargetKind::ReplicaSet => {
            workload_selector::<ReplicaSet>(cluster, namespace, target, |r| {
                r.spec.as_ref().map(|s| s.selector.clone())
            })
            .await?
        }
        TargetKind::Job => {
            workload_selector::<Job>(cluster, namespace, target, |j| {
                j.spec.as_ref().and_then(|s| s.selector.clone())
            })
            .await?
        }
    };
    let list = cluster
        .bounded(pods.list(&ListParams::default().labels(&selector)))
        .await
        .map_err(|source| Error::ReadWorkload {
            namespace: namespace.to_string(),
            workload: target.to_string(),
            source,
        })?;
    Ok(list.items)
}

async fn workload_selector<K>(
    cluster: &Cluster,
    namespace: &str,
    target: &TargetRef,
    selector_of: impl Fn(&K) -> Option<LabelSelector>,
) -> Result<String, Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), namespace);
    let read_error = |source| Error::ReadWorkload {
        namespace: namespace.to_string(),
        workload: target.to_string(),
        source,
    };
    let workload = cluster
        .bounded(api.get_opt(&target.name))
        .await
        .map_err(read_error)?
        .ok_or_else(|| Error::WorkloadNotFound {
            namespace: namespace.to_string(),
            workload: target.to_string(),
        })?;
    selector_of(&workload)
        .and_then(|s| selector_string(&s))
        .ok_or_else(|| Error::NoReadyPod {
            namespace: namespace.to_string(),
            workload: target.to_string(),
        })
}

/// A label selector in the query-string form, or None when it selects nothing we can express.
pub fn selector_string(selector: &LabelSelector) -> Option<String> {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            "DoesNotExist" => format!("!{}", expr.key),
            _ => return None,
        });
    }
    // An empty selector would select every pod of the namespace: never what a workload means.
    (!parts.is_empty()).then(|| parts.join(","))
}

fn is_running_and_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && pod.metadata.deletion_timestamp.is_none()
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Of a workload's pods, the Running and ready one that started first (stable across runs, so a
/// second session lands where the first one did and can reuse its container).
pub fn choose_ready_pod(mut pods: Vec<Pod>) -> Option<Pod> {
    pods.retain(is_running_and_ready);
    pods.sort_by(|a, b| {
        let key = |p: &Pod| {
            (
                p.status
                    .as_ref()
                    .and_then(|s| s.start_time.clone())
                    .map(|t| t.0),
                p.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    pods.into_iter().next()
}

/// The container to use when `-c` does not say: the pod's
/// `kubectl.kubernetes.io/default-container` annotation when it names one of `containers`,
/// else the first of them.
pub fn default_container<'a>(pod: &'a Pod, containers: &'a [String]) -> Option<&'a String> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .filter(|c| containers.contains(c))
        .or(containers.first())
}

/// Checks that `pod` can be debugged and picks its container: `-c`, else the
/// `kubectl.kubernetes.io/default-container` annotation, else the first container.
pub fn target_in(pod: Pod, container: Option<&str>) -> Result<Target, Error> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    if phase != "Running" {
        return Err(Error::PodNotRunning {
            pod: name,
            phase,
            reason: status.and_then(|s| s.reason.clone().or_else(|| s.message.clone())),
        });
    }
    // The kubelet creates mirror pods for static pods; the apiserver refuses ephemeral
    // containers on them (pkg/registry/core/pod/strategy.go: "static pods"), so say it first.
    if pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
    {
        return Err(Error::StaticPod { pod: name });
    }
    let spec = pod.spec.as_ref();
    if spec
        .and_then(|s| s.os.as_ref())
        .is_some_and(|os| os.name == "windows")
        || spec
            .and_then(|s| s.node_selector.as_ref())
            .and_then(|n| n.get("kubernetes.io/os"))
            .is_some_and(|os| os == "windows")
    {
        return Err(Error::WindowsNode {
            pod: name,
            node: spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        });
    }

    let containers: Vec<String> = spec
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let chosen = match container {
        Some(c) => c.to_string(),
        None => match default_container(&pod, &containers) {
            Some(c) => c.clone(),
            None => {
                return Err(Error::ContainerNotFound {
                    pod: name,
                    container: String::new(),
                    containers,
                });
            }
        },
    };
    let sidecar = spec
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.name == chosen && is_native_sidecar(c)));
    if !containers.contains(&chosen) && !sidecar {
        // What the refusals offer instead: every container that can be a target, native
        // sidecars included.
        let sidecars = spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| is_native_sidecar(c))
            .map(|c| c.name.clone());
        let containers: Vec<String> = containers.iter().cloned().chain(sidecars).collect();
        let is_init = spec
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.name == chosen));
        let is_ephemeral = spec
            .and_then(|s| s.ephemeral_containers.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.name == chosen));
        return Err(if is_init {
            Error::InitContainerTarget {
                pod: name,
                container: chosen,
                containers,
            }
        } else if is_ephemeral {
            Error::EphemeralContainerTarget {
                pod: name,
                container: chosen,
                containers,
            }
        } else {
            Error::ContainerNotFound {
                pod: name,
                container: chosen,
                containers,
            }
        });
    }
    let current = status_of(&pod, &chosen);
    let running = current
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some());
    if !running {
        return Err(Error::ContainerNotRunning {
            pod: name,
            container: chosen,
        });
    }
    let container_id = current.and_then(|c| c.container_id.clone());
    Ok(Target {
        pod,
        container: chosen,
        container_id,
    })
}

#[cfg(test)]
#[path = "target_tests.rs"]
pub(crate) mod tests;
