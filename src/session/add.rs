//! Steps 4–5 for a fresh debug container: the PATCH that adds it, with the WATCH of the pod
//! opened at the same moment from the resourceVersion of the plan's GET (it sees the PATCH
//! land, then the container start: one round trip for both), until it runs. Ctrl-C while
//! waiting, or a failure to start, stops it again. The session keeps the watch, to see the
//! container end after the work (teardown.rs).

use std::time::Instant;

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::Api;

use crate::base::error::Error;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::inject::add_debug_container;
use crate::session::options::DebugOptions;
use crate::session::plan::{Durations, Plan};
use crate::session::teardown::{Origin, Session};
use crate::session::wait::{Waiting, wait_on};
use crate::session::watch::PodWatch;

/// How adding a container ended.
// One value per run, moved once.
#[allow(clippy::large_enum_variant)]
pub enum Added {
    Ready(Session),
    /// A signal arrived while waiting; the container was already stopped again.
    Interrupted(i32),
}

/// Steps 4–5 for a fresh container: the PATCH and the WATCH together, until it runs (Ctrl-C
/// while waiting, or a failure to start, stops it again).
#[allow(clippy::too_many_arguments)]
pub async fn add_and_wait(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    plan: &Plan,
    container: &EphemeralContainer,
    interrupts: &mut Interrupts,
    printer: &Printer,
    durations: &mut Durations,
) -> Result<Added, Error> {
    let pod_name = plan.target.pod_name();
    let image = &plan.image;
    let clock = Instant::now();
    printer.progress(&format!(
        "adding {} ({image}) to pod {pod_name}, targeting {}",
        container.name, plan.target.container
    ));
    let read = plan.target.pod.metadata.resource_version.as_deref();
    let mut watch = PodWatch::new(pods, pod_name, read.unwrap_or_default(), cluster.retry);
    let (added, ()) = tokio::join!(
        add_debug_container(cluster, pods, pod_name, container, false),
        watch.open()
    );
    let updated = added?;
    // Without the GET's version (a pod from elsewhere), the PATCH's.
    if read.is_none() {
        let version = updated.metadata.resource_version.as_deref();
        watch = PodWatch::new(pods, pod_name, version.unwrap_or_default(), cluster.retry);
    }
    durations.inject += clock.elapsed().as_millis();
    wait_added(
        options,
        cluster,
        plan,
        &container.name,
        watch,
        interrupts,
        printer,
        durations,
    )
    .await
}

/// Step 5 for a container the PATCH added: waits on `watch` until it runs (Ctrl-C while
/// waiting, or a failure to start, stops it again). The session keeps the watch.
#[allow(clippy::too_many_arguments)]
pub async fn wait_added(
    options: &DebugOptions,
    cluster: &Cluster,
    plan: &Plan,
    name: &str,
    mut watch: PodWatch,
    interrupts: &mut Interrupts,
    printer: &Printer,
    durations: &mut Durations,
) -> Result<Added, Error> {
    let pod_name = plan.target.pod_name();
    let mut session = Session::new(
        cluster,
        &cluster.namespace,
        pod_name,
        name,
        options.image.has_agent(),
        Origin::Created,
        options.idle,
    );
    session.target = plan.process.clone();
    let clock = Instant::now();
    let what = Waiting {
        pod: pod_name,
        container: name,
        image: &plan.image,
    };
    let waited = tokio::select! {
        waited = wait_on(cluster, &mut watch, &what, options.timeout, printer) => waited.map(|_| ()),
        signal = interrupts.recv() => {
            printer.note("interrupted while waiting for the debug container; stopping it");
            session.teardown(printer, true).await;
            return Ok(Added::Interrupted(signal));
        }
    };
    durations.wait += clock.elapsed().as_millis();
    if let Err(error) = waited {
        session.teardown(printer, false).await;
        return Err(error);
    }
    session.watch = Some(watch);
    Ok(Added::Ready(session))
}
