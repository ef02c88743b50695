//! Runbooks: a YAML file of diagnostic steps, read and checked completely before anything
//! touches the cluster.
//!
//! The file is parsed by serde-saphyr into raw types that deny unknown keys and keep the
//! line and column of every value ([`Spanned`]); a second, pure pass turns them into a
//! [`Runbook`] and reports every problem it finds at once, each with its line and column
//! (a wrong duration, an empty step list, a step with both `run` and `collect`, a `when:` that
//! names no fact the agent reports...). The JSON Schema in docs/runbook.schema.json is
//! generated from the same types (`runbook/schema.rs`). Built-in runbooks live in docs/runbooks/ and
//! are compiled in, so `--builtin NAME` works without the docs.

// The schema is a build artifact checked by its test; the binary does not need it.
#[cfg(test)]
pub mod schema;
pub mod when;

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::base::duration;
use crate::base::error::Failure;
use crate::base::exit::ExitStatus;
use crate::session::profile::Profile;
use crate::toolkit::catalog::Toolkit;
use crate::toolkit::catalog::ToolkitArg;
pub use when::Condition;

/// How long a pod may take (debug container start plus every step) when the runbook does not
/// say; the same as the default `--timeout` of a session.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The runbooks shipped in docs/runbooks/, by `--builtin` name.
pub const BUILTINS: [(&str, &str); 5] = [
    ("network", include_str!("../../docs/runbooks/network.yaml")),
    (
        "processes",
        include_str!("../../docs/runbooks/processes.yaml"),
    ),
    ("jvm", include_str!("../../docs/runbooks/jvm.yaml")),
    ("python", include_str!("../../docs/runbooks/python.yaml")),
    ("go", include_str!("../../docs/runbooks/go.yaml")),
];

/// A checked runbook: everything in it can run.
#[derive(Debug, Clone, PartialEq)]
pub struct Runbook {
    pub name: String,
    pub description: Option<String>,
    /// `toolkit:` or `image:`; `None` leaves it to the flags (default: per pod, the runtime toolkit its spec names, else base).
    pub image: Option<ImageSetting>,
    pub profile: Option<Profile>,
    /// `timeout:` per pod; `None` leaves it to `--timeout` (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Option<Duration>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSetting {
    Toolkit(Toolkit),
    /// `toolkit: auto`: per pod, the toolkit that fits its runtime (`session/settle.rs`).
    Auto,
    Image(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub timeout: Option<Duration>,
    pub allow_failure: bool,
    pub when: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The argv to run in the debug container (a `run:` string becomes `sh -c STRING`).
    Run(Vec<String>),
    /// An absolute path in the target's filesystem, copied out as a file or a directory.
    Collect(String),
}

impl Runbook {
    /// A step needs our agent (its `info` for `when:`, its `tar` for `collect:`): true if any
    /// does, so a generic `--image` can be refused before the run.
    pub fn needs_agent(&self) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| s.when.is_some() || matches!(s.action, Action::Collect(_)))
    }

    pub fn collects(&self) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| matches!(s.action, Action::Collect(_)))
    }

    /// The one-step runbook of `-l SELECTOR -- COMMAND`: same engine, same output.
    pub fn one_command(argv: Vec<String>) -> Runbook {
        Runbook {
            name: "command".into(),
            description: None,
            image: None,
            profile: None,
            timeout: None,
            steps: vec![Step {
                name: "command".into(),
                action: Action::Run(argv),
                timeout: None,
                allow_failure: false,
                when: None,
            }],
        }
    }
}

// ---------------------------------------------------------------------------------------
// The file as serde sees it.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    name: Spanned<String>,
    description: Option<String>,
    toolkit: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    steps: Spanned<Vec<Spanned<RawStep>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Spanned<String>,
    run: Option<Spanned<Command>>,
    collect: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    allow_failure: bool,
    when: Option<Spanned<String>>,
}

/// `run:` is a string for `sh -c` or a list of strings (an argv).
#[derive(Debug)]
enum Command {
    Shell(String),
    Argv(Vec<String>),
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command: a string (run with sh -c) or a list of strings (an argv)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Command, E> {
                Ok(Command::Shell(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Command, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(Command::Argv(argv))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

// ---------------------------------------------------------------------------------------
// Errors.

/// One problem, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Why a runbook cannot run: every problem found, each with its line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookError {
    /// The file name as the user gave it (or `builtin:NAME`).
    pub source_name: String,
    pub problems: Vec<Problem>,
    /// The source lines the problems point at, for the message.
    lines: Vec<String>,
}

impl RunbookError {
    fn new(source_name: &str, text: &str, mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| (p.line, p.column));
        RunbookError {
            source_name: source_name.to_string(),
            problems,
            lines: text.lines().map(str::to_string).collect(),
        }
    }
}

impl fmt::Display for RunbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "runbook {} is not valid ({n} problem{}); nothing was sent to the cluster",
            self.source_name,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(
                f,
                "\n  {}:{}:{}: {}",
                self.source_name, p.line, p.column, p.message
            )?;
            let source_line = usize::try_from(p.line)
                .ok()
                .and_then(|l| l.checked_sub(1))
                .and_then(|l| self.lines.get(l));
            if let Some(source_line) = source_line {
                let gutter = p.line.to_string();
                let pad = " ".repeat(gutter.len());
                let caret = " ".repeat(usize::try_from(p.column.saturating_sub(1)).unwrap_or(0));
                write!(f, "\n    {gutter} | {source_line}\n    {pad} | {caret}^")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for RunbookError {}

/// Reading the file failed before it could be checked.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("could not read runbook {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] RunbookError),
}

/// A runbook that cannot run is a command line that cannot work: nothing was sent.
impl Failure for LoadError {
    fn hint(&self) -> Option<String> {
        matches!(self, LoadError::Invalid(_)).then(|| "docs/runbooks.md describes the format; docs/runbook.schema.json lets an editor check it as you type".to_string())
    }

    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Usage
    }
}

/// Reads and checks a runbook file.
pub fn load(path: &Path) -> Result<Runbook, LoadError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: shown.clone(),
        source,
    })?;
    Ok(parse(&text, &shown)?)
}

/// A built-in runbook by name; `None` for a name we do not ship.
pub fn builtin(name: &str) -> Option<Result<Runbook, RunbookError>> {
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| parse(text, &format!("builtin:{n}")))
}

pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(n, _)| *n).collect()
}

/// Parses and checks runbook text; `source_name` is used in messages.
pub fn parse(text: &str, source_name: &str) -> Result<Runbook, RunbookError> {
    let raw: RawRunbook = serde_saphyr::from_str(text)
        .map_err(|e| RunbookError::new(source_name, text, vec![problem_of(&e)]))?;
    check(raw).map_err(|problems| RunbookError::new(source_name, text, problems))
}

fn problem_of(error: &serde_saphyr::Error) -> Problem {
    let (line, column) = error
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let mut message = error.without_snippet().to_string();
    // serde-saphyr appends the location to some messages; we show it in front already.
    let suffix = format!(" at line {line}, column {column}");
    if let Some(stripped) = message.strip_suffix(&suffix) {
        message = stripped.to_string();
    }
    if line == 0 {
        // An empty file or a document that is not a mapping: point at its start.
        return Problem {
            line: 1,
            column: 1,
            message: format!("{message} (a runbook is a mapping with `name:` and `steps:`)"),
        };
    }
    Problem {
        line,
        column,
        message,
    }
}

fn at<T>(spanned: &Spanned<T>, message: String) -> Problem {
    located(&spanned.referenced, message)
}

fn located(location: &serde_saphyr::Location, message: String) -> Problem {
    Problem {
        line: location.line(),
        column: location.column(),
        message,
    }
}

/// Step names become file names under `--out-dir`: keep them to a safe alphabet.
fn is_step_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

fn positive_duration(spanned: &Spanned<String>, key: &str) -> Result<Duration, Problem> {
    match duration::parse(&spanned.value) {
        Ok(d) if d.is_zero() => Err(at(spanned, format!("`{key}` must be more than 0"))),
        Ok(d) => Ok(d),
        Err(e) => Err(at(spanned, format!("`{key}`: {e}"))),
    }
}

fn choice<T: ValueEnum>(spanned: &Spanned<String>, key: &str) -> Result<T, Problem> {
    T::from_str(&spanned.value, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|v| v.get_name().to_string())
            .collect();
        at(
            spanned,
            format!(
                "`{key}: {}` is not one of {}",
                spanned.value,
                names.join(", ")
            ),
        )
    })
}

/// The value of a check, or `None` with its problem recorded.
fn keep<T>(problems: &mut Vec<Problem>, result: Result<T, Problem>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(p) => {
            problems.push(p);
            None
        }
    }
}

fn check(raw: RawRunbook) -> Result<Runbook, Vec<Problem>> {
    let mut problems = Vec::new();
    let problems = &mut problems;

    let name = raw.name.value.trim().to_string();
    if name.is_empty() {
        problems.push(at(&raw.name, "`name` is empty".into()));
    }
    let toolkit = raw
        .toolkit
        .as_ref()
        .and_then(|t| keep(problems, choice::<ToolkitArg>(t, "toolkit")));
    let image = match (&raw.toolkit, &raw.image) {
        (Some(_), Some(image)) => {
            problems.push(at(
                image,
                "`toolkit` and `image` exclude each other: keep one".into(),
            ));
            None
        }
        (None, Some(image)) => {
            let reference = image.value.trim();
            if reference.is_empty() || reference.chars().any(char::is_whitespace) {
                problems.push(at(
                    image,
                    format!("`image: {:?}` is not an image reference", image.value),
                ));
                None
            } else {
                Some(ImageSetting::Image(reference.to_string()))
            }
        }
        (_, None) => toolkit.map(|t| match t {
            ToolkitArg::Auto => ImageSetting::Auto,
            other => ImageSetting::Toolkit(Toolkit::from(other)),
        }),
    };
    let profile = raw
        .profile
        .as_ref()
        .and_then(|p| keep(problems, choice::<Profile>(p, "profile")));
    let timeout = raw
        .timeout
        .as_ref()
        .and_then(|t| keep(problems, positive_duration(t, "timeout")));

    if raw.steps.value.is_empty() {
        problems.push(at(
            &raw.steps,
            "`steps` is empty: a runbook needs at least one step".into(),
        ));
    }
    let mut seen = HashSet::new();
    let mut steps = Vec::new();
    for spanned in raw.steps.value {
        let step = spanned.value;
        let step_name = step.name.value.clone();
        if !is_step_name(&step_name) {
            problems.push(at(
                &step.name,
                format!(
                    "step name {step_name:?} must be letters, digits, '-', '_' or '.' (at most 63, starting with a letter or digit): it names the step's files under --out-dir"
                ),
            ));
        } else if !seen.insert(step_name.clone()) {
            problems.push(at(
                &step.name,
                format!("two steps are named {step_name:?}: names must be unique"),
            ));
        }
        let action = match (step.run, step.collect) {
            (Some(_), Some(collect)) => {
                problems.push(at(
                    &collect,
                    format!("step {step_name:?} has both `run` and `collect`: a step does one of them; make two steps"),
                ));
                None
            }
            (None, None) => {
                problems.push(located(
                    &spanned.referenced,
                    format!("step {step_name:?} needs `run` (a command) or `collect` (a path in the target)"),
                ));
                None
            }
            (Some(run), None) => keep(problems, command(&run)),
            (None, Some(collect)) => keep(problems, collect_path(&collect)),
        };
        let step_timeout = step
            .timeout
            .as_ref()
            .and_then(|t| keep(problems, positive_duration(t, "timeout")));
        let when = step.when.as_ref().and_then(|w| {
            keep(
                problems,
                Condition::parse(&w.value).map_err(|e| at(w, format!("`when`: {e}"))),
            )
        });
        if let Some(action) = action {
            steps.push(Step {
                name: step_name,
                action,
                timeout: step_timeout,
                allow_failure: step.allow_failure,
                when,
            });
        }
    }

    if !problems.is_empty() {
        return Err(std::mem::take(problems));
    }
    Ok(Runbook {
        name,
        description: raw.description,
        image,
        profile,
        timeout,
        steps,
    })
}

fn command(run: &Spanned<Command>) -> Result<Action, Problem> {
    match &run.value {
        Command::Shell(script) if script.trim().is_empty() => {
            Err(at(run, "`run` is an empty command".into()))
        }
        Command::Shell(script) => Ok(Action::Run(vec![
            "sh".into(),
            "-c".into(),
            script.to_string(),
        ])),
        Command::Argv(argv) if argv.first().is_none_or(|a| a.is_empty()) => Err(at(
            run,
            "`run` is an empty list: give the program and its arguments".into(),
        )),
        Command::Argv(argv) => Ok(Action::Run(argv.clone())),
    }
}

fn collect_path(collect: &Spanned<String>) -> Result<Action, Problem> {
    let path = collect.value.trim();
    if !path.starts_with('/') {
        return Err(at(
            collect,
            format!(
                "`collect: {path}` must be an absolute path in the target's filesystem (e.g. /etc/app/config.yaml)"
            ),
        ));
    }
    if path.contains('\0') || path.split('/').any(|c| c == "..") {
        return Err(at(
            collect,
            format!("`collect: {path}` may not contain `..` or NUL: name the path directly"),
        ));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(Action::Collect(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }))
}

#[cfg(test)]
#[path = "runbook_tests.rs"]
mod tests;
