//! `kubectl distroless-debug TARGET --copy`, step by step: read the original (or its
//! workload's template), resolve the entrypoint, check Pod Security, build the copy, create
//! it, wait for it, run the shell or the command in its debug container exactly as a session
//! does (the target's container ID passed on each exec), and delete it on every path.
//!
//! Everything that can refuse does so before the create, so bad input leaves nothing behind.
//! Once the copy exists, [`Copy::delete`] is awaited from one place whatever happened
//! (exit, Ctrl-C, SIGTERM, SIGHUP, a lost connection, a failed wait); `Drop` sends the delete
//! anyway if that place is ever skipped. The original pod and its workload are only read.

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use crate::base::error::{Error, api_message, status_code};
use crate::base::exit::ExitStatus;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::kube::exec::{Ending, ExecError, Remote};
use crate::output::printer::{OutputFormat, Printer};
use crate::session::copy::entrypoint::{Entrypoint, entrypoint_of, needs_image_config};
use crate::session::copy::failure::{COPY_PERMISSIONS, CopyFailure};
use crate::session::copy::options::CopyPodOptions;
use crate::session::copy::registry::{self, Access};
use crate::session::copy::source::{Source, container_to_hold, source_of};
use crate::session::copy::spec::{CopySource, DEBUG_CONTAINER, copy_pod_for};
use crate::session::copy::wait::wait_for_copy;
use crate::session::debug::exec_by_mode;
use crate::session::identity::{Identity, identity_of};
use crate::session::options::{DebugOptions, DryRun};
use crate::session::plan::surroundings;
use crate::session::profile::{PodSecurityRefusal, level_needed, profile_that_fits, violations};
use crate::session::spec::{SessionFacts, TargetProcess, random_suffix};
use crate::session::target::{container_names_by_id, status_of};
use crate::toolkit::catalog::{ImageChoice, Toolkit, VERSION};

/// How long the held target and our hold get to end after the delete (their own
/// terminationGracePeriodSeconds could be long; a copy has nothing to drain).
const DELETE_GRACE_SECONDS: u32 = 5;

pub async fn run(
    session: &DebugOptions,
    copy: &CopyPodOptions,
    cluster: &Cluster,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let (source, around) = tokio::join!(
        source_of(cluster, &pods, &session.target),
        surroundings(cluster, printer)
    );
    let source = source?;
    let container = container_to_hold(&source, session.container.as_deref())?;
    let spec = source
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .cloned()
        .unwrap_or_default();
    let session = &DebugOptions {
        image: image_for_copy(&session.image, &spec)?,
        ..session.clone()
    };
    let identity = identity_of(&source.pod, &container);
    precheck(
        session,
        &source,
        &identity,
        around.enforced,
        &cluster.namespace,
    )?;
    let entrypoint = entrypoint(cluster, &source, &spec, copy, printer).await?;
    if source.from_template {
        printer.note(&format!(
            "{} has no Running and ready pod: copying its pod template",
            session.target
        ));
    }
    printer.progress(&format!(
        "holding container {container} before its entrypoint ({}): {}",
        entrypoint.origin,
        entrypoint.argv.join(" ")
    ));
    let facts = SessionFacts {
        user: around.user.clone(),
        started: jiff::Timestamp::now(),
        version: VERSION.to_string(),
    };
    let copy_pod = copy_pod_for(
        session,
        copy,
        &CopySource {
            pod: &source.pod,
            original: &source.original,
            container: &container,
        },
        &entrypoint.argv,
        &identity,
        &facts,
        &random_suffix(),
    );
    let name = copy_pod.metadata.name.clone().unwrap_or_default();

    match session.dry_run {
        Some(DryRun::Client) => {
            printer.data(session.format.unwrap_or(OutputFormat::Yaml), &copy_pod)?;
            return Ok(ExitStatus::Success);
        }
        Some(DryRun::Server) => {
            let admitted = create(cluster, &pods, &copy_pod, &source.original, true).await?;
            printer.note(&format!(
                "admission accepted copy {name} of {} (server dry run: nothing was created)",
                source.original
            ));
            if let Some(format) = session.format {
                printer.data(format, &admitted)?;
            }
            return Ok(ExitStatus::Success);
        }
        None => {}
    }

    let mut interrupts = Interrupts::install().map_err(|source| Error::Terminal { source })?;
    let created = create(cluster, &pods, &copy_pod, &source.original, false).await?;
    let mut held = Copy {
        pods: pods.clone(),
        name: name.clone(),
        namespace: cluster.namespace.clone(),
        deleted: false,
    };
    printer.progress(&format!(
        "created copy {name} of {} (its labels and owners left out: nothing selects it)",
        source.original
    ));
    let worked = work_in_copy(
        session,
        cluster,
        &pods,
        &created,
        &container,
        &mut interrupts,
        printer,
    )
    .await;
    if copy.keep_copy {
        held.deleted = true;
        printer.note(&format!(
            "kept copy {name} (--keep-copy); it ends by itself after --ttl. Delete it with `kubectl delete pod {name} -n {}`, or `kubectl distroless-debug cleanup -n {}` deletes every copy of ours",
            cluster.namespace, cluster.namespace
        ));
    } else {
        held.delete(printer).await;
    }
    Ok(match worked? {
        Ending::Exited(0) => ExitStatus::Success,
        Ending::Exited(code) => ExitStatus::Remote(code),
        Ending::Interrupted(signal) => ExitStatus::Interrupted(signal),
    })
}

/// `--toolkit auto` and the default pick by the target's image or command: the target does not
/// run, so no agent can tell its runtime. `--image` cannot hold the target: it has no agent.
fn image_for_copy(image: &ImageChoice, spec: &Container) -> Result<ImageChoice, Error> {
    match image {
        ImageChoice::Custom(reference) => Err(CopyFailure::NeedsAgent {
            image: reference.clone(),
        }
        .into()),
        ImageChoice::Auto(catalog) | ImageChoice::Hinted(catalog) => Ok(catalog
            .image(crate::toolkit::runtime::toolkit_from_spec(spec).unwrap_or(Toolkit::Base))),
        chosen => Ok(chosen.clone()),
    }
}

/// Refuses, before anything is created, a copy the namespace's Pod Security level would
/// reject for our containers (the debug container of the profile, the install container).
fn precheck(
    session: &DebugOptions,
    source: &Source,
    identity: &Identity,
    enforced: Option<crate::session::profile::PsaLevel>,
    namespace: &str,
) -> Result<(), Error> {
    let Some(enforced) = enforced else {
        return Ok(());
    };
    let pod_sc = source
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref());
    let sc = crate::session::profile::security_context_for(session.profile, identity);
    let found = violations(enforced, &sc, pod_sc);
    if found.is_empty() {
        return Ok(());
    }
    Err(PodSecurityRefusal {
        namespace: namespace.to_string(),
        pod: source.original.clone(),
        profile: session.profile,
        needed: level_needed(&sc, pod_sc),
        enforced,
        violations: found,
        fits: profile_that_fits(enforced, identity, pod_sc).filter(|p| *p != session.profile),
    }
    .into())
}

/// The entrypoint to hold: the registry is asked only when the flag and the spec do not say.
async fn entrypoint(
    cluster: &Cluster,
    source: &Source,
    spec: &Container,
    copy: &CopyPodOptions,
    printer: &Printer,
) -> Result<Entrypoint, Error> {
    let flag = copy.entrypoint.as_deref();
    let image = spec.image.clone().unwrap_or_default();
    let read = if needs_image_config(spec, flag) {
        printer.progress(&format!(
            "the pod spec sets no command: reading the entrypoint of {image} from its registry"
        ));
        let registry_host = image
            .parse::<oci_client::Reference>()
            .map(|r| r.registry().to_string())
            .unwrap_or_default();
        let local: Vec<Access> = registry::local_docker_config()
            .and_then(|(path, text)| registry::credentials_in(&text, &registry_host, &path))
            .into_iter()
            .collect();
        let secrets = async {
            registry::pull_secret_configs(cluster, &source.pod)
                .await
                .into_iter()
                .filter_map(|(from, text)| registry::credentials_in(&text, &registry_host, &from))
                .collect()
        };
        registry::image_start(&image, local, secrets).await
    } else {
        Err("not needed".to_string())
    };
    Ok(entrypoint_of(
        &source.original,
        spec,
        read.as_ref().map_err(|e| e.as_str()),
        flag,
    )?)
}

/// POSTs the copy (`dry_run`: with dryRun=All); admission's refusals said in its words.
async fn create(
    cluster: &Cluster,
    pods: &Api<Pod>,
    copy_pod: &Pod,
    original: &str,
    dry_run: bool,
) -> Result<Pod, Error> {
    let name = copy_pod.metadata.name.clone().unwrap_or_default();
    let params = PostParams {
        dry_run,
        ..PostParams::default()
    };
    // A create is not idempotent: no retry here (a resend could make a second copy).
    match cluster.bounded(pods.create(&params, copy_pod)).await {
        Ok(pod) => Ok(pod),
        Err(source) => {
            let message = api_message(&source).unwrap_or_default().to_string();
            let pod_security = message.contains("violates PodSecurity");
            Err(match status_code(&source) {
                Some(403) if !pod_security => CopyFailure::Forbidden {
                    namespace: cluster.namespace.clone(),
                    pod: name,
                    permission: COPY_PERMISSIONS[3],
                    step: "create the copy",
                    created: false,
                    source,
                },
                Some(400 | 403 | 422) => CopyFailure::Rejected {
                    pod: name,
                    original: original.to_string(),
                    pod_security,
                    source,
                },
                _ => CopyFailure::Create {
                    pod: name,
                    original: original.to_string(),
                    source,
                },
            }
            .into())
        }
    }
}

/// Waits for the copy, then runs the shell or the command in its debug container; a signal
/// while waiting ends the session as a signal during it does.
async fn work_in_copy(
    session: &DebugOptions,
    cluster: &Cluster,
    pods: &Api<Pod>,
    created: &Pod,
    container: &str,
    interrupts: &mut Interrupts,
    printer: &Printer,
) -> Result<Ending, Error> {
    let name = created.metadata.name.clone().unwrap_or_default();
    let version = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let ready = tokio::select! {
        ready = wait_for_copy(cluster, pods, &name, container, &version, session.timeout, printer) => ready?,
        signal = interrupts.recv() => return Ok(Ending::Interrupted(signal)),
    };
    let target = TargetProcess {
        container: container.to_string(),
        container_id: status_of(&ready, container).and_then(|s| s.container_id.clone()),
        pid: session.target_pid,
        containers: container_names_by_id(&ready),
    };
    let remote = Remote {
        pods,
        pod: &name,
        container: DEBUG_CONTAINER,
        tap: None,
    };
    let image = &session.image;
    let ready = || {
        printer.note(&format!(
            "copy {name} is ready; container {container} is held before its entrypoint and its filesystem is at /target. `start` runs the entrypoint (`start KEY=VALUE... [ARGS]`, again after it exits); exit the shell to end the session and delete the copy."
        ))
    };
    let result = exec_by_mode(
        &session.mode,
        &remote,
        image,
        &target,
        |command| command,
        None,
        interrupts,
        ready,
    )
    .await;
    match result {
        Ok(ending) => Ok(ending),
        Err(ExecError::Session(error)) => Err(error),
        Err(ExecError::Open(source)) if status_code(&source) == Some(403) => {
            Err(CopyFailure::Forbidden {
                namespace: cluster.namespace.clone(),
                pod: name,
                permission: COPY_PERMISSIONS[5],
                step: "exec into its debug container",
                created: true,
                source,
            }
            .into())
        }
        Err(ExecError::Open(source)) => Err(Error::Exec {
            pod: name,
            container: DEBUG_CONTAINER.to_string(),
            source,
        }),
    }
}

/// A copy we created, deleted once by [`Copy::delete`], or by `Drop` as a fallback.
struct Copy {
    pods: Api<Pod>,
    name: String,
    namespace: String,
    /// Deleted, or kept on purpose (`--keep-copy`).
    deleted: bool,
}

impl Copy {
    fn params() -> DeleteParams {
        DeleteParams {
            grace_period_seconds: Some(DELETE_GRACE_SECONDS),
            ..DeleteParams::default()
        }
    }

    async fn delete(&mut self, printer: &Printer) {
        self.deleted = true;
        match self.pods.delete(&self.name, &Self::params()).await {
            Ok(_) => printer.note(&format!("deleted copy {}", self.name)),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) if status_code(&source) == Some(403) => {
                let failure = CopyFailure::Forbidden {
                    namespace: self.namespace.clone(),
                    pod: self.name.clone(),
                    permission: COPY_PERMISSIONS[4],
                    step: "delete the copy",
                    created: true,
                    source,
                };
                let error: Error = failure.into();
                printer.warn(&format!(
                    "{error}; it ends by itself after --ttl. {}",
                    error.hint().unwrap_or_default()
                ));
            }
            Err(source) => printer.warn(&format!(
                "could not delete copy {} ({}); it ends by itself after --ttl, or `kubectl delete pod {} -n {}` now",
                self.name,
                crate::base::error::describe(&source),
                self.name,
                self.namespace
            )),
        }
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let pods = self.pods.clone();
            let name = self.name.clone();
            handle.spawn(async move {
                let _ = pods.delete(&name, &Copy::params()).await;
            });
        }
    }
}
