//! A fan-out before anything is sent: its options as `cmd/options.rs` builds them, and the
//! runbook read and checked against the flags ([`prepare`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::base::error::Error;
use crate::base::error::UsageError;
use crate::fanout::runbook::{self, ImageSetting, Runbook};
use crate::output::printer::OutputFormat;
use crate::session::options::{DebugOptions, Mode};
use crate::session::profile::Profile;
use crate::session::target::{TargetKind, TargetRef};
use crate::toolkit::catalog::{Catalog, ImageChoice};
use crate::toolkit::config::DefaultToolkit;

/// `--parallel` when not given.
pub const DEFAULT_PARALLEL: usize = 10;

/// Where the steps come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Builtin(String),
    /// `-l SELECTOR -- COMMAND`.
    Command(Vec<String>),
}

/// The session flags of a fan-out; unset ones fall back to the runbook, then the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFlags {
    /// `--image` or `--toolkit` (auto included), resolved through the catalog.
    pub image: Option<ImageChoice>,
    pub profile: Option<Profile>,
    pub timeout: Option<Duration>,
    pub ttl: Duration,
    pub idle: Duration,
    pub reason: Option<String>,
    pub reuse: bool,
    /// `--target-pid N`: the target process in every pod (a pod sharing one PID namespace
    /// where the agent cannot tell it by the container ID).
    pub target_pid: Option<u32>,
}

/// A validated fan-out command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutOptions {
    pub source: Source,
    pub targets: Vec<TargetRef>,
    pub selector: Option<String>,
    pub all_namespaces: bool,
    pub container: Option<String>,
    pub parallel: usize,
    pub format: Option<OutputFormat>,
    pub out_dir: Option<PathBuf>,
    pub session: SessionFlags,
    /// Where our images are (config file, `DISTROLESS_DEBUG_REGISTRY`).
    pub catalog: Catalog,
    /// The config file's `toolkit:`, after the flags and the runbook.
    pub default_toolkit: Option<DefaultToolkit>,
}

/// A fan-out whose runbook has been read and checked against the flags: nothing was sent yet.
#[derive(Debug)]
pub struct Prepared {
    pub(super) options: FanoutOptions,
    pub(super) runbook: Runbook,
    pub(super) image: ImageChoice,
    pub(super) profile: Profile,
    pub(super) timeout: Duration,
}

impl Prepared {
    /// The session options of one pod of the run.
    pub fn debug_options(&self, pod: &str) -> DebugOptions {
        let flags = &self.options.session;
        DebugOptions {
            target: TargetRef {
                kind: TargetKind::Pod,
                name: pod.to_string(),
            },
            container: self.options.container.clone(),
            image: self.image.clone(),
            profile: self.profile,
            timeout: self.timeout,
            ttl: flags.ttl,
            idle: flags.idle,
            reason: flags.reason.clone(),
            reuse: flags.reuse,
            mode: Mode::Command {
                argv: Vec::new(),
                stdin: false,
                tty: false,
            },
            dry_run: None,
            format: None,
            mirror_volumes: false,
            copy_env: false,
            record: crate::output::recording::RecordOptions::off(),
            target_pid: flags.target_pid,
        }
    }
}

/// Reads the runbook and checks it against the flags, before any request to the cluster.
pub fn prepare(options: &FanoutOptions) -> Result<Prepared, Error> {
    let runbook = match &options.source {
        Source::File(path) => runbook::load(path)?,
        Source::Builtin(name) => match runbook::builtin(name) {
            Some(result) => result.map_err(runbook::LoadError::from)?,
            None => {
                return Err(Error::Usage(UsageError(format!(
                    "`--builtin {name}`: there is no such runbook; the built-in ones are {}",
                    runbook::builtin_names().join(", ")
                ))));
            }
        },
        Source::Command(argv) => Runbook::one_command(argv.clone()),
    };
    let catalog = &options.catalog;
    let image = match (
        &options.session.image,
        &runbook.image,
        options.default_toolkit,
    ) {
        (Some(choice), _, _) => choice.clone(),
        (None, Some(ImageSetting::Image(reference)), _) => ImageChoice::Custom(reference.clone()),
        (None, Some(ImageSetting::Toolkit(toolkit)), _) => catalog.image(*toolkit),
        (None, Some(ImageSetting::Auto), _) | (None, None, Some(DefaultToolkit::Auto)) => {
            ImageChoice::Auto(catalog.clone())
        }
        (None, None, Some(DefaultToolkit::Toolkit(toolkit))) => catalog.image(toolkit),
        (None, None, None) => ImageChoice::Hinted(catalog.clone()),
    };
    if !image.has_agent()
        && let Some(step) = runbook.needs_agent()
    {
        let what = if step.when.is_some() {
            "`when`"
        } else {
            "`collect`"
        };
        return Err(Error::Usage(UsageError(format!(
            "step {:?} uses {what}, which needs the agent of our toolkit images; {} is not one: use `--toolkit` (or `toolkit:` in the runbook) instead of an image",
            step.name,
            image.reference()
        ))));
    }
    if options.out_dir.is_none()
        && let Some(step) = runbook.collects()
    {
        return Err(Error::Usage(UsageError(format!(
            "step {:?} collects files: say where they go with `--out-dir DIR`",
            step.name
        ))));
    }
    Ok(Prepared {
        profile: options
            .session
            .profile
            .or(runbook.profile)
            .unwrap_or(Profile::Auto),
        timeout: options
            .session
            .timeout
            .or(runbook.timeout)
            .unwrap_or(runbook::DEFAULT_TIMEOUT),
        image,
        runbook,
        options: options.clone(),
    })
}
