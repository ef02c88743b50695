//! The debug images' Dockerfiles, checked without a Docker engine: every base image pinned by
//! version (never `latest`), the agent as entrypoint, a numeric `USER`, `/target` prepared,
//! the toolkit's package list as the single source of the packages it installs, and hadolint
//! clean when hadolint is installed (tests/run.sh installs it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLKITS: &[&str] = &["base", "net", "full", "jvm", "python", "go", "node"];
const AGENT: &str = "/usr/local/bin/distroless-debug-agent";

fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("debug-images")
}

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (word, rest) = current.split_once(' ').unwrap_or((&current, ""));
        out.push((word.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

/// Expands `${NAME}` from the ARG defaults seen so far.
fn expand(value: &str, args: &BTreeMap<String, String>) -> String {
    let mut s = value.to_string();
    for (k, v) in args {
        s = s.replace(&format!("${{{k}}}"), v);
    }
    s
}

fn is_pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let name_end = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_end..].split_once(':') {
        Some((_, tag)) => tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
        None => false,
    }
}

#[test]
fn every_toolkit_has_a_pinned_nonroot_agent_image() {
    for toolkit in TOOLKITS {
        let path = images_dir().join(toolkit).join("Dockerfile");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut args = BTreeMap::new();
        let mut stages = Vec::new();
        let mut user = None;
        let mut entrypoint = None;
        let mut runs = String::new();
        for (word, rest) in instructions(&text) {
            match word.as_str() {
                "ARG" => {
                    if let Some((k, v)) = rest.split_once('=') {
                        args.insert(k.to_string(), v.to_string());
                    }
                }
                "FROM" => {
                    let image = expand(rest.split_whitespace().next().unwrap_or(""), &args);
                    assert!(
                        is_pinned(&image),
                        "{toolkit}: FROM {image} is not pinned to a version"
                    );
                    stages.push(image);
                    user = None;
                    entrypoint = None;
                    runs.clear();
                }
                "USER" => user = Some(rest),
                "ENTRYPOINT" => entrypoint = Some(rest),
                "RUN" => runs.push_str(&rest),
                _ => {}
            }
        }
        assert!(!stages.is_empty(), "{toolkit}: no FROM");
        assert!(
            stages.len() >= 2,
            "{toolkit}: the agent must be built in a builder stage"
        );
        let user = user.unwrap_or_else(|| panic!("{toolkit}: final stage has no USER"));
        assert!(
            user.split(':').all(|p| p.parse::<u32>().is_ok()),
            "{toolkit}: USER {user} must be numeric (runs under any uid, no name lookups)"
        );
        let entrypoint =
            entrypoint.unwrap_or_else(|| panic!("{toolkit}: final stage has no ENTRYPOINT"));
        assert!(
            entrypoint.contains(AGENT),
            "{toolkit}: ENTRYPOINT {entrypoint} is not the agent"
        );
        assert!(
            runs.contains("ln -s /tmp/.distroless-debug/target /target")
                && runs.contains("chmod 1777 /tmp"),
            "{toolkit}: /target and a world-writable /tmp must be prepared"
        );
        assert!(
            !text.contains(":latest"),
            "{toolkit}: mentions a :latest image"
        );
        assert!(
            text.contains("org.opencontainers.image.source")
                && text.contains("org.opencontainers.image.version"),
            "{toolkit}: OCI labels missing"
        );
        if *toolkit != "base" {
            let packages = images_dir().join(toolkit).join("packages.txt");
            let list = std::fs::read_to_string(&packages)
                .unwrap_or_else(|e| panic!("{}: {e}", packages.display()));
            assert!(
                list.lines()
                    .any(|l| !l.trim().is_empty() && !l.starts_with('#')),
                "{toolkit}: empty package list"
            );
            assert!(
                text.contains(&format!("COPY debug-images/{toolkit}/packages.txt")),
                "{toolkit}: the Dockerfile must install from its packages.txt"
            );
        }
    }
}

#[test]
fn pin_check_rejects_floating_references() {
    assert!(is_pinned("debian:12.12-slim"));
    assert!(is_pinned("localhost:5000/rust:1.89.0"));
    assert!(is_pinned("busybox@sha256:abc"));
    assert!(!is_pinned("debian"));
    assert!(!is_pinned("debian:latest"));
    assert!(!is_pinned("localhost:5000/debian"));
    assert!(!is_pinned("debian:bookworm-slim"));
}

#[test]
fn hadolint_is_clean() {
    if Command::new("hadolint").arg("--version").output().is_err() {
        let why = "hadolint is not installed (tests/run.sh installs it with pip)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}");
        }
        eprintln!("skipping: {why}");
        return;
    }
    for toolkit in TOOLKITS {
        let path = images_dir().join(toolkit).join("Dockerfile");
        let out = Command::new("hadolint")
            .arg("--no-color")
            .arg(&path)
            .output()
            .expect("run hadolint");
        assert!(
            out.status.success(),
            "hadolint {}:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn build_script_dry_run_prints_the_exact_commands() {
    let out = Command::new(images_dir().join("build.sh"))
        .args([
            "--dry-run",
            "--builder",
            "docker",
            "--registry",
            "mirror.example/dd",
            "net",
        ])
        .output()
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        stdout.contains("docker buildx build --platform linux/amd64")
            && stdout.contains(&format!("-t mirror.example/dd/net:{version}"))
            && stdout.contains("debug-images/net/Dockerfile"),
        "unexpected dry run:\n{stdout}"
    );
    let out = Command::new(images_dir().join("build.sh"))
        .arg("nosuch")
        .output()
        .expect("run build.sh");
    assert_eq!(out.status.code(), Some(2));
}
