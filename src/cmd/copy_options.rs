//! `cp` and `snapshot`: their flags turned into [`CopyOptions`] and [`SnapshotOptions`], with
//! the debug container both go through.

use std::path::PathBuf;
use std::time::Duration;

use crate::base::duration;
use crate::base::error::UsageError;
use crate::cmd::cli::{CpArgs, FileSessionArgs, SnapshotArgs};
use crate::cmd::flags::{Environment, check_reason, usage};
use crate::session::options::{DebugOptions, Mode};
use crate::session::target::TargetRef;
use crate::toolkit::catalog::Toolkit;
use crate::transfer::options::{CopyOptions, Direction, SnapshotOptions, SnapshotOutput};

/// The debug container `cp` and `snapshot` go through: one of ours with the agent (the
/// generic `--image` mode has no agent to read the target's files).
pub fn file_session(
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
        profile: args.profile,
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
        record: crate::output::recording::RecordOptions::off(),
        target_pid: args.target_pid,
    })
}

pub fn copy_options(args: CpArgs, env: &Environment) -> Result<CopyOptions, UsageError> {
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

pub fn snapshot_options(
    args: SnapshotArgs,
    env: &Environment,
) -> Result<SnapshotOptions, UsageError> {
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
