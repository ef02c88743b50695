//! What a fan-out found, in the shapes scripts read: one `-o json` document, `-o jsonl` lines
//! as steps finish, a text block per pod for people, and the exit code (the `--out-dir` tree
//! is `out_dir.rs`).
//!
//! The JSON is versioned (`apiVersion: distroless-debug/v1`) and only ever gains fields; every
//! field is always present (null when it does not apply) so `jq` filters do not need `?`.
//! Pods are told apart by context, namespace and name ([`PodAddress`]): with `--context a,b`
//! the same namespace/name may be two pods.
//! Output captured from a step is kept whole in memory and in `--out-dir`; the JSON carries at
//! most [`OUTPUT_LIMIT`] bytes of each stream, with a note saying how much was cut and where
//! the rest is.

use serde::Serialize;

use crate::base::exit::ExitStatus;

pub const API_VERSION: &str = "distroless-debug/v1";

/// Bytes of stdout and of stderr per step that go into the JSON.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Exit code 0 (or, for `collect`, the files were written).
    Ok,
    /// A non-zero exit code.
    Failed,
    /// Ended at its time limit.
    TimedOut,
    /// Could not run at all (exec refused, connection lost, collect not extractable).
    Error,
    /// Not run: its `when:` does not hold, or an earlier step failed.
    Skipped,
    /// Ended by Ctrl-C (or SIGTERM, SIGHUP).
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    pub step: String,
    pub status: StepStatus,
    /// The remote exit code, when the command ran to its end.
    pub exit_code: Option<i32>,
    pub allow_failure: bool,
    pub duration_ms: u64,
    /// Why it was skipped, or what went wrong when it could not run.
    pub reason: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// The step's `.out` and `.err` files, relative to `--out-dir`.
    pub files: Vec<String>,
    /// `collect:` steps: the path in the target's filesystem.
    pub collected_from: Option<String>,
    /// `collect:` steps: the files and directories written, relative to `--out-dir`.
    pub collected: Vec<String>,
}

impl StepResult {
    /// A step without output: skipped, or one that could not start.
    pub fn without_output(
        step: &str,
        status: StepStatus,
        allow_failure: bool,
        reason: String,
    ) -> Self {
        StepResult {
            step: step.to_string(),
            status,
            exit_code: None,
            allow_failure,
            duration_ms: 0,
            reason: Some(reason),
            stdout: String::new(),
            stderr: String::new(),
            stdout_bytes: 0,
            stderr_bytes: 0,
            stdout_truncated: false,
            stderr_truncated: false,
            files: Vec::new(),
            collected_from: None,
            collected: Vec::new(),
        }
    }

    /// Fills stdout/stderr from what the step printed, cut at [`OUTPUT_LIMIT`].
    pub fn set_output(&mut self, stdout: &[u8], stderr: &[u8], files: Option<(&str, &str)>) {
        (self.stdout, self.stdout_truncated) = excerpt(stdout, OUTPUT_LIMIT, files.map(|f| f.0));
        (self.stderr, self.stderr_truncated) = excerpt(stderr, OUTPUT_LIMIT, files.map(|f| f.1));
        self.stdout_bytes = stdout.len() as u64;
        self.stderr_bytes = stderr.len() as u64;
    }

    pub fn failed(&self) -> bool {
        matches!(
            self.status,
            StepStatus::Failed | StepStatus::TimedOut | StepStatus::Error
        )
    }

    /// Failed, and not allowed to: the run fails.
    pub fn fails_the_run(&self) -> bool {
        self.failed() && !self.allow_failure
    }
}

/// At most `limit` bytes of `bytes` as text (cut at a character boundary), and whether it was
/// cut; a cut ends with a note saying how much is missing and where it is in full.
pub fn excerpt(bytes: &[u8], limit: usize, full: Option<&str>) -> (String, bool) {
    if bytes.len() <= limit {
        return (String::from_utf8_lossy(bytes).into_owned(), false);
    }
    let mut text = String::from_utf8_lossy(&bytes[..limit]).into_owned();
    // A multi-byte character cut in two became U+FFFD at the end: drop it.
    if text.ends_with('\u{FFFD}') && std::str::from_utf8(&bytes[..limit]).is_err() {
        text.pop();
    }
    let missing = bytes.len() - limit;
    let where_ = match full {
        Some(path) => format!("the full output is in {path} under --out-dir"),
        None => "--out-dir DIR keeps the full output".to_string(),
    };
    text.push_str(&format!(
        "\n[truncated: {missing} more bytes ({} in all); {where_}]",
        bytes.len()
    ));
    (text, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PodStatus {
    /// Every step passed, was allowed to fail, or was skipped by its `when:`.
    Ok,
    /// A step that was not allowed to fail failed.
    Failed,
    /// The pod could not be debugged at all (see `error`).
    Error,
    Interrupted,
}

impl PodStatus {
    /// As the JSON results spell it.
    pub fn name(self) -> &'static str {
        match self {
            PodStatus::Ok => "ok",
            PodStatus::Failed => "failed",
            PodStatus::Error => "error",
            PodStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodResult {
    /// The kubeconfig context the pod was reached through (`--context`, else the current
    /// one); null only in-cluster, without a kubeconfig.
    pub context: Option<String>,
    pub namespace: String,
    pub pod: String,
    /// The target container.
    pub container: Option<String>,
    pub debug_container: Option<String>,
    pub image: String,
    pub reused: bool,
    pub status: PodStatus,
    /// Why the pod could not be debugged.
    pub error: Option<String>,
    /// The agent's `runtime` fact, when a `when:` needed it.
    pub runtime: Option<String>,
    /// What happened to the debug container at the end: stopped, in_use, never_started,
    /// left_running (with the reason in `error` if nothing else failed), ended_with_target.
    pub teardown: Option<String>,
    pub duration_ms: u64,
    /// The names of the Events written on the pod (docs/recording.md).
    pub events: Vec<String>,
    pub steps: Vec<StepResult>,
}

impl PodResult {
    pub fn address(&self) -> PodAddress<'_> {
        PodAddress {
            context: self.context.as_deref(),
            namespace: &self.namespace,
            pod: &self.pod,
        }
    }

    /// The status its steps add up to.
    pub fn status_from_steps(steps: &[StepResult]) -> PodStatus {
        if steps.iter().any(|s| s.status == StepStatus::Interrupted) {
            PodStatus::Interrupted
        } else if steps.iter().any(StepResult::fails_the_run) {
            PodStatus::Failed
        } else {
            PodStatus::Ok
        }
    }
}

/// Which pod: context, namespace and name, all three needed to tell two pods apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodAddress<'a> {
    pub context: Option<&'a str>,
    pub namespace: &'a str,
    pub pod: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextStatus {
    /// Its pods were chosen (perhaps none matched).
    Ok,
    /// Its pods could not be chosen: the cluster did not answer, a TARGET is not there...
    Error,
}

/// One cluster of the run: whether its pods could be chosen, and how many were.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextResult {
    /// As in [`PodResult::context`].
    pub context: Option<String>,
    /// Where its pods were looked for: `-n`, else the context's namespace; null with `-A`.
    pub namespace: Option<String>,
    pub status: ContextStatus,
    /// Why its pods could not be chosen.
    pub error: Option<String>,
    pub pods: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub pods: usize,
    pub pods_ok: usize,
    pub pods_failed: usize,
    pub pods_not_debugged: usize,
    pub pods_interrupted: usize,
    pub steps: usize,
    pub steps_ok: usize,
    pub steps_failed: usize,
    pub steps_allowed_to_fail: usize,
    pub steps_skipped: usize,
    pub contexts: usize,
    /// Contexts whose pods could not be chosen (with several contexts; one alone that fails
    /// fails the run instead).
    pub contexts_failed: usize,
}

impl Summary {
    pub fn of(pods: &[PodResult], contexts: &[ContextResult]) -> Summary {
        let mut s = Summary {
            pods: pods.len(),
            contexts: contexts.len(),
            contexts_failed: contexts
                .iter()
                .filter(|c| c.status == ContextStatus::Error)
                .count(),
            ..Summary::default()
        };
        for pod in pods {
            match pod.status {
                PodStatus::Ok => s.pods_ok += 1,
                PodStatus::Failed => s.pods_failed += 1,
                PodStatus::Error => s.pods_not_debugged += 1,
                PodStatus::Interrupted => s.pods_interrupted += 1,
            }
            for step in &pod.steps {
                s.steps += 1;
                match step.status {
                    StepStatus::Ok => s.steps_ok += 1,
                    StepStatus::Skipped => s.steps_skipped += 1,
                    _ if step.fails_the_run() => s.steps_failed += 1,
                    _ if step.failed() => s.steps_allowed_to_fail += 1,
                    _ => {}
                }
            }
        }
        s
    }
}

/// How a fan-out ends as a process: interrupted beats a pod that could not be debugged (or a
/// context whose pods could not even be chosen), which beats a failed step, which beats
/// success (docs/exit-codes.md).
pub fn exit_status(
    pods: &[PodResult],
    contexts: &[ContextResult],
    interrupted: Option<i32>,
) -> ExitStatus {
    if let Some(signal) = interrupted {
        return ExitStatus::Interrupted(signal);
    }
    if pods.iter().any(|p| p.status == PodStatus::Error)
        || contexts.iter().any(|c| c.status == ContextStatus::Error)
    {
        ExitStatus::PodNotDebugged
    } else if pods.iter().any(|p| p.status != PodStatus::Ok) {
        ExitStatus::StepFailed
    } else {
        ExitStatus::Success
    }
}

/// The `-o json` document and `summary.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub runbook: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub interrupted: bool,
    pub exit_code: u8,
    pub summary: Summary,
    /// Every cluster of the run, in the order of `--context` (one without it).
    pub contexts: Vec<ContextResult>,
    pub pods: Vec<PodResult>,
}

impl RunResult {
    pub fn new(
        runbook: &str,
        started_at: jiff::Timestamp,
        duration_ms: u64,
        interrupted: Option<i32>,
        mut pods: Vec<PodResult>,
        contexts: Vec<ContextResult>,
    ) -> RunResult {
        pods.sort_by(|a, b| {
            (&a.context, &a.namespace, &a.pod).cmp(&(&b.context, &b.namespace, &b.pod))
        });
        RunResult {
            api_version: API_VERSION,
            kind: "RunbookResult",
            runbook: runbook.to_string(),
            started_at: started_at.to_string(),
            duration_ms,
            interrupted: interrupted.is_some(),
            exit_code: exit_status(&pods, &contexts, interrupted).code(),
            summary: Summary::of(&pods, &contexts),
            contexts,
            pods,
        }
    }
}

/// `-o jsonl`: one line per step as it finishes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepLine<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub context: Option<&'a str>,
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: Option<&'a str>,
    pub debug_container: Option<&'a str>,
    #[serde(flatten)]
    pub step: &'a StepResult,
}

/// `-o jsonl`: one line per pod when it is done (so a pod that could not be debugged, and has
/// no step lines, is still seen), without its steps.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodLine<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub context: Option<&'a str>,
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: Option<&'a str>,
    pub debug_container: Option<&'a str>,
    pub image: &'a str,
    pub reused: bool,
    pub status: PodStatus,
    pub error: Option<&'a str>,
    pub runtime: Option<&'a str>,
    pub teardown: Option<&'a str>,
    pub duration_ms: u64,
}

/// `-o jsonl`: the last line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryLine<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub runbook: &'a str,
    pub started_at: &'a str,
    pub duration_ms: u64,
    pub interrupted: bool,
    pub exit_code: u8,
    pub summary: &'a Summary,
    pub contexts: &'a [ContextResult],
}

/// `-o jsonl`: a context whose pods could not be chosen, as soon as that is known (it has no
/// pod lines).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextLine<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    #[serde(flatten)]
    pub context: &'a ContextResult,
}

pub fn step_line(pod: &PodResult, step: &StepResult) -> String {
    json_line(&StepLine {
        api_version: API_VERSION,
        kind: "StepResult",
        context: pod.context.as_deref(),
        namespace: &pod.namespace,
        pod: &pod.pod,
        container: pod.container.as_deref(),
        debug_container: pod.debug_container.as_deref(),
        step,
    })
}

pub fn pod_line(pod: &PodResult) -> String {
    json_line(&PodLine {
        api_version: API_VERSION,
        kind: "PodResult",
        context: pod.context.as_deref(),
        namespace: &pod.namespace,
        pod: &pod.pod,
        container: pod.container.as_deref(),
        debug_container: pod.debug_container.as_deref(),
        image: &pod.image,
        reused: pod.reused,
        status: pod.status,
        error: pod.error.as_deref(),
        runtime: pod.runtime.as_deref(),
        teardown: pod.teardown.as_deref(),
        duration_ms: pod.duration_ms,
    })
}

pub fn summary_line(result: &RunResult) -> String {
    json_line(&SummaryLine {
        api_version: API_VERSION,
        kind: "RunSummary",
        runbook: &result.runbook,
        started_at: &result.started_at,
        duration_ms: result.duration_ms,
        interrupted: result.interrupted,
        exit_code: result.exit_code,
        summary: &result.summary,
        contexts: &result.contexts,
    })
}

pub fn context_line(context: &ContextResult) -> String {
    json_line(&ContextLine {
        api_version: API_VERSION,
        kind: "ContextResult",
        context,
    })
}

fn json_line<T: Serialize>(value: &T) -> String {
    // Our own types always serialize; an empty line would still be valid JSONL framing.
    let mut line = serde_json::to_string(value).unwrap_or_default();
    line.push('\n');
    line
}

/// How a pod is named to people: `namespace/pod`, after `[context] ` when the run has
/// several.
pub fn shown(at: PodAddress<'_>, with_context: bool) -> String {
    match (with_context, at.context) {
        (true, Some(context)) => format!("[{context}] {}/{}", at.namespace, at.pod),
        _ => format!("{}/{}", at.namespace, at.pod),
    }
}

/// The text a person reads for a context whose pods could not be chosen.
pub fn context_block(context: &ContextResult) -> String {
    format!(
        "== [{}]\n   could not be debugged: {}\n",
        context.context.as_deref().unwrap_or("in-cluster"),
        context.error.as_deref().unwrap_or("unknown error")
    )
}

/// The text a person reads for one pod (no `-o`): a header, then each step with its output.
pub fn text_block(pod: &PodResult, with_context: bool) -> String {
    let mut out = format!("== {}", shown(pod.address(), with_context));
    if let Some(container) = &pod.container {
        out.push_str(&format!(" (container {container}"));
        if let Some(debug) = &pod.debug_container {
            out.push_str(&format!(
                ", debug container {debug}{}",
                if pod.reused { ", reused" } else { "" }
            ));
        }
        out.push(')');
    }
    out.push('\n');
    if let Some(error) = &pod.error {
        out.push_str(&format!("   could not be debugged: {error}\n"));
    }
    for step in &pod.steps {
        let outcome = match (step.status, step.exit_code) {
            (StepStatus::Ok, _) => "ok".to_string(),
            (StepStatus::Failed, Some(code)) => format!("exit {code}"),
            (StepStatus::Skipped, _) => "skipped".to_string(),
            (StepStatus::TimedOut, _) => "timed out".to_string(),
            (StepStatus::Interrupted, _) => "interrupted".to_string(),
            _ => "error".to_string(),
        };
        let allowed = if step.failed() && step.allow_failure {
            " (allowed to fail)"
        } else {
            ""
        };
        out.push_str(&format!(
            "-- {}: {outcome}{allowed}, {}\n",
            step.step,
            human_ms(step.duration_ms)
        ));
        if let Some(reason) = &step.reason {
            out.push_str(&format!("   {reason}\n"));
        }
        for path in &step.collected {
            out.push_str(&format!("   collected {path}\n"));
        }
        for (text, stream) in [(&step.stdout, ""), (&step.stderr, "stderr| ")] {
            for line in text.lines() {
                out.push_str(&format!("   {stream}{line}\n"));
            }
        }
    }
    out
}

pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
#[path = "results_tests.rs"]
mod tests;
