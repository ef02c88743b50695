//! Exit statuses of the agent, one place so that `--help` and docs/agent.md can list them.

use std::process::ExitCode;

/// How the agent ends. `run` and `shell` never return one on success: they become the
/// command (execve), so the command's own exit code and signals are what the caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0: done (for `tar`: at least the readable part was archived; warnings on stderr).
    Success,
    /// 1: the verb failed; the reason is on stderr.
    Failure,
    /// 2: bad command line.
    Usage,
    /// 3: which process is the target cannot be told exactly (see target.rs); the reason
    /// and the candidates are on stderr (`target -o json`: on stdout).
    NotIdentified,
    /// 125: `start` could not reach the held target or talk to it; the reason is on stderr.
    StartFailed,
    /// `start`: the app's own exit code (128+N when killed by signal N).
    App(u8),
    /// 126: `run`/`shell`: the command exists but could not be executed.
    NotExecutable,
    /// 127: `run`/`shell`: the command was not found.
    NotFound,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(match status {
            Status::Success => 0,
            Status::Failure => 1,
            Status::Usage => 2,
            Status::NotIdentified => 3,
            Status::StartFailed => 125,
            Status::App(code) => code,
            Status::NotExecutable => 126,
            Status::NotFound => 127,
        })
    }
}
