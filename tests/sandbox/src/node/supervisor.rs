//! One container's life in a pod, as the kubelet's sync loop lives it: pull (with image
//! back-off), create, start, wait, restart per `restartPolicy` with crash back-off; the
//! status and events each step reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerUser, LinuxContainerUser, Pod};
use tokio::sync::oneshot;

use super::container::{Instance, InstanceSpec, remove};
use super::images::Image;
use super::plan;
use super::pod::{PodRuntime, container_spec, is_sidecar, random_id, restart_policy};
use super::probe;
use super::spec::{Bind, ContainerPlan, Identity, Namespace, Namespaces, ProcessPlan};
use super::status::{self, Kind};
use super::{Node, lock};
use crate::runtime::ProcessExit;

/// Why a container could not be started.
pub enum StartError {
    /// Waiting with this reason; retried with back-off (CreateContainerConfigError, ...).
    Waiting {
        reason: String,
        message: String,
    },
    /// The runtime failed to start the process: reported as a terminated container with
    /// reason StartError and exit code 128, as containerd does.
    Run(String),
    Cancelled,
}

/// Kubernetes back-off, shortened for a test double: 1 s doubling up to 30 s.
pub(super) struct Backoff(Duration);

impl Backoff {
    pub(super) fn new() -> Backoff {
        Backoff(Duration::from_secs(1))
    }
    pub(super) fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
        d
    }
}

impl Node {
    /// Run one container for as long as the pod lives: pull (with back-off), create, start,
    /// wait, restart per restartPolicy (never for init containers that succeed, never for
    /// ephemeral containers). Returns how the last run ended (for init containers).
    pub(super) async fn supervise(
        self: Arc<Self>,
        p: Arc<PodRuntime>,
        name: String,
        kind: Kind,
        mut first: Option<oneshot::Sender<()>>,
    ) -> Option<ProcessExit> {
        let field = kind.field_path(&name);
        let field = Some(field.as_str());
        let mut pull_backoff = Backoff::new();
        let mut crash_backoff = Backoff::new();
        let mut runs = 0u32;
        loop {
            if p.cancel.is_cancelled() {
                return None;
            }
            let taken_up = std::time::Instant::now();
            let pod = lock(&p.pod).clone();
            let (container, target) = container_spec(&pod, &name, kind)?;
            let image_name = container.image.clone().unwrap_or_default();
            let sidecar = kind == Kind::Init && is_sidecar(&container);
            if sidecar && p.sidecars_stopping.is_cancelled() {
                return None;
            }
            // The kubelet probes regular containers and native sidecars only.
            let probed = kind == Kind::Regular || sidecar;

            let image = match self.pull(&p, field, &container).await {
                Ok(image) => image,
                Err(None) => return None,
                Err(Some((reason, message))) => {
                    self.with_record(&p, &name, kind, |r| {
                        r.status.state = Some(status::waiting(&reason, Some(message.clone())));
                    });
                    first.take().map(|f| f.send(()));
                    if !p.sleep(Duration::from_millis(500)).await {
                        return None;
                    }
                    if reason == "ErrImagePull" {
                        self.event(
                            &p,
                            "Normal",
                            "BackOff",
                            &format!("Back-off pulling image {image_name:?}"),
                            field,
                        );
                        self.event(&p, "Warning", "Failed", "Error: ImagePullBackOff", field);
                        self.with_record(&p, &name, kind, |r| {
                            r.status.state = Some(status::waiting(
                                "ImagePullBackOff",
                                Some(format!(
                                    "Back-off pulling image {image_name:?}: ErrImagePull: {message}"
                                )),
                            ));
                        });
                    }
                    if !p.sleep(pull_backoff.next()).await {
                        return None;
                    }
                    continue;
                }
            };
            pull_backoff = Backoff::new();

            let started = self
                .start_container(&p, &name, &container, target.as_deref(), &image)
                .await;
            let (exit_code, reason, message, started_at, container_id) = match started {
                Err(StartError::Cancelled) => return None,
                Err(StartError::Waiting { reason, message }) => {
                    self.event(&p, "Warning", "Failed", &format!("Error: {message}"), field);
                    self.with_record(&p, &name, kind, |r| {
                        r.status.state = Some(status::waiting(&reason, Some(message.clone())));
                    });
                    first.take().map(|f| f.send(()));
                    if !p.sleep(crash_backoff.next()).await {
                        return None;
                    }
                    continue;
                }
                Err(StartError::Run(message)) => {
                    self.event(&p, "Warning", "Failed", &format!("Error: {message}"), field);
                    (128, "StartError".to_string(), Some(message), None, None)
                }
                Ok(instance) => {
                    self.record_start(&pod, &name, taken_up.elapsed());
                    let started_at = instance.started_at;
                    let hide_user = self
                        .faults
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .hide_container_user;
                    let container_id = status::container_id(&instance.id);
                    self.with_record(&p, &name, kind, |r| {
                        if runs > 0 {
                            r.status.restart_count += 1;
                        }
                        r.status.state = Some(status::running(started_at));
                        // The kubelet's probe manager sets readiness only for regular
                        // containers and native sidecars; startup and readiness probes hold
                        // them back. A running run-to-completion init container is started.
                        let (gates_started, gates_ready) = probe::gates(&container);
                        r.status.ready = probed && !gates_ready;
                        r.status.started = Some(!probed || !gates_started);
                        r.status.container_id = Some(container_id.clone());
                        r.status.image = image.reference.clone();
                        r.status.image_id = image.image_id();
                        r.status.user = (!hide_user).then(|| user_of(&instance.process.identity));
                        r.instance = Some(instance.clone());
                    });
                    self.event(
                        &p,
                        "Normal",
                        "Created",
                        &format!("Created container: {name}"),
                        field,
                    );
                    self.event(
                        &p,
                        "Normal",
                        "Started",
                        &format!("Started container {name}"),
                        field,
                    );
                    first.take().map(|f| f.send(()));
                    if probed {
                        let node = self.clone();
                        let (pp, n, i, c) =
                            (p.clone(), name.clone(), instance.clone(), container.clone());
                        p.spawn(async move { node.probe(pp, n, kind, i, c).await });
                    }
                    let exit = tokio::select! {
                        e = instance.wait() => e,
                        // The pod is being deleted: its teardown stops this instance.
                        _ = p.cancel.cancelled() => return None,
                    };
                    // Its last words are in the log before the exit is reported (unless a
                    // child it left behind keeps the output open).
                    instance.log.wait_finished(Duration::from_millis(500)).await;
                    let code = exit.code();
                    let reason = if code == 0 { "Completed" } else { "Error" };
                    (
                        code,
                        reason.to_string(),
                        None,
                        Some(started_at),
                        Some(container_id),
                    )
                }
            };
            runs += 1;
            first.take().map(|f| f.send(()));

            // The kubelet's termination message: what the process wrote to its
            // terminationMessagePath, else (FallbackToLogsOnError, on failure) its log's tail.
            let message = message.or_else(|| {
                let id = container_id
                    .as_deref()?
                    .strip_prefix(status::CONTAINER_ID_PREFIX)?;
                termination_message(&p, &name, id, &container, exit_code)
            });

            // The process ended (or never started): record it and release the instance.
            let instance = {
                let mut state = lock(&p.state);
                state.record(&name, kind).and_then(|r| {
                    r.status.state = Some(status::terminated(
                        exit_code,
                        &reason,
                        message.clone(),
                        started_at,
                        container_id.clone(),
                    ));
                    r.status.ready = false;
                    r.status.started = Some(false);
                    r.instance.take()
                })
            };
            if let Some(i) = instance {
                // Kept for `logs` and a late first attach; its runc container goes now.
                if let Some(r) = lock(&p.state).record(&name, kind) {
                    r.last = Some(i.clone());
                }
                let runc = self.runc.clone();
                let _ = tokio::task::spawn_blocking(move || remove(&runc, &i.id, &i.dir)).await;
            }
            self.publish(&p);

            let policy = restart_policy(&pod);
            let restart = match kind {
                Kind::Ephemeral => false,
                // A native sidecar is restarted whenever it exits, whatever the pod's policy.
                Kind::Init if sidecar => !p.sidecars_stopping.is_cancelled(),
                Kind::Init => exit_code != 0 && policy != "Never",
                Kind::Regular => policy == "Always" || (policy == "OnFailure" && exit_code != 0),
            };
            if !restart {
                return Some(ProcessExit::Code(exit_code));
            }
            let delay = if runs == 1 {
                Duration::ZERO
            } else {
                crash_backoff.next()
            };
            if !delay.is_zero() {
                let label = p.label();
                self.event(
                    &p,
                    "Warning",
                    "BackOff",
                    &format!("Back-off restarting failed container {name} in pod {label}"),
                    field,
                );
                self.with_record(&p, &name, kind, |r| {
                    r.status.last_state = r.status.state.take();
                    r.status.state = Some(status::waiting(
                        "CrashLoopBackOff",
                        Some(format!(
                            "back-off {}s restarting failed container={name} pod={label}",
                            delay.as_secs()
                        )),
                    ));
                });
            } else {
                self.with_record(&p, &name, kind, |r| {
                    r.status.last_state = r.status.state.take();
                    r.status.state = Some(status::waiting("ContainerCreating", None));
                });
            }
            if !p.sleep(delay).await {
                return None;
            }
        }
    }

    /// Create and start a container of the pod.
    async fn start_container(
        &self,
        p: &PodRuntime,
        name: &str,
        c: &Container,
        target: Option<&str>,
        image: &Image,
    ) -> Result<Arc<Instance>, StartError> {
        let sandbox_pid = p.wait_sandbox().await.ok_or(StartError::Cancelled)?;
        let pod = lock(&p.pod).clone();
        let config_error = |message: String| StartError::Waiting {
            reason: "CreateContainerConfigError".into(),
            message,
        };
        let identity = plan::identity_for(&pod, c, image).map_err(config_error)?;
        let lookup = |kind, name: &str| self.sink.config_data(kind, &p.namespace, name);
        let env = plan::environment(&pod, c, &image.config, status::POD_IP, &lookup)
            .map_err(config_error)?;
        let args =
            plan::command_line(c, &image.config, &env).map_err(|message| StartError::Waiting {
                reason: "CreateContainerError".into(),
                message,
            })?;
        let spec = pod.spec.clone().unwrap_or_default();
        let ns = |kind: &str, host: Option<bool>| {
            if host == Some(true) {
                Namespace::Host
            } else {
                Namespace::Join(PathBuf::from(format!("/proc/{sandbox_pid}/ns/{kind}")))
            }
        };
        let (pid_ns, owns_pid_ns) = if let Some(t) = target {
            // CRI's targetContainerName: join the target container's PID namespace.
            let target_pid = lock(&p.state)
                .records
                .iter()
                .find(|r| r.name == t && r.kind != Kind::Ephemeral)
                .and_then(|r| {
                    r.instance
                        .as_ref()
                        .filter(|i| i.exited().is_none())
                        .map(|i| i.pid)
                });
            match target_pid {
                Some(pid) => (
                    Namespace::Join(PathBuf::from(format!("/proc/{pid}/ns/pid"))),
                    false,
                ),
                None => {
                    return Err(StartError::Waiting {
                        reason: "CreateContainerError".into(),
                        message: format!(
                            "failed to get target container {t:?}: container is not running"
                        ),
                    });
                }
            }
        } else if spec.host_pid == Some(true) {
            (Namespace::Host, false)
        } else if spec.share_process_namespace == Some(true) {
            (ns("pid", None), false)
        } else {
            (Namespace::New, true)
        };

        let id = random_id();
        let mut binds = vec![
            Bind {
                source: p.dir.join("etc/hosts"),
                destination: "/etc/hosts".into(),
                readonly: false,
            },
            Bind {
                source: p.dir.join("etc/hostname"),
                destination: "/etc/hostname".into(),
                readonly: false,
            },
            Bind {
                source: p.dir.join("etc/resolv.conf"),
                destination: "/etc/resolv.conf".into(),
                readonly: false,
            },
        ];
        let termination = p.dir.join("termination").join(format!("{name}-{id}"));
        if std::fs::write(&termination, b"").is_ok() {
            let path = c
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into());
            binds.push(Bind {
                source: termination,
                destination: path,
                readonly: false,
            });
        }
        for m in c.volume_mounts.iter().flatten() {
            let source = volume_source(p, &pod, &m.name).map_err(config_error)?;
            let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) => {
                    let s = source.join(sub);
                    let _ = std::fs::create_dir_all(&s);
                    s
                }
                None => source,
            };
            binds.push(Bind {
                source,
                destination: m.mount_path.clone(),
                readonly: m.read_only.unwrap_or(false),
            });
        }
        let capabilities = plan::capabilities_for(c.security_context.as_ref());
        let seccomp =
            plan::seccomp_for(&pod, c, &capabilities).map_err(|message| StartError::Waiting {
                reason: "CreateContainerError".into(),
                message,
            })?;
        let process = ProcessPlan {
            args,
            env,
            cwd: plan::working_dir(c, &image.config),
            identity,
            capabilities,
            no_new_privileges: plan::no_new_privileges(c),
            terminal: c.tty.unwrap_or(false),
            console_size: None,
        };
        let plan = ContainerPlan {
            process,
            root: PathBuf::new(),
            readonly_root: plan::readonly_root(c),
            hostname: None,
            namespaces: Namespaces {
                pid: pid_ns,
                network: ns("net", spec.host_network),
                ipc: ns("ipc", spec.host_ipc),
                uts: ns("uts", spec.host_network),
            },
            binds,
            privileged: plan::privileged(c),
            cgroups_path: self.cgroup_for(p, &id),
            seccomp,
        };
        let spec = InstanceSpec {
            id: id.clone(),
            dir: p.dir.join("containers").join(&id),
            lower: image.rootfs.clone(),
            plan,
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            log_path: p.dir.join("logs").join(format!("{name}-{id}.log")),
            owns_pid_ns,
        };
        Instance::create(&self.runc, self.reaper, spec).await.map_err(|e| {
            StartError::Run(format!(
                "failed to create containerd task: failed to create shim task: OCI runtime create failed: {e}: unknown"
            ))
        })
    }
}

fn termination_message(
    p: &PodRuntime,
    name: &str,
    id: &str,
    c: &Container,
    exit_code: i32,
) -> Option<String> {
    let file = p.dir.join("termination").join(format!("{name}-{id}"));
    let written = std::fs::read(&file).unwrap_or_default();
    let written = String::from_utf8_lossy(&written[..written.len().min(4096)]).into_owned();
    if !written.is_empty() {
        return Some(written);
    }
    if exit_code == 0 || c.termination_message_policy.as_deref() != Some("FallbackToLogsOnError") {
        return None;
    }
    let log = lock(&p.state)
        .find(name)
        .and_then(|r| r.last.clone().or_else(|| r.instance.clone()))
        .map(|i| i.log.tail_text(80, 2048))?;
    (!log.is_empty()).then_some(log)
}

fn user_of(id: &Identity) -> ContainerUser {
    ContainerUser {
        linux: Some(LinuxContainerUser {
            uid: i64::from(id.uid),
            gid: i64::from(id.gid),
            supplemental_groups: Some(id.additional_gids.iter().map(|g| i64::from(*g)).collect()),
        }),
    }
}

/// Where a volume's content lives on the node: emptyDir (a directory per pod, mode 0777 as
/// the kubelet makes it), hostPath, and for API-backed volumes (configMap, secret, projected
/// service account token, downwardAPI) a directory with what the sandbox can fill in.
fn volume_source(p: &PodRuntime, pod: &Pod, name: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let volume = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name == name))
        .ok_or_else(|| format!("cannot find volume {name:?} to mount into container"))?;
    if let Some(host) = &volume.host_path {
        let path = PathBuf::from(&host.path);
        if matches!(host.type_.as_deref(), Some("DirectoryOrCreate")) {
            let _ = std::fs::create_dir_all(&path);
        }
        return Ok(path);
    }
    let dir = p.dir.join("volumes").join(name);
    let fresh = !dir.exists();
    std::fs::create_dir_all(&dir).map_err(|e| format!("volume {name}: {e}"))?;
    if fresh {
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        if volume.projected.is_some() || volume.secret.is_some() {
            let _ = write_service_account_files(&dir, &p.namespace);
        }
    }
    Ok(dir)
}

fn write_service_account_files(dir: &Path, namespace: &str) -> std::io::Result<()> {
    std::fs::write(dir.join("namespace"), namespace)?;
    std::fs::write(dir.join("token"), "sandbox-service-account-token")?;
    std::fs::write(dir.join("ca.crt"), "")
}
