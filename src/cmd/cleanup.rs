//! `cleanup`: stop every still-running debug container of ours (in a namespace, or all).
//!
//! Each is stopped exactly as a session's teardown stops it (the agent's `stop`, or the
//! recorded pid in generic mode), in parallel, and seen Terminated. Their entries stay in the
//! pod specs: Kubernetes cannot remove ephemeral containers. Copies of ours (`--copy`, left by
//! `--keep-copy` or a killed plugin) are deleted, whatever their state. `--dry-run` only lists
//! them.

use crate::base::error::Error;
use crate::base::exit::ExitStatus;
use crate::cmd::ls::{list_debug_containers, table};
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::copy::leftover::{delete_copies, list_copies};
use crate::session::spec::State;
use crate::session::teardown::{Origin, Session, Teardown};

pub async fn run(
    cluster: &Cluster,
    all_namespaces: bool,
    dry_run: bool,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let (listed, copies) = tokio::join!(
        list_debug_containers(cluster, all_namespaces),
        list_copies(cluster, all_namespaces)
    );
    let copies = copies?;
    // A copy's debug container goes with the copy.
    let running: Vec<_> = listed?
        .into_iter()
        .filter(|c| c.state == State::Running)
        .filter(|c| {
            !copies
                .iter()
                .any(|copy| copy.namespace == c.namespace && copy.pod == c.pod)
        })
        .collect();
    if running.is_empty() && copies.is_empty() {
        printer.note("no running debug containers and no copies of ours: nothing to stop");
        return Ok(ExitStatus::Success);
    }
    if dry_run {
        if !running.is_empty() {
            printer.note(&format!("would stop {} debug container(s):", running.len()));
            printer.stdout(&table(&running, jiff::Timestamp::now(), all_namespaces))?;
        }
        if !copies.is_empty() {
            printer.note(&format!("would delete {} copy pod(s):", copies.len()));
            printer.stdout(&table(&copies, jiff::Timestamp::now(), all_namespaces))?;
        }
        return Ok(ExitStatus::Success);
    }
    let copies_failed = delete_copies(cluster, &copies, printer).await;
    if running.is_empty() {
        return Ok(if copies_failed == 0 {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        });
    }
    let stops = running.iter().map(|c| async move {
        let mut session = Session::new(
            cluster,
            &c.namespace,
            &c.pod,
            &c.name,
            c.has_agent,
            Origin::Created,
            std::time::Duration::ZERO,
        );
        (c, session.stop_only(printer).await)
    });
    let mut failed = 0;
    for (c, outcome) in futures::future::join_all(stops).await {
        match outcome {
            Teardown::Stopped | Teardown::NeverStarted | Teardown::EndedWithTarget => {
                printer.note(&format!("stopped {}/{} {}", c.namespace, c.pod, c.name))
            }
            Teardown::InUse => printer.note(&format!(
                "left {}/{} {}: in use",
                c.namespace, c.pod, c.name
            )),
            Teardown::EndsItself => printer.note(&format!(
                "left {}/{} {} to its agent: it ends with its last session",
                c.namespace, c.pod, c.name
            )),
            Teardown::LeftRunning(why) => {
                failed += 1;
                printer.warn(&format!(
                    "could not stop {}/{} {}: {why}",
                    c.namespace, c.pod, c.name
                ));
            }
        }
    }
    printer.note("Kubernetes keeps terminated ephemeral containers' entries in the pod spec; `ls` still shows them.");
    Ok(if failed + copies_failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
