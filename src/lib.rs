//! `kubectl distroless-debug`: parse, run, report, exit ([`main`], which the binary,
//! `src/bin/kubectl-distroless_debug.rs`, calls). The layers below are private to the crate; [`fuzzing`] opens the parsers of
//! outside input to the fuzz targets (fuzz/) and nothing else.

// One error ends a run, so its size never matters for speed, while boxing every kube::Error
// source would make each variant harder to build and to match on.
#![allow(clippy::result_large_err)]

mod base;
mod cmd;
mod fanout;
mod kube;
mod output;
mod session;
mod toolkit;
mod transfer;

pub mod fuzzing;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::base::error::Error;
use crate::base::exit::ExitStatus;
use crate::base::terminal;
use crate::cmd::cli::Cli;
use crate::cmd::flags::Environment;
use crate::cmd::options::{Action, Options};
use crate::cmd::{cleanup, complete, images, info, ls};
use crate::kube::cluster::Cluster;
use crate::kube::retry::RetryNotice;
use crate::output::printer::Printer;
use crate::session::{debug, handoff};
use crate::toolkit::config;
use crate::transfer::{cp, snapshot};

/// The whole run of the plugin, from its arguments to its exit status.
pub fn main() -> ExitCode {
    terminal::install_panic_hook();
    // Completion answers a shell, never a user: its own protocol, before any parse.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|verb| verb == complete::VERB) {
        return complete::answer(&args[2..]);
    }
    // The end of a session's trail, handed to a process of its own (session/handoff.rs).
    if args.get(1).is_some_and(|verb| verb == handoff::VERB) {
        return handoff::run();
    }
    handoff::enable();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; clap knows which is which.
            let _ = e.print();
            return if e.use_stderr() {
                ExitStatus::Usage.into()
            } else {
                ExitStatus::Success.into()
            };
        }
    };
    let mut environment = Environment::detect();
    environment.config = match config::load() {
        Ok(config) => config,
        Err(e) => {
            let e = crate::base::error::UsageError(format!("the config file is not usable: {e}"));
            Printer::plain().error(&Error::Usage(e));
            return ExitStatus::Usage.into();
        }
    };
    let options = match Options::from_cli(cli, &environment) {
        Ok(options) => options,
        Err(e) => {
            Printer::plain().error(&Error::Usage(e));
            return ExitStatus::Usage.into();
        }
    };
    let printer = Printer::new(options.output);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(source) => {
            printer.error(&Error::Terminal { source });
            return ExitStatus::Failure.into();
        }
    };
    let status = runtime
        .block_on(run(&options, &printer))
        .unwrap_or_else(|error| {
            printer.error(&error);
            error.exit_status()
        });
    // The stdin reader thread may be blocked in read(2); do not wait for it.
    runtime.shutdown_background();
    status.into()
}

async fn run(options: &Options, printer: &Printer) -> Result<ExitStatus, Error> {
    // A runbook is read and checked before the cluster is even looked up.
    let prepared = match &options.action {
        Action::Run(run) => Some(crate::fanout::plan::prepare(run)?),
        Action::Images {
            catalog,
            from,
            format,
        } => return images::run(catalog, from, *format, printer),
        Action::History(history) => return crate::cmd::history::run(history, printer),
        Action::Completion(shell) => return complete::script(*shell, printer),
        _ => None,
    };
    let printer_copy = *printer;
    let notice: RetryNotice = Arc::new(move |event| printer_copy.api_retry(event));
    if let Some(prepared) = &prepared {
        let connections = Cluster::connect_each(&options.kube, Some(notice)).await?;
        return crate::fanout::run::run(prepared, &connections, printer).await;
    }
    let connection = Cluster::connect_each(&options.kube, Some(notice))
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NoKubeconfig)?;
    let cluster = connection.cluster;
    match &options.action {
        Action::Debug(debug) => {
            // A target that does not run is refused with `--copy`'s command line as the way on.
            let namespace = cluster.namespace.clone();
            let hinted = |e| crate::session::copy::hint::with_copy_hint(e, debug, &namespace);
            let settled = crate::session::settle::settle(debug, &cluster, printer).await;
            let mut debug = match settled.map_err(hinted)? {
                crate::session::settle::Settled::Ready(debug) => debug,
                crate::session::settle::Settled::Interrupted(signal) => {
                    return Ok(ExitStatus::Interrupted(signal));
                }
            };
            debug.record.context = connection.context;
            let status = debug::run(&debug, &cluster, printer)
                .await
                .map_err(hinted)?;
            if let (ExitStatus::Remote(code), crate::session::options::Mode::Command { argv, .. }) =
                (status, &debug.mode)
                && let Some(hint) =
                    crate::session::capability::capability_hint(argv, debug.profile, code)
            {
                printer.note(&format!("hint: {hint}"));
            }
            Ok(status)
        }
        Action::CopyPod { session, copy } => {
            crate::session::copy::run::run(session, copy, &cluster, printer).await
        }
        Action::Info { session, format } => info::run(session, *format, &cluster, printer).await,
        Action::List {
            all_namespaces,
            format,
        } => ls::run(&cluster, *all_namespaces, *format, printer).await,
        Action::Cleanup {
            all_namespaces,
            dry_run,
        } => cleanup::run(&cluster, *all_namespaces, *dry_run, printer).await,
        Action::Copy(copy) => cp::run(copy, &cluster, options.output.progress, printer).await,
        Action::Snapshot(snapshot) => {
            snapshot::run(snapshot, &cluster, options.output.progress, printer).await
        }
        // Prepared and run above; images need no cluster.
        Action::Run(_) | Action::Images { .. } | Action::History(_) | Action::Completion(_) => {
            Ok(ExitStatus::Usage)
        }
    }
}
