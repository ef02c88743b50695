//! `Options::from_cli`: every cross-flag rule, one line each.

use clap::Parser;

use super::*;
use crate::session::profile::Profile;
use crate::session::target::TargetKind;
use crate::toolkit::catalog::Toolkit;
use crate::transfer::options::{Direction, SnapshotOutput};

fn terminal() -> Environment {
    Environment {
        stdin_is_terminal: true,
        stdout_is_terminal: true,
        stderr_is_terminal: true,
        ..Environment::default()
    }
}

fn script() -> Environment {
    Environment::default()
}

fn parse(args: &[&str], env: &Environment) -> Result<Options, UsageError> {
    let mut argv = vec!["kubectl-distroless_debug"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).map_err(|e| UsageError(e.to_string()))?;
    Options::from_cli(cli, env)
}

fn debug(args: &[&str], env: &Environment) -> DebugOptions {
    match parse(args, env).expect("valid command line").action {
        Action::Debug(d) => d,
        other => panic!("not a debug action: {other:?}"),
    }
}

fn refusal(args: &[&str], env: &Environment) -> String {
    parse(args, env).expect_err("should be refused").0
}

#[test]
fn a_terminal_and_no_command_means_an_interactive_shell() {
    let d = debug(&["pod/web"], &terminal());
    assert_eq!(d.mode, Mode::Interactive);
    assert_eq!(
        d.target,
        TargetRef {
            kind: TargetKind::Pod,
            name: "web".into()
        }
    );
    assert!(d.reuse);
    assert_eq!(d.timeout, Duration::from_secs(120));
    assert_eq!(d.ttl, Duration::from_secs(3600));
    assert_eq!(d.profile, Profile::Auto);
}

#[test]
fn no_terminal_and_no_command_reads_a_script_from_stdin() {
    assert_eq!(debug(&["web"], &script()).mode, Mode::PipedShell);
}

#[test]
fn dev_null_is_not_forwarded_unless_asked() {
    let null = Environment {
        stdin_is_null: true,
        ..script()
    };
    let stdin_of = |args: &[&str]| match debug(args, &null).mode {
        Mode::Command { stdin, .. } => stdin,
        other => panic!("{other:?}"),
    };
    assert!(!stdin_of(&["pod/web", "--", "ls"]));
    assert!(stdin_of(&["pod/web", "-i", "--", "ls"]));
}

#[test]
fn a_command_forwards_a_piped_stdin_but_not_the_keyboard() {
    let d = debug(&["pod/web", "--", "ls", "-l"], &script());
    assert_eq!(
        d.mode,
        Mode::Command {
            argv: vec!["ls".into(), "-l".into()],
            stdin: true,
            tty: false
        }
    );
    let d = debug(&["pod/web", "--", "ls"], &terminal());
    assert_eq!(
        d.mode,
        Mode::Command {
            argv: vec!["ls".into()],
            stdin: false,
            tty: false
        }
    );
    let d = debug(&["pod/web", "-it", "--", "bash"], &terminal());
    assert_eq!(
        d.mode,
        Mode::Command {
            argv: vec!["bash".into()],
            stdin: true,
            tty: true
        }
    );
}

#[test]
fn tty_needs_a_terminal_on_stdin() {
    assert!(refusal(&["pod/web", "-t"], &script()).contains("`-t` needs a terminal on stdin"));
    assert!(refusal(&["pod/web", "-t", "--", "sh"], &script()).contains("`-t` needs a terminal"));
}

#[test]
fn output_needs_a_command_or_a_dry_run() {
    assert!(refusal(&["pod/web", "-o", "json"], &terminal()).contains("add one after `--`"));
    let d = debug(&["pod/web", "-o", "json", "--", "true"], &script());
    assert_eq!(d.format, Some(OutputFormat::Json));
}

#[test]
fn client_dry_run_prints_yaml_unless_told_otherwise() {
    let d = debug(&["pod/web", "--dry-run"], &terminal());
    assert_eq!(
        (d.dry_run, d.format),
        (Some(DryRun::Client), Some(OutputFormat::Yaml))
    );
    let d = debug(&["pod/web", "--dry-run=client", "-o", "json"], &terminal());
    assert_eq!(d.format, Some(OutputFormat::Json));
    let d = debug(&["pod/web", "--dry-run=server"], &terminal());
    assert_eq!((d.dry_run, d.format), (Some(DryRun::Server), None));
}

#[test]
fn dry_run_refuses_a_command() {
    assert!(refusal(&["pod/web", "--dry-run", "--", "ls"], &script()).contains("drop the command"));
}

#[test]
fn image_and_toolkit_exclude_each_other() {
    let message = refusal(
        &["pod/web", "--image", "busybox", "--toolkit", "net"],
        &script(),
    );
    assert!(message.contains("--toolkit"), "{message}");
}

#[test]
fn registry_override_reaches_the_toolkit_choice() {
    let env = Environment {
        registry: Some("mirror.local:5000/dd".into()),
        ..script()
    };
    let d = debug(&["pod/web", "--toolkit", "net"], &env);
    assert_eq!(
        d.image,
        ImageChoice::Toolkit {
            toolkit: Toolkit::Net,
            registry: Some("mirror.local:5000/dd".into())
        }
    );
    let d = debug(&["pod/web", "--image", "nicolaka/netshoot"], &env);
    assert_eq!(d.image, ImageChoice::Custom("nicolaka/netshoot".into()));
}

#[test]
fn the_config_file_chooses_images_and_the_default_toolkit() {
    let config = crate::toolkit::config::parse(
        "registry: mirror.corp/dd\nimages:\n  net: mirror.corp/tools/net:2\ntoolkit: auto\n",
    )
    .unwrap();
    let env = Environment { config, ..script() };
    let d = debug(&["pod/web", "--toolkit", "net"], &env);
    assert_eq!(d.image.reference(), "mirror.corp/tools/net:2");
    assert!(d.image.has_agent());
    let d = debug(&["pod/web", "--toolkit", "full"], &env);
    assert_eq!(
        d.image.reference(),
        format!("mirror.corp/dd/full:{}", crate::toolkit::catalog::VERSION)
    );
    // `toolkit: auto` in the file is the default; a flag wins over it.
    assert!(matches!(
        debug(&["pod/web"], &env).image,
        ImageChoice::Auto(_)
    ));
    let cp = match parse(&["cp", "pod/web:/x", "."], &env).unwrap().action {
        Action::Copy(c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        cp.session.image.reference(),
        format!("mirror.corp/dd/base:{}", crate::toolkit::catalog::VERSION)
    );
    // The environment variable wins over the whole file.
    let env = Environment {
        registry: Some("env.corp/dd".into()),
        ..env
    };
    let d = debug(&["pod/web", "--toolkit", "net"], &env);
    assert_eq!(
        d.image.reference(),
        format!("env.corp/dd/net:{}", crate::toolkit::catalog::VERSION)
    );
}

#[test]
fn toolkit_auto_is_settled_later_and_images_needs_no_target() {
    let d = debug(&["pod/web", "--toolkit", "auto", "--", "ls"], &script());
    assert_eq!(d.image, ImageChoice::Auto(Catalog::default()));
    assert!(matches!(
        parse(&["images", "-o", "json"], &script()).unwrap().action,
        Action::Images {
            format: Some(OutputFormat::Json),
            ..
        }
    ));
    match parse(&["info", "deploy/api", "-c", "app"], &script())
        .unwrap()
        .action
    {
        Action::Info { session, format } => {
            assert_eq!(session.container.as_deref(), Some("app"));
            assert!(session.image.has_agent() && session.reuse && format.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert!(parse(&["info"], &script()).is_err(), "info needs a TARGET");
}

#[test]
fn durations_are_checked_here_not_by_the_agent() {
    assert!(
        refusal(&["pod/web", "--timeout", "0"], &script())
            .contains("`--timeout` must be more than 0")
    );
    assert!(refusal(&["pod/web", "--ttl", "10"], &script()).contains("`--ttl`"));
    assert_eq!(
        debug(&["pod/web", "--ttl", "0"], &script()).ttl,
        Duration::ZERO
    );
    assert!(
        refusal(&["pod/web", "--request-timeout", "x"], &script()).contains("`--request-timeout`")
    );
}

#[test]
fn bad_names_are_refused_before_any_request() {
    assert!(refusal(&["pod/Web"], &script()).contains("not a valid name"));
    assert!(refusal(&["pod/web", "-c", "App"], &script()).contains("`-c App`"));
    assert!(refusal(&["cronjob/x"], &script()).contains("cronjob"));
    assert!(refusal(&["-n", "Prod", "pod/web"], &script()).contains("`-n Prod`"));
}

#[test]
fn reason_is_one_short_line() {
    assert!(refusal(&["pod/web", "--reason", "a\nb"], &script()).contains("`--reason`"));
    assert_eq!(
        debug(&["pod/web", "--reason", "INC-42"], &script())
            .reason
            .as_deref(),
        Some("INC-42")
    );
}

#[test]
fn new_turns_reuse_off() {
    assert!(!debug(&["pod/web", "--new"], &script()).reuse);
}

#[test]
fn subcommands_and_their_flags() {
    let o = parse(&["ls", "-A", "-o", "json"], &script()).unwrap();
    assert_eq!(
        o.action,
        Action::List {
            all_namespaces: true,
            format: Some(OutputFormat::Json)
        }
    );
    let o = parse(&["cleanup", "--dry-run", "-n", "prod"], &script()).unwrap();
    assert_eq!(
        o.action,
        Action::Cleanup {
            all_namespaces: false,
            dry_run: true
        }
    );
    assert_eq!(o.kube.namespace.as_deref(), Some("prod"));
    assert!(refusal(&["ls", "-A", "-n", "prod"], &script()).contains("`-n` and `-A`"));
    // Flags before the subcommand still mean the subcommand (a regression: `-n x ls`
    // was once read as a pod named "ls").
    let o = parse(&["-n", "prod", "ls"], &script()).unwrap();
    assert_eq!(
        o.action,
        Action::List {
            all_namespaces: false,
            format: None
        }
    );
    assert_eq!(o.kube.namespace.as_deref(), Some("prod"));
    let o = parse(&["--context", "c", "-q", "cleanup"], &script()).unwrap();
    assert_eq!(
        o.action,
        Action::Cleanup {
            all_namespaces: false,
            dry_run: false
        }
    );
    assert!(refusal(&["pod/web", "ls"], &script()).contains("takes no TARGET"));
}

fn copy(args: &[&str]) -> CopyOptions {
    let mut argv = vec!["cp"];
    argv.extend_from_slice(args);
    match parse(&argv, &script()).expect("valid cp").action {
        Action::Copy(c) => c,
        other => panic!("not a copy: {other:?}"),
    }
}

#[test]
fn cp_has_exactly_one_side_in_the_pod() {
    let c = copy(&["pod/web:/etc/app/current/", "./x", "-c", "app"]);
    assert_eq!(
        c.direction,
        Direction::Download {
            remote: "/etc/app/current".into(),
            local: "./x".into()
        }
    );
    assert_eq!(c.session.container.as_deref(), Some("app"));
    assert_eq!(c.session.target.name, "web");
    assert!(c.session.image.has_agent(), "cp needs the agent");
    let c = copy(&["./fix.json", "deploy/api:/tmp", "--new"]);
    assert_eq!(
        c.direction,
        Direction::Upload {
            local: "./fix.json".into(),
            remote: "/tmp".into()
        }
    );
    assert!(!c.session.reuse);
    let c = copy(&["-n", "prod", "web:/x", "."]);
    assert_eq!(c.session.target.name, "web");

    assert!(refusal(&["cp", "a", "b"], &script()).contains("one side of `cp` must be in the pod"));
    assert!(refusal(&["cp", "pod/a:/x", "pod/b:/y"], &script()).contains("both sides"));
    assert!(refusal(&["cp", "pod/web:etc", "."], &script()).contains("must be absolute"));
    assert!(refusal(&["cp", "pod/web:/a/../b", "."], &script()).contains("`..`"));
    assert!(
        refusal(&["cp", "pod/web:/x", ".", "--timeout", "0"], &script()).contains("`--timeout`")
    );
    assert!(
        refusal(&["cp", "pod/web:/x", ".", "--image", "busybox"], &script()).contains("--image")
    );
}

#[test]
fn snapshot_writes_a_tar_or_a_tar_gz_and_checks_its_patterns() {
    let snapshot = |args: &[&str], env: &Environment| {
        let mut argv = vec!["snapshot"];
        argv.extend_from_slice(args);
        match parse(&argv, env).map(|o| o.action) {
            Ok(Action::Snapshot(s)) => Ok(s),
            Ok(other) => panic!("not a snapshot: {other:?}"),
            Err(e) => Err(e.0),
        }
    };
    let s = snapshot(
        &["pod/web", "-o", "out/x.tar.gz", "--exclude", "*.log"],
        &script(),
    )
    .unwrap();
    assert_eq!(
        s.output,
        SnapshotOutput::File {
            path: "out/x.tar.gz".into(),
            gzip: true
        }
    );
    assert!(s.volumes);
    assert!(s.filter.exclude[0].matches("/var/log/a.log"));
    let s = snapshot(&["web", "-o", "x.tar", "--no-volumes"], &script()).unwrap();
    assert!(!s.volumes);
    assert_eq!(
        snapshot(&["web", "-o", "-"], &script()).unwrap().output,
        SnapshotOutput::Stdout
    );
    assert!(
        snapshot(&["web", "-o", "-"], &terminal())
            .unwrap_err()
            .contains("redirect it")
    );
    assert!(
        snapshot(&["web", "-o", "x.zip"], &script())
            .unwrap_err()
            .contains("FILE.tar")
    );
    assert!(
        snapshot(&["web", "-o", "x.tar", "--include", ""], &script())
            .unwrap_err()
            .contains("`--include`")
    );
    assert!(
        parse(&["snapshot", "web"], &script()).is_err(),
        "-o is required"
    );
}

#[test]
fn mirror_volumes_and_copy_env_add_a_container_of_their_own() {
    let d = debug(&["pod/web", "--mirror-volumes", "--copy-env"], &script());
    assert!(d.mirror_volumes && d.copy_env);
    assert!(!d.reuse, "an existing container has neither");
    let d = debug(&["pod/web"], &script());
    assert!(!d.mirror_volumes && !d.copy_env && d.reuse);
}

#[test]
fn a_target_is_required_without_a_subcommand() {
    assert!(parse(&[], &script()).is_err());
}

#[test]
fn colour_and_progress_follow_the_terminal_and_no_color() {
    let o = parse(&["pod/web"], &terminal()).unwrap();
    assert!(o.output.color && o.output.progress);
    let o = parse(
        &["pod/web"],
        &Environment {
            no_color: true,
            ..terminal()
        },
    )
    .unwrap();
    assert!(!o.output.color && o.output.progress);
    let o = parse(&["pod/web", "-q"], &terminal()).unwrap();
    assert!(!o.output.progress);
    let o = parse(&["pod/web"], &script()).unwrap();
    assert!(!o.output.color && !o.output.progress);
}

#[test]
fn a_fan_out_takes_several_contexts_each_once_in_the_order_given() {
    let contexts = |args: &[&str]| {
        parse(args, &script())
            .map(|o| o.kube.contexts)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    };
    assert_eq!(
        contexts(&["run", "rb.yaml", "-l", "app=web", "--context", "a,b"]),
        ["a", "b"]
    );
    assert_eq!(
        contexts(&[
            "--context",
            "b",
            "--context",
            "a",
            "-l",
            "app=web",
            "--",
            "ls"
        ]),
        ["b", "a"]
    );
    // Before and after the subcommand both count (a global flag would keep only one).
    assert_eq!(
        contexts(&[
            "--context",
            "a",
            "run",
            "rb.yaml",
            "pod/web",
            "--context",
            "b,c"
        ]),
        ["a", "b", "c"]
    );
    assert_eq!(
        contexts(&["run", "rb.yaml", "-l", "a=b", "--context", "a,b,a"]),
        ["a", "b"]
    );
    assert!(contexts(&["run", "rb.yaml", "-l", "a=b"]).is_empty());
    // One context is fine anywhere, before or after the subcommand.
    assert_eq!(
        contexts(&["cp", "pod/web:/x", ".", "--context", "prod"]),
        ["prod"]
    );
    assert_eq!(contexts(&["--context", "prod", "pod/web"]), ["prod"]);
    assert!(
        refusal(
            &["run", "rb.yaml", "-l", "a=b", "--context", "a,,b"],
            &script()
        )
        .contains("`--context` needs a context name")
    );
}

#[test]
fn single_cluster_commands_refuse_several_contexts_and_say_which_take_them() {
    for (args, command) in [
        (&["--context", "a,b", "pod/web"][..], "a session (`TARGET`)"),
        (&["ls", "--context", "a,b"], "`ls`"),
        (
            &["--context", "a", "cleanup", "--context", "b"],
            "`cleanup`",
        ),
        (&["cp", "pod/web:/x", ".", "--context", "a,b"], "`cp`"),
        (
            &["snapshot", "web", "-o", "x.tar", "--context", "a,b"],
            "`snapshot`",
        ),
        (&["info", "web", "--context", "a,b"], "`info`"),
    ] {
        let message = refusal(args, &script());
        assert_eq!(
            message,
            format!(
                "`--context a,b`: {command} works in one cluster; several contexts are for `run` and `-l SELECTOR -- COMMAND`: give one context"
            ),
            "{args:?}"
        );
    }
}

#[test]
fn standard_kubectl_flags() {
    let o = parse(
        &[
            "--context",
            "prod",
            "--kubeconfig",
            "/k",
            "--as",
            "alice",
            "--request-timeout",
            "5s",
            "--api-retries",
            "2",
            "--api-retry-within",
            "3s",
            "pod/web",
        ],
        &script(),
    )
    .unwrap();
    assert_eq!(
        o.kube,
        KubeOptions {
            namespace: None,
            contexts: vec!["prod".into()],
            kubeconfig: Some("/k".into()),
            as_user: Some("alice".into()),
            request_timeout: Some(Duration::from_secs(5)),
            retry: crate::kube::retry::RetryPolicy {
                retries: 2,
                within: Duration::from_secs(3),
            },
        }
    );
    let o = parse(&["pod/web"], &script()).unwrap();
    assert_eq!(o.kube.retry, crate::kube::retry::RetryPolicy::default());
    assert!(
        refusal(&["pod/web", "--api-retry-within", "x"], &script())
            .contains("`--api-retry-within`")
    );
}

#[test]
fn recording_follows_the_flags_then_the_config_file() {
    let on = debug(&["pod/web", "--", "true"], &script()).record;
    assert!(on.enabled && on.path.is_none() && !on.input);
    assert_eq!(on.max_bytes, 64 * 1024 * 1024);
    assert!(
        !debug(&["pod/web", "--no-record", "--", "true"], &script())
            .record
            .enabled
    );
    let off_in_file = Environment {
        config: crate::toolkit::config::Config {
            record: Some(false),
            record_max_bytes: Some(1000),
            ..Default::default()
        },
        ..script()
    };
    let off = debug(&["pod/web", "--", "true"], &off_in_file).record;
    assert!(!off.enabled, "config `record: false`");
    let asked = debug(
        &["pod/web", "--record", "/tmp/x.cast", "--record-input"],
        &off_in_file,
    );
    assert!(asked.record.enabled, "--record FILE wins over the file");
    assert_eq!(asked.record.path, Some(PathBuf::from("/tmp/x.cast")));
    assert!(asked.record.input);
    assert_eq!(asked.record.max_bytes, 1000);
    assert!(
        refusal(&["pod/web", "--no-record", "--record-input"], &script()).contains("--no-record")
    );
}

#[test]
fn history_takes_its_filters_and_show() {
    let Action::History(h) = parse(
        &[
            "history",
            "--pod",
            "web",
            "--since",
            "2h",
            "-o",
            "json",
            "--context",
            "prod",
        ],
        &script(),
    )
    .expect("valid")
    .action
    else {
        panic!("not history");
    };
    assert_eq!(h.pod.as_deref(), Some("web"));
    assert_eq!(h.since, Some(Duration::from_secs(7200)));
    assert_eq!(h.contexts, ["prod"]);
    assert_eq!(h.format, Some(OutputFormat::Json));
    let Action::History(h) = parse(&["history", "show", "abc", "--plain"], &script())
        .expect("valid")
        .action
    else {
        panic!("not history");
    };
    assert_eq!(h.show, Some(("abc".to_string(), true)));
    assert!(refusal(&["history", "--since", "soon"], &script()).contains("--since"));
}

fn copy_pod(args: &[&str], env: &Environment) -> (DebugOptions, CopyPodOptions) {
    match parse(args, env).expect("valid command line").action {
        Action::CopyPod { session, copy } => (session, copy),
        other => panic!("not a --copy action: {other:?}"),
    }
}

#[test]
fn copy_takes_its_flags_and_splits_the_entrypoint_as_a_shell_would() {
    let (session, copy) = copy_pod(
        &[
            "deploy/api",
            "--copy",
            "--same-node",
            "--keep-copy",
            "--entrypoint",
            "/app/server --name 'a b'",
            "--",
            "start",
            "PORT=8080",
        ],
        &script(),
    );
    assert_eq!(session.target.kind, TargetKind::Deployment);
    assert!(copy.same_node && copy.keep_copy);
    assert_eq!(
        copy.entrypoint,
        Some(vec!["/app/server".into(), "--name".into(), "a b".into()])
    );
    assert!(
        matches!(session.mode, Mode::Command { ref argv, .. } if argv == &["start", "PORT=8080"])
    );
    let (_, plain) = copy_pod(&["pod/web", "--copy"], &terminal());
    assert_eq!(plain, CopyPodOptions::default());
}

#[test]
fn copy_refuses_what_cannot_hold_a_target() {
    assert!(refusal(&["pod/web", "--copy", "--image", "busybox"], &script()).contains("--image"));
    assert!(refusal(&["pod/web", "--copy", "--copy-env"], &script()).contains("--copy-env"));
    assert!(refusal(&["pod/web", "--copy", "--entrypoint", "'open"], &script()).contains("quote"));
    assert!(
        refusal(&["pod/web", "--copy", "--entrypoint", ""], &script()).contains("needs a command")
    );
    assert!(refusal(&["pod/web", "--copy", "-o", "json", "--", "ls"], &script()).contains("-o"));
    // The flags of copy mode mean nothing without it.
    assert!(refusal(&["pod/web", "--keep-copy"], &script()).contains("--copy"));
    assert!(refusal(&["pod/web", "--entrypoint", "/app"], &script()).contains("--copy"));
    assert!(refusal(&["-l", "app=web", "--copy", "--", "ls"], &script()).contains("--copy"));
}

#[test]
fn copy_dry_run_prints_yaml_by_default() {
    let (session, _) = copy_pod(&["pod/web", "--copy", "--dry-run=client"], &script());
    assert_eq!(session.format, Some(OutputFormat::Yaml));
}
