//! How the plugin's run ends, as a process exit code.
//!
//! Scripts branch on these, so they are an enum with one documented meaning each (see
//! docs/exit-codes.md and the end of `--help`): a remote command's own code passes through
//! unchanged so `kubectl distroless-debug pod/x -- test -f /target/ready` works as `test`
//! would.

/// The outcome of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything we were asked to do was done.
    Success,
    /// A step failed; the message says which and why.
    Failure,
    /// The command line was wrong; nothing was sent to the cluster.
    Usage,
    /// A signal ended the session (after teardown): 128 + the signal number, 130 for Ctrl-C.
    Interrupted(i32),
    /// The remote command's own exit code.
    Remote(i32),
    /// `run` and fan-out: a step that was not allowed to fail failed on some pod (every pod
    /// could be debugged).
    StepFailed,
    /// `run` and fan-out: some pod could not be debugged at all (not Running, refused by
    /// admission, the debug container did not start...), whatever the steps elsewhere did.
    PodNotDebugged,
}

impl ExitStatus {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            // An exit code is one byte on POSIX; out-of-range values are reported as failure
            // rather than wrapped into a misleading small number.
            ExitStatus::Interrupted(signal) => u8::try_from(128 + signal).unwrap_or(1),
            ExitStatus::Remote(code) => u8::try_from(code).unwrap_or(1),
            ExitStatus::StepFailed => 4,
            ExitStatus::PodNotDebugged => 5,
        }
    }

    pub fn interrupted_by_ctrl_c() -> Self {
        ExitStatus::Interrupted(libc::SIGINT)
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes() {
        assert_eq!(ExitStatus::Success.code(), 0);
        assert_eq!(ExitStatus::Failure.code(), 1);
        assert_eq!(ExitStatus::Usage.code(), 2);
        assert_eq!(ExitStatus::interrupted_by_ctrl_c().code(), 130);
        assert_eq!(ExitStatus::Interrupted(libc::SIGTERM).code(), 143);
        assert_eq!(ExitStatus::Interrupted(libc::SIGHUP).code(), 129);
        assert_eq!(ExitStatus::StepFailed.code(), 4);
        assert_eq!(ExitStatus::PodNotDebugged.code(), 5);
    }

    #[test]
    fn remote_code_passes_through() {
        assert_eq!(ExitStatus::Remote(7).code(), 7);
        assert_eq!(ExitStatus::Remote(127).code(), 127);
        assert_eq!(ExitStatus::Remote(0).code(), 0);
    }

    #[test]
    fn out_of_range_remote_code_is_a_failure_not_a_wrap() {
        assert_eq!(ExitStatus::Remote(256).code(), 1);
        assert_eq!(ExitStatus::Remote(-1).code(), 1);
    }
}
