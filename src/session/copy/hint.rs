//! A session refused because its target does not run names `--copy`, with the command line
//! that debugs a copy of the pod with the target held before its entrypoint.

use std::fmt;

use crate::base::error::{Error, Failure};
use crate::base::exit::ExitStatus;
use crate::session::options::{DebugOptions, Mode};

/// A refusal of a target that does not run, with `--copy`'s command line as the way on.
#[derive(Debug)]
pub struct NotRunning {
    pub refused: Error,
    /// The command line to run instead.
    pub command: String,
}

impl fmt::Display for NotRunning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.refused, f)
    }
}

impl std::error::Error for NotRunning {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.refused)
    }
}

impl Failure for NotRunning {
    fn hint(&self) -> Option<String> {
        let before = self
            .refused
            .hint()
            .map(|h| format!("{h}. "))
            .unwrap_or_default();
        Some(format!(
            "{before}If it crash-loops or exits at start, debug a copy of the pod with the target held before its entrypoint (`start` in the shell runs it): `{}`",
            self.command
        ))
    }

    fn exit_status(&self) -> ExitStatus {
        self.refused.exit_status()
    }
}

/// The command line of the same session with `--copy`.
pub fn copy_command(options: &DebugOptions, namespace: &str) -> String {
    let mut words = vec![
        "kubectl".to_string(),
        "distroless-debug".to_string(),
        options.target.to_string(),
        "-n".to_string(),
        namespace.to_string(),
    ];
    if let Some(container) = &options.container {
        words.extend(["-c".to_string(), container.clone()]);
    }
    words.push("--copy".to_string());
    if let Mode::Command { argv, .. } = &options.mode {
        words.push("--".to_string());
        words.extend(argv.iter().cloned());
    }
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

/// `error` with `--copy` named, when it says the target does not run; else `error` itself.
/// A pod still Pending is left alone: it has not failed to start yet.
pub fn with_copy_hint(error: Error, options: &DebugOptions, namespace: &str) -> Error {
    let fits = match &error {
        Error::PodNotRunning { phase, .. } => phase == "Failed" || phase == "Succeeded",
        Error::ContainerNotRunning { .. } | Error::NoReadyPod { .. } => true,
        // A crash-looping target seen in its short life between two crashes: the runtime
        // refuses to join it by the time the debug container starts.
        Error::StartFailed { message, .. } => message.contains("container is not running"),
        _ => false,
    };
    if !fits || options.dry_run.is_some() {
        return error;
    }
    NotRunning {
        command: copy_command(options, namespace),
        refused: error,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(mode: Mode, container: Option<&str>) -> DebugOptions {
        DebugOptions {
            container: container.map(String::from),
            mode,
            ..DebugOptions::example(crate::toolkit::catalog::ImageChoice::Custom("x".into()))
        }
    }

    #[test]
    fn a_crash_looping_target_is_refused_with_the_copy_command_line() {
        let mode = Mode::Command {
            argv: vec!["ls".into(), "/target/etc dir".into()],
            stdin: false,
            tty: false,
        };
        let refused = Error::ContainerNotRunning {
            pod: "web".into(),
            container: "app".into(),
        };
        let error = with_copy_hint(refused, &options(mode, Some("app")), "shop");
        let hint = error.hint().unwrap();
        assert!(
            hint.contains(
                "`kubectl distroless-debug pod/web -n shop -c app --copy -- ls '/target/etc dir'`"
            ),
            "{hint}"
        );
        assert!(error.to_string().contains("is not running"));
    }

    #[test]
    fn a_target_that_crashed_before_the_debug_container_joined_it_is_offered_a_copy() {
        let raced = Error::StartFailed {
            pod: "web".into(),
            container: "dbg-abcde".into(),
            image: "base".into(),
            reason: "CreateContainerError".into(),
            message: "failed to get target container \"app\": container is not running".into(),
        };
        let error = with_copy_hint(raced, &options(Mode::Interactive, None), "shop");
        assert!(error.hint().unwrap().contains("pod/web -n shop --copy`"));
        let pull = Error::StartFailed {
            pod: "web".into(),
            container: "dbg-abcde".into(),
            image: "base".into(),
            reason: "ErrImagePull".into(),
            message: "not found".into(),
        };
        let error = with_copy_hint(pull, &options(Mode::Interactive, None), "shop");
        assert!(!error.hint().unwrap_or_default().contains("--copy"));
    }

    #[test]
    fn a_pending_pod_is_not_offered_a_copy() {
        let pending = Error::PodNotRunning {
            pod: "web".into(),
            phase: "Pending".into(),
            reason: None,
        };
        let error = with_copy_hint(pending, &options(Mode::Interactive, None), "shop");
        assert!(!error.hint().unwrap_or_default().contains("--copy"));
        let failed = Error::PodNotRunning {
            pod: "web".into(),
            phase: "Failed".into(),
            reason: None,
        };
        let error = with_copy_hint(failed, &options(Mode::Interactive, None), "shop");
        assert!(error.hint().unwrap().contains("pod/web -n shop --copy`"));
    }
}
