//! Table tests of the debug container a session sends, built purely from options and pod.

use k8s_openapi::api::core::v1::{
    ContainerStateRunning, ContainerStatus, EnvFromSource, EnvVarSource, ResourceFieldSelector,
    SecretEnvSource, SecretKeySelector,
};

use super::*;
use crate::session::options::Mode;
use crate::session::profile::Profile;
use crate::session::target::{TargetKind, TargetRef};
use crate::toolkit::catalog::Toolkit;

fn options(image: ImageChoice, profile: Profile, reason: Option<&str>) -> DebugOptions {
    DebugOptions {
        target: TargetRef {
            kind: TargetKind::Pod,
            name: "web".into(),
        },
        container: None,
        image,
        profile,
        timeout: Duration::from_secs(120),
        ttl: Duration::from_secs(3600),
        idle: Duration::from_secs(900),
        reason: reason.map(String::from),
        reuse: true,
        mode: Mode::Interactive,
        dry_run: None,
        format: None,
        mirror_volumes: false,
        copy_env: false,
        record: crate::output::recording::RecordOptions::off(),
        target_pid: None,
    }
}

fn facts() -> SessionFacts {
    SessionFacts {
        user: "alice@example.com".into(),
        started: "2026-11-26T17:00:00Z".parse().unwrap_or_default(),
        version: "0.1.0".into(),
    }
}

fn base() -> ImageChoice {
    ImageChoice::Toolkit {
        toolkit: Toolkit::Base,
        registry: None,
    }
}

fn env(c: &EphemeralContainer) -> Vec<(String, String)> {
    c.env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn the_agent_image_for_a_distroless_target() {
    let id = Identity::known(65532, 65532);
    let c = ephemeral_container_for(
        &options(base(), Profile::Auto, Some("INC-7")),
        "app",
        &TargetProcess::default(),
        &id,
        &facts(),
        "ab12c",
    );
    assert_eq!(c.name, "dbg-ab12c");
    assert_eq!(
        c.image.as_deref(),
        Some(
            format!(
                "ghcr.io/kubectl-distroless-debug/base:{}",
                crate::toolkit::catalog::VERSION
            )
            .as_str()
        )
    );
    assert_eq!(c.target_container_name.as_deref(), Some("app"));
    assert_eq!(
        c.command,
        Some(
            [
                "distroless-debug-agent",
                "hold",
                "--ttl",
                "1h",
                "--idle",
                "15m"
            ]
            .map(String::from)
            .to_vec()
        )
    );
    assert_eq!(c.stdin, None);
    assert_eq!(c.tty, None);
    let sc = c.security_context.clone().unwrap_or_default();
    assert_eq!(
        (sc.run_as_user, sc.run_as_group, sc.run_as_non_root),
        (Some(65532), Some(65532), Some(true))
    );
    assert_eq!(
        env(&c),
        [
            (ENV_VERSION, "0.1.0"),
            (ENV_TARGET, "app"),
            (ENV_USER, "alice@example.com"),
            (ENV_STARTED, "2026-11-26T17:00:00Z"),
            (ENV_TTL, "1h"),
            (ENV_PROFILE, "auto"),
            (ENV_REASON, "INC-7"),
            ("HOME", "/tmp"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
    );
}

#[test]
fn table_of_profiles_and_images() {
    struct Case {
        image: ImageChoice,
        profile: Profile,
        identity: Identity,
        user: Option<i64>,
        non_root: Option<bool>,
        privileged: Option<bool>,
        command0: &'static str,
    }
    let cases = [
        Case {
            image: base(),
            profile: Profile::Auto,
            identity: Identity::known(0, 0),
            user: Some(0),
            non_root: None,
            privileged: None,
            command0: AGENT,
        },
        Case {
            image: base(),
            profile: Profile::Auto,
            identity: Identity::default(),
            user: None,
            non_root: None,
            privileged: None,
            command0: AGENT,
        },
        Case {
            image: base(),
            profile: Profile::Sysadmin,
            identity: Identity::known(1, 1),
            user: Some(0),
            non_root: Some(false),
            privileged: Some(true),
            command0: AGENT,
        },
        Case {
            image: ImageChoice::Custom("busybox".into()),
            profile: Profile::Auto,
            identity: Identity::known(1000, 1000),
            user: Some(1000),
            non_root: Some(true),
            privileged: None,
            command0: "sh",
        },
    ];
    for case in cases {
        let c = ephemeral_container_for(
            &options(case.image.clone(), case.profile, None),
            "app",
            &TargetProcess::default(),
            &case.identity,
            &facts(),
            "zzzzz",
        );
        let sc = c.security_context.clone().unwrap_or_default();
        let what = format!("{:?} {} {}", case.image, case.profile, case.identity);
        assert_eq!(sc.run_as_user, case.user, "{what}");
        assert_eq!(sc.run_as_non_root, case.non_root, "{what}");
        assert_eq!(sc.privileged, case.privileged, "{what}");
        assert_eq!(
            c.command
                .as_ref()
                .and_then(|c| c.first())
                .map(String::as_str),
            Some(case.command0),
            "{what}"
        );
        assert!(
            !env(&c).iter().any(|(k, _)| k == ENV_REASON),
            "no reason, no env"
        );
    }
}

#[test]
fn attach_mode_makes_the_shell_the_main_process() {
    let id = Identity::known(65532, 65532);
    let c = ephemeral_container_for(
        &options(base(), Profile::Auto, None),
        "app",
        &TargetProcess::default(),
        &id,
        &facts(),
        "ab12c",
    );
    let attached = attach_mode(c.clone(), &base(), &TargetProcess::default());
    assert_eq!(
        attached.command,
        Some(vec![
            "distroless-debug-agent".to_string(),
            "shell".to_string()
        ])
    );
    assert_eq!(
        (attached.stdin, attached.stdin_once, attached.tty),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(
        (&attached.name, &attached.security_context),
        (&c.name, &c.security_context)
    );
    let generic = attach_mode(
        c,
        &ImageChoice::Custom("busybox".into()),
        &TargetProcess::default(),
    );
    assert_eq!(generic.command, Some(vec!["sh".to_string()]));
}

#[test]
fn attach_command_gates_the_command_and_watches_stdin_unless_it_is_forwarded() {
    let c = ephemeral_container_for(
        &options(base(), Profile::Auto, None),
        "app",
        &TargetProcess::default(),
        &Identity::known(65532, 65532),
        &facts(),
        "ab12c",
    );
    let argv = vec!["ls".to_string(), "/target".to_string()];
    let watched = attach_command(
        c.clone(),
        run_command(&base(), &TargetProcess::default(), &argv),
        false,
    );
    let command = watched.command.expect("a command");
    assert_eq!(&command[..2], ["sh", "-c"]);
    let script = &command[2];
    assert!(
        script.starts_with("read -r _ || exit 1; exec 3<&0;"),
        "{script}"
    );
    assert!(script.contains("\"$@\" </dev/null 3<&- &"), "{script}");
    assert!(script.contains("kill 0; } <&3 &"), "{script}");
    assert!(!script.contains("$(") && !script.contains("$$"), "{script}");
    assert_eq!(
        &command[3..],
        ["sh", "distroless-debug-agent", "run", "--", "ls", "/target"]
    );
    assert_eq!(
        (watched.stdin, watched.stdin_once, watched.tty),
        (Some(true), Some(true), Some(false))
    );
    assert_eq!(watched.security_context, c.security_context);
    let forwarded = attach_command(c, vec!["sh".into()], true);
    let command = forwarded.command.expect("a command");
    assert_eq!(command[2], "read -r _ || exit 1; exec \"$@\"");
    assert_eq!(&command[3..], ["sh", "sh"]);
}

#[test]
fn generic_mode_needs_only_sh_and_sleep() {
    let command = hold_command(
        &ImageChoice::Custom("busybox".into()),
        Duration::from_secs(95),
        Duration::ZERO,
        None,
    );
    assert_eq!(&command[..2], ["sh", "-c"]);
    assert!(command[2].contains("-lt 10 ]"), "{}", command[2]);
    // Regression: a single `$$` reached the shell as `$` after the kubelet's expansion,
    // so the pid file said "$" and teardown could not stop the container.
    assert!(command[2].contains("echo $$$$ > /tmp/.distroless-debug/pid"));
    assert!(command[2].contains("i=$$((i+1))"));
    assert!(command[2].contains("ln -sfn /proc/1/root /tmp/target"));
    let forever = hold_command(
        &ImageChoice::Custom("busybox".into()),
        Duration::ZERO,
        Duration::ZERO,
        None,
    );
    assert!(forever[2].contains("while :; do sleep 10; done"));
}

#[test]
fn commands_go_through_the_agent_only_in_our_images() {
    let argv = vec!["ls".to_string(), "/target".to_string()];
    assert_eq!(
        run_command(&base(), &TargetProcess::default(), &argv),
        ["distroless-debug-agent", "run", "--", "ls", "/target"]
    );
    assert_eq!(
        run_command(
            &ImageChoice::Custom("x".into()),
            &TargetProcess::default(),
            &argv
        ),
        argv
    );
    assert_eq!(
        shell_command(&base(), &TargetProcess::default()),
        ["distroless-debug-agent", "shell"]
    );
    assert_eq!(stop_command(true), ["distroless-debug-agent", "stop"]);
    assert!(stop_command(false)[2].contains("/tmp/.distroless-debug/pid"));
}

#[test]
fn the_last_exec_asks_the_agent_to_end_the_container_and_nothing_else_changes() {
    let argv = vec!["ls".to_string(), "--end-container".to_string()];
    assert_eq!(
        ending_the_container(run_command(&base(), &TargetProcess::default(), &argv)),
        [
            "distroless-debug-agent",
            "run",
            "--end-container",
            "--",
            "ls",
            "--end-container"
        ]
    );
    assert_eq!(
        ending_the_container(shell_command(&base(), &TargetProcess::default())),
        ["distroless-debug-agent", "shell", "--end-container"]
    );
    // Generic mode has no agent; other verbs are not sessions.
    assert_eq!(ending_the_container(argv.clone()), argv);
    assert_eq!(
        ending_the_container(stop_command(true)),
        ["distroless-debug-agent", "stop"]
    );
    let stat = agent_command("stat", &TargetProcess::default(), &["--", "/etc"]);
    assert_eq!(
        ending_the_container(stat.clone()),
        stat,
        "never a last exec"
    );
}

#[test]
fn the_last_tar_untar_or_info_carries_the_flag_on_the_verb_not_on_its_paths() {
    let target = TargetProcess {
        pid: None,
        container_id: Some("3f2a".into()),
        ..TargetProcess::default()
    };
    for (verb, rest) in [
        ("tar", &["--", "/--end-container"][..]),
        ("untar", &["--", "/tmp"]),
        ("info", &["-o", "json"]),
    ] {
        let ended = ending_the_container(agent_command(verb, &target, rest));
        assert_eq!(
            ended[..3],
            ["distroless-debug-agent", verb, "--end-container"],
            "{ended:?}"
        );
        assert_eq!(ended[3..], agent_command(verb, &target, rest)[2..]);
    }
}

#[test]
fn names_are_dbg_and_five_lowercase_alphanumerics_unique_in_the_pod() {
    let s = random_suffix();
    assert_eq!(s.len(), 5);
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{s}"
    );
    let mut pod = crate::session::target::tests::running_pod("web", &["dbg-aaaaa"]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.ephemeral_containers = Some(vec![EphemeralContainer {
            name: "dbg-bbbbb".into(),
            ..EphemeralContainer::default()
        }]);
    }
    let mut tries = ["aaaaa", "bbbbb", "ccccc"].into_iter();
    assert_eq!(
        unused_suffix(&pod, || tries.next().unwrap_or("zzzzz").to_string()),
        "ccccc"
    );
}

fn mount(name: &str, path: &str, read_only: bool, sub_path: Option<&str>) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        sub_path: sub_path.map(String::from),
        ..VolumeMount::default()
    }
}

#[test]
fn mirrored_volumes_sit_under_target_volumes_without_sub_paths() {
    struct Case {
        mounts: Vec<VolumeMount>,
        expected: Vec<(&'static str, &'static str, Option<bool>)>,
        notes: usize,
    }
    let cases = [
        Case {
            mounts: vec![],
            expected: vec![],
            notes: 0,
        },
        Case {
            mounts: vec![
                mount("data", "/data", false, None),
                mount("config", "/etc/app", true, None),
                mount(
                    "token",
                    "/var/run/secrets/kubernetes.io/serviceaccount",
                    true,
                    None,
                ),
            ],
            expected: vec![
                ("data", "/target-volumes/data", None),
                ("config", "/target-volumes/etc/app", Some(true)),
                (
                    "token",
                    "/target-volumes/var/run/secrets/kubernetes.io/serviceaccount",
                    Some(true),
                ),
            ],
            notes: 0,
        },
        Case {
            mounts: vec![
                mount("data", "/data", false, None),
                mount("config", "/etc/app/config.yaml", true, Some("config.yaml")),
                VolumeMount {
                    sub_path_expr: Some("$(POD_NAME)".into()),
                    ..mount("logs", "/var/log", false, None)
                },
            ],
            expected: vec![("data", "/target-volumes/data", None)],
            notes: 2,
        },
    ];
    for case in cases {
        let mut c = EphemeralContainer::default();
        let target = Container {
            name: "app".into(),
            volume_mounts: Some(case.mounts.clone()),
            ..Container::default()
        };
        let notes = mirror_volumes(&mut c, &target);
        let got: Vec<(String, String, Option<bool>)> = c
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.clone(), m.mount_path.clone(), m.read_only))
            .collect();
        let expected: Vec<(String, String, Option<bool>)> = case
            .expected
            .iter()
            .map(|(n, p, r)| (n.to_string(), p.to_string(), *r))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(notes.len(), case.notes, "{notes:?}");
        assert!(
            c.volume_mounts
                .iter()
                .flatten()
                .all(|m| m.sub_path.is_none() && m.sub_path_expr.is_none())
        );
    }
    let mut c = EphemeralContainer::default();
    let notes = mirror_volumes(
        &mut c,
        &Container {
            volume_mounts: Some(vec![mount(
                "config",
                "/etc/app/c.yaml",
                true,
                Some("c.yaml"),
            )]),
            ..Container::default()
        },
    );
    assert_eq!(
        notes,
        [
            "--mirror-volumes: skipped volume config at /etc/app/c.yaml (subPath c.yaml): ephemeral containers cannot have subPath mounts; it is still visible at /target/etc/app/c.yaml"
        ]
    );
    assert_eq!(c.volume_mounts, None);
}

#[test]
fn copied_env_comes_first_ours_wins_and_secrets_are_named() {
    let id = Identity::known(65532, 65532);
    let mut c = ephemeral_container_for(
        &options(base(), Profile::Auto, None),
        "app",
        &TargetProcess::default(),
        &id,
        &facts(),
        "ab12c",
    );
    let secret = |name: &str, secret: &str| EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: "k".into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    };
    let target = Container {
        name: "app".into(),
        env: Some(vec![
            EnvVar {
                name: "LOG_LEVEL".into(),
                value: Some("debug".into()),
                value_from: None,
            },
            EnvVar {
                name: "HOME".into(),
                value: Some("/home/app".into()),
                value_from: None,
            },
            secret("DB_PASSWORD", "db"),
            EnvVar {
                name: "MEM".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    resource_field_ref: Some(ResourceFieldSelector {
                        resource: "limits.memory".into(),
                        ..ResourceFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
            },
        ]),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: "api-keys".into(),
                optional: None,
            }),
            ..EnvFromSource::default()
        }]),
        ..Container::default()
    };
    let secrets = copy_env(&mut c, &target);
    assert_eq!(secrets, ["api-keys", "db"]);
    let names: Vec<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
    assert_eq!(&names[..3], ["LOG_LEVEL", "DB_PASSWORD", "MEM"]);
    assert_eq!(names.iter().filter(|n| **n == "HOME").count(), 1);
    assert_eq!(
        env(&c)
            .iter()
            .find(|(k, _)| k == "HOME")
            .map(|(_, v)| v.as_str()),
        Some("/tmp"),
        "our HOME holds"
    );
    assert!(names.contains(&ENV_VERSION), "still ours: {names:?}");
    let mem = c.env.iter().flatten().find(|e| e.name == "MEM").cloned();
    assert_eq!(
        mem.and_then(|e| e.value_from?.resource_field_ref?.container_name),
        Some("app".to_string())
    );
    assert_eq!(c.env_from, target.env_from);
}

#[test]
fn reads_our_containers_back_and_finds_one_to_reuse() {
    let id = Identity::known(65532, 65532);
    let ours = ephemeral_container_for(
        &options(base(), Profile::Auto, Some("INC-7")),
        "app",
        &TargetProcess::default(),
        &id,
        &facts(),
        "ab12c",
    );
    let foreign = EphemeralContainer {
        name: "debugger-x".into(),
        image: ours.image.clone(),
        target_container_name: Some("app".into()),
        ..EphemeralContainer::default()
    };
    let mut pod = crate::session::target::tests::running_pod("web", &["app"]);
    let image = ours.image.clone().unwrap_or_default();
    if let Some(spec) = pod.spec.as_mut() {
        spec.ephemeral_containers = Some(vec![foreign, ours]);
    }
    let listed = debug_containers_in(&pod);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].user.as_str(),
            listed[0].reason.as_str(),
            listed[0].state
        ),
        ("alice@example.com", "INC-7", State::Unknown)
    );
    assert!(listed[0].has_agent);
    assert_eq!(
        reusable_in(&pod, "app", &image, "auto"),
        None,
        "not running yet"
    );

    if let Some(status) = pod.status.as_mut() {
        status.ephemeral_container_statuses = Some(vec![ContainerStatus {
            name: "dbg-ab12c".into(),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
    }
    assert_eq!(
        reusable_in(&pod, "app", &image, "auto").map(|c| c.name),
        Some("dbg-ab12c".to_string())
    );
    assert_eq!(
        reusable_in(&pod, "sidecar", &image, "auto"),
        None,
        "another target"
    );
    assert_eq!(
        reusable_in(&pod, "app", &image, "ptrace"),
        None,
        "another profile"
    );
    assert_eq!(
        reusable_in(&pod, "app", "busybox", "auto"),
        None,
        "another image"
    );
}

#[test]
fn a_container_added_for_an_earlier_instance_of_the_target_is_not_reused() {
    let ours = ephemeral_container_for(
        &options(base(), Profile::Auto, None),
        "app",
        &app_process(None),
        &Identity::known(65532, 65532),
        &facts(),
        "ab12c",
    );
    let image = ours.image.clone().unwrap_or_default();
    let mut pod = crate::session::target::tests::running_pod("web", &["app"]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.ephemeral_containers = Some(vec![ours]);
    }
    let restarted = |pod: &mut Pod, id: &str| {
        if let Some(status) = pod.status.as_mut() {
            status.ephemeral_container_statuses = Some(vec![ContainerStatus {
                name: "dbg-ab12c".into(),
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
                app.container_id = Some(id.into());
            }
        }
    };
    restarted(&mut pod, "containerd://3f2a");
    assert!(
        reusable_in(&pod, "app", &image, "auto").is_some(),
        "the same target"
    );
    restarted(&mut pod, "containerd://9e8d");
    assert_eq!(
        reusable_in(&pod, "app", &image, "auto"),
        None,
        "it ended with the earlier target, whatever the status says"
    );
    if let Some(spec) = pod.spec.as_mut() {
        spec.share_process_namespace = Some(true);
    }
    assert!(
        reusable_in(&pod, "app", &image, "auto").is_some(),
        "a shared PID namespace outlives the target"
    );
}

fn app_process(pid: Option<u32>) -> TargetProcess {
    TargetProcess {
        container: "app".into(),
        container_id: Some("containerd://3f2a".into()),
        pid,
        containers: Vec::new(),
    }
}

#[test]
fn the_target_is_named_to_the_agent_in_env_and_on_every_exec() {
    struct Case {
        image: ImageChoice,
        target: TargetProcess,
        env: &'static [(&'static str, &'static str)],
        absent: &'static [&'static str],
        link: &'static str,
    }
    let cases = [
        Case {
            image: base(),
            target: app_process(None),
            env: &[("DISTROLESS_DEBUG_TARGET_ID", "containerd://3f2a")],
            absent: &["DISTROLESS_DEBUG_TARGET_PID", "TARGET_PID", "TARGET_ROOT"],
            link: "",
        },
        Case {
            image: base(),
            target: app_process(Some(12)),
            env: &[
                ("DISTROLESS_DEBUG_TARGET_ID", "containerd://3f2a"),
                ("DISTROLESS_DEBUG_TARGET_PID", "12"),
            ],
            absent: &["TARGET_PID"],
            link: "",
        },
        Case {
            image: ImageChoice::Custom("busybox".into()),
            target: app_process(None),
            env: &[("TARGET_PID", "1"), ("TARGET_ROOT", "/tmp/target")],
            absent: &[],
            link: "ln -sfn /proc/1/root /tmp/target",
        },
        Case {
            image: ImageChoice::Custom("busybox".into()),
            target: app_process(Some(7)),
            env: &[("TARGET_PID", "7"), ("TARGET_ROOT", "/tmp/target")],
            absent: &[],
            link: "ln -sfn /proc/7/root /tmp/target",
        },
        Case {
            image: base(),
            target: TargetProcess::default(),
            env: &[],
            absent: &["DISTROLESS_DEBUG_TARGET_ID", "DISTROLESS_DEBUG_TARGET_PID"],
            link: "",
        },
    ];
    for case in cases {
        let c = ephemeral_container_for(
            &options(case.image.clone(), Profile::Auto, None),
            "app",
            &case.target,
            &Identity::known(65532, 65532),
            &facts(),
            "ab12c",
        );
        let env = env(&c);
        for (name, value) in case.env {
            assert!(
                env.contains(&(name.to_string(), value.to_string())),
                "{name}={value} in {env:?}"
            );
        }
        for name in case.absent {
            assert!(!env.iter().any(|(n, _)| n == name), "{name} in {env:?}");
        }
        if !case.link.is_empty() {
            let command = c.command.clone().unwrap_or_default();
            assert!(command[2].contains(case.link), "{command:?}");
        }
    }
    let argv = ["ls".to_string()];
    assert_eq!(
        run_command(&base(), &app_process(Some(12)), &argv),
        [
            "distroless-debug-agent",
            "run",
            "--target-id",
            "containerd://3f2a",
            "--target-pid",
            "12",
            "--",
            "ls"
        ]
    );
    assert_eq!(
        shell_command(&base(), &app_process(None)),
        [
            "distroless-debug-agent",
            "shell",
            "--target-id",
            "containerd://3f2a"
        ]
    );
    let attached = attach_mode(
        ephemeral_container_for(
            &options(base(), Profile::Auto, None),
            "app",
            &app_process(None),
            &Identity::known(1, 1),
            &facts(),
            "ab12c",
        ),
        &base(),
        &app_process(None),
    );
    assert_eq!(
        attached.command.unwrap_or_default(),
        [
            "distroless-debug-agent",
            "shell",
            "--target-id",
            "containerd://3f2a"
        ]
    );
    assert_eq!(
        agent_command("tar", &app_process(None), &["--", "/etc"]),
        [
            "distroless-debug-agent",
            "tar",
            "--target-id",
            "containerd://3f2a",
            "--",
            "/etc"
        ]
    );
}

#[test]
fn generic_mode_refuses_a_shared_pid_namespace_without_target_pid() {
    let mut pod = crate::session::target::tests::running_pod("web", &["app"]);
    let target = |pod: &Pod| crate::session::target::target_in(pod.clone(), None).unwrap();
    let generic = options(ImageChoice::Custom("busybox".into()), Profile::Auto, None);
    use crate::session::plan::generic_check;
    assert!(generic_check(&generic, &target(&pod)).is_ok());
    if let Some(spec) = pod.spec.as_mut() {
        spec.share_process_namespace = Some(true);
    }
    let err = generic_check(&generic, &target(&pod)).unwrap_err();
    assert!(err.to_string().contains("--target-pid"), "{err}");
    assert_eq!(err.exit_status(), crate::base::exit::ExitStatus::Usage);
    let picked = DebugOptions {
        target_pid: Some(7),
        ..generic.clone()
    };
    assert!(generic_check(&picked, &target(&pod)).is_ok());
    assert!(generic_check(&options(base(), Profile::Auto, None), &target(&pod)).is_ok());
}
