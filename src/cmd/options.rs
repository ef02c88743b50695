//! Raw flags turned into what the run needs, with every cross-flag rule in one place.
//!
//! `Options::from_cli` is pure: the facts it needs from the environment (is stdin a terminal?
//! is NO_COLOR set?) come in as [`Environment`], so each rule is a one-line unit test. Errors
//! speak in flags because the user typed flags ("`-t` needs a terminal on stdin").

use std::path::PathBuf;
use std::time::Duration;

use crate::base::duration;
use crate::base::error::UsageError;
use crate::cmd::cli::{
    Cli, Command, DebugArgs, DryRunArg, FanoutArgs, HistoryShow, KubeFlags, RunArgs,
};
use crate::cmd::copy_options::{copy_options, file_session, snapshot_options};
use crate::cmd::flags::Environment;
use crate::cmd::flags::{check_reason, flag_image, positive, usage};
use crate::cmd::history::HistoryOptions;
use crate::fanout::plan::{DEFAULT_PARALLEL, FanoutOptions, SessionFlags, Source};
use crate::kube::cluster::KubeOptions;
use crate::kube::retry::RetryPolicy;
use crate::output::printer::{OutputFormat, OutputOptions};
use crate::output::recording::{self, RecordOptions};
use crate::session::copy::options::CopyPodOptions;
use crate::session::options::{DebugOptions, DryRun, Mode};
use crate::session::target::TargetRef;
use crate::toolkit::catalog::ToolkitArg;
use crate::toolkit::catalog::{Catalog, ImageChoice};
use crate::transfer::options::{CopyOptions, SnapshotOptions};

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub kube: KubeOptions,
    pub output: OutputOptions,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Debug(DebugOptions),
    /// `TARGET --copy`: a session in a copy of the pod, the target held before its entrypoint.
    CopyPod {
        session: DebugOptions,
        copy: CopyPodOptions,
    },
    List {
        all_namespaces: bool,
        format: Option<OutputFormat>,
    },
    Cleanup {
        all_namespaces: bool,
        dry_run: bool,
    },
    Copy(CopyOptions),
    Snapshot(SnapshotOptions),
    /// `run RUNBOOK`, and `-l SELECTOR -- COMMAND`.
    Run(FanoutOptions),
    /// `images`: the catalog as configured; no cluster needed.
    Images {
        catalog: Catalog,
        /// Where the catalog's setting comes from, in words.
        from: String,
        format: Option<OutputFormat>,
    },
    /// `history`: the local session records; no cluster needed.
    History(HistoryOptions),
    /// `info TARGET`: the agent's facts about the target.
    Info {
        session: DebugOptions,
        format: Option<OutputFormat>,
    },
    /// `completion SHELL`: the script; no cluster needed.
    Completion(clap_complete::Shell),
}

impl Options {
    pub fn from_cli(cli: Cli, env: &Environment) -> Result<Options, UsageError> {
        let kube = kube_options(&cli.kube, &contexts_typed(&cli))?;
        let output = OutputOptions {
            quiet: cli.quiet,
            color: env.stderr_is_terminal && !env.no_color,
            progress: env.stderr_is_terminal && !cli.quiet,
        };
        if cli.command.is_some() && cli.debug.target.is_some() {
            return Err(usage(
                "a subcommand takes no TARGET: `ls` and `cleanup` work on a namespace (`-n`, `-A`)",
            ));
        }
        let action = match cli.command {
            Some(Command::Ls(args)) => Action::List {
                all_namespaces: args.all_namespaces,
                format: args.output,
            },
            Some(Command::Cleanup(args)) => Action::Cleanup {
                all_namespaces: args.all_namespaces,
                dry_run: args.dry_run,
            },
            Some(Command::Cp(args)) => Action::Copy(copy_options(args, env)?),
            Some(Command::Snapshot(args)) => Action::Snapshot(snapshot_options(args, env)?),
            Some(Command::Run(args)) => Action::Run(run_options(args, env)?),
            Some(Command::History(args)) => Action::History(HistoryOptions {
                pod: args.pod,
                since: args
                    .since
                    .map(|s| duration::parse(&s).map_err(|e| usage(format!("`--since`: {e}"))))
                    .transpose()?,
                contexts: args.context.context,
                format: args.output,
                show: args.show.map(|HistoryShow::Show { id, plain }| (id, plain)),
            }),
            Some(Command::Images(args)) => Action::Images {
                catalog: env.catalog(),
                from: match (&env.registry, &env.config.path) {
                    (Some(_), _) => "DISTROLESS_DEBUG_REGISTRY".to_string(),
                    (None, Some(path)) => format!("config file {}", path.display()),
                    (None, None) => "the built-in default (no config file)".to_string(),
                },
                format: args.output,
            },
            Some(Command::Info(args)) => {
                let target: TargetRef = args.target.parse().map_err(UsageError)?;
                Action::Info {
                    session: file_session(target, args.session, env)?,
                    format: args.output,
                }
            }
            Some(Command::Completion { shell, .. }) => Action::Completion(shell),
            None if cli.debug.fanout.selector.is_some() => {
                Action::Run(command_fanout(cli.debug, env)?)
            }
            None if cli.debug.copy => copy_pod_options(cli.debug, env)?,
            None => Action::Debug(debug_options(cli.debug, env)?),
        };
        let everywhere = match &action {
            Action::List { all_namespaces, .. } | Action::Cleanup { all_namespaces, .. } => {
                *all_namespaces
            }
            Action::Run(run) => run.all_namespaces,
            _ => false,
        };
        if kube.namespace.is_some() && everywhere {
            return Err(usage(
                "`-n` and `-A` contradict each other: use one of them",
            ));
        }
        if kube.contexts.len() > 1
            && let Some(command) = one_cluster_command(&action)
        {
            return Err(usage(format!(
                "`--context {}`: {command} works in one cluster; several contexts are for `run` and `-l SELECTOR -- COMMAND`: give one context",
                kube.contexts.join(",")
            )));
        }
        Ok(Options {
            kube,
            output,
            action,
        })
    }
}

/// What to call a command that works in one cluster, for the message refusing several
/// contexts; `None` for those that take several (and `images`, which needs no cluster).
fn one_cluster_command(action: &Action) -> Option<&'static str> {
    match action {
        Action::Debug(_) | Action::CopyPod { .. } => Some("a session (`TARGET`)"),
        Action::List { .. } => Some("`ls`"),
        Action::Cleanup { .. } => Some("`cleanup`"),
        Action::Copy(_) => Some("`cp`"),
        Action::Snapshot(_) => Some("`snapshot`"),
        Action::Info { .. } => Some("`info`"),
        Action::Run(_) | Action::Images { .. } | Action::History(_) | Action::Completion(_) => None,
    }
}

/// Every `--context` value, before the subcommand and after it, in the order typed.
fn contexts_typed(cli: &Cli) -> Vec<String> {
    let after = match &cli.command {
        None => None,
        Some(Command::Ls(args)) => Some(&args.context),
        Some(Command::Cleanup(args)) => Some(&args.context),
        Some(Command::Cp(args)) => Some(&args.context),
        Some(Command::Snapshot(args)) => Some(&args.context),
        Some(Command::Run(args)) => Some(&args.context),
        Some(Command::Images(args)) => Some(&args.context),
        Some(Command::Info(args)) => Some(&args.context),
        Some(Command::History(args)) => Some(&args.context),
        Some(Command::Completion { context, .. }) => Some(context),
    };
    let before = &cli.kube.context.context;
    before
        .iter()
        .chain(after.into_iter().flat_map(|a| &a.context))
        .cloned()
        .collect()
}

fn kube_options(flags: &KubeFlags, typed: &[String]) -> Result<KubeOptions, UsageError> {
    if let Some(namespace) = &flags.namespace
        && !crate::session::target::is_dns_label(namespace)
    {
        return Err(usage(format!(
            "`-n {namespace}` is not a namespace name (lowercase letters, digits and '-', at most 63)"
        )));
    }
    let request_timeout = match flags.request_timeout.as_deref() {
        None => None,
        Some(text) => {
            let d =
                duration::parse(text).map_err(|e| usage(format!("`--request-timeout`: {e}")))?;
            (!d.is_zero()).then_some(d)
        }
    };
    let mut retry = RetryPolicy::default();
    if let Some(retries) = flags.api_retries {
        retry.retries = retries;
    }
    if let Some(text) = flags.api_retry_within.as_deref() {
        retry.within =
            duration::parse(text).map_err(|e| usage(format!("`--api-retry-within`: {e}")))?;
    }
    let mut contexts: Vec<String> = Vec::new();
    for context in typed {
        if context.trim().is_empty() {
            return Err(usage(
                "`--context` needs a context name (`kubectl config get-contexts` lists them); several are separated by commas, without spaces",
            ));
        }
        // `--context a,a` means the cluster once: each pod is debugged once.
        if !contexts.contains(context) {
            contexts.push(context.clone());
        }
    }
    Ok(KubeOptions {
        namespace: flags.namespace.clone(),
        contexts,
        kubeconfig: flags.kubeconfig.clone(),
        as_user: flags.as_user.clone(),
        request_timeout,
        retry,
    })
}

fn debug_options(args: DebugArgs, env: &Environment) -> Result<DebugOptions, UsageError> {
    if args.fanout.all_namespaces || args.fanout.parallel.is_some() || args.fanout.out_dir.is_some()
    {
        return Err(usage(
            "`-A`, `--parallel` and `--out-dir` are for many pods: add `-l SELECTOR` (and a command after `--`), or use `run`",
        ));
    }
    let Some(target) = args.target.as_deref() else {
        return Err(usage(
            "a TARGET is needed, e.g. `pod/web` (or a subcommand: ls, cleanup)",
        ));
    };
    let target: TargetRef = target.parse().map_err(UsageError)?;
    if let Some(container) = &args.container
        && !crate::session::target::is_dns_label(container)
    {
        return Err(usage(format!(
            "`-c {container}` is not a container name (lowercase letters, digits and '-', at most 63)"
        )));
    }

    let image = match (&args.image, args.toolkit) {
        (Some(reference), _) => {
            if reference.trim().is_empty() || reference.chars().any(char::is_whitespace) {
                return Err(usage(format!(
                    "`--image {reference:?}` is not an image reference"
                )));
            }
            ImageChoice::Custom(reference.clone())
        }
        (None, toolkit) => {
            use crate::toolkit::config::DefaultToolkit;
            let catalog = env.catalog();
            match (toolkit, env.config.toolkit) {
                (Some(ToolkitArg::Auto), _) | (None, Some(DefaultToolkit::Auto)) => {
                    ImageChoice::Auto(catalog)
                }
                (Some(toolkit), _) => catalog.image(toolkit.into()),
                (None, Some(DefaultToolkit::Toolkit(toolkit))) => catalog.image(toolkit),
                (None, None) => ImageChoice::Hinted(catalog),
            }
        }
    };

    let positive = |flag: &str, text: &str| -> Result<Duration, UsageError> {
        let d = duration::parse(text).map_err(|e| usage(format!("`--{flag}`: {e}")))?;
        if d.is_zero() {
            return Err(usage(format!("`--{flag}` must be more than 0")));
        }
        Ok(d)
    };
    let timeout = positive("timeout", &args.timeout)?;
    let ttl = duration::parse(&args.ttl).map_err(|e| usage(format!("`--ttl`: {e}")))?;
    let idle = duration::parse(&args.idle).map_err(|e| usage(format!("`--idle`: {e}")))?;

    check_reason(args.reason.as_deref())?;

    let dry_run = args.dry_run.map(|d| match d {
        DryRunArg::Client => DryRun::Client,
        DryRunArg::Server => DryRun::Server,
    });

    let mode = if !args.command.is_empty() {
        if args.tty && !env.stdin_is_terminal {
            return Err(usage("`-t` needs a terminal on stdin"));
        }
        Mode::Command {
            argv: args.command.clone(),
            // kubectl forwards stdin only with -i; we also forward a pipe or a file, which is
            // what `cat script | ... -- sh` means, but never a terminal unless asked (`-i`),
            // so a command does not wait on the keyboard, and not `/dev/null`, which has
            // nothing to give (and in attach mode would make the command's input end at once,
            // so that it could no longer be stopped through it: see `spec::attach_command`).
            stdin: args.stdin || args.tty || !(env.stdin_is_terminal || env.stdin_is_null),
            tty: args.tty,
        }
    } else if args.tty && !env.stdin_is_terminal {
        return Err(usage(
            "`-t` needs a terminal on stdin; without one, pass a command after `--`",
        ));
    } else if env.stdin_is_terminal && (env.stdout_is_terminal || args.tty) {
        Mode::Interactive
    } else {
        Mode::PipedShell
    };

    match (dry_run, args.output) {
        (Some(_), _) if !args.command.is_empty() => {
            return Err(usage(
                "`--dry-run` does not run anything: drop the command after `--`",
            ));
        }
        (None, Some(_)) if !matches!(mode, Mode::Command { tty: false, .. }) => {
            return Err(usage(
                "`-o` prints the result of a command: add one after `--` (and no `-t`), or use `--dry-run=client -o yaml` to see the PATCH",
            ));
        }
        _ => {}
    }
    // With --dry-run=client and no -o, the PATCH body is shown as YAML, like kubectl.
    let format = match (dry_run, args.output) {
        (Some(DryRun::Client), None) => Some(OutputFormat::Yaml),
        (_, format) => format,
    };

    Ok(DebugOptions {
        target,
        container: args.container,
        image,
        profile: args.profile,
        timeout,
        ttl,
        idle,
        reason: args.reason,
        // A container with other volumes or env is another container: never reuse one.
        reuse: !args.new && !args.mirror_volumes && !args.copy_env,
        mode,
        dry_run,
        format,
        mirror_volumes: args.mirror_volumes,
        copy_env: args.copy_env,
        record: RecordOptions {
            enabled: !args.no_record && (env.config.record != Some(false) || args.record.is_some()),
            path: args.record,
            input: args.record_input,
            max_bytes: env
                .config
                .record_max_bytes
                .unwrap_or(recording::DEFAULT_MAX_BYTES),
            context: None,
        },
        target_pid: args.target_pid,
    })
}

/// `TARGET --copy`: a session's options, and the rules of the flags only `--copy` takes.
fn copy_pod_options(args: DebugArgs, env: &Environment) -> Result<Action, UsageError> {
    if args.image.is_some() {
        return Err(usage(
            "`--copy` holds the target with our agent, which `--image` does not have: drop `--image`, or pick one of ours with `--toolkit`",
        ));
    }
    if args.mirror_volumes || args.copy_env {
        return Err(usage(
            "`--mirror-volumes` and `--copy-env` are for a session beside a running target; with `--copy`, /target is the held target's root, its volumes and env included: drop them",
        ));
    }
    if args.output.is_some() && args.dry_run.is_none() {
        return Err(usage(
            "with `--copy`, `-o` prints the copy pod with `--dry-run=client -o yaml`; a command's output is the command's",
        ));
    }
    let entrypoint = match args.entrypoint.as_deref() {
        None => None,
        Some(text) => match shlex::split(text) {
            Some(words) if !words.is_empty() => Some(words),
            Some(_) => {
                return Err(usage(
                    "`--entrypoint` needs a command, e.g. `--entrypoint '/app/server --port 8080'`",
                ));
            }
            None => {
                return Err(usage(format!(
                    "`--entrypoint {text:?}`: a quote is not closed; write 'CMD ARGS' as a shell would"
                )));
            }
        },
    };
    let copy = CopyPodOptions {
        same_node: args.same_node,
        keep_copy: args.keep_copy,
        entrypoint,
    };
    Ok(Action::CopyPod {
        session: debug_options(args, env)?,
        copy,
    })
}

/// `run RUNBOOK TARGET… | -l SELECTOR`.
fn run_options(args: RunArgs, env: &Environment) -> Result<FanoutOptions, UsageError> {
    let mut positional = args.runbook.into_iter().chain(args.targets);
    let source = match args.builtin {
        Some(name) => Source::Builtin(name),
        None => match positional.next() {
            Some(path) => Source::File(PathBuf::from(path)),
            None => {
                return Err(usage(
                    "a RUNBOOK file is needed (or `--builtin NAME`): `run RUNBOOK.yaml -l app=api`",
                ));
            }
        },
    };
    let session = SessionFlags {
        image: flag_image(args.image.as_deref(), args.toolkit, env)?,
        profile: args.profile,
        timeout: args
            .timeout
            .as_deref()
            .map(|t| positive("timeout", t))
            .transpose()?,
        ttl: duration::parse(&args.ttl).map_err(|e| usage(format!("`--ttl`: {e}")))?,
        idle: duration::parse(&args.idle).map_err(|e| usage(format!("`--idle`: {e}")))?,
        reason: args.reason,
        reuse: !args.new,
        target_pid: args.target_pid,
    };
    fanout_options(
        source,
        positional.collect(),
        args.fanout,
        args.container,
        args.output,
        session,
        env,
    )
}

/// `-l SELECTOR -- COMMAND`: the session flags of the default command, on every pod.
fn command_fanout(args: DebugArgs, env: &Environment) -> Result<FanoutOptions, UsageError> {
    if args.command.is_empty() {
        return Err(usage(
            "`-l` runs a command on every matching pod: add one after `--` (e.g. `-l app=api -- ss -ltn`), or use `run RUNBOOK -l ...`",
        ));
    }
    if args.tty || args.stdin || args.dry_run.is_some() || args.mirror_volumes || args.copy_env {
        return Err(usage(
            "with `-l`, a command runs without a terminal or stdin on each pod: drop `-t`, `-i`, `--dry-run`, `--mirror-volumes` and `--copy-env`",
        ));
    }
    let session = SessionFlags {
        image: flag_image(args.image.as_deref(), args.toolkit, env)?,
        profile: Some(args.profile),
        timeout: Some(positive("timeout", &args.timeout)?),
        ttl: duration::parse(&args.ttl).map_err(|e| usage(format!("`--ttl`: {e}")))?,
        idle: duration::parse(&args.idle).map_err(|e| usage(format!("`--idle`: {e}")))?,
        reason: args.reason,
        reuse: !args.new,
        target_pid: args.target_pid,
    };
    let source = Source::Command(args.command);
    fanout_options(
        source,
        Vec::new(),
        args.fanout,
        args.container,
        args.output,
        session,
        env,
    )
}

fn fanout_options(
    source: Source,
    targets: Vec<String>,
    fanout: FanoutArgs,
    container: Option<String>,
    output: Option<OutputFormat>,
    session: SessionFlags,
    env: &Environment,
) -> Result<FanoutOptions, UsageError> {
    if targets.is_empty() && fanout.selector.is_none() {
        return Err(usage(
            "say which pods: TARGETs (pod/NAME, deploy/NAME...) or `-l SELECTOR`",
        ));
    }
    if fanout.all_namespaces && fanout.selector.is_none() {
        return Err(usage(
            "`-A` needs `-l SELECTOR`: TARGETs are in one namespace (`-n`)",
        ));
    }
    if fanout
        .selector
        .as_deref()
        .is_some_and(|s| s.trim().is_empty())
    {
        return Err(usage("`-l` needs a selector, e.g. `-l app=api`"));
    }
    if let Some(container) = &container
        && !crate::session::target::is_dns_label(container)
    {
        return Err(usage(format!(
            "`-c {container}` is not a container name (lowercase letters, digits and '-', at most 63)"
        )));
    }
    check_reason(session.reason.as_deref())?;
    let targets = targets
        .iter()
        .map(|t| t.parse::<TargetRef>().map_err(UsageError))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FanoutOptions {
        source,
        targets,
        selector: fanout.selector,
        all_namespaces: fanout.all_namespaces,
        container,
        parallel: fanout.parallel.map_or(DEFAULT_PARALLEL, usize::from),
        format: output,
        out_dir: fanout.out_dir,
        session,
        catalog: env.catalog(),
        default_toolkit: env.config.toolkit,
    })
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
