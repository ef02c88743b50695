//! Which toolkit fits a target's runtime: from what its pod spec names (image, command,
//! `-jar`) and from the runtime our agent reports. Pure functions; settling `--toolkit auto`
//! against a live target is `session/settle.rs`'s.

use k8s_openapi::api::core::v1::Container;

use crate::toolkit::catalog::{ImageChoice, Toolkit};

/// The toolkit for a runtime the agent reports (`info`'s `runtime`): `other` and unknown
/// values get base.
pub fn toolkit_for_runtime(runtime: Option<&str>) -> Toolkit {
    match runtime {
        Some("go") => Toolkit::Go,
        Some("jvm") => Toolkit::Jvm,
        Some("python") => Toolkit::Python,
        Some("node") => Toolkit::Node,
        _ => Toolkit::Base,
    }
}

/// The default image (`ImageChoice::Hinted`) settled from the pod spec alone: the runtime
/// toolkit the target container's image or command gives away, else base. It needs nothing
/// but the pod the session has already read, so the default session keeps its four round
/// trips; `--toolkit auto` goes further (the agent's `info`) at the price of more.
pub fn hinted(image: &ImageChoice, container: &Container) -> Option<ImageChoice> {
    let ImageChoice::Hinted(catalog) = image else {
        return None;
    };
    Some(catalog.image(toolkit_from_spec(container).unwrap_or(Toolkit::Base)))
}

/// A runtime toolkit the container's image name or command gives away, if any.
pub fn toolkit_from_spec(container: &Container) -> Option<Toolkit> {
    let image = container.image.as_deref().unwrap_or_default();
    // The repository's last path component, without tag or digest.
    let without_digest = image.split('@').next().unwrap_or_default();
    let last = without_digest.rsplit('/').next().unwrap_or_default();
    let repository = last
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let by_image = if [
        "java",
        "openjdk",
        "eclipse-temurin",
        "amazoncorretto",
        "azul-zulu",
    ]
    .iter()
    .any(|p| repository.starts_with(p))
    {
        Some(Toolkit::Jvm)
    } else if repository.starts_with("python") || repository.starts_with("pypy") {
        Some(Toolkit::Python)
    } else if repository == "node" || repository.starts_with("nodejs") {
        Some(Toolkit::Node)
    } else {
        None
    };
    let program = container
        .command
        .iter()
        .flatten()
        .next()
        .map(|c| c.rsplit('/').next().unwrap_or_default().to_string());
    let by_command = match program.as_deref() {
        Some("java") => Some(Toolkit::Jvm),
        Some(p) if p.starts_with("python") || p.starts_with("pypy") => Some(Toolkit::Python),
        Some("node" | "nodejs") => Some(Toolkit::Node),
        _ => None,
    };
    // Only args (the image's entrypoint is kept): `-jar app.jar` is a JVM's.
    let by_args = container
        .args
        .iter()
        .flatten()
        .any(|a| a == "-jar")
        .then_some(Toolkit::Jvm);
    by_command.or(by_args).or(by_image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, command: &[&str]) -> Container {
        Container {
            name: "app".into(),
            image: Some(image.into()),
            command: (!command.is_empty()).then(|| command.iter().map(|c| c.to_string()).collect()),
            ..Container::default()
        }
    }

    #[test]
    fn the_default_takes_the_runtime_the_spec_names_and_base_otherwise() {
        let catalog = crate::toolkit::catalog::Catalog::default();
        let default = ImageChoice::Hinted(catalog.clone());
        let java = container("eclipse-temurin:21-jre", &[]);
        assert_eq!(hinted(&default, &java), Some(catalog.image(Toolkit::Jvm)));
        let app = container("sandbox.local/distroless-app:nonroot", &[]);
        assert_eq!(hinted(&default, &app), Some(catalog.image(Toolkit::Base)));
        // A toolkit the user (or the config file) chose is never second-guessed.
        let chosen = catalog.image(Toolkit::Full);
        assert_eq!(hinted(&chosen, &java), None);
        assert_eq!(hinted(&ImageChoice::Custom("busybox".into()), &java), None);
    }

    #[test]
    fn the_runtime_the_agent_reports_picks_the_toolkit() {
        assert_eq!(toolkit_for_runtime(Some("go")), Toolkit::Go);
        assert_eq!(toolkit_for_runtime(Some("jvm")), Toolkit::Jvm);
        assert_eq!(toolkit_for_runtime(Some("python")), Toolkit::Python);
        assert_eq!(toolkit_for_runtime(Some("node")), Toolkit::Node);
        assert_eq!(toolkit_for_runtime(Some("other")), Toolkit::Base);
        assert_eq!(toolkit_for_runtime(None), Toolkit::Base);
    }

    #[test]
    fn image_names_and_commands_that_give_the_runtime_away() {
        let cases = [
            (
                "gcr.io/distroless/java17-debian12:nonroot",
                &[][..],
                Some(Toolkit::Jvm),
            ),
            ("eclipse-temurin:21-jre", &[], Some(Toolkit::Jvm)),
            (
                "gcr.io/distroless/python3-debian12",
                &[],
                Some(Toolkit::Python),
            ),
            ("node:22-slim", &[], Some(Toolkit::Node)),
            (
                "gcr.io/distroless/nodejs22-debian12@sha256:ab",
                &[],
                Some(Toolkit::Node),
            ),
            (
                "registry:5000/acme/api:1.2",
                &["/usr/bin/java", "-jar"],
                Some(Toolkit::Jvm),
            ),
            (
                "registry:5000/acme/api:1.2",
                &["python3.12"],
                Some(Toolkit::Python),
            ),
            (
                "registry:5000/acme/api:1.2",
                &["/nodejs/bin/node"],
                Some(Toolkit::Node),
            ),
            // Go binaries look like anything else: only the agent can tell.
            ("gcr.io/distroless/static-debian12", &["/app/server"], None),
            ("prom/node-exporter:v1.8", &[], None),
            ("sandbox.local/distroless-app:nonroot", &[], None),
        ];
        for (image, command, expected) in cases {
            assert_eq!(
                toolkit_from_spec(&container(image, command)),
                expected,
                "{image} {command:?}"
            );
        }
    }

    #[test]
    fn a_jar_in_the_args_is_a_jvm() {
        let mut c = container("registry:5000/acme/api:1.2", &[]);
        c.args = Some(vec!["-jar".into(), "/app/app.jar".into()]);
        assert_eq!(toolkit_from_spec(&c), Some(Toolkit::Jvm));
    }
}
