//! `kubectl distroless-debug images`: every toolkit, its image reference as configured, and
//! what it contains.
//!
//! The package lists are the very files the Dockerfiles and the local builder install from
//! (`debug-images/<toolkit>/packages.txt`), compiled in, so what this prints cannot drift from
//! what the images hold. The few tools that are not Debian packages (busybox in base,
//! async-profiler, py-spy, gops) are named next to them, as their Dockerfiles add them.

use serde::Serialize;

use crate::base::error::Error;
use crate::base::exit::ExitStatus;
use crate::output::printer::OutputFormat;
use crate::output::printer::Printer;
use crate::toolkit::catalog::{Catalog, Toolkit};

/// One toolkit: the tools to reach for, and where its package list is.
struct Contents {
    toolkit: Toolkit,
    /// What an engineer reaches for, in a few words.
    tools: &'static str,
    /// Added by the Dockerfile from outside Debian.
    extras: &'static [&'static str],
    packages_txt: &'static str,
}

const CONTENTS: [Contents; 7] = [
    Contents {
        toolkit: Toolkit::Base,
        tools: "busybox: sh, ls, cat, ps, top, wget, nc, vi, find, grep",
        extras: &["busybox (static)"],
        packages_txt: include_str!("../../debug-images/base/packages.txt"),
    },
    Contents {
        toolkit: Toolkit::Net,
        tools: "curl, dig, ss, ip, ping, tcpdump, openssl, socat, nc",
        extras: &[],
        packages_txt: include_str!("../../debug-images/net/packages.txt"),
    },
    Contents {
        toolkit: Toolkit::Full,
        tools: "net + strace, ltrace, gdb, lsof, ps/top, jq, file, vim, less",
        extras: &[],
        packages_txt: include_str!("../../debug-images/full/packages.txt"),
    },
    Contents {
        toolkit: Toolkit::Jvm,
        tools: "jcmd, jstack, jmap, jfr, async-profiler, strace, lsof",
        extras: &["async-profiler (release archive)"],
        packages_txt: include_str!("../../debug-images/jvm/packages.txt"),
    },
    Contents {
        toolkit: Toolkit::Python,
        tools: "py-spy, python3, strace, lsof",
        extras: &["py-spy (PyPI)"],
        packages_txt: include_str!("../../debug-images/python/packages.txt"),
    },
    Contents {
        toolkit: Toolkit::Go,
        tools: "dlv (delve), gops, strace, lsof",
        extras: &["gops (built from source)"],
        packages_txt: include_str!("../../debug-images/go/packages.txt"),
    },
    Contents {
        toolkit: Toolkit::Node,
        tools: "node (inspector client, heap tools), strace, lsof",
        extras: &[],
        packages_txt: include_str!("../../debug-images/node/packages.txt"),
    },
];

/// The packages of a `packages.txt`: one per line, `#` starts a comment.
pub fn packages(text: &str) -> Vec<&str> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .collect()
}

/// One row of `images -o json|yaml`. Versioned with the list: fields are only added.
#[derive(Debug, Serialize)]
pub struct ImageRow {
    pub toolkit: &'static str,
    pub image: String,
    pub tools: &'static str,
    /// Debian bookworm packages (their dependencies come along).
    pub packages: Vec<&'static str>,
    pub extras: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageList {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// Where the references come from.
    pub from: String,
    pub images: Vec<ImageRow>,
}

pub fn list(catalog: &Catalog, from: &str) -> ImageList {
    ImageList {
        api_version: "distroless-debug/v1",
        kind: "ImageList",
        from: from.to_string(),
        images: CONTENTS
            .iter()
            .map(|c| ImageRow {
                toolkit: c.toolkit.name(),
                image: catalog.image(c.toolkit).reference(),
                tools: c.tools,
                packages: packages(c.packages_txt),
                extras: c.extras.to_vec(),
            })
            .collect(),
    }
}

/// The human table: toolkit, image, tools; then where the references come from.
pub fn table(list: &ImageList) -> String {
    let width = list
        .images
        .iter()
        .map(|r| r.image.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!("{:<8} {:<width$}  CONTAINS\n", "TOOLKIT", "IMAGE");
    for row in &list.images {
        out.push_str(&format!(
            "{:<8} {:<width$}  {}\n",
            row.toolkit, row.image, row.tools
        ));
    }
    out.push_str(&format!(
        "\nReferences from {}. `--toolkit auto` picks go, jvm, python or node by the target's runtime, else base; `-o yaml` lists every package.\n",
        list.from
    ));
    out
}

pub fn run(
    catalog: &Catalog,
    from: &str,
    format: Option<OutputFormat>,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let list = list(catalog, from);
    match format {
        Some(format) => printer.data(format, &list)?,
        None => printer.stdout(&table(&list))?,
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::toolkit::catalog::VERSION;

    #[test]
    fn every_toolkit_is_listed_once_in_catalog_order() {
        let names: Vec<&str> = CONTENTS.iter().map(|c| c.toolkit.name()).collect();
        let all: Vec<&str> = Toolkit::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names, all);
    }

    #[test]
    fn the_package_lists_are_the_image_builders_own() {
        let list = list(&Catalog::default(), "test");
        let full = &list.images[2];
        for tool in [
            "strace",
            "gdb-minimal",
            "tcpdump",
            "curl",
            "iproute2",
            "lsof",
            "ltrace",
        ] {
            assert!(full.packages.contains(&tool), "{tool} in full");
        }
        assert!(list.images[0].packages.is_empty(), "base is busybox only");
        assert!(list.images[5].packages.contains(&"delve"));
        // Comments are not packages.
        assert!(
            list.images
                .iter()
                .all(|r| r.packages.iter().all(|p| !p.contains(' ')))
        );
    }

    #[test]
    fn references_follow_the_configuration() {
        let catalog = Catalog {
            registry: Some("mirror.corp/dd".into()),
            images: BTreeMap::from([(Toolkit::Go, "mirror.corp/tools/go-debug:3".into())]),
        };
        let shown = table(&list(&catalog, "config file /x/config.yaml"));
        assert!(
            shown.contains(&format!("base     mirror.corp/dd/base:{VERSION}")),
            "{shown}"
        );
        assert!(
            shown.contains("go       mirror.corp/tools/go-debug:3"),
            "{shown}"
        );
        assert!(
            shown.contains("References from config file /x/config.yaml."),
            "{shown}"
        );
    }
}
