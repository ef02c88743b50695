//! `run RUNBOOK TARGET… | -l SELECTOR` and `-l SELECTOR -- COMMAND`: the same steps on many
//! pods at once, one debug container per pod, every container stopped at the end.
//!
//! Each pod goes through the session steps of `session/` (`plan`, then `obtain`: reuse one of
//! our running containers or add one and wait) and the teardown of `session/teardown.rs`; this module
//! adds only what a fan-out needs around them: choosing the pods, at most `--parallel` of them
//! at a time (from a pod's start to its teardown: its Event on the pod is written while the
//! next pod starts), the steps in order within a pod (each with its time limit, its `when:`, a failure
//! that is not allowed skipping the rest), and the results. Ctrl-C reaches every pod at once:
//! each has its own signal stream, ends its step, and tears down; pods not started yet are
//! not started; the process waits for every teardown before it exits.
//!
//! With several contexts (`--context a,b`) each cluster's pods are chosen in that cluster (its
//! own namespace unless `-n`), all of them share the one `--parallel` bound, and a cluster
//! whose pods cannot be chosen (it does not answer, a TARGET is not there) is reported as a
//! failed context while the others go on. With one cluster that failure ends the run, as it
//! always has.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use super::plan::{FanoutOptions, Prepared, Source};
use super::pod::{Fanout, one_line};
use super::reads::SharedReads;
use crate::base::error::Error;
use crate::base::exit::ExitStatus;
use crate::base::interrupt::Interrupts;
use crate::fanout::out_dir::OutDir;
use crate::fanout::progress::{Board, Format, Reporter};
use crate::fanout::results::{
    self, ContextResult, ContextStatus, PodAddress, PodResult, RunResult,
};
use crate::kube::cluster::{Cluster, Connection};
use crate::output::printer::OutputOptions;
use crate::output::printer::Printer;
use crate::session::target::workload_pods;

/// Which namespaces and labels the pods came from, for messages; `context` is named when the
/// run has several.
fn scope(options: &FanoutOptions, cluster: &Cluster, context: Option<&str>) -> String {
    let namespace = if options.all_namespaces {
        "in any namespace".to_string()
    } else {
        format!("in namespace {}", cluster.namespace)
    };
    let scope = match &options.selector {
        Some(selector) => format!("matching {selector} {namespace}"),
        None => namespace,
    };
    match context {
        Some(context) => format!("{scope} of context {context}"),
        None => scope,
    }
}

/// The pods the targets and the selector name in one cluster, each once, sorted; finished
/// pods (their phase Succeeded or Failed) and pods being deleted are left out, and counted.
async fn select_pods(
    options: &FanoutOptions,
    cluster: &Cluster,
    context: Option<&str>,
) -> Result<(Vec<Pod>, usize), Error> {
    let here: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut found = Vec::new();
    if let Some(selector) = &options.selector {
        let api: Api<Pod> = if options.all_namespaces {
            Api::all(cluster.client.clone())
        } else {
            here.clone()
        };
        let list = cluster
            .bounded(api.list(&ListParams::default().labels(selector)))
            .await
            .map_err(|source| Error::List {
                scope: scope(options, cluster, context),
                source,
            })?;
        found.extend(list.items);
    }
    let lists = futures::future::join_all(
        options
            .targets
            .iter()
            .map(|t| workload_pods(cluster, &here, &cluster.namespace, t)),
    )
    .await;
    for list in lists {
        found.extend(list?);
    }
    let key = |p: &Pod| {
        (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
        )
    };
    found.sort_by_key(key);
    found.dedup_by_key(|p| key(p));
    let before = found.len();
    found.retain(|p| {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        !matches!(phase, Some("Succeeded" | "Failed")) && p.metadata.deletion_timestamp.is_none()
    });
    let left_out = before - found.len();
    Ok((found, left_out))
}

/// The context to name in messages: only when the run has several.
fn named(connection: &Connection, several: bool) -> Option<&str> {
    several.then_some(connection.context.as_deref()).flatten()
}

/// The pods of every cluster, each with its connection, sorted by context, namespace and
/// name; and each cluster's outcome. With one cluster, failing to choose its pods is the
/// run's error.
async fn select_everywhere<'c>(
    options: &FanoutOptions,
    connections: &'c [Connection],
    printer: &Printer,
) -> Result<(Vec<(&'c Connection, Pod)>, Vec<ContextResult>), Error> {
    let several = connections.len() > 1;
    let selected = futures::future::join_all(
        connections
            .iter()
            .map(|c| select_pods(options, &c.cluster, named(c, several))),
    )
    .await;
    let mut pods = Vec::new();
    let mut contexts = Vec::new();
    for (connection, selected) in connections.iter().zip(selected) {
        let mut outcome = ContextResult {
            context: connection.context.clone(),
            namespace: (!options.all_namespaces).then(|| connection.cluster.namespace.clone()),
            status: ContextStatus::Ok,
            error: None,
            pods: 0,
        };
        let in_context = match named(connection, several) {
            Some(context) => format!(" in context {context}"),
            None => String::new(),
        };
        match selected {
            Ok((found, left_out)) => {
                if left_out > 0 {
                    printer.note(&format!(
                        "left out {left_out} pod(s){in_context} that have finished or are being deleted"
                    ));
                }
                if found.is_empty() && several {
                    printer.note(&format!(
                        "no pods {}",
                        scope(options, &connection.cluster, named(connection, several))
                    ));
                }
                outcome.pods = found.len();
                pods.extend(found.into_iter().map(|pod| (connection, pod)));
            }
            Err(error) if !several => return Err(error),
            Err(error) => {
                let error = one_line(&error);
                printer.warn(&format!(
                    "context {}: its pods could not be chosen (the other contexts go on): {error}",
                    connection.context.as_deref().unwrap_or("in-cluster"),
                ));
                outcome.status = ContextStatus::Error;
                outcome.error = Some(error);
            }
        }
        contexts.push(outcome);
    }
    let address = |(connection, pod): &(&Connection, Pod)| {
        (
            connection.context.clone(),
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        )
    };
    pods.sort_by_cached_key(address);
    Ok((pods, contexts))
}

pub async fn run(
    prepared: &Prepared,
    connections: &[Connection],
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let options = &prepared.options;
    let several = connections.len() > 1;
    let out_dir = match &options.out_dir {
        Some(path) => Some(
            OutDir::create(path, several).map_err(|source| Error::OutDir {
                path: path.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let started_at = jiff::Timestamp::now();
    let clock = Instant::now();
    let mut interrupts = Interrupts::install().map_err(|source| Error::Terminal { source })?;
    let (pods, contexts) = select_everywhere(options, connections, printer).await?;
    let failed_contexts = contexts.iter().any(|c| c.status == ContextStatus::Error);
    if pods.is_empty() && !failed_contexts {
        let scopes: Vec<String> = connections
            .iter()
            .map(|c| scope(options, &c.cluster, named(c, several)))
            .collect();
        return Err(Error::NoPodsSelected {
            scope: scopes.join("; "),
        });
    }
    let names: Vec<String> = pods
        .iter()
        .map(|(connection, pod)| pod_name(connection.context.as_deref(), pod, several))
        .collect();
    let title = match &options.source {
        Source::Command(_) => "command".to_string(),
        _ => format!("run {}", prepared.runbook.name),
    };
    let reporter = Reporter::new(
        Format::of(options.format),
        *printer,
        Board::new(&title, prepared.runbook.steps.len(), &names, clock),
        several,
    );
    for failed in contexts.iter().filter(|c| c.status == ContextStatus::Error) {
        reporter.context_failed(failed);
    }
    let cancelled = AtomicBool::new(false);
    let slots = tokio::sync::Semaphore::new(options.parallel.max(1));
    let fanout = Fanout {
        slots: &slots,
        prepared,
        reads: SharedReads::default(),
        reporter: &reporter,
        out_dir: out_dir.as_ref(),
        cancelled: &cancelled,
        // The per-pod sessions' notes would be noise times N: warnings still show.
        quiet: Printer::new(OutputOptions {
            quiet: true,
            color: false,
            progress: false,
        }),
    };
    // One bound over the pods of every cluster: `slots`, which a pod holds from its start to
    // its teardown, not while its Event is on its way. Twice as many pods are in hand, so
    // that as many Events as places can be on their way while the places work; the pods in
    // hand wait for a place in turn (the semaphore is first come, first served, and they are
    // polled in order). Pods not in hand yet take no memory.
    let work = futures::stream::iter(pods.into_iter().enumerate())
        .map(|(index, (connection, pod))| fanout.pod(index, connection, pod))
        .buffer_unordered(options.parallel.max(1).saturating_mul(2))
        .collect::<Vec<PodResult>>();
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut interrupted = None;
    let pods = loop {
        tokio::select! {
            pods = &mut work => break pods,
            _ = tick.tick() => reporter.tick(),
            signal = interrupts.recv(), if interrupted.is_none() => {
                interrupted = Some(signal);
                cancelled.store(true, Ordering::SeqCst);
                reporter.clear();
                printer.note("interrupted: stopping every debug container before exiting");
            }
        }
    };
    reporter.clear();

    let elapsed = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let result = RunResult::new(
        &prepared.runbook.name,
        started_at,
        elapsed,
        interrupted,
        pods,
        contexts,
    );
    match Format::of(options.format) {
        Format::Document(format) => printer.data(format, &result)?,
        Format::Lines => reporter.emit(&results::summary_line(&result)),
        Format::Text => {}
    }
    if let Some(out) = &out_dir {
        out.write_summary(&result).map_err(|source| Error::OutDir {
            path: out.root.clone(),
            source,
        })?;
    }
    printer.note(&closing_note(&result, options.out_dir.as_deref()));
    Ok(results::exit_status(
        &result.pods,
        &result.contexts,
        interrupted,
    ))
}

fn closing_note(result: &RunResult, out_dir: Option<&Path>) -> String {
    let s = &result.summary;
    let contexts = if s.contexts > 1 {
        format!(" in {} contexts", s.contexts)
    } else {
        String::new()
    };
    let mut note = format!(
        "{}: {} pod(s){contexts}: {} ok, {} failed, {} not debugged",
        result.runbook, s.pods, s.pods_ok, s.pods_failed, s.pods_not_debugged
    );
    if s.pods_interrupted > 0 {
        note.push_str(&format!(", {} interrupted", s.pods_interrupted));
    }
    let failed: Vec<&str> = result
        .contexts
        .iter()
        .filter(|c| c.status == ContextStatus::Error)
        .map(|c| c.context.as_deref().unwrap_or("in-cluster"))
        .collect();
    if !failed.is_empty() {
        note.push_str(&format!(
            ", and the pods of context {} could not be chosen",
            failed.join(", ")
        ));
    }
    note.push_str(&format!(
        "; {} step(s): {} ok, {} failed, {} allowed to fail, {} skipped; {}",
        s.steps,
        s.steps_ok,
        s.steps_failed,
        s.steps_allowed_to_fail,
        s.steps_skipped,
        results::human_ms(result.duration_ms)
    ));
    if let Some(dir) = out_dir {
        note.push_str(&format!(
            ". Outputs and summary.json are in {}",
            dir.display()
        ));
    }
    note.push_str(". Kubernetes keeps each stopped debug container's entry in its pod spec; `kubectl distroless-debug ls` shows them.");
    note
}

/// A pod as the live view names it.
fn pod_name(context: Option<&str>, pod: &Pod, several: bool) -> String {
    results::shown(
        PodAddress {
            context,
            namespace: pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod: pod.metadata.name.as_deref().unwrap_or_default(),
        },
        several,
    )
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
