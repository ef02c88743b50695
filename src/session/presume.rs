//! A fresh session in two round trips on a pod a session of ours has seen before: the PATCH
//! goes out beside the reads instead of after them.
//!
//! When a session sees its debug container end, it remembers the pod as that last event
//! showed it (reuse_cache.rs, [`Ended`]). The next session on the same pod plans its container
//! from that pod with the very code that plans from a fresh read ([`presumed_plan`]), and sends
//! the PATCH at once, beside its reads, with a WATCH of the pod opened at the same moment. The
//! PATCH is a JSON patch that only applies if the pod is still what the plan was made from:
//! it `test`s the pod's uid (the same pod object: the containers of a pod cannot change, only
//! their images, which restarts them) and the target container's ID (the same instance, not
//! restarted since), then adds the container. A pod that changed refuses it (422) and nothing
//! is added.
//!
//! The reads still decide ([`agrees`]): the container is used only when the plan made from
//! them is the one that was sent (the same spec, bar its random name and start time).
//! Otherwise it is stopped and the session goes on as if nothing had been presumed. So a
//! miss costs what a fresh session cost before (three round trips), a refused PATCH adds
//! nothing to the pod, and a container the reads did not confirm never runs a command.

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::Api;
use serde_json::{Value, json};

use crate::base::error::Error;
use crate::base::interrupt::Interrupts;
use crate::base::task::scoped;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::add::{Added, wait_added};
use crate::session::inject::add_with_patch;
use crate::session::options::DebugOptions;
use crate::session::plan::{Durations, Plan, Surroundings, needed, presumed_plan};
use crate::session::profile::PsaLevel;
use crate::session::reuse_cache::Entry;
use crate::session::spec::ENV_STARTED;
use crate::session::target::TargetKind;
use crate::session::teardown::{Origin, Session};
use crate::session::watch::PodWatch;

/// A plan made from the pod a session saw last, and the guarded PATCH that adds its container.
pub struct Presumed {
    pub plan: Plan,
    patch: Value,
}

/// The container the PATCH sent beside the reads, with the watch opened beside it.
pub struct Advanced {
    pub plan: Plan,
    pub watch: PodWatch,
}

/// Whether a session may send its PATCH before its reads: a pod named as such, our agent
/// (whose container ends itself, so the pod seen then shows it Terminated), nothing dry, and
/// nothing the plan takes from what the cache does not keep (the target's env and volumes).
pub fn eligible(options: &DebugOptions) -> bool {
    options.dry_run.is_none()
        && options.image.has_agent()
        && options.target.kind == TargetKind::Pod
        && !options.copy_env
        && !options.mirror_volumes
}

/// The plan from the pod `entry` saw end, when this session may presume it: a fresh container
/// (nothing of ours to reuse there), a target whose uid and gid the pod says (else the agent
/// reads them first, probe.rs) and whose container ID it says (the guard).
///
/// Reuse allowed, the pod must also be the one the last container of the entry ended in: a
/// container a later session used may run still, and the reads would reuse it. With `--new`
/// any pod seen earlier will do, the guard saying whether its target is still the same.
pub fn presume(options: &DebugOptions, namespace: &str, entry: Option<&Entry>) -> Option<Presumed> {
    let entry = entry?;
    let ended = entry.ended.as_ref().filter(|_| eligible(options))?;
    if options.reuse && !entry.seen_ended() {
        return None;
    }
    let surroundings = Surroundings {
        user: ended.user.clone(),
        enforced: ended.enforced.as_deref().and_then(PsaLevel::from_label),
    };
    let plan = presumed_plan(options, namespace, ended.pod.clone(), surroundings).ok()?;
    if plan.reusable.is_some() || needed(options, &plan.identity) {
        return None;
    }
    let patch = guarded_patch(&plan)?;
    Some(Presumed { plan, patch })
}

/// `test` the pod's uid and the target's container ID, then add the container.
fn guarded_patch(plan: &Plan) -> Option<Value> {
    let pod = &plan.target.pod;
    let uid = pod.metadata.uid.as_deref()?;
    let id = plan.process.container_id.as_deref()?;
    let status = pod.status.as_ref()?;
    let at = |list: &Option<Vec<k8s_openapi::api::core::v1::ContainerStatus>>| {
        list.iter()
            .flatten()
            .position(|s| s.name == plan.target.container)
    };
    let pointer = match at(&status.container_statuses) {
        Some(i) => format!("/status/containerStatuses/{i}/containerID"),
        None => format!(
            "/status/initContainerStatuses/{}/containerID",
            at(&status.init_container_statuses)?
        ),
    };
    let container = serde_json::to_value(&plan.container).ok()?;
    let has_list = pod
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .is_some_and(|list| !list.is_empty());
    // With no list yet, `add` makes it; one that appeared since is then replaced, which the
    // apiserver refuses (ephemeral containers cannot be removed): nothing is added.
    let add = if has_list {
        json!({"op": "add", "path": "/spec/ephemeralContainers/-", "value": container})
    } else {
        json!({"op": "add", "path": "/spec/ephemeralContainers", "value": [container]})
    };
    Some(json!([
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "test", "path": pointer, "value": id},
        add,
    ]))
}

/// Sends the guarded PATCH with the pod's watch opened beside it; `None` when the pod
/// refused it (it changed) or it failed: the session then goes the usual way.
pub async fn advance(
    cluster: &Cluster,
    pods: &Api<Pod>,
    presumed: Option<Presumed>,
) -> Option<Advanced> {
    let Presumed { plan, patch } = presumed?;
    let pod = plan.target.pod_name().to_string();
    // The PATCH is this session's critical path and the watch the next step's: each is a
    // task of its own, so that its TLS handshake is not queued behind the reads' (base/task.rs).
    let adding = scoped({
        let (cluster, pods, pod, container) = (
            cluster.clone(),
            pods.clone(),
            pod.clone(),
            plan.container.clone(),
        );
        async move { add_with_patch(&cluster, &pods, &pod, &container, patch).await }
    });
    // From now: the first event is the pod as it is, then what follows; the wait looks for
    // this container by its name, so which comes first does not matter.
    let opening = scoped({
        let mut watch = PodWatch::new(pods, &pod, "", cluster.retry);
        async move {
            watch.open().await;
            watch
        }
    });
    let (added, watch) = tokio::join!(adding.join(), opening.join());
    added?.ok()?;
    // Once the container is added the session needs a watch: one that did not open is
    // opened again by the wait.
    let watch = watch.unwrap_or_else(|| PodWatch::new(pods, &pod, "", cluster.retry));
    Some(Advanced { plan, watch })
}

/// Whether the reads confirm what was sent: the plan made from them adds the same container
/// (its random name and start time aside), for the same target container instance.
pub fn agrees(sent: &Plan, read: &Plan) -> bool {
    fn bare(container: &EphemeralContainer) -> EphemeralContainer {
        let mut container = container.clone();
        container.name.clear();
        for var in container.env.iter_mut().flatten() {
            if var.name == ENV_STARTED {
                var.value = None;
            }
        }
        container
    }
    let reused_other = read
        .reusable
        .as_ref()
        .is_some_and(|r| r.name != sent.container.name);
    !reused_other
        && read.target.container == sent.target.container
        && read.process.container_id == sent.process.container_id
        && read.image == sent.image
        && bare(&read.container) == bare(&sent.container)
}

/// Stops a container the reads did not confirm (or that the session cannot use), as a
/// container that was added and then not wanted is stopped.
pub async fn withdraw(
    advanced: Advanced,
    options: &DebugOptions,
    cluster: &Cluster,
    printer: &Printer,
    why: &str,
    interrupted: bool,
) {
    let Advanced { plan, watch } = advanced;
    printer.note(&format!(
        "{why}: stopping {}, added beside the reads",
        plan.container.name
    ));
    let mut session = Session::new(
        cluster,
        &cluster.namespace,
        plan.target.pod_name(),
        &plan.container.name,
        options.image.has_agent(),
        Origin::Created,
        options.idle,
    );
    session.target = plan.process.clone();
    session.watch = Some(watch);
    session.teardown(printer, interrupted).await;
}

/// After the reads, when the session cannot go on (its plan failed, or a signal came while
/// the reads were on their way): stops what was sent beside them.
pub async fn abandon(
    advanced: Option<Advanced>,
    signalled: Option<i32>,
    options: &DebugOptions,
    cluster: &Cluster,
    printer: &Printer,
) {
    if let Some(advanced) = advanced {
        let why = match signalled {
            Some(_) => "interrupted",
            None => "the session cannot go on",
        };
        withdraw(
            advanced,
            options,
            cluster,
            printer,
            why,
            signalled.is_some(),
        )
        .await;
    }
}

/// What was sent beside the reads, if the plan made from them confirms it and the session can
/// use it (`usable`: attach mode cannot); otherwise it is stopped and `None` is left.
pub async fn confirmed(
    advanced: Option<Advanced>,
    plan: &Plan,
    usable: bool,
    options: &DebugOptions,
    cluster: &Cluster,
    printer: &Printer,
) -> Option<Advanced> {
    let advanced = advanced?;
    if usable && agrees(&advanced.plan, plan) {
        return Some(advanced);
    }
    let why = format!(
        "the reads of pod {} differ from what the last session saw",
        plan.target.pod_name()
    );
    withdraw(advanced, options, cluster, printer, &why, false).await;
    None
}

/// Step 5 for the container the reads confirmed: it was added with `plan.container`'s name;
/// wait until it runs, as for any container we add.
pub async fn added(
    options: &DebugOptions,
    cluster: &Cluster,
    plan: &Plan,
    watch: PodWatch,
    interrupts: &mut Interrupts,
    printer: &Printer,
    durations: &mut Durations,
) -> Result<Added, Error> {
    printer.progress(&format!(
        "added {} ({}) to pod {}, targeting {}, beside the reads",
        plan.container.name,
        plan.image,
        plan.target.pod_name(),
        plan.target.container
    ));
    let name = plan.container.name.clone();
    wait_added(
        options, cluster, plan, &name, watch, interrupts, printer, durations,
    )
    .await
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        Container, ContainerState, ContainerStateTerminated, ContainerStatus, EnvVar,
        PodSecurityContext,
    };

    use super::*;
    use crate::session::debug::tests::options;
    use crate::session::profile::Profile;
    use crate::session::reuse_cache::{DEFAULT_CONTAINER, Ended};
    use crate::session::spec::{SessionFacts, TargetProcess, ephemeral_container_for};
    use crate::session::target::tests::running_pod;

    const SECRET: &str = "hunter2";

    /// Pod `web` as a session saw it end: `app` (uid/gid from the pod, an env value that must
    /// not reach the cache), and our `dbg-old`, Terminated.
    fn seen_pod() -> Pod {
        let mut pod = running_pod("web", &["app"]);
        pod.metadata.uid = Some("uid-1".into());
        pod.metadata.annotations = Some(
            [
                (
                    "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                    SECRET.to_string(),
                ),
                (DEFAULT_CONTAINER.to_string(), "app".to_string()),
            ]
            .into(),
        );
        let status = pod.status.as_mut().unwrap();
        status.container_statuses.as_mut().unwrap()[0].container_id =
            Some("containerd://app-1".into());
        status.ephemeral_container_statuses = Some(vec![ContainerStatus {
            name: "dbg-old".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated::default()),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        let spec = pod.spec.as_mut().unwrap();
        spec.security_context = Some(PodSecurityContext {
            run_as_user: Some(1000),
            run_as_group: Some(1000),
            ..PodSecurityContext::default()
        });
        spec.containers[0].env = Some(vec![EnvVar {
            name: "PASSWORD".into(),
            value: Some(SECRET.into()),
            value_from: None,
        }]);
        let ours = ephemeral_container_for(
            &options(Profile::Auto, true),
            "app",
            &TargetProcess {
                container: "app".into(),
                container_id: Some("containerd://app-0".into()),
                ..TargetProcess::default()
            },
            &Default::default(),
            &SessionFacts {
                user: "me".into(),
                started: jiff::Timestamp::UNIX_EPOCH,
                version: "0".into(),
            },
            "old",
        );
        spec.ephemeral_containers = Some(vec![ours]);
        pod
    }

    fn entry(debug_container: &str, pod: &Pod) -> Entry {
        Entry {
            debug_container: debug_container.into(),
            target: "app".into(),
            target_id: Some("containerd://app-1".into()),
            image: String::new(),
            ended: Some(Ended::of(pod, "me", None)),
        }
    }

    #[test]
    fn the_patch_tests_the_pod_uid_and_the_target_id_before_adding_the_container() {
        let presumed = presume(
            &options(Profile::Auto, true),
            "default",
            Some(&entry("dbg-old", &seen_pod())),
        )
        .expect("presumed");
        let ops = presumed.patch.as_array().unwrap();
        assert_eq!(
            ops[0],
            json!({"op": "test", "path": "/metadata/uid", "value": "uid-1"})
        );
        assert_eq!(
            ops[1],
            json!({"op": "test", "path": "/status/containerStatuses/0/containerID", "value": "containerd://app-1"})
        );
        assert_eq!(ops[2]["op"], "add");
        assert_eq!(ops[2]["path"], "/spec/ephemeralContainers/-");
        assert_eq!(
            ops[2]["value"]["name"],
            presumed.plan.container.name.as_str()
        );
        assert_ne!(presumed.plan.container.name, "dbg-old");
        assert_eq!(ops[2]["value"]["targetContainerName"], "app");
        assert_eq!(ops.len(), 3);
    }

    #[test]
    fn a_native_sidecar_target_is_tested_among_the_init_container_statuses() {
        let mut pod = seen_pod();
        let spec = pod.spec.as_mut().unwrap();
        spec.init_containers = Some(vec![Container {
            name: "proxy".into(),
            image: Some("proxy:1".into()),
            restart_policy: Some("Always".into()),
            ..Container::default()
        }]);
        let status = pod.status.as_mut().unwrap();
        status.init_container_statuses = Some(vec![ContainerStatus {
            name: "proxy".into(),
            container_id: Some("containerd://proxy-1".into()),
            state: status.container_statuses.as_ref().unwrap()[0].state.clone(),
            ..ContainerStatus::default()
        }]);
        let sidecar = DebugOptions {
            container: Some("proxy".into()),
            ..options(Profile::Auto, true)
        };
        let presumed =
            presume(&sidecar, "default", Some(&entry("dbg-old", &pod))).expect("presumed");
        assert_eq!(
            presumed.patch[1],
            json!({"op": "test", "path": "/status/initContainerStatuses/0/containerID", "value": "containerd://proxy-1"})
        );
    }

    #[test]
    fn the_cache_keeps_no_environment_values_and_no_other_annotations() {
        let kept = serde_json::to_string(&Ended::of(&seen_pod(), "me", None)).unwrap();
        assert!(!kept.contains(SECRET), "{kept}");
        assert!(kept.contains(DEFAULT_CONTAINER), "{kept}");
        // Ours keep their markers: the plan tells our containers by them.
        assert!(kept.contains("DISTROLESS_DEBUG_TARGET"), "{kept}");
    }

    #[test]
    fn with_reuse_only_a_pod_that_shows_the_last_container_ended_is_presumed() {
        let pod = seen_pod();
        // A later session used another container, which may still run.
        let later = entry("dbg-later", &pod);
        assert!(!later.seen_ended());
        assert!(presume(&options(Profile::Auto, true), "default", Some(&later)).is_none());
        assert!(presume(&options(Profile::Auto, false), "default", Some(&later)).is_some());
        let not_ours = [
            DebugOptions {
                copy_env: true,
                ..options(Profile::Auto, false)
            },
            DebugOptions {
                mirror_volumes: true,
                ..options(Profile::Auto, false)
            },
            DebugOptions {
                dry_run: Some(crate::session::options::DryRun::Server),
                ..options(Profile::Auto, false)
            },
        ];
        for options in not_ours {
            assert!(presume(&options, "default", Some(&entry("dbg-old", &pod))).is_none());
        }
        // Without the target's ID there is nothing to guard with.
        let mut unknown = pod.clone();
        unknown
            .status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0]
            .container_id = None;
        assert!(
            presume(
                &options(Profile::Auto, true),
                "default",
                Some(&entry("dbg-old", &unknown))
            )
            .is_none()
        );
    }

    #[test]
    fn the_reads_agree_on_the_same_container_whatever_its_name_and_start_time() {
        let pod = seen_pod();
        let sent = presume(
            &options(Profile::Auto, true),
            "default",
            Some(&entry("dbg-old", &pod)),
        )
        .unwrap()
        .plan;
        let read = presume(
            &options(Profile::Auto, true),
            "default",
            Some(&entry("dbg-old", &pod)),
        )
        .unwrap()
        .plan;
        assert_ne!(sent.container.name, read.container.name);
        assert!(agrees(&sent, &read));
        let other_reason = DebugOptions {
            reason: Some("INC-1".into()),
            ..options(Profile::Auto, true)
        };
        let read = presume(&other_reason, "default", Some(&entry("dbg-old", &pod)))
            .unwrap()
            .plan;
        assert!(!agrees(&sent, &read), "another env");
        let mut restarted = pod.clone();
        restarted
            .status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0]
            .container_id = Some("containerd://app-2".into());
        let read = presume(
            &options(Profile::Auto, true),
            "default",
            Some(&entry("dbg-old", &restarted)),
        )
        .unwrap()
        .plan;
        assert!(!agrees(&sent, &read), "another target instance");
    }
}
