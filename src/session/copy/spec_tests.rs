//! Every rule of the copy pod (docs/copy.md), tested on the pure builder.

use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EnvVar, PodSecurityContext, Probe, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::*;
use crate::session::profile::Profile;
use crate::toolkit::catalog::{ImageChoice, Toolkit};

fn session(profile: Profile, ttl: u64) -> DebugOptions {
    DebugOptions {
        profile,
        ttl: Duration::from_secs(ttl),
        reason: Some("INC-7".into()),
        ..DebugOptions::example(ImageChoice::Toolkit {
            toolkit: Toolkit::Base,
            registry: Some("registry.example.com/dd".into()),
        })
    }
}

fn facts() -> SessionFacts {
    SessionFacts {
        user: "alice".into(),
        started: "2026-11-26T17:00:00Z".parse().unwrap_or_default(),
        version: "0.1.0".into(),
    }
}

fn probe() -> Option<Probe> {
    Some(Probe {
        period_seconds: Some(5),
        ..Probe::default()
    })
}

/// A crash-looping web pod of a Deployment: two containers, probes, labels, owner, node.
fn original() -> Pod {
    let app = Container {
        name: "app".into(),
        image: Some("127.0.0.1:5000/distroless/app:v1".into()),
        command: Some(vec!["/app/server".into()]),
        args: Some(vec!["--port".into(), "80".into()]),
        env: Some(vec![EnvVar {
            name: "MODE".into(),
            value: Some("prod".into()),
            value_from: None,
        }]),
        volume_mounts: Some(vec![VolumeMount {
            name: "config".into(),
            mount_path: "/etc/app".into(),
            ..VolumeMount::default()
        }]),
        security_context: Some(SecurityContext {
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            ..SecurityContext::default()
        }),
        liveness_probe: probe(),
        readiness_probe: probe(),
        startup_probe: probe(),
        ..Container::default()
    };
    let sidecar = Container {
        name: "proxy".into(),
        image: Some("proxy:1".into()),
        readiness_probe: probe(),
        ..Container::default()
    };
    let init = Container {
        name: "migrate".into(),
        image: Some("migrate:1".into()),
        ..Container::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some("web-7d9f-abcde".into()),
            namespace: Some("shop".into()),
            labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            annotations: Some(BTreeMap::from([
                ("team".into(), "payments".into()),
                ("kubernetes.io/config.mirror".into(), "x".into()),
            ])),
            owner_references: Some(vec![OwnerReference {
                kind: "ReplicaSet".into(),
                name: "web-7d9f".into(),
                ..OwnerReference::default()
            }]),
            uid: Some("1234".into()),
            resource_version: Some("42".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![app, sidecar],
            init_containers: Some(vec![init]),
            node_name: Some("node-3".into()),
            service_account_name: Some("web".into()),
            security_context: Some(PodSecurityContext {
                fs_group: Some(2000),
                ..PodSecurityContext::default()
            }),
            tolerations: Some(vec![Toleration {
                key: Some("dedicated".into()),
                ..Toleration::default()
            }]),
            node_selector: Some(BTreeMap::from([("disk".into(), "ssd".into())])),
            restart_policy: Some("Always".into()),
            volumes: Some(vec![Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "web-config".into(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
        status: Some(Default::default()),
    }
}

fn argv() -> Vec<String> {
    vec!["/app/server".into(), "--port".into(), "80".into()]
}

fn copy_with(copy: &CopyPodOptions, profile: Profile, ttl: u64) -> Pod {
    let pod = original();
    copy_pod_for(
        &session(profile, ttl),
        copy,
        &CopySource {
            pod: &pod,
            original: "web-7d9f-abcde",
            container: "app",
        },
        &argv(),
        &Identity::known(65532, 65532),
        &facts(),
        "x1y2z",
    )
}

fn copy() -> Pod {
    copy_with(&CopyPodOptions::default(), Profile::Auto, 3600)
}

fn container<'a>(pod: &'a Pod, name: &str) -> &'a Container {
    let spec = pod.spec.as_ref().unwrap();
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

#[test]
fn the_copy_is_named_after_the_original_in_its_namespace() {
    let pod = copy();
    assert_eq!(
        pod.metadata.name.as_deref(),
        Some("web-7d9f-abcde-dbg-x1y2z")
    );
    assert_eq!(pod.metadata.namespace.as_deref(), Some("shop"));
    assert!(pod.status.is_none());
    assert!(pod.metadata.uid.is_none() && pod.metadata.resource_version.is_none());
}

#[test]
fn only_our_labels_so_nothing_selects_the_copy() {
    let pod = copy();
    assert_eq!(
        pod.metadata.labels,
        Some(BTreeMap::from([
            (LABEL_COPY.to_string(), "true".to_string()),
            (LABEL_COPY_OF.to_string(), "web-7d9f-abcde".to_string()),
        ]))
    );
}

#[test]
fn no_owner_references() {
    assert!(copy().metadata.owner_references.is_none());
}

#[test]
fn annotations_record_the_entrypoint_and_target_and_drop_the_kubelets() {
    let annotations = copy().metadata.annotations.unwrap();
    assert_eq!(
        annotations[ANNOTATION_ORIGINAL_COMMAND],
        r#"["/app/server","--port","80"]"#
    );
    assert_eq!(annotations[ANNOTATION_TARGET], "app");
    assert_eq!(annotations["team"], "payments");
    assert!(!annotations.contains_key("kubernetes.io/config.mirror"));
}

#[test]
fn probes_are_dropped_from_every_container() {
    let pod = copy();
    let spec = pod.spec.unwrap();
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        assert!(
            c.liveness_probe.is_none() && c.readiness_probe.is_none() && c.startup_probe.is_none(),
            "{} keeps a probe",
            c.name
        );
    }
}

#[test]
fn node_name_only_with_same_node() {
    assert_eq!(copy().spec.unwrap().node_name, None);
    let same = copy_with(
        &CopyPodOptions {
            same_node: true,
            ..CopyPodOptions::default()
        },
        Profile::Auto,
        3600,
    );
    assert_eq!(same.spec.unwrap().node_name.as_deref(), Some("node-3"));
}

#[test]
fn never_restarted_shares_pids_and_ends_at_the_ttl() {
    let spec = copy().spec.unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.share_process_namespace, Some(true));
    assert_eq!(spec.active_deadline_seconds, Some(3600));
    let forever = copy_with(&CopyPodOptions::default(), Profile::Auto, 0);
    assert_eq!(forever.spec.unwrap().active_deadline_seconds, None);
}

#[test]
fn scheduling_identity_and_volumes_of_the_original_are_kept() {
    let spec = copy().spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("web"));
    assert_eq!(spec.security_context.unwrap().fs_group, Some(2000));
    assert_eq!(spec.tolerations.unwrap().len(), 1);
    assert_eq!(spec.node_selector.unwrap()["disk"], "ssd");
    let volumes: Vec<_> = spec.volumes.unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(volumes, ["config", VOLUME]);
}

#[test]
fn the_volume_is_an_empty_dir_mounted_in_our_three_containers() {
    let pod = copy();
    let volume = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == VOLUME)
        .unwrap();
    assert_eq!(volume.empty_dir, Some(EmptyDirVolumeSource::default()));
    for name in [INSTALL_CONTAINER, "app", DEBUG_CONTAINER] {
        assert!(
            container(&pod, name)
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == VOLUME && m.mount_path == MOUNT),
            "{name} lacks the mount"
        );
    }
    assert!(container(&pod, "proxy").volume_mounts.is_none());
}

#[test]
fn the_install_init_container_runs_first_as_the_target_with_no_privilege() {
    let pod = copy();
    let inits = pod.spec.as_ref().unwrap().init_containers.clone().unwrap();
    let names: Vec<_> = inits.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [INSTALL_CONTAINER, "migrate"]);
    let install = &inits[0];
    assert_eq!(
        install.image.as_deref(),
        Some("registry.example.com/dd/base:0.1.0")
    );
    assert_eq!(
        install.command.clone().unwrap(),
        [
            "/usr/local/bin/distroless-debug-agent",
            "install",
            "/.distroless-debug/agent"
        ]
    );
    let sc = install.security_context.clone().unwrap();
    assert_eq!(
        (sc.run_as_user, sc.run_as_group),
        (Some(65532), Some(65532))
    );
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
}

#[test]
fn the_target_is_held_by_the_agent_with_its_args_removed() {
    let pod = copy();
    let app = container(&pod, "app");
    assert_eq!(
        app.command.clone().unwrap(),
        [
            "/.distroless-debug/agent",
            "entrypoint",
            "--socket",
            "/.distroless-debug/start.sock",
            "--",
            "/app/server",
            "--port",
            "80"
        ]
    );
    assert_eq!(app.args, None);
    // Image, env, volumes and security context are the original's.
    assert_eq!(
        app.image.as_deref(),
        Some("127.0.0.1:5000/distroless/app:v1")
    );
    assert_eq!(app.env.as_ref().unwrap()[0].name, "MODE");
    assert_eq!(
        app.volume_mounts.as_ref().unwrap()[0].mount_path,
        "/etc/app"
    );
    assert_eq!(
        app.security_context.as_ref().unwrap().run_as_user,
        Some(65532)
    );
    // The other containers keep their commands.
    assert!(container(&pod, "proxy").command.is_none());
}

#[test]
fn the_debug_container_is_a_sessions_as_a_regular_container() {
    let pod = copy();
    let names: Vec<_> = pod
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["app", "proxy", DEBUG_CONTAINER]);
    let debug = container(&pod, DEBUG_CONTAINER);
    assert_eq!(debug.command.as_ref().unwrap()[..2], [AGENT, "hold"]);
    assert_eq!((debug.stdin, debug.tty), (Some(true), Some(true)));
    let env: BTreeMap<_, _> = debug
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(env[ENV_START_SOCKET], SOCKET);
    assert_eq!(env["DISTROLESS_DEBUG_TARGET"], "app");
    assert_eq!(env["DISTROLESS_DEBUG_REASON"], "INC-7");
    // Its container ID is not known before the copy runs: each exec passes it.
    assert!(!env.contains_key("DISTROLESS_DEBUG_TARGET_ID"));
}

#[test]
fn the_debug_containers_security_context_follows_the_profile() {
    let auto = copy();
    let sc = container(&auto, DEBUG_CONTAINER)
        .security_context
        .clone()
        .unwrap();
    assert_eq!(
        (sc.run_as_user, sc.run_as_non_root),
        (Some(65532), Some(true))
    );
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
    let ptrace = copy_with(&CopyPodOptions::default(), Profile::Ptrace, 3600);
    let sc = container(&ptrace, DEBUG_CONTAINER)
        .security_context
        .clone()
        .unwrap();
    assert_eq!(sc.run_as_user, Some(0));
    assert_eq!(
        sc.capabilities.unwrap().add,
        Some(vec!["SYS_PTRACE".to_string()])
    );
}

#[test]
fn long_names_stay_valid() {
    let long = "a".repeat(250);
    let name = copy_name(&long, "x1y2z");
    assert!(name.len() <= 253 && name.ends_with("-dbg-x1y2z"), "{name}");
    assert_eq!(copy_name("web-", "x1y2z"), "web-dbg-x1y2z");
    let value = label_value(&format!("{}-pod", "b".repeat(70)));
    assert!(value.len() <= 63, "{value}");
    assert!(value.chars().last().unwrap().is_ascii_alphanumeric());
    assert_ne!(
        label_value(&"c".repeat(70)),
        label_value(&format!("{}d", "c".repeat(69)))
    );
    assert_eq!(label_value("web"), "web");
}

#[test]
fn ls_finds_a_copy_by_its_label_and_not_the_original() {
    let pod = copy();
    let listed = copy_in(&pod).unwrap();
    assert_eq!(listed.pod, "web-7d9f-abcde-dbg-x1y2z");
    assert_eq!(listed.name, DEBUG_CONTAINER);
    assert_eq!(listed.target, "app");
    assert_eq!(listed.user, "alice");
    assert_eq!(listed.reason, "INC-7");
    assert!(copy_in(&original()).is_none());
}
