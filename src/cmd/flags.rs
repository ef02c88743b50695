//! What every command's options share: the facts about the process's surroundings that
//! change what flags mean ([`Environment`]), and the small checks of single flags.

use std::time::Duration;

use crate::base::duration;
use crate::base::error::UsageError;
use crate::toolkit::catalog::ToolkitArg;
use crate::toolkit::catalog::{Catalog, ImageChoice};

/// Facts about the process's surroundings that change what flags mean.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub stdin_is_terminal: bool,
    /// Stdin is a character device other than a terminal (`</dev/null`): nothing to forward.
    pub stdin_is_null: bool,
    pub stdout_is_terminal: bool,
    pub stderr_is_terminal: bool,
    /// `NO_COLOR` is set (to anything non-empty): https://no-color.org
    pub no_color: bool,
    /// `DISTROLESS_DEBUG_REGISTRY`: where our toolkit images live instead of ghcr.io.
    pub registry: Option<String>,
    /// The user's config file (`toolkit/config.rs`); loaded by `main`, since reading it can fail.
    pub config: crate::toolkit::config::Config,
}

impl Environment {
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Environment {
            stdin_is_terminal: std::io::stdin().is_terminal(),
            stdin_is_null: !std::io::stdin().is_terminal()
                && rustix::fs::fstat(std::io::stdin()).is_ok_and(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode).is_char_device()
                }),
            stdout_is_terminal: std::io::stdout().is_terminal(),
            stderr_is_terminal: std::io::stderr().is_terminal(),
            no_color: non_empty("NO_COLOR").is_some(),
            registry: non_empty("DISTROLESS_DEBUG_REGISTRY")
                .map(|v| v.to_string_lossy().into_owned()),
            config: crate::toolkit::config::Config::default(),
        }
    }

    /// Where our images are: the environment variable, else the config file.
    pub fn catalog(&self) -> Catalog {
        self.config.catalog(self.registry.as_deref())
    }
}

pub fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

pub fn check_reason(reason: Option<&str>) -> Result<(), UsageError> {
    match reason {
        Some(reason) if reason.len() > 256 || reason.chars().any(char::is_control) => Err(usage(
            "`--reason` must be one line of at most 256 bytes (a ticket id, a few words)",
        )),
        _ => Ok(()),
    }
}

/// The image `--image` or `--toolkit` asks for, if either is given.
pub fn flag_image(
    image: Option<&str>,
    toolkit: Option<ToolkitArg>,
    env: &Environment,
) -> Result<Option<ImageChoice>, UsageError> {
    Ok(match (image, toolkit) {
        (Some(reference), _) => Some(ImageChoice::Custom(image_reference(reference)?)),
        (None, Some(ToolkitArg::Auto)) => Some(ImageChoice::Auto(env.catalog())),
        (None, Some(toolkit)) => Some(env.catalog().image(toolkit.into())),
        (None, None) => None,
    })
}

pub fn image_reference(reference: &str) -> Result<String, UsageError> {
    if reference.trim().is_empty() || reference.chars().any(char::is_whitespace) {
        return Err(usage(format!(
            "`--image {reference:?}` is not an image reference"
        )));
    }
    Ok(reference.to_string())
}

pub fn positive(flag: &str, text: &str) -> Result<Duration, UsageError> {
    let d = duration::parse(text).map_err(|e| usage(format!("`--{flag}`: {e}")))?;
    if d.is_zero() {
        return Err(usage(format!("`--{flag}` must be more than 0")));
    }
    Ok(d)
}
