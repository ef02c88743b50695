//! Which image a session runs: one of our toolkit images, or any image the user names.
//!
//! Ours are `ghcr.io/kubectl-distroless-debug/<toolkit>:<plugin version>` and carry the agent;
//! `DISTROLESS_DEBUG_REGISTRY` points them at a mirror for air-gapped clusters. Any other image
//! (`--image`) runs in a generic mode that needs only `sh` and `sleep` in it. A config file
//! (`toolkit/config.rs`) can point the registry at a mirror or name one image per toolkit: the
//! [`Catalog`] is that setting, merged with the environment.

use clap::ValueEnum;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ToolkitArg {
    /// The target's runtime decides (sessions and `run`; `cp`, `snapshot` and `info` use base).
    Auto,
    Base,
    Net,
    Full,
    Jvm,
    Python,
    Go,
    Node,
}

impl From<ToolkitArg> for Toolkit {
    fn from(arg: ToolkitArg) -> Self {
        match arg {
            // Sessions and `run` settle auto per target before this (`session/settle.rs`); `cp`,
            // `snapshot` and `info` need only the agent: base, the smallest.
            ToolkitArg::Auto | ToolkitArg::Base => Toolkit::Base,
            ToolkitArg::Net => Toolkit::Net,
            ToolkitArg::Full => Toolkit::Full,
            ToolkitArg::Jvm => Toolkit::Jvm,
            ToolkitArg::Python => Toolkit::Python,
            ToolkitArg::Go => Toolkit::Go,
            ToolkitArg::Node => Toolkit::Node,
        }
    }
}

/// The registry and repository prefix of our images.
pub const DEFAULT_REGISTRY: &str = "ghcr.io/kubectl-distroless-debug";

/// The image tag: images are released with the plugin, so the agent speaks our protocol.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Toolkit {
    Base,
    Net,
    Full,
    Jvm,
    Python,
    Go,
    Node,
}

impl Toolkit {
    pub const ALL: [Toolkit; 7] = [
        Toolkit::Base,
        Toolkit::Net,
        Toolkit::Full,
        Toolkit::Jvm,
        Toolkit::Python,
        Toolkit::Go,
        Toolkit::Node,
    ];

    pub fn from_name(name: &str) -> Option<Toolkit> {
        Toolkit::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Toolkit::Base => "base",
            Toolkit::Net => "net",
            Toolkit::Full => "full",
            Toolkit::Jvm => "jvm",
            Toolkit::Python => "python",
            Toolkit::Go => "go",
            Toolkit::Node => "node",
        }
    }
}

/// Where our toolkit images are: a registry (None: [`DEFAULT_REGISTRY`]) and, per toolkit,
/// a whole reference that replaces the registry's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub registry: Option<String>,
    pub images: BTreeMap<Toolkit, String>,
}

impl Catalog {
    /// The image a session with `toolkit` runs.
    pub fn image(&self, toolkit: Toolkit) -> ImageChoice {
        match self.images.get(&toolkit) {
            Some(reference) => ImageChoice::Configured {
                toolkit,
                reference: reference.clone(),
            },
            None => ImageChoice::Toolkit {
                toolkit,
                registry: self.registry.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageChoice {
    Toolkit {
        toolkit: Toolkit,
        registry: Option<String>,
    },
    /// A toolkit image at the reference the config file names for it (it carries the agent).
    Configured {
        toolkit: Toolkit,
        reference: String,
    },
    /// `--toolkit auto`: settled by `session/settle.rs` before the session starts; until then, and
    /// as the probe that reads the target's runtime, it is the catalog's `base`.
    Auto(Catalog),
    /// The default when neither `--toolkit`, `--image` nor the config file chooses: `base`,
    /// unless the target container's image or command names its runtime. Settled by
    /// `toolkit::hinted` from the pod the session reads anyway, so it costs no round trip.
    Hinted(Catalog),
    Custom(String),
}

impl ImageChoice {
    /// The image reference that goes into the container spec.
    pub fn reference(&self) -> String {
        match self {
            ImageChoice::Toolkit { toolkit, registry } => {
                let registry = registry
                    .as_deref()
                    .unwrap_or(DEFAULT_REGISTRY)
                    .trim_end_matches('/');
                format!("{registry}/{}:{VERSION}", toolkit.name())
            }
            ImageChoice::Configured { reference, .. } => reference.clone(),
            ImageChoice::Auto(catalog) | ImageChoice::Hinted(catalog) => {
                catalog.image(Toolkit::Base).reference()
            }
            ImageChoice::Custom(reference) => reference.clone(),
        }
    }

    /// Our images run the agent; any other image is driven with `sh` and `sleep`.
    pub fn has_agent(&self) -> bool {
        !matches!(self, ImageChoice::Custom(_))
    }
}

impl fmt::Display for ImageChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolkit_images_are_versioned_with_the_plugin() {
        let image = ImageChoice::Toolkit {
            toolkit: Toolkit::Net,
            registry: None,
        };
        assert_eq!(
            image.reference(),
            format!("ghcr.io/kubectl-distroless-debug/net:{VERSION}")
        );
        assert!(image.has_agent());
    }

    #[test]
    fn the_registry_can_point_at_a_mirror() {
        let image = ImageChoice::Toolkit {
            toolkit: Toolkit::Base,
            registry: Some("registry.corp:5000/dd/".into()),
        };
        assert_eq!(
            image.reference(),
            format!("registry.corp:5000/dd/base:{VERSION}")
        );
    }

    #[test]
    fn a_configured_reference_replaces_the_registrys_for_its_toolkit_only() {
        let catalog = Catalog {
            registry: Some("mirror.corp/dd".into()),
            images: BTreeMap::from([(Toolkit::Jvm, "mirror.corp/tools/jvm:7".into())]),
        };
        let jvm = catalog.image(Toolkit::Jvm);
        assert_eq!(jvm.reference(), "mirror.corp/tools/jvm:7");
        assert!(jvm.has_agent());
        assert_eq!(
            catalog.image(Toolkit::Net).reference(),
            format!("mirror.corp/dd/net:{VERSION}")
        );
        let auto = ImageChoice::Auto(catalog);
        assert_eq!(auto.reference(), format!("mirror.corp/dd/base:{VERSION}"));
        assert!(auto.has_agent());
    }

    #[test]
    fn toolkits_are_found_by_name() {
        for toolkit in Toolkit::ALL {
            assert_eq!(Toolkit::from_name(toolkit.name()), Some(toolkit));
        }
        assert_eq!(Toolkit::from_name("auto"), None);
    }

    #[test]
    fn any_image_is_used_verbatim_without_the_agent() {
        let image = ImageChoice::Custom("busybox:1.36".into());
        assert_eq!(image.reference(), "busybox:1.36");
        assert!(!image.has_agent());
    }
}
