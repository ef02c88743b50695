//! What a debug session is asked to do, as `cmd/options.rs` builds it from the flags: the
//! target, the image and profile, the timeouts, and what runs once the container is up.

use std::time::Duration;

use crate::output::printer::OutputFormat;
use crate::output::recording::RecordOptions;
use crate::session::profile::Profile;
use crate::session::target::TargetRef;
use crate::toolkit::catalog::ImageChoice;

/// What the session does once the debug container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A shell with a terminal: raw mode, resize, Ctrl-C to the remote.
    Interactive,
    /// A shell without a terminal, reading the piped stdin (`echo ls | kubectl distroless-debug pod/x`).
    PipedShell,
    /// `-- COMMAND...`; `stdin` says whether our stdin is forwarded, `tty` whether it gets one.
    Command {
        argv: Vec<String>,
        stdin: bool,
        tty: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    Client,
    Server,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DebugOptions {
    pub target: TargetRef,
    pub container: Option<String>,
    pub image: ImageChoice,
    pub profile: Profile,
    pub timeout: Duration,
    pub ttl: Duration,
    pub idle: Duration,
    pub reason: Option<String>,
    pub reuse: bool,
    pub mode: Mode,
    pub dry_run: Option<DryRun>,
    pub format: Option<OutputFormat>,
    /// `--mirror-volumes`: the target's volumes also under /target-volumes.
    pub mirror_volumes: bool,
    /// `--copy-env`: the target's env and envFrom in the debug container.
    pub copy_env: bool,
    /// The local recording: `--no-record`, `--record FILE`, `--record-input`, the config file.
    pub record: RecordOptions,
    /// `--target-pid N`: the target process, when the pod shares one PID namespace and the
    /// agent cannot tell it by the container's ID.
    pub target_pid: Option<u32>,
}

#[cfg(test)]
impl DebugOptions {
    /// A session on `pod/web` with the defaults of the flags, for tests to adjust.
    pub fn example(image: ImageChoice) -> DebugOptions {
        DebugOptions {
            target: TargetRef {
                kind: crate::session::target::TargetKind::Pod,
                name: "web".into(),
            },
            container: None,
            image,
            profile: Profile::Auto,
            timeout: Duration::from_secs(120),
            ttl: Duration::from_secs(3600),
            idle: Duration::from_secs(900),
            reason: None,
            reuse: true,
            mode: Mode::Interactive,
            dry_run: None,
            format: None,
            mirror_volumes: false,
            copy_env: false,
            record: RecordOptions::off(),
            target_pid: None,
        }
    }
}
