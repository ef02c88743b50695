//! `kubectl distroless-debug`: parse, run, report, exit. Nothing else lives here.

// One error ends a run, so its size never matters for speed, while boxing every kube::Error
// source would make each variant harder to build and to match on.
#![allow(clippy::result_large_err)]

mod access;
mod attach;
mod catalog;
mod cleanup;
mod cli;
mod cluster;
mod config;
mod cp;
mod debug;
mod duration;
mod error;
mod exec;
mod exec_stream;
mod exit;
mod extract;
#[cfg(test)]
mod fake_apiserver;
mod fanout;
mod glob;
mod identity;
mod images;
mod info;
mod inject;
mod interrupt;
mod ls;
mod manifest;
mod options;
mod out_dir;
mod pack;
mod printer;
mod probe;
mod profile;
mod progress;
mod results;
mod runbook;
mod session;
mod snapshot;
mod spec;
mod target;
mod terminal;
mod toolkit;
mod transfer;
mod wait;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::options::{Action, Environment, Options};
use crate::printer::Printer;

fn main() -> ExitCode {
    terminal::install_panic_hook();
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
            let e = options::UsageError(format!("the config file is not usable: {e}"));
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
        Action::Run(run) => Some(fanout::prepare(run)?),
        Action::Images {
            catalog,
            from,
            format,
        } => return images::run(catalog, from, *format, printer),
        _ => None,
    };
    if let Some(prepared) = &prepared {
        let connections = Cluster::connect_each(&options.kube).await?;
        return fanout::run(prepared, &connections, printer).await;
    }
    let cluster = Cluster::connect(&options.kube).await?;
    match &options.action {
        Action::Debug(debug) => {
            let debug = match toolkit::settle(debug, &cluster, printer).await? {
                toolkit::Settled::Ready(debug) => debug,
                toolkit::Settled::Interrupted(signal) => {
                    return Ok(ExitStatus::Interrupted(signal));
                }
            };
            let status = debug::run(&debug, &cluster, printer).await?;
            if let (ExitStatus::Remote(code), options::Mode::Command { argv, .. }) =
                (status, &debug.mode)
                && let Some(hint) = toolkit::capability_hint(argv, debug.profile, code)
            {
                printer.note(&format!("hint: {hint}"));
            }
            Ok(status)
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
        Action::Run(_) | Action::Images { .. } => Ok(ExitStatus::Usage),
    }
}
