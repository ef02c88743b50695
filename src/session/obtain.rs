//! Steps 4–5 of a session: a running debug container of ours on the target, reused or added
//! (then, when the API did not say the target's ids, probed by the agent and maybe replaced).

use futures::FutureExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::base::error::Error;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::add::{Added, add_and_wait};
use crate::session::handshake;
use crate::session::options::DebugOptions;
use crate::session::plan::{Durations, Plan, needed, plan};
use crate::session::presume;
use crate::session::reuse_cache::ReuseCache;
use crate::session::teardown::{Origin, Session};

/// How steps 4–5 ended.
// One value per run, moved once: its size never matters.
#[allow(clippy::large_enum_variant)]
pub enum Obtained {
    /// A running debug container of ours; the caller tears the session down.
    Ready { session: Session, reused: bool },
    /// A signal arrived while waiting; the container was already stopped again.
    Interrupted(i32),
}

/// Steps 4–5: exec into the running container of ours the plan found, or add the planned
/// one and wait until it runs (Ctrl-C while waiting stops it again); when the API did not
/// say the target's ids, the agent reads them and the container may be replaced (probe.rs).
pub async fn obtain(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    plan: &Plan,
    interrupts: &mut Interrupts,
    printer: &Printer,
    durations: &mut Durations,
) -> Result<Obtained, Error> {
    let pod_name = plan.target.pod_name();
    let container = &plan.container;
    if let Some(existing) = &plan.reusable {
        printer.note(&format!(
            "reusing {} (started by {}{}); --new adds another",
            existing.name,
            if existing.user.is_empty() {
                "someone"
            } else {
                &existing.user
            },
            existing
                .started
                .as_deref()
                .map(|s| format!(" at {s}"))
                .unwrap_or_default()
        ));
        let mut session = Session::new(
            cluster,
            &cluster.namespace,
            pod_name,
            &existing.name,
            existing.has_agent,
            Origin::Reused,
            options.idle,
        );
        // The ID from this run's read of the pod: a target that restarted since the
        // container was added is a new container, which the agent then finds.
        session.target = plan.process.clone();
        return Ok(Obtained::Ready {
            session,
            reused: true,
        });
    }
    let session = match add_and_wait(
        options, cluster, pods, plan, container, interrupts, printer, durations,
    )
    .await?
    {
        Added::Ready(session) => session,
        Added::Interrupted(signal) => return Ok(Obtained::Interrupted(signal)),
    };
    if !needed(options, &plan.identity) {
        return Ok(Obtained::Ready {
            session,
            reused: false,
        });
    }
    Ok(
        match crate::session::probe::settle(
            options, cluster, pods, plan, session, interrupts, printer, durations,
        )
        .await?
        {
            crate::session::probe::Probed::Ready(session) => Obtained::Ready {
                session,
                reused: false,
            },
            crate::session::probe::Probed::Interrupted(signal) => Obtained::Interrupted(signal),
        },
    )
}

/// Steps 4–5 after the reads: the container sent beside them when they confirmed it
/// (presume.rs), waited for like any container we add; else [`obtain`].
#[allow(clippy::too_many_arguments)]
pub async fn obtain_or_added(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    plan: &mut Plan,
    advanced: Option<presume::Advanced>,
    interrupts: &mut Interrupts,
    printer: &Printer,
    durations: &mut Durations,
) -> Result<Obtained, Error> {
    let Some(advanced) = advanced else {
        return obtain(options, cluster, pods, plan, interrupts, printer, durations).await;
    };
    plan.container = advanced.plan.container;
    Ok(
        match presume::added(
            options,
            cluster,
            plan,
            advanced.watch,
            interrupts,
            printer,
            durations,
        )
        .await?
        {
            Added::Ready(session) => Obtained::Ready {
                session,
                reused: false,
            },
            Added::Interrupted(signal) => Obtained::Interrupted(signal),
        },
    )
}

/// Steps 1–5 for commands that need only a running debug container of ours on the target
/// (`cp`, `snapshot`, `info`): the plan (for its target) and the container, reused or added.
/// On a pod where a session saw its container end, the PATCH goes beside the reads
/// (presume.rs), and a container this command sees end is remembered for the next one.
pub async fn running_debug_container(
    options: &DebugOptions,
    cluster: &Cluster,
    interrupts: &mut Interrupts,
    printer: &Printer,
) -> Result<(Plan, Obtained), Error> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let cache = ReuseCache::from_env();
    let key = handshake::key_of(options, cluster);
    let entry = key.as_ref().and_then(|key| cache.lookup(key));
    let presumed = presume::presume(options, &cluster.namespace, entry.as_ref());
    let (planned, advanced) = tokio::join!(
        plan(options, cluster, &pods, printer),
        presume::advance(cluster, &pods, presumed),
    );
    let signalled = interrupts.recv().now_or_never();
    if let Some(signal) = signalled {
        presume::abandon(advanced, signalled, options, cluster, printer).await;
        return Ok((planned?, Obtained::Interrupted(signal)));
    }
    let mut plan = match planned {
        Ok(plan) => plan,
        Err(error) => {
            presume::abandon(advanced, None, options, cluster, printer).await;
            return Err(error);
        }
    };
    let advanced = presume::confirmed(advanced, &plan, true, options, cluster, printer).await;
    let mut durations = Durations::default();
    let mut obtained = obtain_or_added(
        options,
        cluster,
        &pods,
        &mut plan,
        advanced,
        interrupts,
        printer,
        &mut durations,
    )
    .await?;
    if let Obtained::Ready { session, .. } = &mut obtained {
        session.on_seen_end = handshake::on_seen_end(&cache, key.as_ref(), options, &plan, session);
    }
    Ok((plan, obtained))
}
