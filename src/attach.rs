//! Attach mode: an interactive session for users who may attach but not exec.
//!
//! Some clusters grant `create pods/attach` without `create pods/exec`. There the shell cannot
//! be exec'd into a holding container, so the debug container is created with the shell as
//! its main process (`stdin`, `stdinOnce`, `tty`, agent `shell`) and we attach to it; it ends
//! when the shell exits or our attach closes its stdin, so teardown only watches it end. We
//! learn that exec is forbidden from a SelfSubjectAccessReview sent in parallel with the
//! session's first reads, so the check costs no round trip and no container is wasted.

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::Api;

use crate::access::allowed;
use crate::cluster::Cluster;
use crate::error::{CREATE_EXEC, Error, Permission};
use crate::exec::{self, Ending, ExecError, Remote};
use crate::exit::ExitStatus;
use crate::inject::add_debug_container;
use crate::interrupt::Interrupts;
use crate::options::DebugOptions;
use crate::printer::Printer;
use crate::session::{Origin, Session};
use crate::spec::attach_mode;
use crate::wait::{Waiting, wait_until_running};

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

/// An interactive session in attach mode, from the PATCH to the container's end.
pub async fn run_attached(
    options: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    pod: &str,
    planned: &EphemeralContainer,
    interrupts: &mut Interrupts,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
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
    printer.note(&format!(
        "`{CREATE_EXEC}` is not allowed for you in {namespace}, `{CREATE_ATTACH}` is: the debug container runs the shell as its main process (attach mode) and ends with this session."
    ));
    let container = attach_mode(planned.clone(), &options.image);
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
    let image = options.image.reference();
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
            return Ok(ExitStatus::Interrupted(signal));
        }
    };
    if let Err(error) = waited {
        session.teardown(printer, false).await;
        return Err(error);
    }
    // What the shell printed before we attached is gone, as with `kubectl attach`.
    printer.note("If you don't see a command prompt, press Enter.");
    let remote = Remote {
        pods,
        pod,
        container: &container.name,
    };
    let ended = exec::interactive_attach(&remote, interrupts).await;
    session
        .teardown(printer, matches!(ended, Ok(Ending::Interrupted(_))))
        .await;
    match ended {
        Ok(Ending::Interrupted(signal)) => Ok(ExitStatus::Interrupted(signal)),
        Ok(Ending::Exited(code)) => {
            // The container's own exit code is the shell's; the attach frame may lack it.
            let code = match session.exit_code().await {
                Some(code) => code,
                None if code >= 0 => code,
                None => return Ok(ExitStatus::Failure),
            };
            Ok(if code == 0 {
                ExitStatus::Success
            } else {
                ExitStatus::Remote(code)
            })
        }
        Err(ExecError::Session(error)) => Err(error),
        Err(ExecError::Open(source)) => Err(Error::Exec {
            pod: pod.to_string(),
            container: container.name.clone(),
            source,
        }),
    }
}
