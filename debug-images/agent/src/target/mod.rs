//! Which process is the target, found exactly or not at all (DESIGN.md step 7).
//!
//! The plugin knows the target container's ID from the pod status and hands it over
//! (`--target-id`, or `DISTROLESS_DEBUG_TARGET_ID` in the container's env); the agent finds
//! the processes whose `/proc/<pid>/cgroup` names that container ([`cgroup`]) and takes the
//! container's first one. Without an ID, and in a PID namespace of the target's own (PID 1
//! is not a pod's pause process), PID 1 is the target: `targetContainerName` puts the debug
//! container there. In a pod that shares its PID namespace (PID 1 is the pause process) with
//! no process matching, nothing is guessed: the verb refuses with
//! [`Status::NotIdentified`] and lists the candidates.
//!
//! [`resolve`] decides from a snapshot of the namespace's processes and is pure; [`identify`]
//! takes the snapshot, resolves and then points the state directory's `target` link (which
//! the images' `/target` leads to) at the target's root.

pub mod cgroup;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{TargetFlags, TargetVerbFlags};
use crate::exit::Status;
use crate::procs;
use crate::state::StateDir;
use cgroup::{ContainerId, container_id_in, names_container};

pub const PID_ENV: &str = "DISTROLESS_DEBUG_TARGET_PID";
pub const ID_ENV: &str = "DISTROLESS_DEBUG_TARGET_ID";
/// Where the images show the target's filesystem: a symlink to the state directory's
/// `target` link (older images: to `/proc/1/root`).
pub const IMAGE_LINK: &str = "/target";

/// What the caller asked for, flags and environment merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `--target-pid N` or `DISTROLESS_DEBUG_TARGET_PID`.
    Pid(i32),
    /// `--target-id ID` or `DISTROLESS_DEBUG_TARGET_ID`.
    Id(ContainerId),
    Nothing,
}

/// The first of `--target-pid`, `--target-id`, `DISTROLESS_DEBUG_TARGET_PID`,
/// `DISTROLESS_DEBUG_TARGET_ID` that is set decides: flags win over the environment (the
/// plugin sets the ID once in the container's env; a person picks a pid on the command
/// line), and a pid, being the more specific, wins over an ID at the same level.
pub fn request(
    flags: &TargetFlags,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Request, String> {
    if let Some(pid) = flags.pid {
        return Ok(Request::Pid(pid));
    }
    if let Some(id) = &flags.id {
        return Ok(Request::Id(id.clone()));
    }
    let set = |var: &str| env(var).filter(|v| !v.trim().is_empty());
    if let Some(text) = set(PID_ENV) {
        return match text.trim().parse::<i32>() {
            Ok(pid) if pid > 0 => Ok(Request::Pid(pid)),
            _ => Err(format!("{PID_ENV}: {text:?} is not a process id")),
        };
    }
    if let Some(text) = set(ID_ENV) {
        return ContainerId::parse(&text)
            .map(Request::Id)
            .map_err(|e| format!("{ID_ENV}: {e}"));
    }
    Ok(Request::Nothing)
}

/// One live process of the namespace, as [`resolve`] needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    /// Start time in clock ticks after boot.
    pub start: u64,
    /// `/proc/<pid>/cgroup`, when readable.
    pub cgroup: Option<String>,
    /// A pod sandbox's pause process.
    pub pause: bool,
    /// A process of this debug container ([`procs::is_ours`]).
    pub ours: bool,
}

/// How the target was found; JSON `"cgroup"`, `"pid1"`, `"flag"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The first process of the container whose cgroup names the ID.
    Cgroup,
    /// PID 1 of a namespace that is the target's own.
    Pid1,
    /// `--target-pid` (or `DISTROLESS_DEBUG_TARGET_PID`).
    Flag,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Cgroup => "cgroup",
            Method::Pid1 => "pid1",
            Method::Flag => "flag",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub pid: i32,
    /// The container ID as the target's cgroup shows it; `None` when it shows none.
    pub container_id: Option<ContainerId>,
    pub method: Method,
}

/// Why no target was chosen, and the first process of each container that could be it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub candidates: Vec<(i32, Option<ContainerId>)>,
}

const PID1_IS_OURS: &str = "PID 1 is this debug container's own process: the container was \
     not started in the target's PID namespace (targetContainerName), so the target's \
     processes are not visible";

/// The target among `procs` (live processes of the namespace), or why there is none.
pub fn resolve(request: &Request, procs: &[Proc]) -> Result<Target, Refusal> {
    let pid1 = procs.iter().find(|p| p.pid == 1);
    let refuse = |reason: String| Refusal {
        reason,
        candidates: candidates(procs),
    };
    let id_of = |p: &Proc| p.cgroup.as_deref().and_then(container_id_in);
    match request {
        Request::Pid(pid) => match procs.iter().find(|p| p.pid == *pid) {
            Some(p) => Ok(Target {
                pid: *pid,
                container_id: id_of(p),
                method: Method::Flag,
            }),
            None => Err(refuse(format!(
                "no process with pid {pid} is visible in this PID namespace (it may have exited)"
            ))),
        },
        Request::Id(id) => {
            let members: Vec<&Proc> = procs
                .iter()
                .filter(|p| !p.pause && p.cgroup.as_deref().is_some_and(|c| names_container(c, id)))
                .collect();
            if let Some(first) = first_process(&members) {
                return Ok(Target {
                    pid: first.pid,
                    container_id: Some(id.clone()),
                    method: Method::Cgroup,
                });
            }
            match pid1 {
                Some(p) if p.pause => Err(refuse(format!(
                    "no process of container {id} is visible: PID 1 is the pod's pause process \
                     (the pod shares its process namespace) and no /proc/<pid>/cgroup names \
                     that container (it may have exited or restarted under a new ID, or the \
                     runtime does not show container IDs in cgroup paths)"
                ))),
                Some(p) if p.ours => Err(refuse(PID1_IS_OURS.to_string())),
                Some(p) => match id_of(p) {
                    Some(other) => Err(refuse(format!(
                        "PID 1 belongs to container {other}, not to container {id}: this debug \
                         container shares the PID namespace of another container than the one \
                         asked for"
                    ))),
                    // The runtime hides cgroup paths (a sandboxed runtime, a private cgroup
                    // namespace seen as `/`): under targetContainerName PID 1 is the target.
                    None => Ok(Target {
                        pid: 1,
                        container_id: None,
                        method: Method::Pid1,
                    }),
                },
                None => Err(refuse(format!(
                    "no process of container {id} is visible, and no PID 1 either"
                ))),
            }
        }
        Request::Nothing => match pid1 {
            Some(p) if p.pause => Err(refuse(
                "PID 1 is the pod's pause process (the pod shares its process namespace), so \
                 every container's processes are visible here, and no container ID was given \
                 to tell the target's apart"
                    .to_string(),
            )),
            Some(p) if p.ours => Err(refuse(PID1_IS_OURS.to_string())),
            Some(p) => Ok(Target {
                pid: 1,
                container_id: id_of(p),
                method: Method::Pid1,
            }),
            None => Err(refuse(
                "no PID 1 is visible in this PID namespace".to_string(),
            )),
        },
    }
}

/// A container's first process: one whose parent is not in the same container (processes
/// exec'd into it have a parent outside the namespace too), the earliest started.
fn first_process<'a>(members: &[&'a Proc]) -> Option<&'a Proc> {
    let pids: BTreeSet<i32> = members.iter().map(|p| p.pid).collect();
    members
        .iter()
        .filter(|p| !pids.contains(&p.ppid))
        .min_by_key(|p| (p.start, p.pid))
        .copied()
}

/// The first process of each container other than ours and the pause process, by pid.
/// Processes whose cgroup shows no container ID are grouped by ancestry instead: each that
/// has no such parent stands for itself.
fn candidates(procs: &[Proc]) -> Vec<(i32, Option<ContainerId>)> {
    let visible = procs.iter().filter(|p| !p.pause && !p.ours);
    let mut by_id: BTreeMap<String, (ContainerId, Vec<&Proc>)> = BTreeMap::new();
    let mut without_id: Vec<&Proc> = Vec::new();
    for p in visible {
        match p.cgroup.as_deref().and_then(container_id_in) {
            Some(id) => by_id
                .entry(id.as_str().to_string())
                .or_insert_with(|| (id, Vec::new()))
                .1
                .push(p),
            None => without_id.push(p),
        }
    }
    let mut found: Vec<(i32, Option<ContainerId>)> = by_id
        .into_values()
        .filter_map(|(id, members)| first_process(&members).map(|p| (p.pid, Some(id))))
        .collect();
    let unlabelled: BTreeSet<i32> = without_id.iter().map(|p| p.pid).collect();
    found.extend(
        without_id
            .iter()
            .filter(|p| !unlabelled.contains(&p.ppid))
            .map(|p| (p.pid, None)),
    );
    found.sort_by_key(|(pid, _)| *pid);
    found
}

/// The live processes of the namespace this agent sees.
pub fn snapshot() -> Vec<Proc> {
    let me = std::process::id() as i32;
    procs::all_pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = procs::stat(pid).filter(|s| s.state != 'Z' && s.state != 'X')?;
            Some(Proc {
                pid,
                ppid: stat.ppid,
                start: stat.start,
                cgroup: std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok(),
                pause: procs::is_pause(pid),
                ours: pid == me || procs::is_ours(pid),
            })
        })
        .collect()
}

/// The target and where its filesystem is seen from the debug container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    pub pid: i32,
    pub container_id: Option<String>,
    pub method: Method,
    /// `/target` when it leads to this pid's root, else `/proc/<pid>/root`.
    pub root: String,
}

/// A process that could be the target, for the refusal's table and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub pid: i32,
    pub container_id: Option<String>,
    /// `readlink /proc/<pid>/exe`: null when the kernel's ptrace check forbids it.
    pub exe: Option<String>,
    pub uid: Option<u32>,
    /// `/proc/<pid>/cmdline`, world-readable where `exe` is not.
    pub cmdline: Option<Vec<String>>,
}

/// A refusal as the caller shows it: `{"error": ..., "candidates": [...]}` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotIdentified {
    pub error: String,
    pub candidates: Vec<Candidate>,
}

/// Why a verb cannot go on with a target.
#[derive(Debug)]
pub enum Failure {
    /// A bad `DISTROLESS_DEBUG_TARGET_*` value (flags are checked by the parser).
    Usage(String),
    NotIdentified(NotIdentified),
}

impl Failure {
    /// Prints the failure for people on stderr and returns the verb's exit status.
    pub fn report(&self, verb: &str) -> Status {
        match self {
            Failure::Usage(message) => {
                eprintln!("distroless-debug-agent {verb}: {message}");
                Status::Usage
            }
            Failure::NotIdentified(refusal) => {
                eprint!("{}", render_refusal(verb, refusal));
                Status::NotIdentified
            }
        }
    }
}

/// Finds the target for `flags` (and the environment), points the state directory's
/// `target` link at its root when the directory is usable, and says where its root is.
pub fn identify(flags: &TargetFlags) -> Result<Resolved, Failure> {
    let request = request(flags, |var| std::env::var(var).ok()).map_err(Failure::Usage)?;
    let state = StateDir::from_env();
    match resolve(&request, &snapshot()) {
        Ok(target) => {
            // Not being able to write the link must not stop the verb: `/proc/<pid>/root`
            // is the same filesystem, and the root below says which one to use.
            let _ = state.point_target_link(target.pid);
            Ok(Resolved {
                pid: target.pid,
                container_id: target.container_id.map(|id| id.to_string()),
                method: target.method,
                root: root_view(Path::new(IMAGE_LINK), target.pid)
                    .display()
                    .to_string(),
            })
        }
        Err(refusal) => {
            state.remove_target_link();
            Err(Failure::NotIdentified(NotIdentified {
                error: format!("target not identified: {}", refusal.reason),
                candidates: refusal
                    .candidates
                    .into_iter()
                    .map(|(pid, id)| describe(pid, id))
                    .collect(),
            }))
        }
    }
}

fn describe(pid: i32, container_id: Option<ContainerId>) -> Candidate {
    Candidate {
        pid,
        container_id: container_id.map(|id| id.to_string()),
        exe: std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.display().to_string()),
        uid: std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| crate::info::procfs::parse_status(&s).uid),
        cmdline: procs::cmdline(pid),
    }
}

/// `image_link` (`/target`) when following it, link by link, ends at `/proc/<pid>/root`;
/// else `/proc/<pid>/root` itself. The magic link at the end is never followed, so this
/// needs no access to the target.
pub fn root_view(image_link: &Path, pid: i32) -> PathBuf {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let mut at = image_link.to_path_buf();
    // A few hops: /target -> /tmp/.distroless-debug/target -> /proc/<pid>/root.
    for _ in 0..8 {
        if at == root {
            return image_link.to_path_buf();
        }
        let Ok(next) = std::fs::read_link(&at) else {
            break;
        };
        at = match at.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    root
}

/// The refusal for people: the reason, the candidates as a table, and the flag to pick one.
pub fn render_refusal(verb: &str, refusal: &NotIdentified) -> String {
    let mut out = format!("distroless-debug-agent {verb}: {}.\n", refusal.error);
    if refusal.candidates.is_empty() {
        out.push_str("No process of another container is visible in this PID namespace.\n");
        return out;
    }
    out.push_str("Processes that could be the target (the first of each container):\n");
    let rows: Vec<[String; 4]> = refusal
        .candidates
        .iter()
        .map(|c| {
            let command = match (&c.exe, &c.cmdline) {
                (Some(exe), _) => exe.clone(),
                (None, Some(argv)) if !argv.is_empty() => format!("? ({})", argv.join(" ")),
                _ => "?".to_string(),
            };
            [
                c.pid.to_string(),
                c.uid.map_or_else(|| "?".to_string(), |u| u.to_string()),
                c.container_id.clone().unwrap_or_else(|| "-".to_string()),
                command,
            ]
        })
        .collect();
    let header = ["PID", "UID", "CONTAINER", "EXE"].map(String::from);
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in [&header].into_iter().chain(&rows) {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    let example = refusal.candidates[0].pid;
    let _ = writeln!(
        out,
        "Pick one with --target-pid PID (e.g. `distroless-debug-agent {verb} --target-pid {example}`), \
         or give the container's ID with --target-id ID."
    );
    out
}

/// `target`: the resolved target, for people or as JSON for the plugin.
pub fn main(flags: TargetVerbFlags) -> Status {
    let result = identify(&flags.target);
    let mut out = io::stdout().lock();
    let (written, status) = match (&result, flags.json) {
        (Ok(resolved), true) => (json_line(&mut out, resolved), Status::Success),
        (Ok(resolved), false) => (
            out.write_all(render_text(resolved).as_bytes()),
            Status::Success,
        ),
        (Err(Failure::NotIdentified(refusal)), true) => {
            (json_line(&mut out, refusal), Status::NotIdentified)
        }
        (Err(failure), _) => return failure.report("target"),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => status,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Status::Failure,
        Err(e) => {
            eprintln!("distroless-debug-agent target: {e}");
            Status::Failure
        }
    }
}

pub fn json_line(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
    writeln!(out)
}

fn render_text(resolved: &Resolved) -> String {
    format!(
        "pid        {}\ncontainer  {}\nmethod     {}\nroot       {}\n",
        resolved.pid,
        resolved.container_id.as_deref().unwrap_or("-"),
        resolved.method.as_str(),
        resolved.root
    )
}

#[cfg(test)]
mod tests;
