//! One pod of a fan-out, from its debug container to its teardown.
//!
//! The session steps are `session/plan.rs`'s and `session/obtain.rs`'s, and the teardown `session/teardown.rs`'s;
//! here is what runs in between: the runbook's steps in order, each with its time limit (the
//! step's, cut to what is left of the pod's), its `when:` (the agent's `info`, read once), a
//! failure that is not allowed skipping the rest; `collect:` through the agent's `tar` and the
//! safe extractor of `cp`. Every outcome, a pod that cannot be debugged included, ends up in
//! its [`PodResult`]: nothing here returns an error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::Value;

use super::plan::Prepared;
use super::reads::SharedReads;
use crate::base::duration::Human;
use crate::base::error::{Error, describe};
use crate::base::interrupt::Interrupts;
use crate::fanout::out_dir::{OutDir, collected};
use crate::fanout::progress::{Phase, Reporter};
use crate::fanout::results::{PodAddress, PodResult, PodStatus, StepResult, StepStatus};
use crate::fanout::runbook::{Action, Step};
use crate::kube::cluster::{Cluster, Connection};
use crate::kube::exec::{Captured, Ending, ExecError, Remote};
use crate::kube::exec_output::streamed_until;
use crate::output::printer::{Printer, causes};
use crate::session::events;
use crate::session::facts::{Read, read_facts};
use crate::session::obtain::{Obtained, obtain};
use crate::session::plan::{Durations, plan_with};
use crate::session::refusal::NOT_IDENTIFIED;
use crate::session::settle::{Settled, settle};
use crate::session::spec::{TargetProcess, ending_the_container, run_command};
use crate::session::teardown::Teardown;
use crate::toolkit::catalog::ImageChoice;
use crate::transfer::cp::tar_command;
use crate::transfer::extract::{Destination, extract};
use crate::transfer::remote::{Counter, Transferred, from_remote};

/// What ends a step at its time limit, in the place of a signal number: no signal we handle
/// is SIGALRM, so it cannot be mistaken for Ctrl-C.
const TIME_LIMIT: i32 = libc::SIGALRM;

/// The whole error chain in one line, for a result's `error` or `reason`.
pub(super) fn one_line(error: &Error) -> String {
    let mut text = error.to_string();
    for cause in causes(error) {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

pub struct Fanout<'a> {
    pub prepared: &'a Prepared,
    /// `--parallel` places; a pod holds one from its start to its teardown.
    pub slots: &'a tokio::sync::Semaphore,
    /// What every pod's plan reads that does not depend on the pod, read once per run.
    pub reads: SharedReads,
    pub reporter: &'a Reporter,
    pub out_dir: Option<&'a OutDir>,
    /// Set on the first Ctrl-C: pods not started stay so, steps not started are skipped.
    pub cancelled: &'a AtomicBool,
    /// For the sessions' own notes, which would be noise times N (warnings still show).
    pub quiet: Printer,
}

/// Where a pod's steps run.
struct Place<'a> {
    at: PodAddress<'a>,
    remote: Remote<'a>,
    image: &'a ImageChoice,
    target: &'a TargetProcess,
}

/// The agent's facts about the target, read once per pod for the first `when:`.
enum Facts {
    Unread,
    Read(Value),
    Unavailable(String),
}

impl Fanout<'_> {
    /// One pod of the cluster `connection` names, start to teardown; never fails: what went
    /// wrong is in the result.
    pub async fn pod(&self, index: usize, connection: &Connection, pod: Pod) -> PodResult {
        // Never closed, so `acquire` cannot fail; were it to, the pod would run unbounded
        // rather than not at all.
        let slot = self.slots.acquire().await.ok();
        let started = Instant::now();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let context = connection.context.as_deref();
        let mut result = PodResult {
            context: connection.context.clone(),
            namespace: namespace.clone(),
            pod: name.clone(),
            container: None,
            debug_container: None,
            image: self.prepared.image.reference(),
            reused: false,
            status: PodStatus::Ok,
            error: None,
            runtime: None,
            teardown: None,
            duration_ms: 0,
            events: Vec::new(),
            steps: Vec::new(),
        };
        if self.cancelled.load(Ordering::SeqCst) {
            return self.finish(
                index,
                result,
                PodStatus::Interrupted,
                Some("not started: the run was interrupted".into()),
                started,
            );
        }
        self.reporter.phase(index, Phase::Starting);
        // Every pod hears Ctrl-C itself, so each ends its own step and tears down at once.
        let mut interrupts = match Interrupts::install() {
            Ok(i) => i,
            Err(e) => {
                return self.finish(
                    index,
                    result,
                    PodStatus::Error,
                    Some(format!("cannot handle signals: {e}")),
                    started,
                );
            }
        };
        let cluster = Cluster {
            namespace: namespace.clone(),
            ..connection.cluster.clone()
        };
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
        // `--toolkit auto`: the toolkit that fits this pod's runtime, as a session settles it.
        let options = match settle(&self.prepared.debug_options(&name), &cluster, &self.quiet).await
        {
            Ok(Settled::Ready(options)) => options,
            Ok(Settled::Interrupted(_)) => {
                return self.finish(
                    index,
                    result,
                    PodStatus::Interrupted,
                    Some("interrupted while choosing the toolkit".into()),
                    started,
                );
            }
            Err(e) => {
                return self.finish(index, result, PodStatus::Error, Some(one_line(&e)), started);
            }
        };
        result.image = options.image.reference();
        let known = self.reads.surroundings(context, &cluster, &self.quiet);
        let planned = match plan_with(&options, &cluster, &pods, known, &self.quiet).await {
            Ok(p) => p,
            Err(e) => {
                return self.finish(index, result, PodStatus::Error, Some(one_line(&e)), started);
            }
        };
        result.container = Some(planned.target.container.clone());
        let mut durations = Durations::default();
        let obtained = obtain(
            &options,
            &cluster,
            &pods,
            &planned,
            &mut interrupts,
            &self.quiet,
            &mut durations,
        )
        .await;
        let (mut session, reused) = match obtained {
            Ok(Obtained::Ready { session, reused }) => (session, reused),
            Ok(Obtained::Interrupted(_)) => {
                result.teardown = Some("stopped".into());
                return self.finish(
                    index,
                    result,
                    PodStatus::Interrupted,
                    Some("interrupted while the debug container started".into()),
                    started,
                );
            }
            Err(e) => {
                return self.finish(index, result, PodStatus::Error, Some(one_line(&e)), started);
            }
        };
        result.debug_container = Some(session.container.clone());
        result.reused = reused;

        let image = if session.has_agent {
            options.image.clone()
        } else {
            ImageChoice::Custom(String::new())
        };
        let place = Place {
            at: PodAddress {
                context,
                namespace: &namespace,
                pod: &name,
            },
            remote: Remote {
                pods: &pods,
                pod: &session.pod,
                container: &session.container,
                tap: None,
            },
            image: &image,
            target: &session.target,
        };
        let deadline = started + self.prepared.timeout;
        let interrupted = self
            .steps(index, &mut result, &place, &mut interrupts, deadline)
            .await;
        self.reporter.phase(index, Phase::Stopping);
        // A step cut off at its limit (or broken off) may still run in there as a session of
        // ours: stop the container outright then, as after a signal, rather than take that
        // step for another user and leave it running.
        let abandoned = result.steps.iter().any(|s| {
            matches!(
                s.status,
                StepStatus::TimedOut | StepStatus::Interrupted | StepStatus::Error
            )
        });
        // The last step's exec (a `run`, or a `collect`'s `tar`) ran to its end as a session
        // that ends the container: the agent stops it (exit code 3 may be the agent's refusal,
        // which registers no session).
        let runbook = &self.prepared.runbook.steps;
        session.ends_itself = session.has_agent
            && runbook.len() == result.steps.len()
            && result.steps.last().is_some_and(|s| {
                matches!(s.status, StepStatus::Ok | StepStatus::Failed)
                    && s.exit_code.is_some_and(|code| code != NOT_IDENTIFIED)
            });
        let teardown = session
            .teardown(&self.quiet, interrupted || abandoned)
            .await;
        let (word, left) = match teardown {
            Teardown::Stopped => ("stopped", None),
            Teardown::InUse => ("in_use", None),
            Teardown::NeverStarted => ("never_started", None),
            Teardown::LeftRunning(why) => ("left_running", Some(why)),
            Teardown::EndedWithTarget => ("ended_with_target", None),
            Teardown::EndsItself => ("ends_itself", None),
        };
        result.teardown = Some(word.into());
        // The container is done with: the next pod may start while this one's Event is
        // written.
        drop(slot);
        let status = PodResult::status_from_steps(&result.steps);
        // One Event per pod, after its teardown: who ran which runbook there, and how it went.
        let trail = events::trail_of(&options, &planned, &namespace, &session.container);
        let ran = (
            &*self.prepared.runbook.name,
            status.name(),
            result.steps.len(),
        );
        let recorder = events::Recorder::new(&cluster, &self.quiet, trail);
        let event = events::ran(&recorder.trail, ran, started.elapsed());
        result.events = recorder.write(event).await.into_iter().collect();
        let error = left.map(|why| format!("the debug container was left running: {why}"));
        self.finish(index, result, status, error, started)
    }

    fn finish(
        &self,
        index: usize,
        mut result: PodResult,
        status: PodStatus,
        error: Option<String>,
        started: Instant,
    ) -> PodResult {
        result.status = status;
        result.error = result.error.or(error);
        result.duration_ms = millis(started.elapsed());
        self.reporter.pod_done(index, &result);
        result
    }

    /// The runbook's steps in order; whether a signal ended them.
    async fn steps(
        &self,
        index: usize,
        result: &mut PodResult,
        place: &Place<'_>,
        interrupts: &mut Interrupts,
        deadline: Instant,
    ) -> bool {
        let mut facts = Facts::Unread;
        let mut skip_rest: Option<String> = None;
        let mut interrupted = false;
        for (number, step) in self.prepared.runbook.steps.iter().enumerate() {
            if skip_rest.is_none() && self.cancelled.load(Ordering::SeqCst) {
                interrupted = true;
                skip_rest = Some("the run was interrupted".into());
            }
            let outcome = match &skip_rest {
                Some(reason) => StepResult::without_output(
                    &step.name,
                    StepStatus::Skipped,
                    step.allow_failure,
                    reason.clone(),
                ),
                None => {
                    self.reporter.phase(
                        index,
                        Phase::Step {
                            index: number,
                            name: step.name.clone(),
                        },
                    );
                    let last = number + 1 == self.prepared.runbook.steps.len();
                    self.step(step, last, place, interrupts, deadline, &mut facts, result)
                        .await
                }
            };
            if skip_rest.is_none() {
                if outcome.status == StepStatus::Interrupted {
                    interrupted = true;
                    skip_rest = Some("the run was interrupted".into());
                } else if outcome.fails_the_run() {
                    skip_rest = Some(format!(
                        "step {:?} failed and is not allowed to (allow_failure: true would go on)",
                        step.name
                    ));
                }
            }
            self.reporter.step_done(result, &outcome);
            result.steps.push(outcome);
        }
        interrupted
    }

    /// One step; `last`: the runbook's last, whose exec (a `run`) ends the container.
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        step: &Step,
        last: bool,
        place: &Place<'_>,
        interrupts: &mut Interrupts,
        deadline: Instant,
        facts: &mut Facts,
        result: &mut PodResult,
    ) -> StepResult {
        if let Some(condition) = &step.when {
            if let Facts::Unread = facts {
                let read = read_facts(&place.remote, place.target, interrupts).await;
                *facts = match read {
                    Ok(Read::Facts(map)) => {
                        let value = Value::Object(map);
                        result.runtime = value["runtime"].as_str().map(str::to_string);
                        Facts::Read(value)
                    }
                    Ok(Read::Interrupted(_)) => {
                        return StepResult::without_output(
                            &step.name,
                            StepStatus::Interrupted,
                            step.allow_failure,
                            "interrupted while reading the agent's facts".into(),
                        );
                    }
                    Err(e) => Facts::Unavailable(one_line(&e)),
                };
            }
            match facts {
                Facts::Read(value) if !condition.holds(value) => {
                    let runtime = value["runtime"].as_str().unwrap_or("unknown");
                    return StepResult::without_output(
                        &step.name,
                        StepStatus::Skipped,
                        step.allow_failure,
                        format!("`when: {condition}` does not hold (runtime is {runtime:?})"),
                    );
                }
                Facts::Read(_) => {}
                Facts::Unavailable(why) => {
                    return StepResult::without_output(
                        &step.name,
                        StepStatus::Error,
                        step.allow_failure,
                        format!("cannot evaluate `when: {condition}`: {why}"),
                    );
                }
                Facts::Unread => {}
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return StepResult::without_output(
                &step.name,
                StepStatus::TimedOut,
                step.allow_failure,
                format!(
                    "the pod's time limit ({}) ran out before this step",
                    Human(self.prepared.timeout)
                ),
            );
        }
        let limit = step.timeout.map_or(remaining, |t| t.min(remaining));
        match &step.action {
            Action::Run(argv) => {
                self.run_step(step, last, argv, place, interrupts, limit)
                    .await
            }
            Action::Collect(path) => {
                self.collect_step(step, last, path, place, interrupts, limit)
                    .await
            }
        }
    }

    async fn run_step(
        &self,
        step: &Step,
        last: bool,
        argv: &[String],
        place: &Place<'_>,
        interrupts: &mut Interrupts,
        limit: Duration,
    ) -> StepResult {
        let clock = Instant::now();
        let mut captured = Captured::default();
        let stop = async {
            tokio::select! {
                signal = interrupts.recv() => signal,
                () = tokio::time::sleep(limit) => TIME_LIMIT,
            }
        };
        let command = closing(
            run_command(place.image, place.target, argv),
            last,
            place.image,
        );
        let ended = streamed_until(&place.remote, command, false, Some(&mut captured), stop).await;
        let mut r = StepResult::without_output(
            &step.name,
            StepStatus::Ok,
            step.allow_failure,
            String::new(),
        );
        r.reason = None;
        r.duration_ms = millis(clock.elapsed());
        match ended {
            Ok(Ending::Exited(0)) => r.exit_code = Some(0),
            Ok(Ending::Exited(code)) => {
                r.status = StepStatus::Failed;
                r.exit_code = Some(code);
            }
            Ok(Ending::Interrupted(TIME_LIMIT)) => {
                r.status = StepStatus::TimedOut;
                r.reason = Some(format!("did not finish within {}", Human(limit)));
            }
            Ok(Ending::Interrupted(_)) => r.status = StepStatus::Interrupted,
            Err(ExecError::Open(e)) => {
                r.status = StepStatus::Error;
                r.reason = Some(format!(
                    "could not exec into the debug container: {}",
                    describe(&e)
                ));
            }
            Err(ExecError::Session(e)) => {
                r.status = StepStatus::Error;
                r.reason = Some(one_line(&e));
            }
        }
        self.keep_output(&mut r, place, Some(&captured.stdout), &captured.stderr);
        r
    }

    /// Writes the step's output under `--out-dir` (when given) and puts it in the result.
    fn keep_output(
        &self,
        r: &mut StepResult,
        place: &Place<'_>,
        stdout: Option<&[u8]>,
        stderr: &[u8],
    ) {
        let files = match self.out_dir {
            Some(out) => match out.write_step(place.at, &r.step, stdout, stderr) {
                Ok(files) => Some(files),
                Err(e) => {
                    let note = format!("could not write its output under --out-dir: {e}");
                    r.reason = Some(match r.reason.take() {
                        Some(reason) => format!("{reason}; {note}"),
                        None => note,
                    });
                    None
                }
            },
            None => None,
        };
        r.set_output(
            stdout.unwrap_or_default(),
            stderr,
            files
                .as_ref()
                .map(|(o, e)| (o.as_deref().unwrap_or_default(), e.as_str())),
        );
        if let Some((out, err)) = files {
            r.files = out.into_iter().chain([err]).collect();
        }
    }

    /// `collect:`: the agent's tar of the path, extracted safely under `--out-dir`.
    async fn collect_step(
        &self,
        step: &Step,
        last: bool,
        path: &str,
        place: &Place<'_>,
        interrupts: &mut Interrupts,
        limit: Duration,
    ) -> StepResult {
        let clock = Instant::now();
        let mut r = StepResult::without_output(
            &step.name,
            StepStatus::Ok,
            step.allow_failure,
            String::new(),
        );
        r.reason = None;
        r.collected_from = Some(path.to_string());
        let Some(out) = self.out_dir else {
            // `prepare` refuses a collecting runbook without --out-dir.
            r.status = StepStatus::Error;
            r.reason = Some("no --out-dir to collect into".into());
            return r;
        };
        let source_name = path.rsplit('/').next().unwrap_or_default();
        let destination = out
            .collect_dir(place.at, &step.name)
            .and_then(|(_, dir)| Destination::resolve(&dir, source_name.as_bytes()));
        let destination = match destination {
            Ok(d) => d,
            Err(e) => {
                r.status = StepStatus::Error;
                r.reason = Some(format!("cannot write under --out-dir: {e}"));
                return r;
            }
        };
        let written = destination.path.clone();
        let argv = tar_command(place.target, path);
        let prefix = path.trim_start_matches('/').as_bytes().to_vec();
        let counter = Counter::default();
        let command = closing(
            run_command(place.image, place.target, &argv),
            last,
            place.image,
        );
        let transfer = from_remote(
            &place.remote,
            command,
            &counter,
            interrupts,
            move |reader| {
                let mut warnings = Vec::new();
                let extracted = extract(reader, &prefix, &destination, &mut |w| warnings.push(w));
                (extracted, warnings)
            },
        );
        let outcome = tokio::time::timeout(limit, transfer).await;
        r.duration_ms = millis(clock.elapsed());
        let mut stderr = String::new();
        match outcome {
            Err(_) => {
                r.status = StepStatus::TimedOut;
                r.reason = Some(format!("did not finish within {}", Human(limit)));
            }
            Ok(Err(ExecError::Open(e))) => {
                r.status = StepStatus::Error;
                r.reason = Some(format!(
                    "could not exec into the debug container: {}",
                    describe(&e)
                ));
            }
            Ok(Err(ExecError::Session(e))) => {
                r.status = StepStatus::Error;
                r.reason = Some(one_line(&e));
            }
            Ok(Ok(Transferred::Interrupted(_))) => r.status = StepStatus::Interrupted,
            Ok(Ok(Transferred::Done {
                local: (extracted, warnings),
                remote,
            })) => {
                stderr = remote.stderr.clone();
                for warning in warnings {
                    stderr.push_str(&warning);
                    stderr.push('\n');
                }
                match (extracted, remote.code) {
                    (Ok(_), Ok(0)) => r.exit_code = Some(0),
                    (Err(e), Ok(0)) => {
                        r.status = StepStatus::Error;
                        r.exit_code = Some(0);
                        r.reason = Some(format!(
                            "the archive from the agent could not be extracted: {e}"
                        ));
                    }
                    // The agent's exit code says more than what did (not) arrive.
                    (_, Ok(code)) => {
                        r.status = StepStatus::Failed;
                        r.exit_code = Some(code);
                    }
                    (Err(e), Err(_)) => {
                        r.status = StepStatus::Error;
                        r.reason = Some(format!(
                            "the archive from the agent could not be extracted: {e}"
                        ));
                    }
                    (Ok(_), Err(why)) => {
                        r.status = StepStatus::Error;
                        r.reason = Some(why);
                    }
                }
            }
        }
        r.collected = collected(&out.root, &written);
        self.keep_output(&mut r, place, None, stderr.as_bytes());
        r
    }
}

/// The runbook's last exec (a `run`, or a `collect`'s `tar`) as the session that ends the
/// container: no `stop` after it. Any other exec as it is.
fn closing(command: Vec<String>, last: bool, image: &ImageChoice) -> Vec<String> {
    if last && image.has_agent() {
        ending_the_container(command)
    } else {
        command
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
