//! The agent's facts about the target process (pid, uid/gid, executable, runtime, sockets,
//! mounts...), read by exec in a running debug container of ours: for `info`, for
//! `--toolkit auto` and for the probe of the target's ids.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::{Map, Value};

use crate::base::error::{CREATE_EXEC, Error, status_code};
use crate::base::interrupt::Interrupts;
use crate::kube::exec::{Captured, Ending, ExecError, Remote};
use crate::kube::exec_output;
use crate::output::printer::Printer;
use crate::session::refusal::{NOT_IDENTIFIED, TargetNotIdentified};
use crate::session::spec::{TargetProcess, agent_command, ending_the_container};
use crate::session::teardown::Session;

/// How reading the facts ended.
pub enum Read {
    /// The agent's JSON object (docs/agent.md, `info -o json`).
    Facts(Map<String, Value>),
    Interrupted(i32),
}

/// [`read_facts`] in a debug container this run uses: on a signal or an error, the session
/// is torn down before returning (so the caller only returns).
pub async fn read_facts_or_stop(
    pods: &Api<Pod>,
    session: &mut Session,
    interrupts: &mut Interrupts,
    printer: &Printer,
) -> Result<Read, Error> {
    let remote = Remote {
        pods,
        pod: &session.pod,
        container: &session.container,
        tap: None,
    };
    let read = read_facts(&remote, &session.target, interrupts).await;
    match &read {
        Ok(Read::Facts(_)) => {}
        Ok(Read::Interrupted(_)) => {
            session.teardown(printer, true).await;
        }
        Err(_) => {
            session.teardown(printer, false).await;
        }
    }
    read
}

/// Runs the agent's `info -o json` in `container` of `pod`, on `target`; the agent's refusal
/// to guess the target becomes [`TargetNotIdentified`].
pub async fn read_facts(
    remote: &Remote<'_>,
    target: &TargetProcess,
    interrupts: &mut Interrupts,
) -> Result<Read, Error> {
    let command = agent_command("info", target, &["-o", "json"]);
    read(remote, command, target, interrupts).await.0
}

/// [`read_facts`] as the last exec of its session (`kubectl distroless-debug info`): with
/// `end_container` the agent's `info` ends the container as the last session out
/// (docs/agent.md). Beside the read, the agent's exit code, `None` when it did not exit (a
/// signal, a broken connection, no exec), for [`Session::last_exec_exited`].
pub async fn read_facts_last(
    remote: &Remote<'_>,
    target: &TargetProcess,
    end_container: bool,
    interrupts: &mut Interrupts,
) -> (Result<Read, Error>, Option<i32>) {
    let command = agent_command("info", target, &["-o", "json"]);
    let command = if end_container {
        ending_the_container(command)
    } else {
        command
    };
    read(remote, command, target, interrupts).await
}

async fn read(
    remote: &Remote<'_>,
    command: Vec<String>,
    target: &TargetProcess,
    interrupts: &mut Interrupts,
) -> (Result<Read, Error>, Option<i32>) {
    let (pods, pod, container) = (remote.pods, remote.pod, remote.container);
    let mut captured = Captured::default();
    let stream_error = |why: String| Error::Stream {
        pod: pod.to_string(),
        container: container.to_string(),
        source: why.into(),
    };
    let ended =
        exec_output::streamed(remote, command, false, Some(&mut captured), interrupts).await;
    let exited = match ended {
        Ok(Ending::Exited(code)) => Some(code),
        _ => None,
    };
    let read = match ended {
        Ok(Ending::Interrupted(signal)) => Ok(Read::Interrupted(signal)),
        Ok(Ending::Exited(code)) => {
            let stdout = String::from_utf8_lossy(&captured.stdout);
            let refused = (code == NOT_IDENTIFIED)
                .then(|| TargetNotIdentified::from_json(&stdout, pod, target))
                .flatten();
            match (refused, serde_json::from_str::<Value>(&stdout)) {
                (Some(refused), _) => Err(refused.into()),
                (None, Ok(Value::Object(facts))) if code == 0 => Ok(Read::Facts(facts)),
                _ => Err(stream_error(format!(
                    "the agent's `info` exited {code} without its JSON facts: {}",
                    String::from_utf8_lossy(&captured.stderr).trim()
                ))),
            }
        }
        Err(ExecError::Session(error)) => Err(error),
        Err(ExecError::Open(source)) if status_code(&source) == Some(403) => {
            Err(Error::Forbidden {
                namespace: pods.namespace().unwrap_or_default().to_string(),
                pod: pod.to_string(),
                step: "exec into the debug container",
                missing: vec![CREATE_EXEC],
                source,
            })
        }
        Err(ExecError::Open(source)) => Err(Error::Exec {
            pod: pod.to_string(),
            container: container.to_string(),
            source,
        }),
    };
    (read, exited)
}
