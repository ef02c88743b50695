//! `kubectl distroless-debug cp`: files and directories out of and into the target container,
//! through a debug container of ours (reused when one runs, else added and stopped after).
//!
//! `kubectl cp` needs `tar` in the target (kubernetes#58512), which distroless images do not
//! have; here the agent in the debug container reads and writes the target's files from its
//! root (`/proc/1/root`) with the target's own symlink meaning (DESIGN.md step 7), so
//! `cp pod/app:/etc/app/current/config.yaml .` copies what the app reads. Downloads are
//! streamed into the safe extractor (`extract.rs`), uploads packed as they are sent
//! (`pack.rs`); neither holds a file in memory.
//!
//! Naming follows `cp -r`: a source goes into an existing directory under its own name, or
//! becomes the destination when that does not exist (its parent must).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde::Deserialize;

use crate::base::error::Failure;
use crate::base::error::{CREATE_EXEC, Error, status_code};
use crate::base::exit::ExitStatus;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::kube::exec::{ExecError, Remote, run_quietly};
use crate::output::printer::Printer;
use crate::session::obtain::{Obtained, running_debug_container};
use crate::session::plan::Plan;
use crate::session::refusal::{NOT_IDENTIFIED, refusal};
use crate::session::spec::{TargetProcess, agent_command, ending_the_container, run_command};
use crate::session::target::TargetRef;
use crate::toolkit::catalog::ImageChoice;
use crate::transfer::extract::{Destination, ExtractError, Stats, extract};
use crate::transfer::options::{CopyOptions, Direction};
use crate::transfer::pack::{PackError, Packed, pack};
use crate::transfer::read_only::read_only;
use crate::transfer::remote::{
    Bytes, Counter, Meter, RemoteEnd, Transferred, from_remote, rate, to_remote,
};

/// One side of a `cp` that is in the pod: `pod/NAME:/path` (any TARGET form works).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub target: TargetRef,
    /// Absolute, without `.`, `..`, repeated or trailing slashes.
    pub path: String,
}

/// `Some` when `arg` names a path in a pod (`TARGET:PATH`), with the reason if it is not a
/// usable one; `None` for a local path. A local name with a colon can be written `./a:b`.
pub fn parse_remote(arg: &str) -> Option<Result<RemoteSpec, String>> {
    let (before, path) = arg.split_once(':')?;
    let target: TargetRef = before.parse().ok()?;
    Some(normalize_remote_path(path).map(|path| RemoteSpec { target, path }))
}

/// `/etc//app/./current/` → `/etc/app/current`; relative paths and `..` are refused (the
/// agent resolves paths inside the target's root, and `..` would be resolved lexically here
/// but through symlinks there).
pub fn normalize_remote_path(path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("a path is needed after `:`, e.g. pod/web:/etc/app".into());
    }
    if !path.starts_with('/') {
        return Err(format!(
            "the path in the pod must be absolute (as the target sees it): `:/{path}`"
        ));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "`..` in {path:?}: name the path in the pod directly"
                ));
            }
            other => parts.push(other),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The name a remote path has in the agent's archive (no leading `/`).
fn archive_name(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// The last component of a normalized remote path ("" for `/`).
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// The parent of a normalized remote path.
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(at) => &path[..at],
    }
}

pub async fn run(
    options: &CopyOptions,
    cluster: &Cluster,
    progress: bool,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    // Local checks first: nothing is added to the pod for a copy that cannot land.
    let destination = match &options.direction {
        Direction::Download { remote, local } => Some(
            Destination::resolve(local, basename(remote).as_bytes()).map_err(|source| {
                Error::LocalFile {
                    what: "cannot copy to",
                    path: local.clone(),
                    source,
                }
            })?,
        ),
        Direction::Upload { local, .. } => {
            std::fs::metadata(local).map_err(|source| Error::LocalFile {
                what: "cannot read",
                path: local.clone(),
                source,
            })?;
            None
        }
    };
    let mut interrupts = Interrupts::install().map_err(|source| Error::Terminal { source })?;
    let (plan, obtained) =
        running_debug_container(&options.session, cluster, &mut interrupts, printer).await?;
    let mut session = match obtained {
        Obtained::Ready { session, .. } => session,
        Obtained::Interrupted(signal) => return Ok(ExitStatus::Interrupted(signal)),
    };
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let remote = Remote {
        pods: &pods,
        pod: &session.pod,
        container: &session.container,
        tap: None,
    };
    let copy = Copy {
        plan: &plan,
        image: &options.session.image,
        target: &session.target,
        remote: &remote,
        ends_container: session.has_agent,
        last_exit: Cell::new(None),
        progress,
        printer,
    };
    let result = match (&options.direction, destination) {
        (
            Direction::Download {
                remote: path,
                local,
            },
            Some(destination),
        ) => {
            copy.download(path, local, destination, &mut interrupts)
                .await
        }
        (
            Direction::Upload {
                local,
                remote: path,
            },
            _,
        ) => copy.upload(local, path, &mut interrupts).await,
        (Direction::Download { .. }, None) => Ok(ExitStatus::Failure),
    };
    let interrupted = matches!(result, Ok(ExitStatus::Interrupted(_)));
    session.last_exec_exited(copy.last_exit.get());
    session.teardown(printer, interrupted).await;
    result
}

/// The agent's `tar` of `path` inside the target's root, on the target `target` names.
pub fn tar_command(target: &TargetProcess, path: &str) -> Vec<String> {
    let mut argv = agent_command("tar", target, &[]);
    if path == "/" {
        // The pseudo filesystems are not files: their walk never ends.
        for skip in ["/proc", "/sys", "/dev"] {
            argv.extend(["--exclude".into(), skip.into()]);
        }
    }
    argv.extend(["--".into(), path.into()]);
    argv
}

struct Copy<'a> {
    plan: &'a Plan,
    image: &'a ImageChoice,
    target: &'a TargetProcess,
    remote: &'a Remote<'a>,
    /// The last exec (`tar` down, `untar` up) ends the container as the last session out.
    ends_container: bool,
    /// The exit code of that exec, once it exited (for teardown).
    last_exit: Cell<Option<i32>>,
    progress: bool,
    printer: &'a Printer,
}

impl Copy<'_> {
    /// `argv`, an agent verb that is the copy's last exec, wrapped as every exec is.
    fn last_exec(&self, argv: Vec<String>) -> Vec<String> {
        let argv = if self.ends_container {
            ending_the_container(argv)
        } else {
            argv
        };
        run_command(self.image, self.target, &argv)
    }

    fn pod(&self) -> String {
        self.plan.target.pod_name().to_string()
    }

    fn container(&self) -> String {
        self.plan.target.container.clone()
    }

    fn exec_error(&self, error: ExecError) -> Error {
        match error {
            ExecError::Session(error) => error,
            ExecError::Open(source) if status_code(&source) == Some(403) => Error::Forbidden {
                namespace: self.remote.pods.namespace().unwrap_or_default().to_string(),
                pod: self.pod(),
                step: "exec into the debug container",
                missing: vec![CREATE_EXEC],
                source,
            },
            ExecError::Open(source) => Error::Exec {
                pod: self.pod(),
                container: self.remote.container.to_string(),
                source,
            },
        }
    }

    fn broken(&self, remote: &RemoteEnd) -> Error {
        let why = match &remote.code {
            Err(why) => why.clone(),
            Ok(code) => format!("the agent exited {code}"),
        };
        Error::Stream {
            pod: self.pod(),
            container: self.remote.container.to_string(),
            source: format!("{why}{}", agent_says(&remote.stderr)).into(),
        }
    }

    async fn download(
        &self,
        path: &str,
        local: &Path,
        destination: Destination,
        interrupts: &mut Interrupts,
    ) -> Result<ExitStatus, Error> {
        let argv = tar_command(self.target, path);
        let prefix = archive_name(path).as_bytes().to_vec();
        let shown = destination.path.clone();
        let counter = Counter::default();
        let meter = Meter::start(self.progress, "copying", &counter);
        let started = Instant::now();
        let transferred = from_remote(
            self.remote,
            self.last_exec(argv),
            &counter,
            interrupts,
            move |reader| {
                let mut warnings = Vec::new();
                let result = extract(reader, &prefix, &destination, &mut |w| warnings.push(w));
                (result, warnings)
            },
        )
        .await
        .map_err(|e| self.exec_error(e));
        meter.stop();
        let ((result, warnings), remote) = match transferred? {
            Transferred::Done { local, remote } => {
                self.last_exit.set(remote.code.as_ref().ok().copied());
                (local, remote)
            }
            Transferred::Interrupted(signal) => {
                self.printer.note(&format!(
                    "interrupted: {} may hold part of the copy",
                    shown.display()
                ));
                return Ok(ExitStatus::Interrupted(signal));
            }
        };
        self.unidentified(&remote.code).await?;
        for warning in &warnings {
            self.printer.warn(warning);
        }
        let stats = match result {
            Ok(stats) => stats,
            // Nothing arrived: the agent says why (not found, permission denied).
            Err(ExtractError::Empty) | Err(ExtractError::Archive(_))
                if remote.code != Ok(0) && !remote.stderr.trim().is_empty() =>
            {
                return Err(Error::RemoteFile {
                    pod: self.pod(),
                    container: self.container(),
                    path: path.to_string(),
                    message: agent_message(&remote.stderr, path),
                });
            }
            Err(source) => {
                return Err(CopyStopped {
                    pod: self.pod(),
                    path: path.to_string(),
                    local: local.to_path_buf(),
                    source,
                }
                .into());
            }
        };
        if remote.code.is_err() {
            return Err(self.broken(&remote));
        }
        for line in remote.stderr.lines().filter(|l| !l.trim().is_empty()) {
            self.printer.warn(strip_agent(line));
        }
        self.printer.note(&format!(
            "copied {}:{path} ({}) to {} in {}",
            self.plan.target.pod_name(),
            describe_download(&stats),
            shown.display(),
            speed(counter.get(), started)
        ));
        Ok(ExitStatus::Success)
    }

    async fn upload(
        &self,
        local: &Path,
        path: &str,
        interrupts: &mut Interrupts,
    ) -> Result<ExitStatus, Error> {
        let source_is_dir = local.is_dir();
        let local_name = local
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_os_string()))
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // What the remote path is, as the target sees it, decides the names (cp -r rules).
        let facts = self.stat(&[path, parent(path)]).await?;
        let (at, up) = (&facts[0], &facts[1]);
        let not_usable = |path: &str, facts: &Facts, otherwise: &str| Error::RemoteFile {
            pod: self.pod(),
            container: self.container(),
            path: path.to_string(),
            message: facts.error.clone().unwrap_or_else(|| otherwise.to_string()),
        };
        let (into, name) = if at.is_dir() {
            if local_name.is_empty() {
                return Err(Error::LocalFile {
                    what: "cannot name the copy of",
                    path: local.to_path_buf(),
                    source: std::io::Error::other("it has no name of its own"),
                });
            }
            (path.to_string(), local_name)
        } else if at.kind.is_some() && source_is_dir {
            return Err(not_usable(
                path,
                &Facts::default(),
                "it exists and is not a directory, but the copied path is one",
            ));
        } else if !up.is_dir() {
            return Err(not_usable(parent(path), up, "it is not a directory"));
        } else if at.kind.is_some() || at.errno == Some(libc::ENOENT) {
            (parent(path).to_string(), basename(path).to_string())
        } else {
            return Err(not_usable(path, at, "the agent did not say what it is"));
        };
        let target_path = join_remote(&into, &name);
        let dir_facts = if into == path {
            facts.first()
        } else {
            facts.get(1)
        };
        if dir_facts.and_then(|f| f.read_only_fs) == Some(true) {
            return Err(read_only(self.plan, &into));
        }

        let argv = agent_command("untar", self.target, &["--", &into]);
        let counter = Counter::default();
        let meter = Meter::start(self.progress, "sending", &counter);
        let started = Instant::now();
        let source = local.to_path_buf();
        let transferred = to_remote(
            self.remote,
            self.last_exec(argv),
            &counter,
            interrupts,
            move |writer| {
                let mut warnings = Vec::new();
                let result = pack(&source, name.as_bytes(), writer, &mut |w| warnings.push(w));
                (result, warnings)
            },
        )
        .await
        .map_err(|e| self.exec_error(e));
        meter.stop();
        let ((result, warnings), remote) = match transferred? {
            Transferred::Done { local, remote } => {
                self.last_exit.set(remote.code.as_ref().ok().copied());
                (local, remote)
            }
            Transferred::Interrupted(signal) => {
                self.printer.note(&format!(
                    "interrupted: {into} in the target may hold part of the copy"
                ));
                return Ok(ExitStatus::Interrupted(signal));
            }
        };
        self.unidentified(&remote.code).await?;
        for warning in &warnings {
            self.printer.warn(warning);
        }
        match (&result, &remote.code) {
            (Ok(_), Ok(0)) => {}
            // The agent stopped reading: its message is the reason, not our broken pipe.
            (_, Ok(_)) if !remote.stderr.trim().is_empty() => {
                let message = agent_message(&remote.stderr, &into);
                if message.contains("Read-only file system") {
                    return Err(read_only(self.plan, &into));
                }
                return Err(Error::Upload {
                    pod: self.pod(),
                    container: self.container(),
                    path: target_path,
                    uid: self.plan.identity.uid(),
                    message,
                });
            }
            (Err(PackError::Source { path, error }), _) => {
                return Err(Error::LocalFile {
                    what: "cannot read",
                    path: PathBuf::from(path),
                    source: std::io::Error::new(error.kind(), error.to_string()),
                });
            }
            _ => return Err(self.broken(&remote)),
        }
        let packed = result.unwrap_or_default();
        self.printer.note(&format!(
            "copied {} ({}) to {}:{target_path} in {}",
            local.display(),
            describe_upload(&packed),
            self.plan.target.pod_name(),
            speed(counter.get(), started)
        ));
        Ok(ExitStatus::Success)
    }

    /// The agent's refusal when a verb exited with its "target not identified" code.
    async fn unidentified(&self, code: &Result<i32, String>) -> Result<(), Error> {
        if *code != Ok(NOT_IDENTIFIED) {
            return Ok(());
        }
        match refusal(self.remote, self.target).await {
            Some(refused) => Err(refused.into()),
            None => Ok(()),
        }
    }

    /// The agent's `stat` of each path (a missing one has `errno`).
    async fn stat(&self, paths: &[&str]) -> Result<Vec<Facts>, Error> {
        let mut argv = agent_command("stat", self.target, &["--"]);
        argv.extend(paths.iter().map(|p| p.to_string()));
        let (code, text) = run_quietly(self.remote, argv)
            .await
            .map_err(|e| self.exec_error(ExecError::Open(e)))?;
        self.unidentified(&Ok(code)).await?;
        let facts: Vec<Facts> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        if facts.len() != paths.len() {
            return Err(Error::Stream {
                pod: self.pod(),
                container: self.remote.container.to_string(),
                source: format!(
                    "the agent's stat answered {code}: {}",
                    text.lines().next().unwrap_or("nothing")
                )
                .into(),
            });
        }
        Ok(facts)
    }
}

/// One line of the agent's `stat`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub read_only_fs: Option<bool>,
    pub error: Option<String>,
    pub errno: Option<i32>,
}

impl Facts {
    fn is_dir(&self) -> bool {
        self.kind.as_deref() == Some("directory")
    }
}

fn join_remote(dir: &str, name: &str) -> String {
    match (dir, name) {
        (_, "") => dir.to_string(),
        ("/", name) => format!("/{name}"),
        (dir, name) => format!("{dir}/{name}"),
    }
}

/// The agent's stderr, without its `distroless-debug-agent VERB:` prefixes, in one line.
fn agent_message(stderr: &str, path: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(strip_agent)
        .filter(|l| !l.trim().is_empty() && !l.contains(" entries ("))
        .collect();
    if lines.is_empty() {
        return format!("the agent could not read {path}");
    }
    // The error names the path already.
    let own = format!("{path}: ");
    lines
        .iter()
        .map(|l| l.strip_prefix(own.as_str()).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("; ")
}

fn strip_agent(line: &str) -> &str {
    for verb in ["tar: ", "untar: ", "stat: ", "run: "] {
        if let Some(rest) = line.strip_prefix(&format!("distroless-debug-agent {verb}")) {
            return rest;
        }
    }
    line.strip_prefix("distroless-debug-agent: ")
        .unwrap_or(line)
}

fn agent_says(stderr: &str) -> String {
    match stderr
        .lines()
        .map(strip_agent)
        .find(|l| !l.trim().is_empty())
    {
        Some(line) => format!(": {line}"),
        None => String::new(),
    }
}

fn speed(bytes: u64, started: Instant) -> String {
    let elapsed = started.elapsed();
    format!(
        "{:.1}s ({}/s)",
        elapsed.as_secs_f64(),
        Bytes(rate(bytes, elapsed))
    )
}

fn describe_download(stats: &Stats) -> String {
    if !stats.top_is_dir {
        return format!("file, {}", Bytes(stats.bytes));
    }
    let mut parts = vec![
        plural(stats.files, "file"),
        plural(stats.directories.saturating_sub(1), "directory"),
    ];
    if stats.symlinks > 0 {
        parts.push(plural(stats.symlinks, "symlink"));
    }
    if stats.refused_links > 0 {
        parts.push(format!(
            "{} not created",
            plural(stats.refused_links, "outward symlink")
        ));
    }
    format!("directory: {}, {}", parts.join(", "), Bytes(stats.bytes))
}

fn describe_upload(packed: &Packed) -> String {
    if packed.top_is_dir {
        format!(
            "directory: {}, {}",
            plural(packed.entries, "entry"),
            Bytes(packed.bytes)
        )
    } else {
        format!("file, {}", Bytes(packed.bytes))
    }
}

fn plural(n: u64, noun: &str) -> String {
    match (n, noun) {
        (1, _) => format!("1 {noun}"),
        (_, "directory") => format!("{n} directories"),
        (_, "entry") => format!("{n} entries"),
        _ => format!("{n} {noun}s"),
    }
}

/// A download the extractor stopped: what was being copied, from where, to where.
#[derive(Debug, thiserror::Error)]
#[error("copying {path} from pod {pod} to {} stopped", .local.display())]
pub struct CopyStopped {
    pub pod: String,
    pub path: String,
    pub local: PathBuf,
    #[source]
    pub source: ExtractError,
}

impl Failure for CopyStopped {
    fn hint(&self) -> Option<String> {
        matches!(self.source, ExtractError::Refused { .. }).then(|| format!(
            "the archive from the target tried to write outside {}, which a healthy container never produces: treat the target as suspect. Nothing outside the destination was written; what was copied before the entry stays",
            self.local.display()
        ))
    }
}

#[cfg(test)]
#[path = "cp_tests.rs"]
mod tests;
