//! The default command, `kubectl distroless-debug TARGET [-- COMMAND...]`, step by step.
//!
//! Round trips are the latency a user feels at 3 a.m., so they are designed, not incidental:
//! a fresh session makes at most four sequential ones before the shell runs: (1) GET pod, GET
//! namespace, SelfSubjectReview and the SelfSubjectAccessReview for exec in parallel, (2) the PATCH, (3) the WATCH from the PATCH's
//! resourceVersion, (4) the exec. A reused session makes (1) and (4). No LIST, no discovery.

use std::time::Instant;

use k8s_openapi::api::core::v1::{EphemeralContainer, Namespace, Pod};
use kube::Api;
use serde::Serialize;

use crate::base::error::{CREATE_EXEC, Error, GET_PODS, status_code};
use crate::base::exit::ExitStatus;
use crate::base::interrupt::Interrupts;
use crate::kube::access::missing_permissions;
use crate::kube::cluster::Cluster;
use crate::kube::exec::{self, Captured, Ending, ExecError, Remote};
use crate::output::printer::OutputFormat;
use crate::output::printer::Printer;
use crate::session::attach;
use crate::session::identity::{Identity, identity_of};
use crate::session::inject::{add_debug_container, patch_body};
use crate::session::options::{DebugOptions, DryRun, Mode};
use crate::session::profile::{
    Profile, PsaLevel, level_needed, profile_that_fits, security_context_for, violations,
};
use crate::session::spec::{
    self, DebugContainer, SessionFacts, ephemeral_container_for, random_suffix, reusable_in,
    unused_suffix,
};
use crate::session::target::{Target, fetch_pod, target_in};
use crate::session::teardown::{Origin, Session};
use crate::session::wait::{Waiting, wait_until_running};
use crate::toolkit::catalog::VERSION;

const PSA_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The `-o json|yaml` result of a non-interactive session. Versioned: fields are only added.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResult {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub debug_container: String,
    pub image: String,
    pub reused: bool,
    pub exit_code: Option<i32>,
    pub interrupted: bool,
    pub stdout: String,
    pub stderr: String,
    pub durations_ms: Durations,
}

impl SessionResult {
    /// The result without its ending (`exit_code: None`, not interrupted).
    fn new(
        cluster: &Cluster,
        plan: &Plan,
        debug_container: String,
        reused: bool,
        captured: Captured,
        durations: Durations,
    ) -> SessionResult {
        SessionResult {
            api_version: "distroless-debug/v1",
            kind: "SessionResult",
            namespace: cluster.namespace.clone(),
            pod: plan.target.pod_name().to_string(),
            container: plan.target.container.clone(),
            debug_container,
            image: plan.image.clone(),
            reused,
            exit_code: None,
            interrupted: false,
            stdout: String::from_utf8_lossy(&captured.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&captured.stderr).into_owned(),
            durations_ms: durations,
        }
    }
}

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
    Err(Error::PodSecurity {
        namespace: namespace.to_string(),
        pod: resolved.target.pod_name().to_string(),
        profile: options.profile,
        needed: level_needed(&sc, pod_sc),
        enforced,
        violations: found,
        fits: profile_that_fits(enforced, &resolved.identity, pod_sc)
            .filter(|p| *p != options.profile),
    })
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
    reusable: Option<DebugContainer>,
    pub container: EphemeralContainer,
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
    let spec_hinted;
    let options = match resolved
        .target
        .pod
        .spec
        .as_ref()
        .and_then(|spec| {
            spec.containers
                .iter()
                .find(|c| c.name == resolved.target.container)
        })
        .and_then(|container| crate::toolkit::hints::hinted(&options.image, container))
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
        precheck(options, &resolved, &cluster.namespace)?;
        if crate::session::probe::needed(options, &resolved.identity) {
            printer.progress(&format!(
                "the API does not say which uid/gid container {} runs as (no runAsUser/runAsGroup, and the node does not report containerStatuses[].user): the agent reads them once the debug container runs",
                resolved.target.container
            ));
        } else {
            identity_notes(options, &resolved, printer);
        }
    }
    let facts = SessionFacts {
        user: resolved.user.clone(),
        started: jiff::Timestamp::now(),
        version: VERSION.to_string(),
    };
    let mut container = ephemeral_container_for(
        options,
        &resolved.target.container,
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
        reusable,
        container,
    })
}

/// `--mirror-volumes` and `--copy-env`: the target container's volumes and environment,
/// added to the container we would send, with what the user should know about them.
fn extras(
    options: &DebugOptions,
    target: &Target,
    container: &mut EphemeralContainer,
    printer: &Printer,
) {
    if !options.mirror_volumes && !options.copy_env {
        return;
    }
    let Some(spec) = target
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == target.container))
    else {
        return;
    };
    if options.mirror_volumes {
        for note in spec::mirror_volumes(container, spec) {
            printer.note(&note);
        }
    }
    if options.copy_env {
        let secrets = spec::copy_env(container, spec);
        printer.warn(&format!(
            "--copy-env: the debug container gets container {}'s environment{}; anyone who can exec into it or read its /proc can see the values",
            target.container,
            if secrets.is_empty() {
                String::new()
            } else {
                format!(", with values from secret(s) {}", secrets.join(", "))
            }
        ));
    }
}

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
        let session = Session::new(
            cluster,
            &cluster.namespace,
            pod_name,
            &existing.name,
            existing.has_agent,
            Origin::Reused,
            options.idle,
        );
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
    if !crate::session::probe::needed(options, &plan.identity) {
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

/// How adding a container ended.
// One value per run, moved once.
#[allow(clippy::large_enum_variant)]
pub enum Added {
    Ready(Session),
    /// A signal arrived while waiting; the container was already stopped again.
    Interrupted(i32),
}

/// Steps 4–5 for a fresh container: the PATCH, then the WATCH until it runs (Ctrl-C while
/// waiting, or a failure to start, stops it again).
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
    let updated = add_debug_container(cluster, pods, pod_name, container, false).await?;
    durations.inject += clock.elapsed().as_millis();
    let mut session = Session::new(
        cluster,
        &cluster.namespace,
        pod_name,
        &container.name,
        options.image.has_agent(),
        Origin::Created,
        options.idle,
    );
    let clock = Instant::now();
    let what = Waiting {
        pod: pod_name,
        container: &container.name,
        image,
    };
    let version = updated
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let waited = tokio::select! {
        waited = wait_until_running(cluster, pods, &what, &version, options.timeout, printer) => waited.map(|_| ()),
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
    Ok(Added::Ready(session))
}

/// Steps 1–5 for commands that need only a running debug container of ours on the target
/// (`cp`, `snapshot`): the plan (for its target) and the container, reused or added.
pub async fn running_debug_container(
    options: &DebugOptions,
    cluster: &Cluster,
    interrupts: &mut Interrupts,
    printer: &Printer,
) -> Result<(Plan, Obtained), Error> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let plan = plan(options, cluster, &pods, printer).await?;
    let mut durations = Durations::default();
    let obtained = obtain(
        options,
        cluster,
        &pods,
        &plan,
        interrupts,
        printer,
        &mut durations,
    )
    .await?;
    Ok((plan, obtained))
}

pub async fn run(
    options: &DebugOptions,
    cluster: &Cluster,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let mut durations = Durations::default();
    let clock = Instant::now();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    // A session also asks whether it may exec, in the same round trip as the reads, to know
    // before the PATCH whether it needs attach mode (see attach.rs): a holding container
    // nobody may exec into could not even be stopped.
    let ask = options.dry_run.is_none();
    let (planned, exec_forbidden) = tokio::join!(plan(options, cluster, &pods, printer), async {
        ask && attach::exec_is_forbidden(cluster).await
    });
    let plan = planned?;
    let pod_name = plan.target.pod_name().to_string();
    durations.resolve = clock.elapsed().as_millis();

    match options.dry_run {
        Some(DryRun::Client) => {
            printer.data(
                options.format.unwrap_or(OutputFormat::Yaml),
                &patch_body(&plan.container),
            )?;
            return Ok(ExitStatus::Success);
        }
        Some(DryRun::Server) => {
            return server_dry_run(options, cluster, &pods, &pod_name, &plan.container, printer)
                .await;
        }
        None => {}
    }

    let mut interrupts = Interrupts::install().map_err(|source| Error::Terminal { source })?;
    if exec_forbidden {
        let mut captured = options.format.map(|_| Captured::default());
        let clock = Instant::now();
        let (status, container) = attach::run_attached(
            options,
            cluster,
            &pods,
            &pod_name,
            &plan.container,
            &mut interrupts,
            captured.as_mut(),
            printer,
        )
        .await?;
        durations.exec = clock.elapsed().as_millis();
        if let (Some(format), Some(captured)) = (options.format, captured) {
            let (exit_code, interrupted) = match status {
                ExitStatus::Success => (Some(0), false),
                ExitStatus::Remote(code) => (Some(code), false),
                ExitStatus::Interrupted(_) => (None, true),
                _ => (None, false),
            };
            let result = SessionResult {
                exit_code,
                interrupted,
                ..SessionResult::new(cluster, &plan, container, false, captured, durations)
            };
            printer.data(format, &result)?;
        }
        return Ok(status);
    }
    let (mut session, reused) = match obtain(
        options,
        cluster,
        &pods,
        &plan,
        &mut interrupts,
        printer,
        &mut durations,
    )
    .await?
    {
        Obtained::Ready { session, reused } => (session, reused),
        Obtained::Interrupted(signal) => return Ok(ExitStatus::Interrupted(signal)),
    };

    let clock = Instant::now();
    let mut captured = options.format.map(|_| Captured::default());
    let ended = work(
        options,
        &session,
        &pods,
        &mut interrupts,
        captured.as_mut(),
        printer,
    )
    .await;
    durations.exec = clock.elapsed().as_millis();
    let interrupted = matches!(ended, Ok(Ending::Interrupted(_)));
    // A lost connection leaves our exec's process alive in the container, like a signal does.
    let cut_off = interrupted || matches!(ended, Err(Error::Stream { .. }));

    let clock = Instant::now();
    session.teardown(printer, cut_off).await;
    durations.teardown = clock.elapsed().as_millis();

    let ending = ended?;
    if let (Some(format), Some(captured)) = (options.format, captured) {
        let result = SessionResult {
            exit_code: match ending {
                Ending::Exited(code) => Some(code),
                Ending::Interrupted(_) => None,
            },
            interrupted,
            ..SessionResult::new(
                cluster,
                &plan,
                session.container.clone(),
                reused,
                captured,
                durations,
            )
        };
        printer.data(format, &result)?;
    }
    Ok(match ending {
        Ending::Exited(0) => ExitStatus::Success,
        Ending::Exited(code) => ExitStatus::Remote(code),
        Ending::Interrupted(signal) => ExitStatus::Interrupted(signal),
    })
}

/// Step 6: the shell or the command, in the running debug container.
async fn work(
    options: &DebugOptions,
    session: &Session,
    pods: &Api<Pod>,
    interrupts: &mut Interrupts,
    captured: Option<&mut Captured>,
    printer: &Printer,
) -> Result<Ending, Error> {
    let remote = Remote {
        pods,
        pod: &session.pod,
        container: &session.container,
    };
    let image = if session.has_agent {
        options.image.clone()
    } else {
        crate::toolkit::catalog::ImageChoice::Custom(String::new())
    };
    let result =
        match &options.mode {
            Mode::Interactive => {
                printer.note(&format!(
                "{} is ready; the target's filesystem is at {}. Exit the shell to end the session.",
                session.container,
                if session.has_agent { "/target" } else { spec::GENERIC_TARGET_LINK }
            ));
                exec::interactive(&remote, spec::shell_command(&image), interrupts).await
            }
            Mode::Command {
                argv, tty: true, ..
            } => exec::interactive(&remote, spec::run_command(&image, argv), interrupts).await,
            Mode::Command {
                argv,
                stdin,
                tty: false,
            } => {
                exec::streamed(
                    &remote,
                    spec::run_command(&image, argv),
                    *stdin,
                    captured,
                    interrupts,
                )
                .await
            }
            Mode::PipedShell => {
                exec::streamed(
                    &remote,
                    spec::shell_command(&image),
                    true,
                    captured,
                    interrupts,
                )
                .await
            }
        };
    match result {
        Ok(ending) => Ok(ending),
        Err(ExecError::Session(error)) => Err(error),
        Err(ExecError::Open(source)) if status_code(&source) == Some(403) => {
            Err(Error::Forbidden {
                namespace: session_namespace(pods),
                pod: session.pod.clone(),
                step: "exec into the debug container",
                missing: vec![CREATE_EXEC],
                source,
            })
        }
        Err(ExecError::Open(source)) => Err(Error::Exec {
            pod: session.pod.clone(),
            container: session.container.clone(),
            source,
        }),
    }
}

fn session_namespace(pods: &Api<Pod>) -> String {
    pods.namespace().unwrap_or_default().to_string()
}

/// `--dry-run=server`: the PATCH with dryRun=All; admission's verdict is the result.
async fn server_dry_run(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    pod: &str,
    container: &EphemeralContainer,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let answered = add_debug_container(cluster, pods, pod, container, true).await?;
    let admitted = answered
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .and_then(|c| c.iter().find(|c| c.name == container.name))
        .cloned()
        .unwrap_or_else(|| container.clone());
    printer.note(&format!(
        "admission accepted {} for pod {pod} (server dry run: nothing was added)",
        container.name
    ));
    if let Some(format) = options.format {
        printer.data(format, &patch_body(&admitted))?;
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
#[path = "debug_tests.rs"]
pub(crate) mod tests;
