//! Which image a session runs: one of our toolkit images, or any image the user names.
//!
//! Ours are `ghcr.io/kubectl-distroless-debug/<toolkit>:<plugin version>` and carry the agent;
//! `DISTROLESS_DEBUG_REGISTRY` points them at a mirror for air-gapped clusters. Any other image
//! (`--image`) runs in a generic mode that needs only `sh` and `sleep` in it.

use std::fmt;

/// The registry and repository prefix of our images.
pub const DEFAULT_REGISTRY: &str = "ghcr.io/kubectl-distroless-debug";

/// The image tag: images are released with the plugin, so the agent speaks our protocol.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageChoice {
    Toolkit {
        toolkit: Toolkit,
        registry: Option<String>,
    },
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
            ImageChoice::Custom(reference) => reference.clone(),
        }
    }

    /// Our images run the agent; any other image is driven with `sh` and `sleep`.
    pub fn has_agent(&self) -> bool {
        matches!(self, ImageChoice::Toolkit { .. })
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
    fn any_image_is_used_verbatim_without_the_agent() {
        let image = ImageChoice::Custom("busybox:1.36".into());
        assert_eq!(image.reference(), "busybox:1.36");
        assert!(!image.has_agent());
    }
}
