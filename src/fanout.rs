//! `run RUNBOOK TARGET… | -l SELECTOR` and `-l SELECTOR -- COMMAND`: the same steps on many
//! pods at once, one debug container per pod, every container stopped at the end.
//!
//! Each pod goes through the session steps of `debug.rs` (`plan`, then `obtain`: reuse one of
//! our running containers or add one and wait) and the teardown of `session.rs`; this module
//! adds only what a fan-out needs around them: choosing the pods, at most `--parallel` of them
//! at a time, the steps in order within a pod (each with its time limit, its `when:`, a failure
//! that is not allowed skipping the rest), and the results. Ctrl-C reaches every pod at once:
//! each has its own signal stream, ends its step, and tears down; pods not started yet are
//! not started; the process waits for every teardown before it exits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

use crate::catalog::{ImageChoice, Toolkit};
use crate::cli::OutputFormat;
use crate::cluster::Cluster;
use crate::debug::{Durations, Obtained, obtain, plan};
use crate::duration::Human;
use crate::error::{Error, describe};
use crate::exec::{Captured, Ending, ExecError, Remote, streamed_until};
use crate::exit::ExitStatus;
use crate::extract::{Destination, extract};
use crate::interrupt::Interrupts;
use crate::options::{DebugOptions, Mode, OutputOptions, UsageError};
use crate::printer::{Printer, causes};
use crate::profile::Profile;
use crate::progress::{Board, Format, Phase, Reporter};
use crate::results::{self, OutDir, PodResult, PodStatus, RunResult, StepResult, StepStatus};
use crate::runbook::{self, Action, ImageSetting, Runbook, Step};
use crate::session::Teardown;
use crate::spec::{AGENT, run_command};
use crate::target::{TargetKind, TargetRef, workload_pods};
use crate::transfer::{Counter, Transferred, from_remote};

/// `--parallel` when not given.
pub const DEFAULT_PARALLEL: usize = 10;

/// How long the agent's `info` may take (it reads a few /proc files).
const FACTS_LIMIT: Duration = Duration::from_secs(30);

/// What ends a step at its time limit, in the place of a signal number: no signal we handle
/// is SIGALRM, so it cannot be mistaken for Ctrl-C.
const TIME_LIMIT: i32 = libc::SIGALRM;

/// At most this many collected paths are listed per step (all of them are written).
const COLLECTED_LISTED: usize = 1000;

/// Where the steps come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Builtin(String),
    /// `-l SELECTOR -- COMMAND`.
    Command(Vec<String>),
}

/// The session flags of a fan-out; unset ones fall back to the runbook, then the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFlags {
    pub toolkit: Option<Toolkit>,
    pub image: Option<String>,
    pub profile: Option<Profile>,
    pub timeout: Option<Duration>,
    pub ttl: Duration,
    pub idle: Duration,
    pub reason: Option<String>,
    pub reuse: bool,
}

/// A validated fan-out command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutOptions {
    pub source: Source,
    pub targets: Vec<TargetRef>,
    pub selector: Option<String>,
    pub all_namespaces: bool,
    pub container: Option<String>,
    pub parallel: usize,
    pub format: Option<OutputFormat>,
    pub out_dir: Option<PathBuf>,
    pub session: SessionFlags,
    /// `DISTROLESS_DEBUG_REGISTRY`.
    pub registry: Option<String>,
}

/// A fan-out whose runbook has been read and checked against the flags: nothing was sent yet.
#[derive(Debug)]
pub struct Prepared {
    options: FanoutOptions,
    runbook: Runbook,
    image: ImageChoice,
    profile: Profile,
    timeout: Duration,
}

/// Reads the runbook and checks it against the flags, before any request to the cluster.
pub fn prepare(options: &FanoutOptions) -> Result<Prepared, Error> {
    let runbook = match &options.source {
        Source::File(path) => runbook::load(path)?,
        Source::Builtin(name) => match runbook::builtin(name) {
            Some(result) => result.map_err(runbook::LoadError::from)?,
            None => {
                return Err(Error::Usage(UsageError(format!(
                    "`--builtin {name}`: there is no such runbook; the built-in ones are {}",
                    runbook::builtin_names().join(", ")
                ))));
            }
        },
        Source::Command(argv) => Runbook::one_command(argv.clone()),
    };
    let image = match (
        &options.session.image,
        options.session.toolkit,
        &runbook.image,
    ) {
        (Some(reference), _, _) => ImageChoice::Custom(reference.clone()),
        (None, Some(toolkit), _) => toolkit_image(toolkit, options),
        (None, None, Some(ImageSetting::Toolkit(toolkit))) => toolkit_image(*toolkit, options),
        (None, None, Some(ImageSetting::Image(reference))) => {
            ImageChoice::Custom(reference.clone())
        }
        (None, None, None) => toolkit_image(Toolkit::Base, options),
    };
    if !image.has_agent()
        && let Some(step) = runbook.needs_agent()
    {
        let what = if step.when.is_some() {
            "`when`"
        } else {
            "`collect`"
        };
        return Err(Error::Usage(UsageError(format!(
            "step {:?} uses {what}, which needs the agent of our toolkit images; {} is not one: use `--toolkit` (or `toolkit:` in the runbook) instead of an image",
            step.name,
            image.reference()
        ))));
    }
    if options.out_dir.is_none()
        && let Some(step) = runbook.collects()
    {
        return Err(Error::Usage(UsageError(format!(
            "step {:?} collects files: say where they go with `--out-dir DIR`",
            step.name
        ))));
    }
    Ok(Prepared {
        profile: options
            .session
            .profile
            .or(runbook.profile)
            .unwrap_or(Profile::Auto),
        timeout: options
            .session
            .timeout
            .or(runbook.timeout)
            .unwrap_or(runbook::DEFAULT_TIMEOUT),
        image,
        runbook,
        options: options.clone(),
    })
}

fn toolkit_image(toolkit: Toolkit, options: &FanoutOptions) -> ImageChoice {
    ImageChoice::Toolkit {
        toolkit,
        registry: options.registry.clone(),
    }
}

/// Which namespaces and labels the pods came from, for messages.
fn scope(options: &FanoutOptions, cluster: &Cluster) -> String {
    let namespace = if options.all_namespaces {
        "in any namespace".to_string()
    } else {
        format!("in namespace {}", cluster.namespace)
    };
    match &options.selector {
        Some(selector) => format!("matching {selector} {namespace}"),
        None => namespace,
    }
}

/// The pods the targets and the selector name, each once, sorted; finished pods (their phase
/// Succeeded or Failed) and pods being deleted are left out with a note.
async fn select_pods(
    options: &FanoutOptions,
    cluster: &Cluster,
    printer: &Printer,
) -> Result<Vec<Pod>, Error> {
    let here: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut found = Vec::new();
    if let Some(selector) = &options.selector {
        let api: Api<Pod> = if options.all_namespaces {
            Api::all(cluster.client.clone())
        } else {
            here.clone()
        };
        let list = cluster
            .bounded(api.list(&ListParams::default().labels(selector)))
            .await
            .map_err(|source| Error::List {
                scope: scope(options, cluster),
                source,
            })?;
        found.extend(list.items);
    }
    let lists = futures::future::join_all(
        options
            .targets
            .iter()
            .map(|t| workload_pods(cluster, &here, &cluster.namespace, t)),
    )
    .await;
    for list in lists {
        found.extend(list?);
    }
    let key = |p: &Pod| {
        (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
        )
    };
    found.sort_by_key(key);
    found.dedup_by_key(|p| key(p));
    let before = found.len();
    found.retain(|p| {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        !matches!(phase, Some("Succeeded" | "Failed")) && p.metadata.deletion_timestamp.is_none()
    });
    if found.len() < before {
        printer.note(&format!(
            "left out {} pod(s) that have finished or are being deleted",
            before - found.len()
        ));
    }
    Ok(found)
}

pub async fn run(
    prepared: &Prepared,
    cluster: &Cluster,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let options = &prepared.options;
    let out_dir = match &options.out_dir {
        Some(path) => Some(OutDir::create(path).map_err(|source| Error::OutDir {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let started_at = jiff::Timestamp::now();
    let clock = Instant::now();
    let mut interrupts = Interrupts::install().map_err(|source| Error::Terminal { source })?;
    let pods = select_pods(options, cluster, printer).await?;
    if pods.is_empty() {
        return Err(Error::NoPodsSelected {
            scope: scope(options, cluster),
        });
    }
    let names: Vec<String> = pods.iter().map(pod_name).collect();
    let title = match &options.source {
        Source::Command(_) => "command".to_string(),
        _ => format!("run {}", prepared.runbook.name),
    };
    let reporter = Reporter::new(
        Format::of(options.format),
        *printer,
        Board::new(&title, prepared.runbook.steps.len(), &names, clock),
    );
    let cancelled = AtomicBool::new(false);
    let fanout = Fanout {
        prepared,
        cluster,
        reporter: &reporter,
        out_dir: out_dir.as_ref(),
        cancelled: &cancelled,
        // The per-pod sessions' notes would be noise times N: warnings still show.
        quiet: Printer::new(OutputOptions {
            quiet: true,
            color: false,
            progress: false,
        }),
    };
    let work = futures::stream::iter(pods.into_iter().enumerate())
        .map(|(index, pod)| fanout.pod(index, pod))
        .buffer_unordered(options.parallel.max(1))
        .collect::<Vec<PodResult>>();
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut interrupted = None;
    let pods = loop {
        tokio::select! {
            pods = &mut work => break pods,
            _ = tick.tick() => reporter.tick(),
            signal = interrupts.recv(), if interrupted.is_none() => {
                interrupted = Some(signal);
                cancelled.store(true, Ordering::SeqCst);
                reporter.clear();
                printer.note("interrupted: stopping every debug container before exiting");
            }
        }
    };
    reporter.clear();

    let elapsed = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let result = RunResult::new(
        &prepared.runbook.name,
        started_at,
        elapsed,
        interrupted,
        pods,
    );
    match Format::of(options.format) {
        Format::Document(format) => printer.data(format, &result)?,
        Format::Lines => reporter.emit(&results::summary_line(&result)),
        Format::Text => {}
    }
    if let Some(out) = &out_dir {
        out.write_summary(&result).map_err(|source| Error::OutDir {
            path: out.root.clone(),
            source,
        })?;
    }
    printer.note(&closing_note(&result, options.out_dir.as_deref()));
    Ok(results::exit_status(&result.pods, interrupted))
}

fn closing_note(result: &RunResult, out_dir: Option<&Path>) -> String {
    let s = &result.summary;
    let mut note = format!(
        "{}: {} pod(s): {} ok, {} failed, {} not debugged",
        result.runbook, s.pods, s.pods_ok, s.pods_failed, s.pods_not_debugged
    );
    if s.pods_interrupted > 0 {
        note.push_str(&format!(", {} interrupted", s.pods_interrupted));
    }
    note.push_str(&format!(
        "; {} step(s): {} ok, {} failed, {} allowed to fail, {} skipped; {}",
        s.steps,
        s.steps_ok,
        s.steps_failed,
        s.steps_allowed_to_fail,
        s.steps_skipped,
        results::human_ms(result.duration_ms)
    ));
    if let Some(dir) = out_dir {
        note.push_str(&format!(
            ". Outputs and summary.json are in {}",
            dir.display()
        ));
    }
    note.push_str(". Kubernetes keeps each stopped debug container's entry in its pod spec; `kubectl distroless-debug ls` shows them.");
    note
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The whole error chain in one line, for a result's `error` or `reason`.
fn one_line(error: &Error) -> String {
    let mut text = error.to_string();
    for cause in causes(error) {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

struct Fanout<'a> {
    prepared: &'a Prepared,
    cluster: &'a Cluster,
    reporter: &'a Reporter,
    out_dir: Option<&'a OutDir>,
    cancelled: &'a AtomicBool,
    quiet: Printer,
}

/// Where a pod's steps run.
struct Place<'a> {
    namespace: &'a str,
    pod: &'a str,
    remote: Remote<'a>,
    image: &'a ImageChoice,
}

/// The agent's facts about the target, read once per pod for the first `when:`.
enum Facts {
    Unread,
    Read(Value),
    Unavailable(String),
}

impl Fanout<'_> {
    fn debug_options(&self, pod: &str) -> DebugOptions {
        let flags = &self.prepared.options.session;
        DebugOptions {
            target: TargetRef {
                kind: TargetKind::Pod,
                name: pod.to_string(),
            },
            container: self.prepared.options.container.clone(),
            image: self.prepared.image.clone(),
            profile: self.prepared.profile,
            timeout: self.prepared.timeout,
            ttl: flags.ttl,
            idle: flags.idle,
            reason: flags.reason.clone(),
            reuse: flags.reuse,
            mode: Mode::Command {
                argv: Vec::new(),
                stdin: false,
                tty: false,
            },
            dry_run: None,
            format: None,
            mirror_volumes: false,
            copy_env: false,
        }
    }

    /// One pod, start to teardown; never fails: what went wrong is in the result.
    async fn pod(&self, index: usize, pod: Pod) -> PodResult {
        let started = Instant::now();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut result = PodResult {
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
            ..self.cluster.clone()
        };
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
        let options = self.debug_options(&name);
        let planned = match plan(&options, &cluster, &pods, &self.quiet).await {
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
            self.prepared.image.clone()
        } else {
            ImageChoice::Custom(String::new())
        };
        let place = Place {
            namespace: &namespace,
            pod: &name,
            remote: Remote {
                pods: &pods,
                pod: &session.pod,
                container: &session.container,
            },
            image: &image,
        };
        let deadline = started + self.prepared.timeout;
        let interrupted = self
            .steps(index, &mut result, &place, &mut interrupts, deadline)
            .await;
        self.reporter.phase(index, Phase::Stopping);
        let teardown = session.teardown(&self.quiet, interrupted).await;
        let (word, left) = match teardown {
            Teardown::Stopped => ("stopped", None),
            Teardown::InUse => ("in_use", None),
            Teardown::NeverStarted => ("never_started", None),
            Teardown::LeftRunning(why) => ("left_running", Some(why)),
        };
        result.teardown = Some(word.into());
        let status = PodResult::status_from_steps(&result.steps);
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
                    self.step(step, place, interrupts, deadline, &mut facts, result)
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

    async fn step(
        &self,
        step: &Step,
        place: &Place<'_>,
        interrupts: &mut Interrupts,
        deadline: Instant,
        facts: &mut Facts,
        result: &mut PodResult,
    ) -> StepResult {
        if let Some(condition) = &step.when {
            if let Facts::Unread = facts {
                *facts = match read_facts(place, interrupts).await {
                    Ok(value) => {
                        result.runtime = value["runtime"].as_str().map(str::to_string);
                        Facts::Read(value)
                    }
                    Err(Some(_signal)) => {
                        return StepResult::without_output(
                            &step.name,
                            StepStatus::Interrupted,
                            step.allow_failure,
                            "interrupted while reading the agent's facts".into(),
                        );
                    }
                    Err(None) => Facts::Unavailable("the agent's `info` did not answer".into()),
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
            Action::Run(argv) => self.run_step(step, argv, place, interrupts, limit).await,
            Action::Collect(path) => {
                self.collect_step(step, path, place, interrupts, limit)
                    .await
            }
        }
    }

    async fn run_step(
        &self,
        step: &Step,
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
        let ended = streamed_until(
            &place.remote,
            run_command(place.image, argv),
            false,
            Some(&mut captured),
            stop,
        )
        .await;
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
            Some(out) => {
                match out.write_step(place.namespace, place.pod, &r.step, stdout, stderr) {
                    Ok(files) => Some(files),
                    Err(e) => {
                        let note = format!("could not write its output under --out-dir: {e}");
                        r.reason = Some(match r.reason.take() {
                            Some(reason) => format!("{reason}; {note}"),
                            None => note,
                        });
                        None
                    }
                }
            }
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
            .collect_dir(place.namespace, place.pod, &step.name)
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
        let mut argv = vec![AGENT.to_string(), "tar".into()];
        if path == "/" {
            for skip in ["/proc", "/sys", "/dev"] {
                argv.extend(["--exclude".into(), skip.into()]);
            }
        }
        argv.extend(["--".into(), path.into()]);
        let prefix = path.trim_start_matches('/').as_bytes().to_vec();
        let counter = Counter::default();
        let transfer = from_remote(
            &place.remote,
            run_command(place.image, &argv),
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
        r.collected = listed(&out.root, &written);
        if r.collected.len() > COLLECTED_LISTED {
            let more = r.collected.len() - COLLECTED_LISTED;
            r.collected.truncate(COLLECTED_LISTED);
            r.collected.push(format!("... and {more} more"));
        }
        self.keep_output(&mut r, place, None, stderr.as_bytes());
        r
    }
}

/// The agent's `info -o json`; `Err(Some(signal))` if a signal came first.
async fn read_facts(place: &Place<'_>, interrupts: &mut Interrupts) -> Result<Value, Option<i32>> {
    let mut captured = Captured::default();
    let stop = async {
        tokio::select! {
            signal = interrupts.recv() => signal,
            () = tokio::time::sleep(FACTS_LIMIT) => TIME_LIMIT,
        }
    };
    let argv: Vec<String> = vec![AGENT.into(), "info".into(), "-o".into(), "json".into()];
    match streamed_until(&place.remote, argv, false, Some(&mut captured), stop).await {
        Ok(Ending::Exited(0)) => serde_json::from_slice(&captured.stdout).map_err(|_| None),
        Ok(Ending::Interrupted(signal)) if signal != TIME_LIMIT => Err(Some(signal)),
        _ => Err(None),
    }
}

/// Files and symlinks at or under `path`, relative to `root`, sorted; nothing is followed.
fn listed(root: &Path, path: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&next) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&next) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(relative) = next.strip_prefix(root) {
            found.push(relative.display().to_string());
        }
    }
    found.sort();
    found
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(source: Source) -> FanoutOptions {
        FanoutOptions {
            source,
            targets: vec![],
            selector: Some("app=web".into()),
            all_namespaces: false,
            container: None,
            parallel: DEFAULT_PARALLEL,
            format: None,
            out_dir: None,
            session: SessionFlags {
                toolkit: None,
                image: None,
                profile: None,
                timeout: None,
                ttl: Duration::from_secs(3600),
                idle: Duration::from_secs(900),
                reason: None,
                reuse: true,
            },
            registry: None,
        }
    }

    fn write(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("dd-fanout-{}-{name}", std::process::id()));
        let _ = std::fs::write(&path, text);
        path
    }

    #[test]
    fn flags_beat_the_runbook_which_beats_the_defaults() {
        let path = write(
            "a.yaml",
            "name: a\ntoolkit: net\nprofile: ptrace\ntimeout: 5m\nsteps:\n  - name: x\n    run: id\n",
        );
        let mut o = options(Source::File(path.clone()));
        let p = prepare(&o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.image.reference(),
            ImageChoice::Toolkit {
                toolkit: Toolkit::Net,
                registry: None
            }
            .reference()
        );
        assert_eq!(p.profile, Profile::Ptrace);
        assert_eq!(p.timeout, Duration::from_secs(300));
        o.session.toolkit = Some(Toolkit::Full);
        o.session.profile = Some(Profile::Auto);
        o.session.timeout = Some(Duration::from_secs(10));
        let p = prepare(&o).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.image.reference().contains("/full:"));
        assert_eq!(
            (p.profile, p.timeout),
            (Profile::Auto, Duration::from_secs(10))
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn the_one_shot_form_is_a_one_step_runbook_with_the_defaults() {
        let p =
            prepare(&options(Source::Command(vec!["id".into()]))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.runbook.steps.len(), 1);
        assert_eq!(p.runbook.steps[0].action, Action::Run(vec!["id".into()]));
        assert!(p.image.reference().contains("/base:"));
        assert_eq!(p.timeout, runbook::DEFAULT_TIMEOUT);
    }

    #[test]
    fn refuses_before_any_request_what_cannot_work() {
        let path = write(
            "c.yaml",
            "name: c\nsteps:\n  - name: conf\n    collect: /etc/app\n  - name: j\n    run: jcmd\n    when: runtime == \"jvm\"\n",
        );
        let error = prepare(&options(Source::File(path.clone())))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("--out-dir DIR"), "{error}");
        let mut o = options(Source::File(path.clone()));
        o.out_dir = Some(std::env::temp_dir());
        o.session.image = Some("busybox".into());
        let error = prepare(&o).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("needs the agent"), "{error}");
        let _ = std::fs::remove_file(path);

        let error = prepare(&options(Source::Builtin("nope".into())))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("network, processes, jvm, python, go"),
            "{error}"
        );

        let error = prepare(&options(Source::File("/nonexistent/rb.yaml".into()))).err();
        assert!(
            matches!(error, Some(Error::Runbook(runbook::LoadError::Read { .. }))),
            "{error:?}"
        );
        assert_eq!(error.map(|e| e.exit_status()), Some(ExitStatus::Usage));
    }

    #[test]
    fn an_invalid_runbook_is_a_usage_error_with_its_locations() {
        let path = write("bad.yaml", "name: bad\nsteps: []\n");
        let error = prepare(&options(Source::File(path.clone()))).err();
        let text = error.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(text.contains(":2:8: `steps` is empty"), "{text}");
        assert_eq!(error.map(|e| e.exit_status()), Some(ExitStatus::Usage));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn collected_paths_are_listed_relative_to_the_out_dir() {
        let root = std::env::temp_dir().join(format!("dd-listed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("ns/web/config/app");
        let _ = std::fs::create_dir_all(dir.join("sub"));
        let _ = std::fs::write(dir.join("a.yaml"), "a");
        let _ = std::fs::write(dir.join("sub/b"), "b");
        let _ = std::os::unix::fs::symlink("/etc/passwd", dir.join("link"));
        assert_eq!(
            listed(&root, &root.join("ns/web/config/app")),
            [
                "ns/web/config/app/a.yaml",
                "ns/web/config/app/link",
                "ns/web/config/app/sub/b"
            ]
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
