//! Attach mode: a session for users who may attach but not exec.
//!
//! Some clusters grant `create pods/attach` without `create pods/exec`. There nothing can be
//! exec'd into a holding container, so the debug container is created with the work as its
//! main process and we attach to it: the shell (`stdin`, `stdinOnce`, `tty`, agent `shell`),
//! or the command, behind a gate that holds it until we are attached so that none of its
//! output is lost (`spec::attach_command`). It ends when the shell or the command exits, or
//! when our attach closes its stdin, so teardown only watches it end, and the command's exit
//! code is read from the terminated container. We learn that exec is forbidden from a
//! SelfSubjectAccessReview sent in parallel with the session's first reads, so the check costs
//! no round trip and no container is wasted.

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::Api;

use crate::base::error::{CREATE_EXEC, Error, Permission};
use crate::base::exit::ExitStatus;
use crate::base::interrupt::Interrupts;
use crate::kube::access::allowed;
use crate::kube::cluster::Cluster;
use crate::kube::exec::{self, Captured, Ending, ExecError, Remote};
use crate::output::printer::Printer;
use crate::session::events::Trail;
use crate::session::inject::add_debug_container;
use crate::session::options::{DebugOptions, Mode};
use crate::session::spec::{
    TargetProcess, attach_command, attach_mode, run_command, shell_command,
};
use crate::session::teardown::{Origin, Session};
use crate::session::trail::SessionTrail;
use crate::session::wait::{Waiting, wait_until_running};

pub const CREATE_ATTACH: Permission = Permission {
    verb: "create",
    resource: "pods",
    subresource: Some("attach"),
};

/// True only when the API server says exec is not allowed (an unanswered review means we
/// try exec, as usual).
pub async fn exec_is_forbidden(cluster: &Cluster) -> bool {
    allowed(cluster, &cluster.namespace, CREATE_EXEC).await == Some(false)
}

/// A session in attach mode, from the PATCH to the container's end: its exit status and the
/// name of the container it added.
#[allow(clippy::too_many_arguments)]
pub async fn run_attached(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    pod: &str,
    planned: &EphemeralContainer,
    process: &TargetProcess,
    interrupts: &mut Interrupts,
    captured: Option<&mut Captured>,
    mut trail: Trail,
    printer: &Printer,
) -> Result<(ExitStatus, String), Error> {
    let namespace = &cluster.namespace;
    if allowed(cluster, namespace, CREATE_ATTACH).await == Some(false) {
        let message = format!(
            "neither `{CREATE_EXEC}` nor `{CREATE_ATTACH}` is allowed in namespace {namespace}"
        );
        return Err(Error::Forbidden {
            namespace: namespace.clone(),
            pod: pod.to_string(),
            step: "open a shell in a debug container",
            missing: vec![CREATE_EXEC, CREATE_ATTACH],
            source: kube::Error::Api(Box::new(
                kube::core::Status::failure(&message, "Forbidden").with_code(403),
            )),
        });
    }
    let image = &options.image;
    // (the container, whether it has a tty, whether our stdin goes to it)
    let (container, tty, stdin) = match &options.mode {
        Mode::Interactive => (attach_mode(planned.clone(), image, process), true, true),
        Mode::Command {
            argv, tty: true, ..
        } => {
            let mut container = attach_mode(planned.clone(), image, process);
            container.command = Some(run_command(image, process, argv));
            (container, true, true)
        }
        Mode::Command {
            argv,
            stdin,
            tty: false,
        } => (
            attach_command(planned.clone(), run_command(image, process, argv), *stdin),
            false,
            *stdin,
        ),
        Mode::PipedShell => (
            attach_command(planned.clone(), shell_command(image, process), true),
            false,
            true,
        ),
    };
    printer.note(&format!(
        "`{CREATE_EXEC}` is not allowed for you in {namespace}, `{CREATE_ATTACH}` is: the debug container runs the {} as its main process (attach mode) and ends with this session.",
        if matches!(options.mode, Mode::Interactive | Mode::PipedShell) {
            "shell"
        } else {
            "command"
        }
    ));
    let updated = add_debug_container(cluster, pods, pod, &container, false).await?;
    let mut session = Session::new(
        cluster,
        namespace,
        pod,
        &container.name,
        options.image.has_agent(),
        Origin::Attached,
        options.idle,
    );
    let image = image.reference();
    let what = Waiting {
        pod,
        container: &container.name,
        image: &image,
    };
    let version = updated.metadata.resource_version.unwrap_or_default();
    let waited = tokio::select! {
        waited = wait_until_running(cluster, pods, &what, &version, options.timeout, printer) => waited,
        signal = interrupts.recv() => {
            session.teardown(printer, true).await;
            return Ok((ExitStatus::Interrupted(signal), container.name));
        }
    };
    if let Err(error) = waited {
        session.teardown(printer, false).await;
        return Err(error);
    }
    trail.debug_container = container.name.clone();
    let trail = SessionTrail::begin(cluster, printer, trail, &options.record, tty);
    let remote = Remote {
        pods,
        pod,
        container: &container.name,
        tap: trail.tap(),
    };
    let (first, ended) = tokio::join!(trail.started(false), async {
        if tty {
            // What the shell printed before we attached is gone, as with `kubectl attach`.
            printer.note("If you don't see a command prompt, press Enter.");
            exec::interactive_attach(&remote, interrupts).await
        } else {
            exec::streamed_attach(&remote, stdin, captured, interrupts).await
        }
    });
    let interrupted = matches!(ended, Ok(Ending::Interrupted(_)));
    if interrupted && !tty && stdin {
        printer.note(&format!(
            "{}: without `{CREATE_EXEC}` a command reading stdin cannot be signalled; its stdin is closed, and it runs to its end",
            container.name
        ));
    }
    session.teardown(printer, interrupted).await;
    let status = match ended {
        Ok(Ending::Interrupted(signal)) => ExitStatus::Interrupted(signal),
        Ok(Ending::Exited(code)) => {
            // The container's own exit code is the shell's; the attach frame may lack it.
            match session.exit_code().await {
                Some(0) => ExitStatus::Success,
                Some(code) => ExitStatus::Remote(code),
                None if code == 0 => ExitStatus::Success,
                None if code > 0 => ExitStatus::Remote(code),
                None => ExitStatus::Failure,
            }
        }
        Err(ExecError::Session(error)) => {
            trail.finish(Some(first), None, None, printer).await;
            return Err(error);
        }
        Err(ExecError::Open(source)) => {
            trail.finish(Some(first), None, None, printer).await;
            return Err(Error::Exec {
                pod: pod.to_string(),
                container: container.name.clone(),
                source,
            });
        }
    };
    let ending = match status {
        ExitStatus::Success => Some(Ending::Exited(0)),
        ExitStatus::Remote(code) => Some(Ending::Exited(code)),
        ExitStatus::Interrupted(signal) => Some(Ending::Interrupted(signal)),
        _ => None,
    };
    trail
        .finish(Some(first), None, ending.as_ref(), printer)
        .await;
    Ok((status, container.name))
}
