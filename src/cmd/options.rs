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
    Cli, Command, CpArgs, DebugArgs, DryRunArg, FanoutArgs, FileSessionArgs, KubeFlags, RunArgs,
    SnapshotArgs,
};
use crate::fanout::plan::{DEFAULT_PARALLEL, FanoutOptions, SessionFlags, Source};
use crate::kube::cluster::KubeOptions;
use crate::output::printer::{OutputFormat, OutputOptions};
use crate::session::options::{DebugOptions, DryRun, Mode};
use crate::session::profile::Profile;
use crate::session::target::TargetRef;
use crate::toolkit::catalog::ToolkitArg;
use crate::toolkit::catalog::{Catalog, ImageChoice, Toolkit};
use crate::transfer::options::{CopyOptions, Direction, SnapshotOptions, SnapshotOutput};

/// Facts about the process's surroundings that change what flags mean.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub stdin_is_terminal: bool,
    /// Stdin is a character device other than a terminal (`</dev/null`): nothing to forward.
    pub stdin_is_null: bool,
    pub stdout_is_terminal: bool,
    pub stderr_is_terminal: bool,
    /// `NO_COLOR` is set (to anything non-empty): https://no-color.org
    pub no_color: bool,
    /// `DISTROLESS_DEBUG_REGISTRY`: where our toolkit images live instead of ghcr.io.
    pub registry: Option<String>,
    /// The user's config file (`config.rs`); loaded by `main`, since reading it can fail.
    pub config: crate::toolkit::config::Config,
}

impl Environment {
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Environment {
            stdin_is_terminal: std::io::stdin().is_terminal(),
            stdin_is_null: !std::io::stdin().is_terminal()
                && rustix::fs::fstat(std::io::stdin()).is_ok_and(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode).is_char_device()
                }),
            stdout_is_terminal: std::io::stdout().is_terminal(),
            stderr_is_terminal: std::io::stderr().is_terminal(),
            no_color: non_empty("NO_COLOR").is_some(),
            registry: non_empty("DISTROLESS_DEBUG_REGISTRY")
                .map(|v| v.to_string_lossy().into_owned()),
            config: crate::toolkit::config::Config::default(),
        }
    }

    /// Where our images are: the environment variable, else the config file.
    pub fn catalog(&self) -> Catalog {
        self.config.catalog(self.registry.as_deref())
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub kube: KubeOptions,
    pub output: OutputOptions,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Debug(DebugOptions),
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
    /// `info TARGET`: the agent's facts about the target.
    Info {
        session: DebugOptions,
        format: Option<OutputFormat>,
    },
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
            None if cli.debug.fanout.selector.is_some() => {
                Action::Run(command_fanout(cli.debug, env)?)
            }
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
        Action::Debug(_) => Some("a session (`TARGET`)"),
        Action::List { .. } => Some("`ls`"),
        Action::Cleanup { .. } => Some("`cleanup`"),
        Action::Copy(_) => Some("`cp`"),
        Action::Snapshot(_) => Some("`snapshot`"),
        Action::Info { .. } => Some("`info`"),
        Action::Run(_) | Action::Images { .. } => None,
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
        profile: args.profile.into(),
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
    })
}

fn check_reason(reason: Option<&str>) -> Result<(), UsageError> {
    match reason {
        Some(reason) if reason.len() > 256 || reason.chars().any(char::is_control) => Err(usage(
            "`--reason` must be one line of at most 256 bytes (a ticket id, a few words)",
        )),
        _ => Ok(()),
    }
}

/// The debug container `cp` and `snapshot` go through: one of ours with the agent (the
/// generic `--image` mode has no agent to read the target's files).
fn file_session(
    target: TargetRef,
    args: FileSessionArgs,
    env: &Environment,
) -> Result<DebugOptions, UsageError> {
    if let Some(container) = &args.container
        && !crate::session::target::is_dns_label(container)
    {
        return Err(usage(format!(
            "`-c {container}` is not a container name (lowercase letters, digits and '-', at most 63)"
        )));
    }
    check_reason(args.reason.as_deref())?;
    let timeout = duration::parse(&args.timeout).map_err(|e| usage(format!("`--timeout`: {e}")))?;
    if timeout.is_zero() {
        return Err(usage("`--timeout` must be more than 0"));
    }
    Ok(DebugOptions {
        target,
        container: args.container,
        image: env
            .catalog()
            .image(args.toolkit.map(Toolkit::from).unwrap_or(Toolkit::Base)),
        profile: args.profile.into(),
        timeout,
        ttl: Duration::from_secs(3600),
        idle: Duration::from_secs(15 * 60),
        reason: args.reason,
        reuse: !args.new,
        mode: Mode::Command {
            argv: Vec::new(),
            stdin: false,
            tty: false,
        },
        dry_run: None,
        format: None,
        mirror_volumes: false,
        copy_env: false,
    })
}

fn copy_options(args: CpArgs, env: &Environment) -> Result<CopyOptions, UsageError> {
    use crate::transfer::cp::parse_remote;
    let remote_of = |arg: &str| {
        parse_remote(arg)
            .transpose()
            .map_err(|e| usage(format!("`{arg}`: {e}")))
    };
    let (target, direction) = match (remote_of(&args.source)?, remote_of(&args.dest)?) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "both sides of `cp` are in pods; copy through a local directory instead",
            ));
        }
        (None, None) => {
            return Err(usage(format!(
                "one side of `cp` must be in the pod, as pod/NAME:/path (a local name with a colon is written ./{})",
                args.source
            )));
        }
        (Some(remote), None) => {
            if args.dest.is_empty() {
                return Err(usage(
                    "DEST is empty: name a local file or directory, e.g. .",
                ));
            }
            (
                remote.target,
                Direction::Download {
                    remote: remote.path,
                    local: PathBuf::from(&args.dest),
                },
            )
        }
        (None, Some(remote)) => {
            if args.source.is_empty() {
                return Err(usage("SOURCE is empty: name a local file or directory"));
            }
            (
                remote.target,
                Direction::Upload {
                    local: PathBuf::from(&args.source),
                    remote: remote.path,
                },
            )
        }
    };
    Ok(CopyOptions {
        session: file_session(target, args.session, env)?,
        direction,
    })
}

fn snapshot_options(args: SnapshotArgs, env: &Environment) -> Result<SnapshotOptions, UsageError> {
    let target: TargetRef = args.target.parse().map_err(UsageError)?;
    let output = match args.output.as_str() {
        "-" if env.stdout_is_terminal => {
            return Err(usage(
                "`-o -` writes a tar to stdout, which is a terminal: redirect it (`> x.tar`) or name a file",
            ));
        }
        "-" => SnapshotOutput::Stdout,
        name if name.ends_with(".tar.gz") || name.ends_with(".tgz") => SnapshotOutput::File {
            path: PathBuf::from(name),
            gzip: true,
        },
        name if name.ends_with(".tar") => SnapshotOutput::File {
            path: PathBuf::from(name),
            gzip: false,
        },
        name => {
            return Err(usage(format!(
                "`-o {name}`: a snapshot is a tar archive: name it FILE.tar or FILE.tar.gz (or - for stdout)"
            )));
        }
    };
    let globs = |flag: &str, patterns: &[String]| {
        patterns
            .iter()
            .map(|p| {
                crate::transfer::glob::Glob::new(p).map_err(|e| usage(format!("`--{flag}` {e}")))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let filter = crate::transfer::manifest::Filter {
        include: globs("include", &args.include)?,
        exclude: globs("exclude", &args.exclude)?,
    };
    Ok(SnapshotOptions {
        session: file_session(target, args.session, env)?,
        output,
        volumes: !args.no_volumes,
        filter,
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
        profile: args.profile.map(Profile::from),
        timeout: args
            .timeout
            .as_deref()
            .map(|t| positive("timeout", t))
            .transpose()?,
        ttl: duration::parse(&args.ttl).map_err(|e| usage(format!("`--ttl`: {e}")))?,
        idle: duration::parse(&args.idle).map_err(|e| usage(format!("`--idle`: {e}")))?,
        reason: args.reason,
        reuse: !args.new,
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
        profile: Some(args.profile.into()),
        timeout: Some(positive("timeout", &args.timeout)?),
        ttl: duration::parse(&args.ttl).map_err(|e| usage(format!("`--ttl`: {e}")))?,
        idle: duration::parse(&args.idle).map_err(|e| usage(format!("`--idle`: {e}")))?,
        reason: args.reason,
        reuse: !args.new,
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

/// The image `--image` or `--toolkit` asks for, if either is given.
fn flag_image(
    image: Option<&str>,
    toolkit: Option<ToolkitArg>,
    env: &Environment,
) -> Result<Option<ImageChoice>, UsageError> {
    Ok(match (image, toolkit) {
        (Some(reference), _) => Some(ImageChoice::Custom(image_reference(reference)?)),
        (None, Some(ToolkitArg::Auto)) => Some(ImageChoice::Auto(env.catalog())),
        (None, Some(toolkit)) => Some(env.catalog().image(toolkit.into())),
        (None, None) => None,
    })
}

fn image_reference(reference: &str) -> Result<String, UsageError> {
    if reference.trim().is_empty() || reference.chars().any(char::is_whitespace) {
        return Err(usage(format!(
            "`--image {reference:?}` is not an image reference"
        )));
    }
    Ok(reference.to_string())
}

fn positive(flag: &str, text: &str) -> Result<Duration, UsageError> {
    let d = duration::parse(text).map_err(|e| usage(format!("`--{flag}`: {e}")))?;
    if d.is_zero() {
        return Err(usage(format!("`--{flag}` must be more than 0")));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::session::target::TargetKind;

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
        assert!(
            refusal(&["pod/web", "-t", "--", "sh"], &script()).contains("`-t` needs a terminal")
        );
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
        assert!(
            refusal(&["pod/web", "--dry-run", "--", "ls"], &script()).contains("drop the command")
        );
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
            refusal(&["pod/web", "--request-timeout", "x"], &script())
                .contains("`--request-timeout`")
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

        assert!(
            refusal(&["cp", "a", "b"], &script()).contains("one side of `cp` must be in the pod")
        );
        assert!(refusal(&["cp", "pod/a:/x", "pod/b:/y"], &script()).contains("both sides"));
        assert!(refusal(&["cp", "pod/web:etc", "."], &script()).contains("must be absolute"));
        assert!(refusal(&["cp", "pod/web:/a/../b", "."], &script()).contains("`..`"));
        assert!(
            refusal(&["cp", "pod/web:/x", ".", "--timeout", "0"], &script())
                .contains("`--timeout`")
        );
        assert!(
            refusal(&["cp", "pod/web:/x", ".", "--image", "busybox"], &script())
                .contains("--image")
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
            }
        );
    }
}
