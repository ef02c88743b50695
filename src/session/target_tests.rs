//! Target references, pod selection and the checks on the target container.

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStatus, PodCondition, PodOS,
    PodSpec, PodStatus,
};
use kube::api::ObjectMeta;

use super::*;

/// A Running, ready pod with running containers of these names.
pub fn running_pod(name: &str, containers: &[&str]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            resource_version: Some("100".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: containers
                .iter()
                .map(|c| Container {
                    name: (*c).into(),
                    image: Some("app:1".into()),
                    ..Container::default()
                })
                .collect(),
            node_name: Some("node-1".into()),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..PodCondition::default()
            }]),
            container_statuses: Some(
                containers
                    .iter()
                    .map(|c| ContainerStatus {
                        name: (*c).into(),
                        state: Some(ContainerState {
                            running: Some(ContainerStateRunning::default()),
                            ..ContainerState::default()
                        }),
                        ..ContainerStatus::default()
                    })
                    .collect(),
            ),
            ..PodStatus::default()
        }),
    }
}

#[test]
fn parses_every_documented_form() {
    let cases = [
        ("web", TargetKind::Pod, "web"),
        ("pod/web", TargetKind::Pod, "web"),
        ("pods/web", TargetKind::Pod, "web"),
        ("po/web.v2", TargetKind::Pod, "web.v2"),
        ("deploy/api", TargetKind::Deployment, "api"),
        ("deployment/api", TargetKind::Deployment, "api"),
        ("sts/db", TargetKind::StatefulSet, "db"),
        ("ds/agent", TargetKind::DaemonSet, "agent"),
        ("rs/api-7d9f", TargetKind::ReplicaSet, "api-7d9f"),
        ("job/migrate", TargetKind::Job, "migrate"),
        ("Deploy/api", TargetKind::Deployment, "api"),
    ];
    for (text, kind, name) in cases {
        assert_eq!(
            text.parse::<TargetRef>(),
            Ok(TargetRef {
                kind,
                name: name.into()
            }),
            "{text}"
        );
    }
}

#[test]
fn refuses_what_is_not_a_target() {
    for text in [
        "",
        "pod/",
        "cronjob/x",
        "pod/a/b",
        "pod/Web",
        "-rf",
        "svc/web",
    ] {
        assert!(
            text.parse::<TargetRef>().is_err(),
            "{text} should be refused"
        );
    }
}

#[test]
fn picks_the_default_container_annotation_then_the_first() {
    let mut pod = running_pod("web", &["app", "sidecar"]);
    assert_eq!(target_in(pod.clone(), None).unwrap().container, "app");
    pod.metadata.annotations = Some(
        [(
            "kubectl.kubernetes.io/default-container".to_string(),
            "sidecar".to_string(),
        )]
        .into(),
    );
    assert_eq!(target_in(pod.clone(), None).unwrap().container, "sidecar");
    assert_eq!(target_in(pod, Some("app")).unwrap().container, "app");
}

#[test]
fn a_missing_container_lists_the_ones_there_are() {
    let err = target_in(running_pod("web", &["app", "sidecar"]), Some("nginx")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("nginx") && text.contains("app, sidecar"),
        "{text}"
    );
}

#[test]
fn refuses_init_and_ephemeral_containers_as_targets() {
    let mut pod = running_pod("web", &["app"]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.init_containers = Some(vec![Container {
            name: "migrate".into(),
            ..Container::default()
        }]);
    }
    assert!(matches!(
        target_in(pod, Some("migrate")),
        Err(Error::InitContainerTarget { .. })
    ));
}

#[test]
fn refusals_offer_native_sidecars_as_targets_too() {
    let mut pod = running_pod("web", &["app"]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.init_containers = Some(vec![
            Container {
                name: "migrate".into(),
                ..Container::default()
            },
            Container {
                name: "proxy".into(),
                restart_policy: Some("Always".into()),
                ..Container::default()
            },
        ]);
    }
    for (asked, offered) in [("migrate", "app, proxy"), ("nope", "app, proxy")] {
        let error = target_in(pod.clone(), Some(asked)).expect_err(asked);
        assert!(
            error.to_string().ends_with(&format!(": {offered}")),
            "{asked}: {error}"
        );
    }
}

#[test]
fn refuses_a_pod_that_is_not_running() {
    let mut pod = running_pod("web", &["app"]);
    if let Some(status) = pod.status.as_mut() {
        status.phase = Some("Pending".into());
    }
    let err = target_in(pod, None).unwrap_err();
    assert!(err.to_string().contains("Pending"), "{err}");
}

#[test]
fn refuses_static_pods_and_windows_nodes() {
    let mut pod = running_pod("kube-apiserver-node1", &["kube-apiserver"]);
    pod.metadata.annotations =
        Some([("kubernetes.io/config.mirror".to_string(), "x".to_string())].into());
    assert!(matches!(target_in(pod, None), Err(Error::StaticPod { .. })));
    let mut pod = running_pod("iis", &["iis"]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.os = Some(PodOS {
            name: "windows".into(),
        });
    }
    assert!(matches!(
        target_in(pod, None),
        Err(Error::WindowsNode { .. })
    ));
}

#[test]
fn a_workload_resolves_to_its_oldest_ready_pod() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let mut old = running_pod("api-old", &["app"]);
    let mut young = running_pod("api-young", &["app"]);
    let mut not_ready = running_pod("api-starting", &["app"]);
    let at = |s: &str| s.parse::<jiff::Timestamp>().ok().map(Time);
    if let (Some(a), Some(b), Some(c)) = (
        old.status.as_mut(),
        young.status.as_mut(),
        not_ready.status.as_mut(),
    ) {
        a.start_time = at("2026-01-01T00:00:00Z");
        b.start_time = at("2026-01-02T00:00:00Z");
        c.start_time = at("2025-01-01T00:00:00Z");
        c.conditions = None;
    }
    let chosen = choose_ready_pod(vec![young, not_ready, old]).unwrap();
    assert_eq!(chosen.metadata.name.as_deref(), Some("api-old"));
    assert!(choose_ready_pod(vec![]).is_none());
}

#[test]
fn selectors_become_query_strings() {
    let selector = LabelSelector {
        match_labels: Some([("app".to_string(), "api".to_string())].into()),
        ..LabelSelector::default()
    };
    assert_eq!(selector_string(&selector).as_deref(), Some("app=api"));
    assert_eq!(selector_string(&LabelSelector::default()), None);
}

#[test]
fn a_native_sidecar_is_a_target_with_its_id_from_init_container_statuses() {
    let mut pod = running_pod("web", &["app"]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.init_containers = Some(vec![Container {
            name: "proxy".into(),
            restart_policy: Some("Always".into()),
            ..Container::default()
        }]);
    }
    if let Some(status) = pod.status.as_mut() {
        status.init_container_statuses = Some(vec![ContainerStatus {
            name: "proxy".into(),
            container_id: Some("containerd://5c6d".into()),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        if let Some(app) = status
            .container_statuses
            .as_mut()
            .and_then(|s| s.first_mut())
        {
            app.container_id = Some("containerd://3f2a".into());
        }
    }
    let target = target_in(pod.clone(), Some("proxy")).expect("a native sidecar is a target");
    assert_eq!(target.container_id.as_deref(), Some("containerd://5c6d"));
    assert_eq!(target.spec().map(|c| c.name.as_str()), Some("proxy"));
    let app = target_in(pod.clone(), None).expect("the first container");
    assert_eq!(app.container_id.as_deref(), Some("containerd://3f2a"));
    let mut names = container_names_by_id(&pod);
    names.sort();
    assert_eq!(
        names,
        [
            ("3f2a".into(), "app".into()),
            ("5c6d".into(), "proxy".into())
        ]
    );
}
