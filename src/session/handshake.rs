//! A reused session in one round trip: the exec into the debug container this pod's last
//! session used (reuse_cache.rs) is opened at once, beside the reads of the pod, with the
//! agent's `--handshake` (docs/agent.md), so its command waits for our word on stdin. The
//! reads then decide: when they find that very container reusable (ours, running, same image,
//! profile and target) and the target's container ID unchanged (it did not restart), the
//! command is told to go; otherwise the exec is dropped, which closes its stdin, and the
//! agent runs nothing. The session then goes on as if there had been no cache: reuse what the
//! reads found, or add a container. So a miss or an abort costs what a reused session cost
//! before, and the user's command never runs in a container the reads did not confirm.
//!
//! Only sessions without a terminal use it: with a tty the remote terminal would echo the
//! handshake line before our raw mode begins. Interactive shells take the path of before.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::base::task::{Scoped, scoped};
use crate::kube::cluster::Cluster;
use crate::kube::exec::Remote;
use crate::kube::exec_output::{self, Gated};
use crate::session::options::{DebugOptions, Mode};
use crate::session::plan::Plan;
use crate::session::reuse_cache::{Ended, Entry, Key, ReuseCache};
use crate::session::spec::{self, TargetProcess};
use crate::session::target::TargetKind;
use crate::session::teardown::{SeenEnd, Session};

/// The cache key of this session, when the cache serves it: a pod named as such, our agent
/// in the image, nothing dry. Which path it may then take is [`takes_handshake`]'s and
/// presume.rs's to say.
pub fn key_of(options: &DebugOptions, cluster: &Cluster) -> Option<Key> {
    key_in(options, cluster.context.as_deref(), &cluster.namespace)
}

/// [`key_of`] for the cluster `context` names, in `namespace`.
fn key_in(options: &DebugOptions, context: Option<&str>, namespace: &str) -> Option<Key> {
    let eligible = options.dry_run.is_none()
        && options.image.has_agent()
        && options.target.kind == TargetKind::Pod;
    eligible.then(|| Key {
        context: context.unwrap_or_default().to_string(),
        namespace: namespace.to_string(),
        pod: options.target.name.clone(),
        container: options.container.clone().unwrap_or_default(),
    })
}

/// Whether the session may take the one-round-trip path: reuse allowed and no terminal.
fn takes_handshake(options: &DebugOptions) -> bool {
    options.reuse
        && matches!(
            options.mode,
            Mode::PipedShell | Mode::Command { tty: false, .. }
        )
}

/// An exec opening on the cache's word, beside the reads; its command waits for them.
pub struct Early {
    entry: Entry,
    opening: Opening,
}

/// The gated exec on its way, on a task of its own so that its connection's TLS handshake
/// runs at once, not after the reads' (base/task.rs). Dropped, it aborts the exec, opened or
/// not.
pub struct Opening(Scoped<Option<Gated>>);

impl Opening {
    /// The exec once open; `None` when it could not be (a container that is gone, say): the
    /// session then execs the usual way.
    pub async fn open(self) -> Option<Gated> {
        self.0.join().await.flatten()
    }
}

/// Starts the gated exec into the remembered container; `None` on a miss. The session goes
/// on with its reads and everything it can do before the command, and waits for the exec
/// only when it is time to say go ([`Opening::open`]).
pub fn open_early(
    options: &DebugOptions,
    pods: &Api<Pod>,
    key: Option<&Key>,
    entry: Option<Entry>,
) -> Option<Early> {
    let key = key.filter(|_| takes_handshake(options))?;
    // A container the last session saw end is not tried.
    let entry = entry.filter(|entry| !entry.seen_ended())?;
    let target = TargetProcess {
        container: entry.target.clone(),
        container_id: entry.target_id.clone(),
        pid: options.target_pid,
        containers: Vec::new(),
    };
    let command = gated_command(options, &target)?;
    let (pods, pod, container) = (pods.clone(), key.pod.clone(), entry.debug_container.clone());
    let opening = Opening(scoped(async move {
        let remote = Remote {
            pods: &pods,
            pod: &pod,
            container: &container,
            tap: None,
        };
        exec_output::open_gated(&remote, command).await.ok()
    }));
    Some(Early { entry, opening })
}

/// The session's command with the agent's `--handshake` after its verb.
fn gated_command(options: &DebugOptions, target: &TargetProcess) -> Option<Vec<String>> {
    let mut command = match &options.mode {
        Mode::Command { argv, .. } => spec::run_command(&options.image, target, argv),
        Mode::PipedShell => spec::shell_command(&options.image, target),
        Mode::Interactive => return None,
    };
    // [agent, verb, flags...]: the session ends the container when it is the last one out,
    // as an ungated one does (spec::ending_the_container).
    command.insert(2, "--handshake".to_string());
    Some(spec::ending_the_container(command))
}

impl Early {
    /// The exec, if the reads confirm its container: the one they would reuse, for the same
    /// target container, which did not restart since. Otherwise `None`, and dropping the
    /// exec aborts it.
    pub fn confirmed(self, plan: &Plan, session: &Session) -> Option<Opening> {
        let reusable = plan.reusable.as_ref()?;
        let same = reusable.name == self.entry.debug_container
            && reusable.has_agent
            && session.container == self.entry.debug_container
            && plan.target.container == self.entry.target
            && plan.process.container_id == self.entry.target_id;
        same.then_some(self.opening)
    }
}

/// Remembers the container this session ran in, for the next one on the same pod; a `--new`
/// session's container is not one to reuse, and leaves the entry as it was.
pub fn remember(
    cache: &ReuseCache,
    key: Option<&Key>,
    options: &DebugOptions,
    plan: &Plan,
    session: &Session,
) {
    let Some(key) = key.filter(|_| session.has_agent && options.reuse) else {
        return;
    };
    // Without `ended`, the pod kept for the key stays, for `--new` (presume.rs).
    cache.remember(key, entry_of(plan, session));
}

/// What to remember once this session sees its container end, in the pod it last saw: that
/// pod, for the next session on the pod to send its PATCH beside its reads (presume.rs). A
/// `--new` session keeps the container the entry names, for the sessions that reuse it.
pub fn on_seen_end(
    cache: &ReuseCache,
    key: Option<&Key>,
    options: &DebugOptions,
    plan: &Plan,
    session: &Session,
) -> Option<SeenEnd> {
    let key = key.filter(|_| session.has_agent)?.clone();
    let cache = cache.clone();
    let reuse = options.reuse;
    let own = entry_of(plan, session);
    let (user, enforced) = (plan.user.clone(), plan.enforced);
    Some(Box::new(move |pod: &Pod| {
        let named = cache.lookup(&key).filter(|_| !reuse);
        cache.remember(
            &key,
            Entry {
                ended: Some(Ended::of(pod, &user, enforced)),
                ..named.unwrap_or(own)
            },
        );
    }))
}

fn entry_of(plan: &Plan, session: &Session) -> Entry {
    Entry {
        debug_container: session.container.clone(),
        target: plan.target.container.clone(),
        target_id: plan.process.container_id.clone(),
        image: plan.image.clone(),
        ended: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::debug::tests::options as session_options;
    use crate::session::profile::Profile;
    use crate::session::target::TargetRef;

    fn target() -> TargetProcess {
        TargetProcess {
            container: "app".into(),
            container_id: Some("containerd://abc".into()),
            pid: None,
            containers: Vec::new(),
        }
    }

    #[test]
    fn the_handshake_flag_goes_right_after_the_agent_verb_and_the_session_ends_the_container() {
        let options = DebugOptions {
            mode: Mode::Command {
                argv: vec!["ls".into(), "--handshake".into()],
                stdin: false,
                tty: false,
            },
            ..session_options(Profile::Auto, true)
        };
        let command = gated_command(&options, &target()).unwrap();
        assert_eq!(
            command[1..],
            [
                "run",
                "--end-container",
                "--handshake",
                "--target-id",
                "containerd://abc",
                "--",
                "ls",
                "--handshake"
            ]
        );
        let shell = DebugOptions {
            mode: Mode::PipedShell,
            ..session_options(Profile::Auto, true)
        };
        assert_eq!(
            gated_command(&shell, &target()).unwrap()[1..4],
            ["shell", "--end-container", "--handshake"]
        );
    }

    #[test]
    fn only_pods_without_a_terminal_and_with_reuse_take_the_one_round_trip() {
        let command = Mode::Command {
            argv: vec!["true".into()],
            stdin: false,
            tty: false,
        };
        let options = DebugOptions {
            mode: command,
            ..session_options(Profile::Auto, true)
        };
        let key = key_in(&options, Some("prod"), "shop").expect("eligible");
        assert_eq!(key.namespace, "shop");
        assert_eq!(key.pod, options.target.name);
        // The context is the cluster's, whatever the command (not the recording's option).
        assert_eq!(key.context, "prod");
        assert!(takes_handshake(&options));
        for refused in [
            DebugOptions {
                mode: Mode::Interactive,
                ..options.clone()
            },
            DebugOptions {
                mode: Mode::Command {
                    argv: vec!["true".into()],
                    stdin: false,
                    tty: true,
                },
                ..options.clone()
            },
            DebugOptions {
                reuse: false,
                ..options.clone()
            },
        ] {
            assert!(!takes_handshake(&refused), "{:?}", refused.mode);
            // The cache still serves them: a fresh container may be presumed (presume.rs).
            assert!(
                key_in(&refused, Some("prod"), "shop").is_some(),
                "{:?}",
                refused.mode
            );
        }
        let deployment = DebugOptions {
            target: "deploy/web".parse::<TargetRef>().unwrap(),
            ..options.clone()
        };
        assert_eq!(key_in(&deployment, Some("prod"), "shop"), None);
        let dry = DebugOptions {
            dry_run: Some(crate::session::options::DryRun::Client),
            ..options.clone()
        };
        assert_eq!(key_in(&dry, Some("prod"), "shop"), None);
    }
}
