//! The default command, `kubectl distroless-debug TARGET [-- COMMAND...]`, step by step.
//!
//! Round trips are the latency a user feels at 3 a.m., so they are designed, not incidental:
//! a fresh session makes three sequential ones before the shell runs: (1) GET pod, GET
//! namespace, SelfSubjectReview and the SelfSubjectAccessReview for exec in parallel, (2) the
//! PATCH, with the WATCH of the pod opened at the same moment from the GET's
//! resourceVersion, (3) the exec; on a pod where a session saw its container end, (1) and
//! (2) go together (presume.rs). A reused session makes (1) and (3), or only (1) when the
//! cache names its container (handshake.rs): the exec then opens beside the reads and its
//! command waits for them. No LIST, no discovery.
//! After the work the user waits for nothing: the exec asked the agent to end the container
//! when it is the last session out, so no `stop` is sent (teardown.rs).

use std::time::Instant;

use futures::FutureExt;

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::Api;
use serde::Serialize;

use crate::base::error::{CREATE_EXEC, Error, status_code};
use crate::base::exit::ExitStatus;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::kube::exec::{self, Captured, Ending, ExecError, Remote};
use crate::kube::exec_output;
use crate::output::printer::OutputFormat;
use crate::output::printer::Printer;
use crate::session::attach;
use crate::session::events;
use crate::session::handshake;
use crate::session::inject::{add_debug_container, patch_body};
use crate::session::obtain::{Obtained, obtain_or_added};
use crate::session::options::{DebugOptions, DryRun, Mode};
use crate::session::plan::{Durations, Plan, plan};
use crate::session::presume;
use crate::session::refusal::{NOT_IDENTIFIED, refusal};
use crate::session::reuse_cache::ReuseCache;
use crate::session::spec::{self, TargetProcess};
use crate::session::teardown::Session;
use crate::session::trail::SessionTrail;
use crate::toolkit::catalog::ImageChoice;

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
    let cache = ReuseCache::from_env();
    let key = handshake::key_of(options, cluster);
    // On a pod a session saw its container end in, the PATCH goes beside the reads
    // (presume.rs); from then on a signal must not leave its container behind.
    // Read once: the handshake's container, or the pod a session saw its container end in.
    let entry = key.as_ref().and_then(|key| cache.lookup(key));
    let presumed = presume::presume(options, &cluster.namespace, entry.as_ref());
    let mut early_interrupts = match presumed {
        Some(_) => Some(Interrupts::install().map_err(|source| Error::Terminal { source })?),
        None => None,
    };
    // The early exec is a reused session's critical path: it opens beside the reads, and
    // everything the session does before its command is done while it does.
    let early = handshake::open_early(options, &pods, key.as_ref(), entry);
    let (advanced, planned, exec_forbidden) = tokio::join!(
        presume::advance(cluster, &pods, presumed),
        plan(options, cluster, &pods, printer),
        async { ask && attach::exec_is_forbidden(cluster).await },
    );
    let signalled = early_interrupts
        .as_mut()
        .and_then(|i| i.recv().now_or_never());
    if let Some(signal) = signalled {
        presume::abandon(advanced, signalled, options, cluster, printer).await;
        return Ok(ExitStatus::Interrupted(signal));
    }
    let mut plan = match planned {
        Ok(plan) => plan,
        Err(error) => {
            presume::abandon(advanced, None, options, cluster, printer).await;
            return Err(error);
        }
    };
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

    let mut interrupts = match early_interrupts {
        Some(interrupts) => interrupts,
        None => Interrupts::install().map_err(|source| Error::Terminal { source })?,
    };
    // What was sent beside the reads is used only when they confirm it.
    let advanced =
        presume::confirmed(advanced, &plan, !exec_forbidden, options, cluster, printer).await;
    if exec_forbidden {
        let mut captured = options.format.map(|_| Captured::default());
        let clock = Instant::now();
        let (status, container) = attach::run_attached(
            options,
            cluster,
            &pods,
            &pod_name,
            &plan.container,
            &plan.process,
            &mut interrupts,
            captured.as_mut(),
            events::trail_of(options, &plan, &cluster.namespace, ""),
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
    let obtained = obtain_or_added(
        options,
        cluster,
        &pods,
        &mut plan,
        advanced,
        &mut interrupts,
        printer,
        &mut durations,
    )
    .await?;
    let (mut session, reused) = match obtained {
        Obtained::Ready { session, reused } => (session, reused),
        Obtained::Interrupted(signal) => return Ok(ExitStatus::Interrupted(signal)),
    };
    // Unconfirmed, the early exec is dropped here: its command never runs. Confirmed, it is
    // waited for only once the work starts.
    let gated = early.and_then(|early| early.confirmed(&plan, &session));
    // Remembered as the work starts, so that a session beside this one finds it too.
    handshake::remember(&cache, key.as_ref(), options, &plan, &session);
    session.on_seen_end = handshake::on_seen_end(&cache, key.as_ref(), options, &plan, &session);

    let clock = Instant::now();
    let interactive = matches!(
        options.mode,
        Mode::Interactive | Mode::Command { tty: true, .. }
    );
    let trail = SessionTrail::begin(
        cluster,
        printer,
        events::trail_of(options, &plan, &session.namespace, &session.container),
        &options.record,
        interactive,
    );
    let mut captured = options.format.map(|_| Captured::default());
    // The first Event is written beside the work, so it costs the session no round trip, and
    // the last one does not wait for it: a short command can end before the first is written.
    let first_event = trail.first_event(reused);
    let mut started = Box::pin(async {
        match first_event.clone() {
            Some(event) => trail.events.post(event).await,
            None => None,
        }
    });
    let mut first = None;
    let ended = {
        let work = work(
            options,
            &session,
            &pods,
            &mut interrupts,
            captured.as_mut(),
            trail.tap(),
            gated,
            printer,
        );
        tokio::pin!(work);
        loop {
            tokio::select! {
                name = &mut started, if first.is_none() => first = Some(name),
                ended = &mut work => break ended,
            }
        }
    };
    // Exit code 3 is the agent's "target not identified" unless the command's own: the
    // agent's `target` tells them apart.
    let refused = match ended {
        Ok(Ending::Exited(NOT_IDENTIFIED)) if session.has_agent => {
            let remote = Remote {
                pods: &pods,
                pod: &session.pod,
                container: &session.container,
                tap: None,
            };
            refusal(&remote, &session.target).await
        }
        _ => None,
    };
    durations.exec = clock.elapsed().as_millis();
    let interrupted = matches!(ended, Ok(Ending::Interrupted(_)));
    // A lost connection leaves our exec's process alive in the container, like a signal does.
    let cut_off = interrupted || matches!(ended, Err(Error::Stream { .. }));
    // The exec ran as a session that ends the container (a refusal ran none): after a normal
    // end the agent does the stopping. Anything else keeps the stop of old.
    session.ends_itself =
        session.has_agent && refused.is_none() && matches!(ended, Ok(Ending::Exited(_)));

    // The first Event's answer is taken while the teardown runs, not waited for after it:
    // what is still unwritten then (that one again, and the last) is handed off, so the
    // session ends with its teardown (session/handoff.rs).
    let took = {
        let teardown = async {
            let clock = Instant::now();
            session.teardown(printer, cut_off).await;
            clock.elapsed().as_millis()
        };
        tokio::pin!(teardown);
        loop {
            tokio::select! {
                name = &mut started, if first.is_none() => first = Some(name),
                took = &mut teardown => break took,
            }
        }
    };
    drop(started);
    trail
        .finish(first, first_event, ended.as_ref().ok(), printer)
        .await;
    durations.teardown = took;

    if let Some(refused) = refused {
        return Err(refused.into());
    }
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

/// Step 6: the shell or the command, in the running debug container (through the exec the
/// handshake opened, when the reads confirmed it).
#[allow(clippy::too_many_arguments)]
async fn work(
    options: &DebugOptions,
    session: &Session,
    pods: &Api<Pod>,
    interrupts: &mut Interrupts,
    captured: Option<&mut Captured>,
    tap: Option<crate::base::tap::SharedTap>,
    gated: Option<handshake::Opening>,
    printer: &Printer,
) -> Result<Ending, Error> {
    let remote = Remote {
        pods,
        pod: &session.pod,
        container: &session.container,
        tap,
    };
    let image = if session.has_agent {
        options.image.clone()
    } else {
        crate::toolkit::catalog::ImageChoice::Custom(String::new())
    };
    // The session's only exec: with an agent, it ends the container when it is the last.
    let last = |command: Vec<String>| {
        if session.has_agent {
            spec::ending_the_container(command)
        } else {
            command
        }
    };
    // Only sessions without a terminal are gated (handshake::key_of).
    let forward = matches!(
        options.mode,
        Mode::PipedShell | Mode::Command { stdin: true, .. }
    );
    let gated = match gated {
        Some(opening) => opening.open().await,
        None => None,
    };
    let result = if let Some(gated) = gated {
        gated
            .run(&remote, forward, captured, interrupts.recv())
            .await
    } else {
        let ready =
            || {
                printer.note(&format!(
                "{} is ready; the target's filesystem is at {}. Exit the shell to end the session.",
                session.container,
                if session.has_agent { "/target" } else { spec::GENERIC_TARGET_LINK }
            ))
            };
        exec_by_mode(
            &options.mode,
            &remote,
            &image,
            &session.target,
            last,
            captured,
            interrupts,
            ready,
        )
        .await
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

/// The session's one exec, as its mode asks: a shell or a command, with a terminal or without
/// one (then over our own exec connection). `last` marks the command as the container's last
/// session when that is wanted; `ready` is said just before an interactive shell. Sessions
/// and `--copy` sessions share it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn exec_by_mode(
    mode: &Mode,
    remote: &Remote<'_>,
    image: &ImageChoice,
    target: &TargetProcess,
    last: impl Fn(Vec<String>) -> Vec<String>,
    captured: Option<&mut Captured>,
    interrupts: &mut Interrupts,
    ready: impl FnOnce(),
) -> Result<Ending, ExecError> {
    match mode {
        Mode::Interactive => {
            ready();
            exec::interactive(remote, last(spec::shell_command(image, target)), interrupts).await
        }
        Mode::Command {
            argv, tty: true, ..
        } => {
            exec::interactive(
                remote,
                last(spec::run_command(image, target, argv)),
                interrupts,
            )
            .await
        }
        Mode::Command {
            argv,
            stdin,
            tty: false,
        } => {
            exec_output::streamed(
                remote,
                last(spec::run_command(image, target, argv)),
                *stdin,
                captured,
                interrupts,
            )
            .await
        }
        Mode::PipedShell => {
            exec_output::streamed(
                remote,
                last(spec::shell_command(image, target)),
                true,
                captured,
                interrupts,
            )
            .await
        }
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
