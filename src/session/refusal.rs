//! The agent's "target not identified" (its exit code 3), told in the pod's terms.
//!
//! In a pod sharing one PID namespace the agent finds the target by the container ID in
//! `/proc/<pid>/cgroup`; when no process matches (a sandboxed runtime hides the IDs, or the
//! target is between restarts) it refuses rather than guess, and lists the first process of
//! each container. We name those containers from the pod status's IDs and refuse as a usage
//! error: the user picks one with `--target-pid N`.

use std::fmt;

use serde::Deserialize;

use crate::base::error::Failure;
use crate::base::exit::ExitStatus;
use crate::kube::exec::{Remote, run_quietly};
use crate::session::spec::{TargetProcess, agent_command};
use crate::session::target::bare_id;

/// The agent's exit code for "target not identified" (docs/agent.md).
pub const NOT_IDENTIFIED: i32 = 3;

/// A process the agent lists as a possible target (`target -o json`'s `candidates`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Candidate {
    pub pid: u32,
    pub container_id: Option<String>,
    pub exe: Option<String>,
    pub uid: Option<u32>,
    pub cmdline: Option<Vec<String>>,
}

/// The agent's refusal, as `target -o json` (and `info -o json`) print it.
#[derive(Debug, Deserialize)]
struct Refused {
    error: String,
    #[serde(default)]
    candidates: Vec<Candidate>,
}

/// The target process of `container` in `pod` could not be identified; nothing was run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetNotIdentified {
    pub pod: String,
    pub container: String,
    /// The agent's reason.
    pub reason: String,
    /// (pid, uid, container name or `?`, exe or command line).
    pub rows: Vec<[String; 4]>,
}

impl TargetNotIdentified {
    /// Reads the agent's JSON refusal; `None` when `text` is not one.
    pub fn from_json(text: &str, pod: &str, target: &TargetProcess) -> Option<TargetNotIdentified> {
        let refused: Refused = serde_json::from_str(text.trim()).ok()?;
        let name_of = |id: &Option<String>| {
            id.as_deref()
                .and_then(|id| {
                    target
                        .containers
                        .iter()
                        .find(|(known, _)| bare_id(known) == bare_id(id))
                })
                .map_or_else(|| "?".to_string(), |(_, name)| name.clone())
        };
        let rows = refused
            .candidates
            .iter()
            .map(|c| {
                let shown = c.exe.clone().unwrap_or_else(|| {
                    format!("? ({})", c.cmdline.clone().unwrap_or_default().join(" "))
                });
                [
                    c.pid.to_string(),
                    c.uid.map_or_else(|| "?".to_string(), |u| u.to_string()),
                    name_of(&c.container_id),
                    shown,
                ]
            })
            .collect();
        let reason = refused.error;
        let reason = reason
            .strip_prefix("target not identified: ")
            .unwrap_or(&reason)
            .to_string();
        Some(TargetNotIdentified {
            pod: pod.to_string(),
            container: target.container.clone(),
            reason,
            rows,
        })
    }
}

impl fmt::Display for TargetNotIdentified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot tell which process is container {} of pod {}: {}; nothing was run",
            self.container, self.pod, self.reason
        )?;
        if self.rows.is_empty() {
            return write!(f, " (no process could be the target)");
        }
        writeln!(
            f,
            ". Processes that could be the target (the first of each container):"
        )?;
        let header = ["PID", "UID", "CONTAINER", "EXE"].map(String::from);
        let mut widths = [0; 4];
        for row in std::iter::once(&header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let lines: Vec<String> = std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| {
                let line: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(cell, width)| format!("{cell:width$}"))
                    .collect();
                format!("  {}", line.join("  ").trim_end())
            })
            .collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for TargetNotIdentified {}

impl Failure for TargetNotIdentified {
    fn hint(&self) -> Option<String> {
        let example = self
            .rows
            .iter()
            .find(|row| row[2] == self.container)
            .or(self.rows.first())
            .map_or("12", |row| row[0].as_str());
        Some(format!(
            "pick the target with `--target-pid N` (e.g. `--target-pid {example}`), the pid of container {}'s process in the table",
            self.container
        ))
    }

    /// The command line has to say which process: like a usage error, nothing was run.
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Usage
    }
}

/// After an agent verb exited [`NOT_IDENTIFIED`]: asks the agent's `target -o json` whether
/// the target is indeed not identified (a command run by `run` may exit 3 itself) and returns
/// the refusal when it is.
pub async fn refusal(remote: &Remote<'_>, target: &TargetProcess) -> Option<TargetNotIdentified> {
    let command = agent_command("target", target, &["-o", "json"]);
    match run_quietly(remote, command).await {
        Ok((NOT_IDENTIFIED, text)) => TargetNotIdentified::from_json(&text, remote.pod, target),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> TargetProcess {
        TargetProcess {
            container: "app".into(),
            container_id: Some("containerd://aaaa".into()),
            pid: None,
            containers: vec![
                ("containerd://aaaa".into(), "app".into()),
                ("containerd://bbbb".into(), "sidecar".into()),
            ],
        }
    }

    #[test]
    fn candidates_are_named_by_the_pod_status_ids() {
        let text = r#"{"error":"target not identified: no process of container aaaa is visible","candidates":[
            {"pid":7,"container_id":"bbbb","exe":"/bin/sleep","uid":0,"cmdline":["sleep","1d"]},
            {"pid":12,"container_id":null,"exe":null,"uid":null,"cmdline":["/app/server","-p"]}]}"#;
        let refused = TargetNotIdentified::from_json(text, "web", &target()).unwrap();
        assert_eq!(refused.reason, "no process of container aaaa is visible");
        assert_eq!(
            refused.rows,
            vec![
                ["7", "0", "sidecar", "/bin/sleep"].map(String::from),
                ["12", "?", "?", "? (/app/server -p)"].map(String::from),
            ]
        );
        let shown = refused.to_string();
        assert!(
            shown.contains("  PID  UID  CONTAINER  EXE\n  7    0    sidecar    /bin/sleep"),
            "{shown}"
        );
        assert!(refused.hint().unwrap().contains("--target-pid 7"));
        assert_eq!(refused.exit_status(), ExitStatus::Usage);
    }

    #[test]
    fn a_success_is_not_a_refusal() {
        let text = r#"{"pid":12,"container_id":"aaaa","method":"cgroup","root":"/target"}"#;
        assert!(TargetNotIdentified::from_json(text, "web", &target()).is_none());
    }
}
