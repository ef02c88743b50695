//! The ephemeral container we add, as a pure function of the options and the pod.
//!
//! No client and no randomness inside [`ephemeral_container_for`]: the random name suffix is
//! passed in, so the whole spec is table-tested. The same module reads our containers back
//! (for reuse, `ls` and `cleanup`): a debug container is ours when its env carries
//! `DISTROLESS_DEBUG_VERSION`, because the ephemeralcontainers subresource cannot change pod
//! annotations or labels, so the container itself has to carry the session's metadata.

use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, EnvVar, EphemeralContainer, Pod, VolumeMount,
};

use crate::base::duration::Human;
use crate::session::identity::Identity;
use crate::session::options::DebugOptions;
use crate::session::profile::security_context_for;
use crate::session::target::{Target, container_names_by_id, shares_pid_namespace, status_of};
use crate::toolkit::catalog::ImageChoice;

pub const ENV_VERSION: &str = "DISTROLESS_DEBUG_VERSION";
pub const ENV_USER: &str = "DISTROLESS_DEBUG_USER";
pub const ENV_REASON: &str = "DISTROLESS_DEBUG_REASON";
pub const ENV_STARTED: &str = "DISTROLESS_DEBUG_STARTED";
pub const ENV_TTL: &str = "DISTROLESS_DEBUG_TTL";
pub const ENV_TARGET: &str = "DISTROLESS_DEBUG_TARGET";
pub const ENV_PROFILE: &str = "DISTROLESS_DEBUG_PROFILE";
/// The target container's ID, for the agent (its `--target-id` when no flag is given).
pub const ENV_TARGET_ID: &str = "DISTROLESS_DEBUG_TARGET_ID";
/// `--target-pid`, for the agent (its `--target-pid` when no flag is given).
pub const ENV_TARGET_PID: &str = "DISTROLESS_DEBUG_TARGET_PID";

/// The agent's binary name in our images.
pub const AGENT: &str = "distroless-debug-agent";

/// Where the generic mode (`--image`) keeps its hold process's pid, inside the debug
/// container's own filesystem, and where it links the target's root.
pub const GENERIC_PID_FILE: &str = "/tmp/.distroless-debug/pid";
pub const GENERIC_TARGET_LINK: &str = "/tmp/target";

/// Which process of the pod is the target, as the agent is told it on every exec: the
/// container ID the pod status reports (the agent finds that container's first process by
/// its cgroup), or the pid `--target-pid` names. Passed as flags even though the container's
/// env carries them, so a reused container follows a target that restarted (a new ID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetProcess {
    /// The target container's name.
    pub container: String,
    pub container_id: Option<String>,
    pub pid: Option<u32>,
    /// Every container of the pod by its status ID, to name the agent's candidates when it
    /// cannot identify the target (refusal.rs).
    pub containers: Vec<(String, String)>,
}

impl TargetProcess {
    /// The process of `target`, from the pod status read this run; `pid` is `--target-pid`.
    pub fn of(target: &Target, pid: Option<u32>) -> TargetProcess {
        TargetProcess {
            container: target.container.clone(),
            container_id: target.container_id.clone(),
            pid,
            containers: container_names_by_id(&target.pod),
        }
    }

    /// The agent's `--target-id ID` / `--target-pid N` flags.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(id) = &self.container_id {
            args.extend(["--target-id".to_string(), id.clone()]);
        }
        if let Some(pid) = self.pid {
            args.extend(["--target-pid".to_string(), pid.to_string()]);
        }
        args
    }
}

/// `distroless-debug-agent VERB --target-id … REST...`: an agent verb that works on the
/// target (info, target, tar, untar, stat), told which process that is.
pub fn agent_command(verb: &str, target: &TargetProcess, rest: &[&str]) -> Vec<String> {
    let mut command = vec![AGENT.to_string(), verb.to_string()];
    command.extend(target.args());
    command.extend(rest.iter().map(|r| r.to_string()));
    command
}

/// Facts about this session that are not flags: who, when, which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub user: String,
    pub started: jiff::Timestamp,
    pub version: String,
}

/// The ephemeral container for a session on `container` of `pod`, named `dbg-<suffix>`.
pub fn ephemeral_container_for(
    options: &DebugOptions,
    container: &str,
    target: &TargetProcess,
    identity: &Identity,
    facts: &SessionFacts,
    suffix: &str,
) -> EphemeralContainer {
    let env_var = |name: &str, value: String| EnvVar {
        name: name.to_string(),
        value: Some(value),
        value_from: None,
    };
    let mut env = vec![
        env_var(ENV_VERSION, facts.version.clone()),
        env_var(ENV_TARGET, container.to_string()),
        env_var(ENV_USER, facts.user.clone()),
        env_var(ENV_STARTED, facts.started.to_string()),
        env_var(ENV_TTL, Human(options.ttl).to_string()),
        env_var(ENV_PROFILE, options.profile.name().to_string()),
    ];
    if let Some(reason) = &options.reason {
        env.push(env_var(ENV_REASON, reason.clone()));
    }
    if let Some(id) = &target.container_id {
        env.push(env_var(ENV_TARGET_ID, id.clone()));
    }
    if let Some(pid) = target.pid {
        env.push(env_var(ENV_TARGET_PID, pid.to_string()));
    }
    if !options.image.has_agent() {
        // Generic mode has no agent to export them per exec; the hold loop links the root.
        env.push(env_var("TARGET_PID", target.pid.unwrap_or(1).to_string()));
        env.push(env_var("TARGET_ROOT", GENERIC_TARGET_LINK.to_string()));
    }
    // Images run under any uid; HOME must be somewhere that uid can write.
    env.push(env_var("HOME", "/tmp".to_string()));

    EphemeralContainer {
        name: format!("dbg-{suffix}"),
        image: Some(options.image.reference()),
        command: Some(hold_command(
            &options.image,
            options.ttl,
            options.idle,
            target.pid,
        )),
        env: Some(env),
        target_container_name: Some(container.to_string()),
        security_context: Some(security_context_for(options.profile, identity)),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..EphemeralContainer::default()
    }
}

/// The debug container's main process: it only keeps the container open; the shell and every
/// command are execs into it, so teardown is one `stop`, whatever the user ran. The agent's
/// `hold` finds the target from the env; generic mode links `target_pid`'s root (PID 1's
/// without one: right without a shared PID namespace, and `plan` refuses generic mode in a
/// pod sharing one unless `--target-pid` is given).
pub fn hold_command(
    image: &ImageChoice,
    ttl: Duration,
    idle: Duration,
    target_pid: Option<u32>,
) -> Vec<String> {
    if image.has_agent() {
        return [
            AGENT,
            "hold",
            "--ttl",
            &Human(ttl).to_string(),
            "--idle",
            &Human(idle).to_string(),
        ]
        .map(String::from)
        .to_vec();
    }
    // Generic mode: a shell loop of short sleeps (an image's `sleep` may not take large
    // numbers or `infinity`), its pid recorded so `stop` can end exactly it. The kubelet
    // expands `$(NAME)` in a container's command and `$$` is its escape for `$`
    // (https://kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/),
    // so every `$$` and `$(` meant for the shell is written doubled.
    let rounds = ttl.as_secs().div_ceil(10);
    let wait = if ttl.is_zero() {
        "while :; do sleep 10; done".to_string()
    } else {
        format!("i=0; while [ \"$i\" -lt {rounds} ]; do sleep 10; i=$$((i+1)); done")
    };
    let script = format!(
        "mkdir -p /tmp/.distroless-debug && echo $$$$ > {GENERIC_PID_FILE}; \
         ln -sfn /proc/{}/root {GENERIC_TARGET_LINK} 2>/dev/null; {wait}",
        target_pid.unwrap_or(1)
    );
    vec!["sh".into(), "-c".into(), script]
}

/// The attach-mode variant of `container` (for when `pods/exec` is forbidden but
/// `pods/attach` is allowed): the shell is the main process, with a tty and a stdin that
/// closes when the one attach ends (`stdinOnce`), so the container ends with the session.
pub fn attach_mode(
    mut container: EphemeralContainer,
    image: &ImageChoice,
    target: &TargetProcess,
) -> EphemeralContainer {
    container.command = Some(shell_command(image, target));
    container.stdin = Some(true);
    container.stdin_once = Some(true);
    container.tty = Some(true);
    container
}

/// The attach-mode container for a command without a tty: its main process waits for one
/// line on stdin (the plugin sends it once attached, see `exec::ATTACH_GATE`), so no output
/// is lost before the attach, then runs the command. The exit code is the command's.
///
/// Without exec nothing can signal the command, so unless it gets our stdin (`forward_stdin`)
/// the script runs it with `/dev/null` as input and watches stdin itself: stdin closing means
/// our attach ended (a signal, a lost connection), and the watcher sends SIGTERM to the
/// container's process group (`kill 0`; the runtime makes a container's main process a
/// session leader, so the group is this container's processes, never the target's). Stdin is
/// handed to the watcher through fd 3, since an asynchronous list's own stdin is `/dev/null`.
/// A forwarded stdin ends with its input instead, so such a command runs to its end. No `$(`
/// and no `$$` in the script: the kubelet would expand them.
pub fn attach_command(
    mut container: EphemeralContainer,
    command: Vec<String>,
    forward_stdin: bool,
) -> EphemeralContainer {
    let script = if forward_stdin {
        "read -r _ || exit 1; exec \"$@\""
    } else {
        "read -r _ || exit 1; exec 3<&0; \"$@\" </dev/null 3<&- & p=$!; \
         { while read -r _; do :; done; kill 0; } <&3 & w=$!; exec 3<&-; \
         wait $p; c=$?; kill $w 2>/dev/null; exit $c"
    };
    let mut gated = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
    gated.extend(command);
    container.command = Some(gated);
    container.stdin = Some(true);
    container.stdin_once = Some(true);
    container.tty = Some(false);
    container
}

/// What to exec for a shell, a command, and for ending the container.
pub fn shell_command(image: &ImageChoice, target: &TargetProcess) -> Vec<String> {
    if image.has_agent() {
        agent_command("shell", target, &[])
    } else {
        vec!["sh".into()]
    }
}

pub fn run_command(image: &ImageChoice, target: &TargetProcess, argv: &[String]) -> Vec<String> {
    if image.has_agent() {
        let mut command = agent_command("run", target, &["--"]);
        command.extend_from_slice(argv);
        command
    } else {
        argv.to_vec()
    }
}

/// `command` (an agent `run` or `shell`, or the `tar`, `untar` or `info` that ends a `cp`,
/// a `snapshot` or an `info`) as the session's last exec: with `--end-container`, the agent
/// ends the container when this session ends and no other is alive, so teardown sends no
/// `stop` (docs/agent.md). Any other command is returned as it is.
pub fn ending_the_container(mut command: Vec<String>) -> Vec<String> {
    if command.first().map(String::as_str) == Some(AGENT)
        && matches!(
            command.get(1).map(String::as_str),
            Some("run" | "shell" | "tar" | "untar" | "info")
        )
    {
        command.insert(2, "--end-container".into());
    }
    command
}

pub fn stop_command(has_agent: bool) -> Vec<String> {
    if has_agent {
        vec![AGENT.into(), "stop".into()]
    } else {
        // Only the pid our own hold loop wrote in our own filesystem: never a target process.
        vec![
            "sh".into(),
            "-c".into(),
            format!("kill $(cat {GENERIC_PID_FILE})"),
        ]
    }
}

/// Five lowercase letters and digits from the OS's random source.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 5];
    // A failing getrandom means no entropy at all; a time-derived fallback is still unique
    // enough for a name that is checked against the pod anyway.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes().repeat(2)[..5]
            .try_into()
            .unwrap_or([7; 5]);
    }
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// A suffix whose `dbg-` name is not yet taken in `pod` (by any kind of container).
pub fn unused_suffix(pod: &Pod, mut next: impl FnMut() -> String) -> String {
    let taken = |name: &str| {
        pod.spec.as_ref().is_some_and(|s| {
            s.containers.iter().any(|c| c.name == name)
                || s.init_containers.iter().flatten().any(|c| c.name == name)
                || s.ephemeral_containers
                    .iter()
                    .flatten()
                    .any(|c| c.name == name)
        })
    };
    loop {
        let suffix = next();
        if !taken(&format!("dbg-{suffix}")) {
            return suffix;
        }
    }
}

/// One of our debug containers, as read back from a pod.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DebugContainer {
    pub namespace: String,
    pub pod: String,
    pub name: String,
    pub target: String,
    pub image: String,
    pub state: State,
    pub user: String,
    pub reason: String,
    pub started: Option<String>,
    /// The profile it was made with (empty for containers of older versions).
    pub profile: String,
    pub has_agent: bool,
    /// The target's container ID when it was added (`DISTROLESS_DEBUG_TARGET_ID`).
    #[serde(skip)]
    pub target_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Waiting,
    Running,
    Terminated,
    Unknown,
}

impl State {
    pub fn of(state: Option<&ContainerState>) -> State {
        match state {
            Some(s) if s.running.is_some() => State::Running,
            Some(s) if s.terminated.is_some() => State::Terminated,
            Some(s) if s.waiting.is_some() => State::Waiting,
            _ => State::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Running => "running",
            State::Terminated => "terminated",
            State::Unknown => "unknown",
        }
    }
}

/// Our debug containers in `pod`, with their current state.
pub fn debug_containers_in(pod: &Pod) -> Vec<DebugContainer> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref());
    let env_of = |c: &EphemeralContainer, name: &str| {
        c.env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    pod.spec
        .iter()
        .flat_map(|s| s.ephemeral_containers.iter().flatten())
        .filter(|c| env_of(c, ENV_VERSION).is_some())
        .map(|c| DebugContainer {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            name: c.name.clone(),
            target: c.target_container_name.clone().unwrap_or_default(),
            image: c.image.clone().unwrap_or_default(),
            state: State::of(
                statuses
                    .and_then(|s| s.iter().find(|s| s.name == c.name))
                    .and_then(|s| s.state.as_ref()),
            ),
            user: env_of(c, ENV_USER).unwrap_or_default(),
            reason: env_of(c, ENV_REASON).unwrap_or_default(),
            started: env_of(c, ENV_STARTED),
            profile: env_of(c, ENV_PROFILE).unwrap_or_default(),
            target_id: env_of(c, ENV_TARGET_ID),
            has_agent: c
                .command
                .as_ref()
                .and_then(|c| c.first())
                .is_some_and(|c| c == AGENT),
        })
        .collect()
}

/// A running debug container of ours on the same target with the same image and profile: a
/// second session execs into it instead of adding another (no PATCH, no image pull). The
/// profile must match too, or a session asking for `ptrace` would get an `auto` container's
/// privileges (or the other way round). Without a shared PID namespace, a container added
/// for an earlier instance of the target (another ID) ended with it, whatever the status still
/// says: the kernel ends a PID namespace's processes with its PID 1.
pub fn reusable_in(pod: &Pod, target: &str, image: &str, profile: &str) -> Option<DebugContainer> {
    let shared = shares_pid_namespace(pod);
    let current = status_of(pod, target).and_then(|s| s.container_id.clone());
    debug_containers_in(pod).into_iter().find(|c| {
        c.state == State::Running
            && c.target == target
            && c.image == image
            && c.profile == profile
            && (shared || c.target_id.is_none() || c.target_id == current)
    })
}

/// Where `--mirror-volumes` mounts the target's volumes in the debug container.
pub const MIRROR_ROOT: &str = "/target-volumes";

/// `--mirror-volumes`: the target container's volume mounts again, at the same paths under
/// [`MIRROR_ROOT`], read-only where the target's are. The apiserver refuses `subPath` and
/// `subPathExpr` on ephemeral containers (ValidateEphemeralContainers: "cannot be set for an
/// Ephemeral Container"), so those mounts are left out; the notes say which.
pub fn mirror_volumes(container: &mut EphemeralContainer, target: &Container) -> Vec<String> {
    let mut notes = Vec::new();
    let mut mounts = container.volume_mounts.take().unwrap_or_default();
    for m in target.volume_mounts.iter().flatten() {
        let sub = m
            .sub_path
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(m.sub_path_expr.as_deref().filter(|s| !s.is_empty()));
        if let Some(sub) = sub {
            notes.push(format!(
                "--mirror-volumes: skipped volume {} at {} (subPath {sub}): ephemeral containers cannot have subPath mounts; it is still visible at /target{}",
                m.name, m.mount_path, m.mount_path
            ));
            continue;
        }
        mounts.push(VolumeMount {
            name: m.name.clone(),
            mount_path: format!("{MIRROR_ROOT}/{}", m.mount_path.trim_start_matches('/')),
            read_only: m.read_only,
            recursive_read_only: m.recursive_read_only.clone(),
            // Propagation is the target's business; Bidirectional would need privilege.
            mount_propagation: None,
            sub_path: None,
            sub_path_expr: None,
        });
    }
    container.volume_mounts = (!mounts.is_empty()).then_some(mounts);
    notes
}

/// `--copy-env`: the target container's `env` and `envFrom`, before ours; a target variable
/// named like one of ours (session metadata, HOME) is left out, so ours hold. A
/// `resourceFieldRef` without a container keeps meaning the target's resources. Returns the
/// secrets referenced, for the warning.
pub fn copy_env(container: &mut EphemeralContainer, target: &Container) -> Vec<String> {
    let ours = container.env.take().unwrap_or_default();
    let mut env: Vec<EnvVar> = target
        .env
        .iter()
        .flatten()
        .filter(|e| !ours.iter().any(|o| o.name == e.name))
        .cloned()
        .map(|mut e| {
            if let Some(field) = e
                .value_from
                .as_mut()
                .and_then(|v| v.resource_field_ref.as_mut())
                && field.container_name.as_deref().unwrap_or("").is_empty()
            {
                field.container_name = Some(target.name.clone());
            }
            e
        })
        .collect();
    env.extend(ours);
    container.env = Some(env);
    if let Some(from) = &target.env_from {
        container.env_from = Some(from.clone());
    }
    let mut secrets: Vec<String> = target
        .env
        .iter()
        .flatten()
        .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
        .map(|r| r.name.clone())
        .chain(
            target
                .env_from
                .iter()
                .flatten()
                .filter_map(|f| f.secret_ref.as_ref())
                .map(|r| r.name.clone()),
        )
        .collect();
    secrets.sort();
    secrets.dedup();
    secrets
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
