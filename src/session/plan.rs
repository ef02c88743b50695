//! Steps 1–3 of a session: the reads (the pod, who we are, the namespace's Pod Security
//! level, all at once), the checks that refuse before anything is sent, and the debug
//! container the session would add, or the one of ours it would reuse. Nothing is written.

use k8s_openapi::api::core::v1::{EphemeralContainer, Namespace, Pod};
use kube::Api;
use serde::Serialize;

use crate::base::error::{Error, GET_PODS, status_code};
use crate::kube::access::missing_permissions;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::identity::{Identity, identity_of};
use crate::session::options::DebugOptions;
use crate::session::profile::{
    PodSecurityRefusal, Profile, PsaLevel, level_needed, profile_that_fits, security_context_for,
    violations,
};
use crate::session::spec::{
    self, DebugContainer, SessionFacts, TargetProcess, ephemeral_container_for, random_suffix,
    reusable_in, unused_suffix,
};
use crate::session::target::{Target, fetch_pod, shares_pid_namespace, target_in};
use crate::toolkit::catalog::VERSION;

const PSA_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

#[derive(Debug, Default, Serialize)]
pub struct Durations {
    pub resolve: u128,
    pub inject: u128,
    pub wait: u128,
    pub exec: u128,
    pub teardown: u128,
    /// The agent reading the target's ids when the API does not say them (probe.rs); 0
    /// when it did not run.
    pub probe: u128,
}

/// Step 1: the reads, all at once.
struct Resolved {
    target: Target,
    identity: Identity,
    enforced: Option<PsaLevel>,
    user: String,
}

/// The reads of step 1 that do not depend on the pod: who we are (SelfSubjectReview) and the
/// Pod Security level the namespace enforces. A session makes them beside its GET of the pod;
/// a fan-out makes them once per cluster and namespace and hands them to every pod's plan.
#[derive(Debug, Clone)]
pub struct Surroundings {
    pub user: String,
    pub enforced: Option<PsaLevel>,
}

/// Both reads of [`Surroundings`], at once.
pub async fn surroundings(cluster: &Cluster, printer: &Printer) -> Surroundings {
    let (user, enforced) = tokio::join!(cluster.user_name(), enforced_level(cluster, printer));
    Surroundings { user, enforced }
}

/// The namespace's `pod-security.kubernetes.io/enforce` level; `None` when it has none or
/// cannot be read (admission still decides then).
pub async fn enforced_level(cluster: &Cluster, printer: &Printer) -> Option<PsaLevel> {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    match cluster.bounded(namespaces.get(&cluster.namespace)).await {
        Ok(ns) => ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(PSA_ENFORCE_LABEL))
            .and_then(|v| PsaLevel::from_label(v)),
        Err(e) => {
            printer.progress(&format!(
                "could not read namespace {} ({}); the Pod Security precheck is skipped, admission still decides",
                cluster.namespace,
                status_code(&e).map_or_else(|| e.to_string(), |c| format!("HTTP {c}"))
            ));
            None
        }
    }
}

async fn resolve(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    known: impl Future<Output = Surroundings>,
) -> Result<Resolved, Error> {
    let (pod, Surroundings { user, enforced }) = tokio::join!(
        fetch_pod(cluster, pods, &cluster.namespace, &options.target),
        known,
    );
    let pod = match pod {
        Err(Error::ReadPod {
            namespace,
            pod,
            source,
        }) if status_code(&source) == Some(403) => {
            return Err(Error::Forbidden {
                missing: missing_permissions(cluster, &namespace, GET_PODS).await,
                namespace,
                pod,
                step: "read the pod",
                source,
            });
        }
        other => other?,
    };
    resolved_in(options, pod, Surroundings { user, enforced })
}

/// What the reads say, from `pod` and the pod-independent reads: the target and its identity.
fn resolved_in(
    options: &DebugOptions,
    pod: Pod,
    Surroundings { user, enforced }: Surroundings,
) -> Result<Resolved, Error> {
    let target = target_in(pod, options.container.as_deref())?;
    let identity = identity_of(&target.pod, &target.container);
    Ok(Resolved {
        target,
        identity,
        enforced,
        user,
    })
}

/// Refuses, before anything is sent, a container the namespace's Pod Security level rejects.
fn precheck(options: &DebugOptions, resolved: &Resolved, namespace: &str) -> Result<(), Error> {
    let Some(enforced) = resolved.enforced else {
        return Ok(());
    };
    let pod_sc = resolved
        .target
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref());
    let sc = security_context_for(options.profile, &resolved.identity);
    let found = violations(enforced, &sc, pod_sc);
    if found.is_empty() {
        return Ok(());
    }
    Err(PodSecurityRefusal {
        namespace: namespace.to_string(),
        pod: resolved.target.pod_name().to_string(),
        profile: options.profile,
        needed: level_needed(&sc, pod_sc),
        enforced,
        violations: found,
        fits: profile_that_fits(enforced, &resolved.identity, pod_sc)
            .filter(|p| *p != options.profile),
    }
    .into())
}

fn identity_notes(options: &DebugOptions, resolved: &Resolved, printer: &Printer) {
    let container = &resolved.target.container;
    match (options.profile, resolved.identity.uid()) {
        (Profile::Auto | Profile::Restricted | Profile::Baseline, None) => printer.warn(&format!(
            "cannot tell which uid/gid container {container} runs as (no runAsUser/runAsGroup, and the node does not report containerStatuses[].user); the debug container runs as its image's user, so /target may be unreadable: `--profile ptrace` can read it where the namespace allows"
        )),
        (Profile::Restricted, Some(0)) => printer.warn(&format!(
            "container {container} runs as root; the restricted profile runs as {}, so /target is not readable: `--profile auto` runs as root",
            crate::session::profile::NONROOT_ID
        )),
        (_, Some(_)) if resolved.identity.gid().is_none() => printer.warn(&format!(
            "the gid of container {container} is unknown; /target may be unreadable"
        )),
        _ => {}
    }
}

/// Steps 1–3: what the session is about, and the debug container it would add (or the one
/// of ours it would reuse). Nothing is written yet.
pub struct Plan {
    pub target: Target,
    pub identity: Identity,
    /// The namespace's enforced Pod Security level, when it could be read.
    pub enforced: Option<PsaLevel>,
    pub image: String,
    /// Who we are (SelfSubjectReview, else the kubeconfig's user), for the Events.
    pub user: String,
    pub(super) reusable: Option<DebugContainer>,
    pub container: EphemeralContainer,
    /// Which process the agent works on: the target's current container ID, `--target-pid`.
    pub process: TargetProcess,
}

pub async fn plan(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    printer: &Printer,
) -> Result<Plan, Error> {
    plan_with(
        options,
        cluster,
        pods,
        surroundings(cluster, printer),
        printer,
    )
    .await
}

/// [`plan`] with the pod-independent reads supplied by the caller (a fan-out's, made once);
/// they are awaited beside the GET of the pod, so they never add a round trip.
pub async fn plan_with(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    known: impl Future<Output = Surroundings>,
    printer: &Printer,
) -> Result<Plan, Error> {
    let resolved = resolve(options, cluster, pods, known).await?;
    plan_from(options, resolved, &cluster.namespace, Some(printer))
}

/// The plan a session would make from `pod` and `surroundings` read earlier (presume.rs):
/// the same checks and the same container, with nothing printed.
pub fn presumed_plan(
    options: &DebugOptions,
    namespace: &str,
    pod: Pod,
    surroundings: Surroundings,
) -> Result<Plan, Error> {
    plan_from(
        options,
        resolved_in(options, pod, surroundings)?,
        namespace,
        None,
    )
}

/// Steps 2–3 from the reads: the checks, and the container the session would add (or the
/// one of ours it would reuse). `printer`: where the notes go; none for a presumed plan.
fn plan_from(
    options: &DebugOptions,
    resolved: Resolved,
    namespace: &str,
    printer: Option<&Printer>,
) -> Result<Plan, Error> {
    generic_check(options, &resolved.target)?;
    let spec_hinted;
    let options = match resolved
        .target
        .spec()
        .and_then(|container| crate::toolkit::runtime::hinted(&options.image, container))
    {
        Some(image) => {
            spec_hinted = DebugOptions {
                image,
                ..options.clone()
            };
            &spec_hinted
        }
        None => options,
    };
    let image = options.image.reference();
    let reusable = (options.reuse && options.dry_run.is_none())
        .then(|| {
            reusable_in(
                &resolved.target.pod,
                &resolved.target.container,
                &image,
                options.profile.name(),
            )
        })
        .flatten();
    if reusable.is_none() {
        precheck(options, &resolved, namespace)?;
        match printer {
            Some(printer) if needed(options, &resolved.identity) => printer.progress(&format!(
                "the API does not say which uid/gid container {} runs as (no runAsUser/runAsGroup, and the node does not report containerStatuses[].user): the agent reads them once the debug container runs",
                resolved.target.container
            )),
            Some(printer) => identity_notes(options, &resolved, printer),
            None => {}
        }
    }
    let facts = SessionFacts {
        user: resolved.user.clone(),
        started: jiff::Timestamp::now(),
        version: VERSION.to_string(),
    };
    let process = TargetProcess::of(&resolved.target, options.target_pid);
    let mut container = ephemeral_container_for(
        options,
        &resolved.target.container,
        &process,
        &resolved.identity,
        &facts,
        &unused_suffix(&resolved.target.pod, random_suffix),
    );
    extras(options, &resolved.target, &mut container, printer);
    Ok(Plan {
        target: resolved.target,
        identity: resolved.identity,
        enforced: resolved.enforced,
        image,
        user: resolved.user,
        reusable,
        container,
        process,
    })
}

/// Generic mode (`--image` without our agent) cannot find the target by its container ID:
/// it links PID 1's root, which in a pod sharing one PID namespace is the pause process.
/// There it needs `--target-pid`.
pub fn generic_check(options: &DebugOptions, target: &Target) -> Result<(), Error> {
    let shared = shares_pid_namespace(&target.pod);
    if options.image.has_agent() || !shared || options.target_pid.is_some() {
        return Ok(());
    }
    Err(crate::base::error::UsageError(format!(
        "pod {} shares one PID namespace between its containers (shareProcessNamespace: true), so PID 1 is its pause process, not container {}; `--image {}` has no agent to find the target by its container ID: pass `--target-pid N` (the target's pid, e.g. from `ps` in the debug container) or use one of our images (`--toolkit`)",
        target.pod_name(),
        target.container,
        options.image.reference()
    ))
    .into())
}

/// `--mirror-volumes` and `--copy-env`: the target container's volumes and environment,
/// added to the container we would send, with what the user should know about them (told
/// when there is a `printer`: a presumed plan prints nothing).
fn extras(
    options: &DebugOptions,
    target: &Target,
    container: &mut EphemeralContainer,
    printer: Option<&Printer>,
) {
    if !options.mirror_volumes && !options.copy_env {
        return;
    }
    let Some(spec) = target.spec() else {
        return;
    };
    if options.mirror_volumes {
        for note in spec::mirror_volumes(container, spec) {
            printer.inspect(|p| p.note(&note));
        }
    }
    if options.copy_env {
        let secrets = spec::copy_env(container, spec);
        printer.inspect(|p| p.warn(&format!(
            "--copy-env: the debug container gets container {}'s environment{}; anyone who can exec into it or read its /proc can see the values",
            target.container,
            if secrets.is_empty() {
                String::new()
            } else {
                format!(", with values from secret(s) {}", secrets.join(", "))
            }
        )));
    }
}

/// Whether a fresh container of this session should have the agent read the target's ids.
pub fn needed(options: &DebugOptions, identity: &Identity) -> bool {
    options.dry_run.is_none()
        && options.image.has_agent()
        && matches!(
            options.profile,
            Profile::Auto | Profile::Baseline | Profile::Restricted
        )
        && (identity.uid().is_none() || identity.gid().is_none())
}
