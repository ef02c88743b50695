//! A debug container we are using, and the one place that stops it.
//!
//! [`Session::teardown`] is awaited from one place in `session/debug.rs` on every path: normal exit,
//! failure, Ctrl-C while waiting, a signal during the session, a lost connection. If the
//! session value is dropped without it (a bug, or an early return), `Drop` runs it anyway on
//! the runtime. Teardown execs the agent's `stop` (or, for `--image`, kills the pid our hold
//! loop recorded in the debug container's own filesystem): it never signals a target process.
//! A container another session still uses is left to the last one out.
//!
//! After a normal end of a session whose last exec ran with the agent's `--end-container`
//! ([`Session::ends_itself`]), the agent ends the container by itself (the last session out,
//! docs/agent.md): no `stop` is sent and the user waits for nothing. A container we added is
//! watched on the watch its wait opened, for at most [`LAST_OUT_WAIT`], to report it
//! Terminated; a reused one is not looked at again.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{WatchEvent, WatchParams};

use crate::base::duration::Human;
use crate::base::error::describe;
use crate::kube::cluster::Cluster;
use crate::kube::exec::{Remote, run_quietly};
use crate::output::printer::Printer;
use crate::session::refusal::NOT_IDENTIFIED;
use crate::session::spec::{AGENT, TargetProcess, stop_command};
use crate::session::target::{shares_pid_namespace, status_of};
use crate::session::wait::{Progress, progress_of};
use crate::session::watch::{PodWatch, Seen};

/// How long teardown waits for a container that has not started yet, then for Terminated.
const START_GRACE: Duration = Duration::from_secs(30);
const TERMINATE_GRACE: Duration = Duration::from_secs(15);
/// How long a normal end waits to see a container that ends itself Terminated, after which
/// it says so and exits: the agent's own stop still happens.
pub const LAST_OUT_WAIT: Duration = Duration::from_secs(2);

/// The agent's exit code for "other sessions still use this container" in our stop-if-unused
/// script (EX_TEMPFAIL).
const IN_USE: i32 = 75;

/// The agent's exit code for a command line it refuses (an agent older than the flag).
const AGENT_USAGE: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// We added the container in this run: we stop it.
    Created,
    /// We exec'd into a running one: we stop it only if nobody else uses it.
    Reused,
    /// We added it in attach mode (exec forbidden): its main process is the shell or the
    /// command, which ends when our attach closes its stdin (or by itself); teardown only
    /// waits for that.
    Attached,
}

/// Why a container is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// The session ended: stop unless another session still uses the container.
    Normal,
    /// A signal ended the session.
    Interrupted,
    /// `cleanup`: stop it whoever uses it.
    Forced,
}

/// What teardown did, for the result and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Teardown {
    Stopped,
    /// Another session still uses it; the last one out stops it.
    InUse,
    /// It never ran, so there was nothing to stop.
    NeverStarted,
    /// Left running: the reason, already told to the user.
    LeftRunning(String),
    /// It had ended by itself with the target: the target restarted, and without a shared PID
    /// namespace the kernel ends every process of the target's namespace with its PID 1.
    EndedWithTarget,
    /// Left to its agent, which ends it when the last session in it ends: not seen Terminated
    /// within [`LAST_OUT_WAIT`] (another session may use it), or reused and not looked at.
    EndsItself,
}

/// What a session does with the pod it saw its container end in.
pub type SeenEnd = Box<dyn FnOnce(&Pod) + Send + Sync>;

pub struct Session {
    cluster: Cluster,
    pods: Api<Pod>,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub has_agent: bool,
    pub origin: Origin,
    /// The agent's idle limit, to tell the user when a container is left running.
    pub idle: Duration,
    /// Which process every agent exec of this session works on.
    pub target: TargetProcess,
    /// The session's last exec ran with the agent's `--end-container` and ended normally:
    /// the agent ends the container when no other session is left in it.
    pub ends_itself: bool,
    /// The pod's watch the wait opened (a container we added), kept to see it end.
    pub watch: Option<PodWatch>,
    /// Called with the pod the kept watch showed the container ended in, when it ended by
    /// itself: the next session plans from it (handshake.rs `on_seen_end`, presume.rs).
    pub on_seen_end: Option<SeenEnd>,
    done: bool,
}

impl Session {
    pub fn new(
        cluster: &Cluster,
        namespace: &str,
        pod: &str,
        container: &str,
        has_agent: bool,
        origin: Origin,
        idle: Duration,
    ) -> Self {
        Session {
            pods: Api::namespaced(cluster.client.clone(), namespace),
            namespace: namespace.to_string(),
            cluster: cluster.clone(),
            pod: pod.to_string(),
            container: container.to_string(),
            has_agent,
            origin,
            idle,
            target: TargetProcess::default(),
            ends_itself: false,
            watch: None,
            on_seen_end: None,
            done: false,
        }
    }

    /// The session's last exec, an agent verb run [`ending_the_container`] (`cp`'s `tar` or
    /// `untar`, `snapshot`'s `tar`, `info`'s `info`), exited `code`; `None` when it did not
    /// end with an exit status (a signal, a broken connection). The verb registered itself
    /// as a session that ends the container unless it refused its command line or could not
    /// identify the target, which it does first (docs/agent.md): then, and after anything
    /// but an exit, teardown keeps its `stop`.
    ///
    /// [`ending_the_container`]: crate::session::spec::ending_the_container
    pub fn last_exec_exited(&mut self, code: Option<i32>) {
        self.ends_itself = self.has_agent
            && code.is_some_and(|code| code != AGENT_USAGE && code != NOT_IDENTIFIED);
    }

    fn remote(&self) -> Remote<'_> {
        Remote {
            pods: &self.pods,
            pod: &self.pod,
            container: &self.container,
            tap: None,
        }
    }

    /// Stops the debug container and sees it Terminated. `interrupted`: a reused container is
    /// then left alone, since our own exec may still count as a user of it.
    pub async fn teardown(&mut self, printer: &Printer, interrupted: bool) -> Teardown {
        self.done = true;
        let how = if interrupted {
            How::Interrupted
        } else {
            How::Normal
        };
        let outcome = self.stop(printer, how).await;
        match &outcome {
            Teardown::Stopped => printer.note(&format!(
                "stopped {}. Kubernetes keeps a terminated ephemeral container's entry in the pod spec (it cannot be removed); `kubectl distroless-debug ls` shows it.",
                self.container
            )),
            Teardown::InUse => printer.note(&format!(
                "left {} running: another session uses it; the last one out stops it.",
                self.container
            )),
            Teardown::NeverStarted => printer.note(&format!(
                "{} never started, so there is nothing to stop; its entry stays in the pod spec (Kubernetes cannot remove ephemeral containers).",
                self.container
            )),
            Teardown::EndedWithTarget => printer.warn(&format!(
                "container {} of pod {} restarted (its process ended or was killed) and {} ended with it: the target's main process is PID 1 of the PID namespace the debug container joined, and the kernel ends every process in a namespace whose PID 1 ends. A new session debugs the restarted target.",
                self.target.container, self.pod, self.container
            )),
            Teardown::EndsItself if self.origin == Origin::Reused => {}
            Teardown::EndsItself => printer.note(&format!(
                "not waiting longer for {} to end: its agent ends it when the last session in it ends (`kubectl distroless-debug ls` shows it).",
                self.container
            )),
            Teardown::LeftRunning(why) if self.origin == Origin::Attached => {
                printer.warn(&format!(
                    "{} is still running: {why}. It ends when its shell or command does.",
                    self.container
                ))
            }
            Teardown::LeftRunning(why) => printer.warn(&format!(
                "{} is still running: {why}. It stops by itself after {} without a session; `kubectl distroless-debug cleanup -n {}` stops it now.",
                self.container,
                Human(self.idle),
                self.namespace
            )),
        }
        outcome
    }

    /// Stops it without the session's closing notes (for `cleanup`, which reports in a table).
    pub async fn stop_only(&mut self, printer: &Printer) -> Teardown {
        self.done = true;
        self.stop(printer, How::Forced).await
    }

    async fn stop(&mut self, printer: &Printer, how: How) -> Teardown {
        let interrupted = how == How::Interrupted;
        if how == How::Normal && self.ends_itself && self.origin != Origin::Attached {
            return self.see_it_end().await;
        }
        if self.origin == Origin::Attached {
            return match self
                .wait_for(TERMINATE_GRACE, |p| {
                    matches!(
                        p,
                        Progress::Exited { .. } | Progress::PodGone | Progress::Failed { .. }
                    )
                })
                .await
            {
                Some(Progress::Failed { .. }) => Teardown::NeverStarted,
                Some(_) => Teardown::Stopped,
                None => Teardown::LeftRunning(
                    "its shell or command did not end when the attach closed its stdin".to_string(),
                ),
            };
        }
        if self.origin == Origin::Reused && interrupted {
            return Teardown::LeftRunning(
                "it was reused and this session was interrupted".to_string(),
            );
        }
        // A container still starting cannot be exec'd into: wait for it (Ctrl-C while waiting).
        match self.current_progress().await {
            Ok(Progress::Running) => {}
            Ok(Progress::Pending | Progress::Waiting { .. }) => {
                printer.progress(&format!(
                    "waiting for {} to start so it can be stopped",
                    self.container
                ));
                match self
                    .wait_for(START_GRACE, |p| {
                        !matches!(p, Progress::Pending | Progress::Waiting { .. })
                    })
                    .await
                {
                    Some(Progress::Running) => {}
                    Some(Progress::Exited { .. }) => return Teardown::Stopped,
                    Some(Progress::Failed { .. }) => return Teardown::NeverStarted,
                    _ => {
                        return Teardown::LeftRunning(format!(
                            "it did not start within {}",
                            Human(START_GRACE)
                        ));
                    }
                }
            }
            Ok(Progress::Exited { .. }) => return self.ended().await,
            Ok(Progress::Failed { .. }) => return Teardown::NeverStarted,
            Ok(Progress::PodGone) => return Teardown::Stopped,
            Err(e) => {
                return Teardown::LeftRunning(format!("could not read pod {} ({e})", self.pod));
            }
        }
        // Last one out stops it: after a normal end our own session is gone, so any live one
        // is someone else's (a second session reusing this container). After a signal our
        // own exec may still be alive in there, so a container we added is stopped outright.
        let command = if self.has_agent && how == How::Normal {
            stop_if_unused()
        } else {
            stop_command(self.has_agent)
        };
        printer.progress(&format!("stopping {}", self.container));
        match tokio::time::timeout(TERMINATE_GRACE, run_quietly(&self.remote(), command)).await {
            Ok(Ok((IN_USE, _))) => return Teardown::InUse,
            Ok(Ok(_)) => {}
            // It may have ended by itself meanwhile (with a target that restarted), and the
            // pod status not said so yet.
            Ok(Err(e)) => {
                return match self.ended_meanwhile().await {
                    Some(ended) => ended,
                    None => {
                        Teardown::LeftRunning(format!("the stop command failed ({})", describe(&e)))
                    }
                };
            }
            Err(_) => {
                return match self.ended_meanwhile().await {
                    Some(ended) => ended,
                    None => Teardown::LeftRunning("the stop command did not answer".to_string()),
                };
            }
        }
        match self
            .wait_for(TERMINATE_GRACE, |p| {
                matches!(p, Progress::Exited { .. } | Progress::PodGone)
            })
            .await
        {
            Some(_) => Teardown::Stopped,
            None => Teardown::LeftRunning(format!(
                "it was not Terminated within {}",
                Human(TERMINATE_GRACE)
            )),
        }
    }

    /// After a normal end that the agent turns into the container's: Terminated as the kept
    /// watch shows it, within [`LAST_OUT_WAIT`]. No read and no exec: a reused container
    /// (no watch) is left to its agent at once.
    async fn see_it_end(&mut self) -> Teardown {
        let container = self.container.clone();
        let Some(watch) = self.watch.as_mut() else {
            return Teardown::EndsItself;
        };
        let ended = async {
            loop {
                match watch.next().await {
                    Ok(Seen::Gone) => return Some(None),
                    Ok(Seen::Pod(pod)) => {
                        if let Progress::Exited { .. } = progress_of(&pod, &container) {
                            return Some(Some(pod));
                        }
                    }
                    Err(_) => return None,
                }
            }
        };
        match tokio::time::timeout(LAST_OUT_WAIT, ended).await {
            // The pod that showed it ended also says whether the target ended it.
            Ok(Some(Some(pod))) => {
                let outcome = self.ended_in(&pod);
                if let Some(seen) = self
                    .on_seen_end
                    .take()
                    .filter(|_| outcome == Teardown::Stopped)
                {
                    seen(&pod);
                }
                outcome
            }
            Ok(Some(None)) => Teardown::Stopped,
            _ => Teardown::EndsItself,
        }
    }

    /// After a stop that could not run: the container, if the pod shows it ended.
    async fn ended_meanwhile(&self) -> Option<Teardown> {
        self.wait_for(TERMINATE_GRACE, |p| {
            matches!(p, Progress::Exited { .. } | Progress::PodGone)
        })
        .await?;
        Some(self.ended().await)
    }

    /// A container of ours that ended by itself: with the target when the target is no longer
    /// the container we were told (a new ID, or not running), not under a shared PID namespace.
    async fn ended(&self) -> Teardown {
        if self.target.container_id.is_none() {
            return Teardown::Stopped;
        }
        match self.cluster.bounded(self.pods.get(&self.pod)).await {
            Ok(pod) => self.ended_in(&pod),
            Err(_) => Teardown::Stopped,
        }
    }

    /// [`Self::ended`] as `pod` tells it.
    fn ended_in(&self, pod: &Pod) -> Teardown {
        let Some(id) = &self.target.container_id else {
            return Teardown::Stopped;
        };
        let shared = shares_pid_namespace(pod);
        let now = status_of(pod, &self.target.container);
        let same = now.and_then(|s| s.container_id.as_ref()) == Some(id)
            && now
                .and_then(|s| s.state.as_ref())
                .is_some_and(|s| s.running.is_some());
        if shared || same {
            Teardown::Stopped
        } else {
            Teardown::EndedWithTarget
        }
    }

    async fn current_progress(&self) -> Result<Progress, kube::Error> {
        let pod = self.cluster.bounded(self.pods.get(&self.pod)).await?;
        Ok(progress_of(&pod, &self.container))
    }

    /// The exit code of the ended debug container, if the pod says.
    pub async fn exit_code(&self) -> Option<i32> {
        match self.current_progress().await.ok()? {
            Progress::Exited { exit_code, .. } => Some(exit_code),
            _ => None,
        }
    }

    /// Watches the pod until `done(progress)` or `limit`; the progress that ended it.
    async fn wait_for(
        &self,
        limit: Duration,
        done: impl Fn(&Progress) -> bool,
    ) -> Option<Progress> {
        let watch = async {
            let pod = self.cluster.bounded(self.pods.get(&self.pod)).await.ok()?;
            let progress = progress_of(&pod, &self.container);
            if done(&progress) {
                return Some(progress);
            }
            let mut version = pod.metadata.resource_version.unwrap_or_default();
            let params = WatchParams::default()
                .fields(&format!("metadata.name={}", self.pod))
                .timeout(60);
            loop {
                let mut events = self.pods.watch(&params, &version).await.ok()?.boxed();
                while let Ok(Some(event)) = events.try_next().await {
                    let pod = match event {
                        WatchEvent::Added(pod) | WatchEvent::Modified(pod) => pod,
                        WatchEvent::Deleted(_) => return Some(Progress::PodGone),
                        WatchEvent::Bookmark(b) => {
                            version = b.metadata.resource_version;
                            continue;
                        }
                        WatchEvent::Error(_) => return None,
                    };
                    version = pod.metadata.resource_version.clone().unwrap_or(version);
                    let progress = progress_of(&pod, &self.container);
                    if done(&progress) {
                        return Some(progress);
                    }
                }
            }
        };
        tokio::time::timeout(limit, watch).await.ok().flatten()
    }
}

/// Stops the container unless another live session (a `run` or `shell` the agent registered)
/// still uses it; exits [`IN_USE`] then. Our own session has ended before this runs.
fn stop_if_unused() -> Vec<String> {
    let script = format!(
        "n=0; for f in /tmp/.distroless-debug/sessions/*; do p=${{f##*/}}; \
         [ -d \"/proc/$p\" ] && n=$((n+1)); done; \
         if [ \"$n\" -gt 0 ]; then echo \"in use by $n session(s)\"; exit {IN_USE}; fi; \
         exec {AGENT} stop"
    );
    vec!["sh".into(), "-c".into(), script]
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.done || std::thread::panicking() {
            return;
        }
        // The fallback: a path forgot to tear down. Block on it if we are on a multi-threaded
        // runtime (the plugin's); otherwise at least say what is left behind.
        let printer = Printer::plain();
        if let Ok(handle) = tokio::runtime::Handle::try_current()
            && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| {
                handle.block_on(self.teardown(&printer, false));
            });
            return;
        }
        printer.warn(&format!(
            "{} in pod {} may still be running; `kubectl distroless-debug cleanup` stops it",
            self.container, self.pod
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reused_stop_counts_live_sessions_and_only_then_stops() {
        let script = &stop_if_unused()[2];
        assert!(script.contains("/tmp/.distroless-debug/sessions/*"));
        assert!(script.contains("exit 75"));
        assert!(script.ends_with("exec distroless-debug-agent stop"));
    }
}
