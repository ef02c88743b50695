//! The user's config file, `~/.config/kubectl-distroless-debug/config.yaml`: where our images
//! are (a mirror for air-gapped clusters, or one reference per toolkit) and the default
//! toolkit.
//!
//! ```yaml
//! registry: registry.corp:5000/distroless-debug   # <registry>/<toolkit>:<plugin version>
//! images:                                          # whole references, per toolkit
//!   jvm: registry.corp:5000/tools/jvm-debug:17
//! toolkit: auto                                    # what a session uses without --toolkit
//! record: false                                    # no local recordings (docs/recording.md)
//! recordMaxBytes: 16777216                         # size cap of one session's recording
//! ```
//!
//! `$XDG_CONFIG_HOME` is honoured (when absolute, as the XDG spec says). A missing file is no
//! configuration; a file that cannot be read or understood is an error that names the file,
//! the line and the column, before any request. `DISTROLESS_DEBUG_REGISTRY`, when set, wins
//! over the file's `registry` *and* `images`: one variable is then the whole story, which is
//! what a CI job or an air-gapped jump host that sets it expects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::toolkit::catalog::{Catalog, Toolkit};

const DIR: &str = "kubectl-distroless-debug";
const FILE: &str = "config.yaml";

/// The default toolkit a config file can set: one of ours, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultToolkit {
    Auto,
    Toolkit(Toolkit),
}

/// What the file says, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from; None when there is no file.
    pub path: Option<PathBuf>,
    pub registry: Option<String>,
    pub images: BTreeMap<Toolkit, String>,
    pub toolkit: Option<DefaultToolkit>,
    /// `record`: whether sessions are recorded locally (default: yes).
    pub record: Option<bool>,
    /// `recordMaxBytes`: the size cap of one session's recording.
    pub record_max_bytes: Option<u64>,
}

/// Why the file cannot be used, with its path and, when it is about a place in the file, the
/// line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    pub at: Option<(u64, u64)>,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    registry: Option<Spanned<String>>,
    images: Option<RawImages>,
    toolkit: Option<Spanned<String>>,
    record: Option<bool>,
    #[serde(rename = "recordMaxBytes")]
    record_max_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImages {
    base: Option<Spanned<String>>,
    net: Option<Spanned<String>>,
    full: Option<Spanned<String>>,
    jvm: Option<Spanned<String>>,
    python: Option<Spanned<String>>,
    go: Option<Spanned<String>>,
    node: Option<Spanned<String>>,
}

/// Where the config file is: `$XDG_CONFIG_HOME/…` if that is absolute, else `$HOME/.config/…`.
pub fn path_from(xdg_config_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let base = match xdg_config_home.filter(|d| Path::new(d).is_absolute()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(home.filter(|h| !h.is_empty())?).join(".config"),
    };
    Some(base.join(DIR).join(FILE))
}

/// The config file of this user, or the default configuration when there is none.
pub fn load() -> Result<Config, ConfigError> {
    let var = |name| std::env::var(name).ok();
    match path_from(var("XDG_CONFIG_HOME").as_deref(), var("HOME").as_deref()) {
        Some(path) => load_from(&path),
        None => Ok(Config::default()),
    }
}

pub fn load_from(path: &Path) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => {
            return Err(ConfigError {
                path: path.to_path_buf(),
                at: None,
                message: format!("cannot read it ({e})"),
            });
        }
    };
    let mut config = parse(&text).map_err(|(at, message)| ConfigError {
        path: path.to_path_buf(),
        at,
        message,
    })?;
    config.path = Some(path.to_path_buf());
    Ok(config)
}

type Problem = (Option<(u64, u64)>, String);

/// The file's text, checked: every value where it is used later is valid here.
pub fn parse(text: &str) -> Result<Config, Problem> {
    // A file of comments only (or nothing) is no configuration, not an error.
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(Config::default());
    }
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| (l.line(), l.column()))
            .filter(|(l, _)| *l > 0);
        let mut message = e.without_snippet().to_string();
        if let Some((line, column)) = at
            && let Some(stripped) =
                message.strip_suffix(&format!(" at line {line}, column {column}"))
        {
            message = stripped.to_string();
        }
        (at, message)
    })?;
    let located = |s: &Spanned<String>, message: String| -> Problem {
        (Some((s.referenced.line(), s.referenced.column())), message)
    };

    let registry = match raw.registry {
        Some(r) => {
            let value = r.value.trim().trim_end_matches('/').to_string();
            if value.is_empty() || value.chars().any(char::is_whitespace) || value.contains("://") {
                return Err(located(
                    &r,
                    format!(
                        "`registry: {:?}` is not a registry and repository prefix, e.g. registry.corp:5000/distroless-debug (no scheme, no spaces)",
                        r.value
                    ),
                ));
            }
            Some(value)
        }
        None => None,
    };

    let mut images = BTreeMap::new();
    if let Some(raw) = raw.images {
        let entries = [
            (Toolkit::Base, raw.base),
            (Toolkit::Net, raw.net),
            (Toolkit::Full, raw.full),
            (Toolkit::Jvm, raw.jvm),
            (Toolkit::Python, raw.python),
            (Toolkit::Go, raw.go),
            (Toolkit::Node, raw.node),
        ];
        for (toolkit, reference) in entries {
            let Some(reference) = reference else { continue };
            let value = reference.value.trim();
            if value.is_empty() || value.chars().any(char::is_whitespace) || value.contains("://") {
                return Err(located(
                    &reference,
                    format!(
                        "`images.{}: {:?}` is not an image reference, e.g. registry.corp/tools/{}-debug:1.0",
                        toolkit.name(),
                        reference.value,
                        toolkit.name()
                    ),
                ));
            }
            images.insert(toolkit, value.to_string());
        }
    }

    let toolkit = match raw.toolkit {
        None => None,
        Some(t) if t.value == "auto" => Some(DefaultToolkit::Auto),
        Some(t) => match Toolkit::from_name(&t.value) {
            Some(toolkit) => Some(DefaultToolkit::Toolkit(toolkit)),
            None => {
                let names: Vec<&str> = Toolkit::ALL.iter().map(|t| t.name()).collect();
                return Err(located(
                    &t,
                    format!(
                        "`toolkit: {}` is not a toolkit: auto, {}",
                        t.value,
                        names.join(", ")
                    ),
                ));
            }
        },
    };

    Ok(Config {
        path: None,
        registry,
        images,
        toolkit,
        record: raw.record,
        record_max_bytes: raw.record_max_bytes,
    })
}

impl Config {
    /// The catalog of images, `DISTROLESS_DEBUG_REGISTRY` (`env_registry`) winning over the
    /// whole file.
    pub fn catalog(&self, env_registry: Option<&str>) -> Catalog {
        match env_registry {
            Some(registry) => Catalog {
                registry: Some(registry.to_string()),
                images: BTreeMap::new(),
            },
            None => Catalog {
                registry: self.registry.clone(),
                images: self.images.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolkit::catalog::VERSION;

    #[test]
    fn the_file_lives_under_xdg_config_home_else_home() {
        assert_eq!(
            path_from(Some("/x/cfg"), Some("/home/a")),
            Some(PathBuf::from("/x/cfg/kubectl-distroless-debug/config.yaml"))
        );
        // The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored.
        assert_eq!(
            path_from(Some("cfg"), Some("/home/a")),
            Some(PathBuf::from(
                "/home/a/.config/kubectl-distroless-debug/config.yaml"
            ))
        );
        assert_eq!(path_from(None, None), None);
    }

    #[test]
    fn a_mirror_and_per_toolkit_images() {
        let config = parse(
            "# air-gapped\nregistry: registry.corp:5000/dd/\nimages:\n  jvm: registry.corp:5000/tools/jvm:17\ntoolkit: auto\n",
        )
        .unwrap();
        assert_eq!(config.registry.as_deref(), Some("registry.corp:5000/dd"));
        assert_eq!(config.toolkit, Some(DefaultToolkit::Auto));
        let catalog = config.catalog(None);
        assert_eq!(
            catalog.image(Toolkit::Full).reference(),
            format!("registry.corp:5000/dd/full:{VERSION}")
        );
        assert_eq!(
            catalog.image(Toolkit::Jvm).reference(),
            "registry.corp:5000/tools/jvm:17"
        );
    }

    #[test]
    fn the_environment_variable_wins_over_the_whole_file() {
        let config = parse("registry: a.corp/dd\nimages:\n  net: a.corp/net:1\n").unwrap();
        let catalog = config.catalog(Some("b.corp/dd"));
        assert_eq!(
            catalog.image(Toolkit::Net).reference(),
            format!("b.corp/dd/net:{VERSION}")
        );
    }

    #[test]
    fn recording_can_be_turned_off_and_capped() {
        let config = parse("record: false\nrecordMaxBytes: 1048576\n").unwrap();
        assert_eq!(config.record, Some(false));
        assert_eq!(config.record_max_bytes, Some(1048576));
        assert!(parse("record: sometimes\n").is_err());
    }

    #[test]
    fn an_empty_or_commented_file_is_no_configuration() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(parse("# nothing yet\n\n").unwrap(), Config::default());
    }

    #[test]
    fn mistakes_are_reported_with_their_line_and_column() {
        let (at, message) = parse("registry: a.corp/dd\nimages:\n  jvmm: x/y:1\n").unwrap_err();
        assert_eq!(at.map(|(l, _)| l), Some(3), "{message}");
        assert!(message.contains("jvmm"), "{message}");

        let (at, message) = parse("registry: a.corp/dd\ntoolkit: java\n").unwrap_err();
        assert_eq!(at, Some((2, 10)));
        assert!(message.contains("auto, base, net"), "{message}");

        let (at, message) = parse("registry: https://a.corp/dd\n").unwrap_err();
        assert_eq!(at, Some((1, 11)));
        assert!(message.contains("no scheme"), "{message}");

        let (at, message) = parse("images:\n  net: \"a b\"\n").unwrap_err();
        assert_eq!(at.map(|(l, _)| l), Some(2), "{message}");

        let (at, _) = parse("registry: [unclosed\n").unwrap_err();
        assert!(at.is_some());
        assert!(parse("- a list\n").is_err());
    }

    #[test]
    fn a_missing_file_is_no_configuration_and_a_bad_one_names_itself() {
        let dir = std::env::temp_dir().join(format!("dd-config-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        assert_eq!(
            load_from(&dir.join("absent.yaml")).unwrap(),
            Config::default()
        );
        let file = dir.join("config.yaml");
        std::fs::write(&file, "toolkit: nope\n").unwrap();
        let error = load_from(&file).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}:1:10: `toolkit: nope`", file.display())),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
