//! What a fan-out found, in the shapes scripts read: one `-o json` document, `-o jsonl` lines
//! as steps finish, a `--out-dir` tree, a text block per pod for people, and the exit code.
//!
//! The JSON is versioned (`apiVersion: distroless-debug/v1`) and only ever gains fields; every
//! field is always present (null when it does not apply) so `jq` filters do not need `?`.
//! Output captured from a step is kept whole in memory and in `--out-dir`; the JSON carries at
//! most [`OUTPUT_LIMIT`] bytes of each stream, with a note saying how much was cut and where
//! the rest is.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::exit::ExitStatus;

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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodResult {
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
    /// left_running (with the reason in `error` if nothing else failed).
    pub teardown: Option<String>,
    pub duration_ms: u64,
    pub steps: Vec<StepResult>,
}

impl PodResult {
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
}

impl Summary {
    pub fn of(pods: &[PodResult]) -> Summary {
        let mut s = Summary {
            pods: pods.len(),
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

/// How a fan-out ends as a process: interrupted beats a pod that could not be debugged, which
/// beats a failed step, which beats success (docs/exit-codes.md).
pub fn exit_status(pods: &[PodResult], interrupted: Option<i32>) -> ExitStatus {
    if let Some(signal) = interrupted {
        return ExitStatus::Interrupted(signal);
    }
    if pods.iter().any(|p| p.status == PodStatus::Error) {
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
    pub pods: Vec<PodResult>,
}

impl RunResult {
    pub fn new(
        runbook: &str,
        started_at: jiff::Timestamp,
        duration_ms: u64,
        interrupted: Option<i32>,
        mut pods: Vec<PodResult>,
    ) -> RunResult {
        pods.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
        RunResult {
            api_version: API_VERSION,
            kind: "RunbookResult",
            runbook: runbook.to_string(),
            started_at: started_at.to_string(),
            duration_ms,
            interrupted: interrupted.is_some(),
            exit_code: exit_status(&pods, interrupted).code(),
            summary: Summary::of(&pods),
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
}

pub fn step_line(pod: &PodResult, step: &StepResult) -> String {
    json_line(&StepLine {
        api_version: API_VERSION,
        kind: "StepResult",
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
    })
}

fn json_line<T: Serialize>(value: &T) -> String {
    // Our own types always serialize; an empty line would still be valid JSONL framing.
    let mut line = serde_json::to_string(value).unwrap_or_default();
    line.push('\n');
    line
}

/// The text a person reads for one pod (no `-o`): a header, then each step with its output.
pub fn text_block(pod: &PodResult) -> String {
    let mut out = format!("== {}/{}", pod.namespace, pod.pod);
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

/// `--out-dir`: `DIR/<namespace>/<pod>/<step>.{out,err}`, collected files under
/// `DIR/<namespace>/<pod>/<step>/`, and `DIR/summary.json`.
#[derive(Debug, Clone)]
pub struct OutDir {
    pub root: PathBuf,
}

/// A name from the API server as one path component: pod and namespace names are DNS names,
/// but a server's answer is not trusted to turn into `..` or a path.
fn component(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.as_str() {
        "" | "." | ".." => format!("_{safe}"),
        _ => safe,
    }
}

impl OutDir {
    pub fn create(root: &Path) -> std::io::Result<OutDir> {
        std::fs::create_dir_all(root)?;
        Ok(OutDir {
            root: root.to_path_buf(),
        })
    }

    /// `<namespace>/<pod>`, relative to the root.
    pub fn pod_dir(namespace: &str, pod: &str) -> PathBuf {
        Path::new(&component(namespace)).join(component(pod))
    }

    /// Writes a step's stdout (none for `collect:`, whose stdout is the archive) and stderr;
    /// their paths relative to the root.
    pub fn write_step(
        &self,
        namespace: &str,
        pod: &str,
        step: &str,
        stdout: Option<&[u8]>,
        stderr: &[u8],
    ) -> std::io::Result<(Option<String>, String)> {
        let dir = Self::pod_dir(namespace, pod);
        std::fs::create_dir_all(self.root.join(&dir))?;
        let out = match stdout {
            Some(bytes) => {
                let out = dir.join(format!("{}.out", component(step)));
                std::fs::write(self.root.join(&out), bytes)?;
                Some(out.display().to_string())
            }
            None => None,
        };
        let err = dir.join(format!("{}.err", component(step)));
        std::fs::write(self.root.join(&err), stderr)?;
        Ok((out, err.display().to_string()))
    }

    /// The directory a `collect:` step writes into (created), relative and absolute.
    pub fn collect_dir(
        &self,
        namespace: &str,
        pod: &str,
        step: &str,
    ) -> std::io::Result<(PathBuf, PathBuf)> {
        let relative = Self::pod_dir(namespace, pod).join(component(step));
        let absolute = self.root.join(&relative);
        std::fs::create_dir_all(&absolute)?;
        Ok((relative, absolute))
    }

    pub fn write_summary(&self, result: &RunResult) -> std::io::Result<PathBuf> {
        let path = self.root.join("summary.json");
        let mut file = std::fs::File::create(&path)?;
        let text = serde_json::to_string_pretty(result).map_err(std::io::Error::other)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        Ok(path)
    }
}

#[cfg(test)]
#[path = "results_tests.rs"]
mod tests;
