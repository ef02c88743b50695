//! What a copy is made from: the pod a TARGET names, or for a workload one of its Running and
//! ready pods when there is one, else its pod template (a Deployment whose pods all crash has
//! no pod worth choosing). Only reads: the original and its workload are never written.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::Api;

use crate::base::error::Error;
use crate::kube::cluster::Cluster;
use crate::session::copy::failure::CopyFailure;
use crate::session::target::{
    TargetKind, TargetRef, choose_ready_pod, default_container, fetch_pod, workload_pods,
};

/// The pod to copy and the name its copy is called after.
#[derive(Debug, Clone)]
pub struct Source {
    pub pod: Pod,
    /// The pod's name, or the workload's for a template.
    pub original: String,
    /// Made from the workload's pod template (no pod of it was Running and ready).
    pub from_template: bool,
}

pub async fn source_of(
    cluster: &Cluster,
    pods: &Api<Pod>,
    target: &TargetRef,
) -> Result<Source, Error> {
    let namespace = &cluster.namespace;
    if target.kind == TargetKind::Pod {
        let pod = fetch_pod(cluster, pods, namespace, target).await?;
        return Ok(Source {
            original: pod.metadata.name.clone().unwrap_or_default(),
            pod,
            from_template: false,
        });
    }
    if let Some(pod) = choose_ready_pod(workload_pods(cluster, pods, namespace, target).await?) {
        return Ok(Source {
            original: pod.metadata.name.clone().unwrap_or_default(),
            pod,
            from_template: false,
        });
    }
    let template = template_of(cluster, target).await?;
    let mut metadata = template.metadata.unwrap_or_default();
    metadata.name = Some(target.name.clone());
    metadata.namespace = Some(namespace.clone());
    Ok(Source {
        pod: Pod {
            metadata,
            spec: template.spec,
            status: None,
        },
        original: target.name.clone(),
        from_template: true,
    })
}

async fn template_of(cluster: &Cluster, target: &TargetRef) -> Result<PodTemplateSpec, Error> {
    let template = match target.kind {
        TargetKind::Deployment => read::<Deployment>(cluster, target)
            .await?
            .spec
            .map(|s| s.template),
        TargetKind::StatefulSet => read::<StatefulSet>(cluster, target)
            .await?
            .spec
            .map(|s| s.template),
        TargetKind::DaemonSet => read::<DaemonSet>(cluster, target)
            .await?
            .spec
            .map(|s| s.template),
        TargetKind::ReplicaSet => read::<ReplicaSet>(cluster, target)
            .await?
            .spec
            .and_then(|s| s.template),
        TargetKind::Job => read::<Job>(cluster, target).await?.spec.map(|s| s.template),
        TargetKind::Pod => None,
    };
    template.ok_or_else(|| {
        CopyFailure::NoTemplate {
            namespace: cluster.namespace.clone(),
            workload: target.to_string(),
        }
        .into()
    })
}

async fn read<K>(cluster: &Cluster, target: &TargetRef) -> Result<K, Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    cluster
        .bounded(api.get_opt(&target.name))
        .await
        .map_err(|source| Error::ReadWorkload {
            namespace: cluster.namespace.clone(),
            workload: target.to_string(),
            source,
        })?
        .ok_or_else(|| Error::WorkloadNotFound {
            namespace: cluster.namespace.clone(),
            workload: target.to_string(),
        })
}

/// The container to hold: `-c`, else the pod's default-container annotation, else its first.
/// Unlike a session's target it need not run; it must be a regular container.
pub fn container_to_hold(source: &Source, container: Option<&str>) -> Result<String, Error> {
    let spec = source.pod.spec.as_ref();
    let containers: Vec<String> = spec
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let chosen = match container {
        Some(c) => c.to_string(),
        None => default_container(&source.pod, &containers)
            .cloned()
            .unwrap_or_default(),
    };
    if containers.contains(&chosen) {
        return Ok(chosen);
    }
    let is_init = spec
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.name == chosen));
    Err(if is_init {
        CopyFailure::InitContainer {
            pod: source.original.clone(),
            container: chosen,
            containers,
        }
        .into()
    } else {
        Error::ContainerNotFound {
            pod: source.original.clone(),
            container: chosen,
            containers,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(yaml_json: serde_json::Value) -> Source {
        Source {
            pod: serde_json::from_value(yaml_json).expect("a pod"),
            original: "web".into(),
            from_template: false,
        }
    }

    #[test]
    fn the_held_container_is_a_regular_one_and_a_native_sidecar_is_refused() {
        let web = source(serde_json::json!({
            "metadata": {"name": "web", "annotations": {"kubectl.kubernetes.io/default-container": "app"}},
            "spec": {
                "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
                "containers": [{"name": "log", "image": "fluent"}, {"name": "app", "image": "app"}]
            }
        }));
        // The default-container annotation, not the first container listed.
        assert_eq!(container_to_hold(&web, None).unwrap(), "app");
        assert_eq!(container_to_hold(&web, Some("log")).unwrap(), "log");
        let refused = container_to_hold(&web, Some("proxy")).unwrap_err();
        assert!(
            refused.to_string().contains("proxy is an init container"),
            "{refused}"
        );
        assert!(container_to_hold(&web, Some("nope")).is_err());
    }
}
