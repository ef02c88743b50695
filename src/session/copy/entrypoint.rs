//! The held target's original entrypoint, known exactly: never guessed.
//!
//! In this order: `--entrypoint` when given (it always wins); the pod spec's `command` (with
//! its `args`); the image config's `Entrypoint` with the spec's `args` or, without them, its
//! `Cmd` (the container runtime's own rule,
//! https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/#notes);
//! else a refusal naming both ways to say it. The image config comes from the registry
//! (`registry.rs`) only when the spec does not settle it.

use std::fmt;

use k8s_openapi::api::core::v1::Container;
use serde::Deserialize;

use crate::base::error::Failure;
use crate::base::exit::ExitStatus;

/// What an image config says about how the image starts (`config.Entrypoint`/`config.Cmd`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageStart {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Deserialize)]
struct RunConfig {
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
}

impl ImageStart {
    /// Reads an OCI (or Docker) image config blob.
    pub fn from_config_json(text: &str) -> Result<ImageStart, String> {
        let file: ConfigFile =
            serde_json::from_str(text).map_err(|e| format!("not an image config: {e}"))?;
        let config = file.config;
        Ok(ImageStart {
            entrypoint: config
                .as_ref()
                .and_then(|c| c.entrypoint.clone())
                .unwrap_or_default(),
            cmd: config.and_then(|c| c.cmd).unwrap_or_default(),
        })
    }
}

/// Where the held entrypoint came from, for the user's note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    PodSpec,
    /// The image config's Entrypoint with the spec's args.
    ImageAndSpecArgs,
    ImageConfig,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--entrypoint",
            Origin::PodSpec => "the pod spec's command",
            Origin::ImageAndSpecArgs => "the image's ENTRYPOINT and the pod spec's args",
            Origin::ImageConfig => "the image config's ENTRYPOINT/CMD",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrypoint {
    pub argv: Vec<String>,
    pub origin: Origin,
}

/// Whether the registry has to be asked: neither `--entrypoint` nor the spec's `command` says.
pub fn needs_image_config(container: &Container, flag: Option<&[String]>) -> bool {
    flag.is_none() && container.command.as_ref().is_none_or(|c| c.is_empty())
}

/// The entrypoint to hold, from the flag, the spec and the image config (when read); `why`
/// says why the image config is missing, for the refusal.
pub fn entrypoint_of(
    pod: &str,
    container: &Container,
    image: Result<&ImageStart, &str>,
    flag: Option<&[String]>,
) -> Result<Entrypoint, NoEntrypoint> {
    if let Some(argv) = flag.filter(|a| !a.is_empty()) {
        return Ok(Entrypoint {
            argv: argv.to_vec(),
            origin: Origin::Flag,
        });
    }
    let args = container.args.clone().filter(|a| !a.is_empty());
    if let Some(command) = container.command.clone().filter(|c| !c.is_empty()) {
        let mut argv = command;
        argv.extend(args.unwrap_or_default());
        return Ok(Entrypoint {
            argv,
            origin: Origin::PodSpec,
        });
    }
    let refuse = |why: String| NoEntrypoint {
        pod: pod.to_string(),
        container: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        why,
    };
    let image = image.map_err(|why| refuse(why.to_string()))?;
    let (argv, origin) = match args {
        Some(args) => {
            let mut argv = image.entrypoint.clone();
            argv.extend(args);
            (argv, Origin::ImageAndSpecArgs)
        }
        None => {
            let mut argv = image.entrypoint.clone();
            argv.extend(image.cmd.iter().cloned());
            (argv, Origin::ImageConfig)
        }
    };
    if argv.is_empty() {
        return Err(refuse(
            "its image config has neither ENTRYPOINT nor CMD".to_string(),
        ));
    }
    // Words from the image are literal, but the kubelet expands `$(NAME)` in a command:
    // `$$` is its escape for `$`.
    let argv = argv.into_iter().map(|a| a.replace("$(", "$$(")).collect();
    Ok(Entrypoint { argv, origin })
}

/// The entrypoint of the target is not known: nothing was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoEntrypoint {
    pub pod: String,
    pub container: String,
    pub image: String,
    /// Why the image config did not say it.
    pub why: String,
}

impl fmt::Display for NoEntrypoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot tell how container {} of pod {} starts: the pod spec sets no `command`, and the entrypoint of image {} could not be read from its registry ({}); nothing was created",
            self.container, self.pod, self.image, self.why
        )
    }
}

impl std::error::Error for NoEntrypoint {}

impl Failure for NoEntrypoint {
    fn hint(&self) -> Option<String> {
        Some(format!(
            "say it with `--entrypoint 'CMD ARGS'` (e.g. the image's ENTRYPOINT and CMD, as `docker inspect {}` shows them), or set `command` in the pod spec; for a private registry, `docker login` (~/.docker/config.json) or the pod's imagePullSecrets give access",
            self.image
        ))
    }

    /// The command line has to say it: nothing was sent.
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
        Container {
            name: "app".into(),
            image: Some("127.0.0.1:5000/distroless/app:v1".into()),
            command: command.map(words),
            args: args.map(words),
            ..Container::default()
        }
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn image() -> ImageStart {
        ImageStart {
            entrypoint: strings(&["/app/server"]),
            cmd: strings(&["--port", "80"]),
        }
    }

    #[test]
    fn the_spec_command_and_args_are_the_entrypoint() {
        let c = container(Some(&["/bin/app"]), Some(&["-v"]));
        let got = entrypoint_of("web", &c, Err("not read"), None).unwrap();
        assert_eq!(got.argv, strings(&["/bin/app", "-v"]));
        assert_eq!(got.origin, Origin::PodSpec);
        assert!(!needs_image_config(&c, None));
    }

    #[test]
    fn spec_args_alone_follow_the_image_entrypoint_and_replace_its_cmd() {
        let c = container(None, Some(&["--port", "8080"]));
        assert!(needs_image_config(&c, None));
        let got = entrypoint_of("web", &c, Ok(&image()), None).unwrap();
        assert_eq!(got.argv, strings(&["/app/server", "--port", "8080"]));
        assert_eq!(got.origin, Origin::ImageAndSpecArgs);
        // Without the image config, args alone say too little.
        assert!(entrypoint_of("web", &c, Err("timed out"), None).is_err());
    }

    #[test]
    fn without_a_spec_command_the_image_config_says_it() {
        let got = entrypoint_of("web", &container(None, None), Ok(&image()), None).unwrap();
        assert_eq!(got.argv, strings(&["/app/server", "--port", "80"]));
        assert_eq!(got.origin, Origin::ImageConfig);
    }

    #[test]
    fn the_flag_always_wins() {
        let flag = strings(&["/app/server", "--debug"]);
        let c = container(Some(&["/bin/app"]), None);
        assert!(!needs_image_config(&c, Some(&flag)));
        let got = entrypoint_of("web", &c, Ok(&image()), Some(&flag)).unwrap();
        assert_eq!(got.argv, flag);
        assert_eq!(got.origin, Origin::Flag);
    }

    #[test]
    fn nothing_known_is_refused_naming_both_ways() {
        let refused = entrypoint_of(
            "web",
            &container(None, None),
            Err("registry unreachable"),
            None,
        )
        .unwrap_err();
        let text = refused.to_string();
        assert!(text.contains("registry unreachable"), "{text}");
        assert!(text.contains("`command`"), "{text}");
        assert!(refused.hint().unwrap().contains("--entrypoint 'CMD ARGS'"));
        assert_eq!(refused.exit_status(), ExitStatus::Usage);
        let empty = ImageStart::default();
        assert!(entrypoint_of("web", &container(None, None), Ok(&empty), None).is_err());
    }

    #[test]
    fn image_words_are_escaped_for_the_kubelet() {
        let image = ImageStart {
            entrypoint: strings(&["/app", "$(HOME)"]),
            cmd: vec![],
        };
        let got = entrypoint_of("web", &container(None, None), Ok(&image), None).unwrap();
        assert_eq!(got.argv, strings(&["/app", "$$(HOME)"]));
    }

    #[test]
    fn an_image_config_blob_is_read() {
        let text = r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Entrypoint":["/app/server"],"Cmd":null}}"#;
        let start = ImageStart::from_config_json(text).unwrap();
        assert_eq!(start.entrypoint, strings(&["/app/server"]));
        assert!(start.cmd.is_empty());
        assert!(ImageStart::from_config_json("<html>").is_err());
    }
}
