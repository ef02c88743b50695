//! The krew manifest template (`.krew.yaml`) renders, for Cargo.toml's version, to a manifest
//! krew accepts and that installs what the release archive holds.
//!
//! krew-release-bot fills the template in at release time: `{{ .TagName }}` becomes the tag and
//! each `{{addURIAndSha "URL" .TagName }}` becomes `uri: URL` and `sha256: <digest of the
//! download>` (rajatjindal/krew-release-bot, pkg/source/template.go). Here the template is
//! rendered the same way for the tag `v{CARGO_PKG_VERSION}`, with a stand-in digest (the archives
//! do not exist before the release), then checked against:
//!
//! - krew's structural validation (kubernetes-sigs/krew, pkg/index/validation/validate.go):
//!   apiVersion, kind, a safe name, a short description, a `v`-prefixed semantic version, and
//!   per platform a uri, a 64-hex sha256, a bin, file operations and an os/arch selector;
//! - krew's manifest linter (cmd/validate-krew-manifest): selectors match a platform krew
//!   serves, no two overlap, text lines stay within 70 (shortDescription) and 80 characters;
//! - krew-release-bot's ownership check: the homepage is the repository on GitHub;
//! - this project: the version is Cargo.toml's, each uri is the release asset that
//!   `.github/scripts/archive.sh --name OS ARCH` names, the files moved are the archive's
//!   (`archive.sh --layout`), every one of them is installed (the completion helper and
//!   LICENSE included), `bin` is the plugin, and the platforms are those the release workflow
//!   builds.
//!
//! The checks are one function, [`problems`], so the tests at the end can show it refuses
//! broken manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde::Deserialize;

const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";
const PLUGIN: &str = "distroless-debug";
const BIN: &str = "kubectl-distroless_debug";
/// The (os, arch) pairs krew is released for, hence the ones a selector may pick.
const KREW_OSES: &[&str] = &["linux", "darwin", "windows"];
const KREW_ARCHES: &[&str] = &["amd64", "arm64", "arm", "386", "ppc64le", "s390x"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Plugin {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    version: String,
    homepage: Option<String>,
    short_description: Option<String>,
    description: Option<String>,
    caveats: Option<String>,
    #[serde(default)]
    platforms: Vec<Platform>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    selector: Option<Selector>,
    uri: Option<String>,
    sha256: Option<String>,
    bin: Option<String>,
    #[serde(default)]
    files: Vec<FileOperation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOperation {
    from: String,
    to: String,
}

/// What the manifest is checked against, read from the repository.
struct Release {
    tag: String,
    repository: String,
    /// The archive's files, from `archive.sh --layout`.
    layout: Vec<String>,
    /// (os, arch) -> archive file name, from `archive.sh --name`.
    archive_names: BTreeMap<(String, String), String>,
    /// (os, arch) built by the release workflow.
    built: BTreeSet<(String, String)>,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn archive_script(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo().join(".github/scripts/archive.sh"))
        .args(args)
        .output()
        .expect("run bash .github/scripts/archive.sh");
    assert!(
        out.status.success(),
        "archive.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("archive.sh prints UTF-8")
}

/// The (os, arch) of every entry of the release workflow's plugin build matrix.
fn workflow_platforms() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(repo().join(".github/workflows/release.yml"))
        .expect("read .github/workflows/release.yml");
    let workflow: serde_json::Value = serde_saphyr::from_str(&text).expect("release.yml is YAML");
    let include = workflow
        .pointer("/jobs/plugin/strategy/matrix/include")
        .and_then(|v| v.as_array())
        .expect("release.yml has jobs.plugin.strategy.matrix.include");
    include
        .iter()
        .map(|entry| {
            let field = |key: &str| {
                entry[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("matrix entry {entry} has no {key}"))
                    .to_string()
            };
            (field("os"), field("arch"))
        })
        .collect()
}

fn release() -> Release {
    let built = workflow_platforms();
    let archive_names = built
        .iter()
        .map(|(os, arch)| {
            let name = archive_script(&["--name", os, arch]).trim().to_string();
            ((os.clone(), arch.clone()), name)
        })
        .collect();
    Release {
        tag: format!("v{}", env!("CARGO_PKG_VERSION")),
        repository: env!("CARGO_PKG_REPOSITORY").to_string(),
        layout: archive_script(&["--layout"])
            .lines()
            .map(str::to_string)
            .collect(),
        archive_names,
        built,
    }
}

fn template() -> String {
    std::fs::read_to_string(repo().join(".krew.yaml")).expect("read .krew.yaml")
}

/// A stand-in for the digest krew-release-bot computes from the downloaded archive: 64 hex
/// digits, different per URL.
fn stand_in_sha256(url: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, url.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Renders the two template actions krew-release-bot offers that `.krew.yaml` uses, exactly
/// as the bot writes them; any other action is an error rather than left in place.
fn render(template: &str, tag: &str) -> Result<String, String> {
    // The bot's `.Version`: the first run of digits and dots in the tag.
    let version = tag.trim_start_matches(|c: char| !c.is_ascii_digit());
    let version: String = version
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let action = &rest[start + 2..];
        let inner = action.trim_start();
        if let Some(call) = inner.strip_prefix("addURIAndSha \"") {
            let close = call
                .find('"')
                .ok_or("addURIAndSha: the URL's closing quote is missing")?;
            let url = call[..close]
                .replace("{{ .TagName }}", tag)
                .replace("{{ .Version }}", &version);
            if url.contains("{{") {
                return Err(format!("addURIAndSha: an unknown action in its URL {url}"));
            }
            let after = call[close + 1..].trim_start();
            let after = after
                .strip_prefix(".TagName")
                .ok_or("addURIAndSha takes the URL and .TagName")?;
            let end = after
                .trim_start()
                .strip_prefix("}}")
                .ok_or("addURIAndSha: `}}` expected after .TagName")?;
            // krew-release-bot's own format: `sha256:` at a 4-space indent.
            out.push_str(&format!(
                "uri: {url}\n    sha256: {}",
                stand_in_sha256(&url)
            ));
            rest = end;
        } else {
            let end = action
                .find("}}")
                .ok_or("an action without its closing `}}`")?;
            match action[..end].trim() {
                ".TagName" => out.push_str(tag),
                other => return Err(format!("unknown template action `{{{{{other}}}}}`")),
            }
            rest = &action[end + 2..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// krew's semantic version: `v` then MAJOR.MINOR.PATCH, with an optional pre-release and
/// build (k8s.io/apimachinery's ParseSemantic, behind krew's installation/semver.Parse).
fn is_semantic_version(v: &str) -> bool {
    let Some(v) = v.strip_prefix('v') else {
        return false;
    };
    let (v, build) = v.split_once('+').map_or((v, None), |(v, b)| (v, Some(b)));
    let (core, pre) = v.split_once('-').map_or((v, None), |(c, p)| (c, Some(p)));
    let numbers: Vec<&str> = core.split('.').collect();
    let identifiers = |s: &str| {
        s.split('.')
            .all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    numbers.len() == 3
        && numbers.iter().all(|n| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && (*n == "0" || !n.starts_with('0'))
        })
        && pre.is_none_or(identifiers)
        && build.is_none_or(identifiers)
}

/// Lines longer than `max` that are more than one word (validate-krew-manifest's rule).
fn long_lines(field: &str, text: &str, max: usize, problems: &mut Vec<String>) {
    for line in text.lines() {
        if line.chars().count() > max && line.trim().contains(' ') {
            problems.push(format!(
                "a line of {field} is over {max} characters: {line}"
            ));
        }
    }
}

/// Every way `manifest` falls short of krew's rules and of this release; empty when it is fine.
fn problems(manifest: &str, release: &Release) -> Vec<String> {
    let plugin: Plugin = match serde_saphyr::from_str(manifest) {
        Ok(plugin) => plugin,
        Err(e) => return vec![format!("not a krew plugin manifest: {e}")],
    };
    let mut problems = Vec::new();
    if plugin.api_version != API_VERSION {
        problems.push(format!(
            "apiVersion is {}, krew reads {API_VERSION}",
            plugin.api_version
        ));
    }
    if plugin.kind != "Plugin" {
        problems.push(format!("kind is {}, krew reads Plugin", plugin.kind));
    }
    let name = &plugin.metadata.name;
    if name != PLUGIN {
        problems.push(format!("metadata.name is {name}, the plugin is {PLUGIN}"));
    }
    // krew links the bin as kubectl-NAME with dashes turned into underscores: that link must
    // be the name kubectl finds the plugin by, `kubectl distroless-debug`.
    if format!("kubectl-{}", name.replace('-', "_")) != BIN {
        problems.push(format!(
            "krew would link metadata.name {name} as another command than {BIN}"
        ));
    }
    let spec = &plugin.spec;
    if !is_semantic_version(&spec.version) {
        problems.push(format!(
            "spec.version {} is not v + a semantic version",
            spec.version
        ));
    }
    if spec.version != release.tag {
        problems.push(format!(
            "spec.version is {}, Cargo.toml's version makes {}",
            spec.version, release.tag
        ));
    }
    if spec.homepage.as_deref() != Some(release.repository.as_str()) {
        problems.push(format!(
            "spec.homepage is {:?}, krew-release-bot wants the repository {}",
            spec.homepage, release.repository
        ));
    }
    match spec.short_description.as_deref().map(str::trim) {
        None | Some("") => problems.push("spec.shortDescription is missing".into()),
        Some(short) if short.contains('\n') || short.chars().count() > 70 => problems.push(
            format!("spec.shortDescription should be one line of at most 70 characters: {short}"),
        ),
        Some(_) => {}
    }
    match spec.description.as_deref().map(str::trim) {
        None | Some("") => problems.push("spec.description is missing".into()),
        Some(description) => long_lines("spec.description", description, 80, &mut problems),
    }
    if let Some(caveats) = &spec.caveats {
        long_lines("spec.caveats", caveats, 80, &mut problems);
    }
    if spec.platforms.is_empty() {
        problems.push("spec.platforms is empty".into());
    }

    let mut selected = BTreeSet::new();
    for (i, platform) in spec.platforms.iter().enumerate() {
        let at = format!("spec.platforms[{i}]");
        // Our archives are per os and arch: each platform names exactly both.
        let os_arch = match &platform.selector {
            None => {
                problems.push(format!("{at} has no selector"));
                None
            }
            Some(Selector {
                match_expressions: Some(_),
                ..
            }) => {
                problems.push(format!(
                    "{at}.selector uses matchExpressions; ours name os and arch in matchLabels"
                ));
                None
            }
            Some(Selector {
                match_labels: None, ..
            }) => {
                problems.push(format!("{at}.selector has no matchLabels"));
                None
            }
            Some(Selector {
                match_labels: Some(labels),
                ..
            }) => {
                let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
                if keys != ["arch", "os"] {
                    problems.push(format!(
                        "{at}.selector.matchLabels has keys {keys:?}, not os and arch"
                    ));
                    None
                } else {
                    Some((labels["os"].clone(), labels["arch"].clone()))
                }
            }
        };
        if let Some((os, arch)) = &os_arch {
            if !KREW_OSES.contains(&os.as_str()) || !KREW_ARCHES.contains(&arch.as_str()) {
                problems.push(format!(
                    "{at} selects {os}/{arch}, not a platform krew serves"
                ));
            }
            if !selected.insert((os.clone(), arch.clone())) {
                problems.push(format!("{at} selects {os}/{arch} again: platforms overlap"));
            }
        }

        match (&platform.uri, &os_arch) {
            (None, _) => problems.push(format!("{at} has no uri")),
            (Some(uri), Some(key)) => match release.archive_names.get(key) {
                Some(archive) => {
                    let expected = format!(
                        "{}/releases/download/{}/{archive}",
                        release.repository, release.tag
                    );
                    if *uri != expected {
                        problems.push(format!(
                            "{at}.uri is {uri}, the release asset is {expected}"
                        ));
                    }
                }
                None => problems.push(format!(
                    "{at} selects {}/{}, which the release workflow does not build",
                    key.0, key.1
                )),
            },
            (Some(_), None) => {}
        }
        match &platform.sha256 {
            None => problems.push(format!("{at} has no sha256")),
            Some(sha)
                if sha.len() != 64 || !sha.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) =>
            {
                problems.push(format!("{at}.sha256 {sha} is not 64 lowercase hex digits"))
            }
            Some(_) => {}
        }

        if platform.files.is_empty() {
            problems.push(format!(
                "{at}.files is empty: krew needs the file operations"
            ));
        }
        let mut installed = BTreeSet::new();
        for op in &platform.files {
            if !release.layout.contains(&op.from) {
                problems.push(format!(
                    "{at}.files moves {}, which is not in the archive ({})",
                    op.from,
                    release.layout.join(", ")
                ));
            }
            let to = op.to.trim_start_matches("./");
            installed.insert(if to.is_empty() || to == "." {
                op.from.clone()
            } else {
                to.to_string()
            });
        }
        for file in &release.layout {
            if !installed.contains(file) {
                problems.push(format!("{at}.files does not install the archive's {file}"));
            }
        }
        match platform.bin.as_deref().map(|b| b.trim_start_matches("./")) {
            None => problems.push(format!("{at} has no bin")),
            Some(bin) if bin != BIN => {
                problems.push(format!("{at}.bin is {bin}, the plugin is {BIN}"))
            }
            Some(bin) if !installed.contains(bin) => {
                problems.push(format!("{at}.bin {bin} is not among the installed files"))
            }
            Some(_) => {}
        }
    }
    for (os, arch) in release.built.difference(&selected) {
        problems.push(format!(
            "the release workflow builds {os}/{arch}, which no platform selects"
        ));
    }
    problems
}

fn rendered() -> (String, Release) {
    let release = release();
    let manifest = render(&template(), &release.tag).expect("render .krew.yaml");
    (manifest, release)
}

/// `manifest` with `from` replaced by `to`, which must be in it.
fn edited(manifest: &str, from: &str, to: &str) -> String {
    assert!(
        manifest.contains(from),
        "the manifest no longer holds {from:?}"
    );
    manifest.replacen(from, to, 1)
}

#[test]
fn the_template_renders_to_a_manifest_krew_accepts_for_this_release() {
    let (manifest, release) = rendered();
    assert_eq!(
        problems(&manifest, &release),
        Vec::<String>::new(),
        "{manifest}"
    );
}

#[test]
fn the_release_builds_and_the_manifest_serves_four_platforms() {
    let (_, release) = rendered();
    let platforms: Vec<String> = release
        .built
        .iter()
        .map(|(o, a)| format!("{o}/{a}"))
        .collect();
    assert_eq!(
        platforms,
        ["darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"]
    );
    assert!(
        release.layout.iter().any(|f| f == "LICENSE"),
        "{:?}",
        release.layout
    );
    assert!(
        release.layout.iter().any(|f| f == BIN),
        "{:?}",
        release.layout
    );
}

#[test]
fn a_platform_without_a_selector_is_refused() {
    let (manifest, release) = rendered();
    let broken = edited(
        &manifest,
        "  - selector:\n      matchLabels:\n        os: darwin\n        arch: arm64\n    uri:",
        "  - uri:",
    );
    let found = problems(&broken, &release);
    assert!(
        found.contains(&"spec.platforms[3] has no selector".to_string()),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("builds darwin/arm64, which no platform selects")),
        "{found:?}"
    );
}

#[test]
fn a_selector_without_arch_is_refused() {
    let (manifest, release) = rendered();
    let broken = edited(
        &manifest,
        "        os: linux\n        arch: arm64\n",
        "        os: linux\n",
    );
    let found = problems(&broken, &release);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("spec.platforms[1].selector.matchLabels has keys")),
        "{found:?}"
    );
}

#[test]
fn a_version_other_than_cargo_tomls_is_refused() {
    let release = release();
    let template = edited(&template(), "version: {{ .TagName }}", "version: v0.0.9");
    let found = problems(&render(&template, &release.tag).unwrap(), &release);
    assert_eq!(
        found,
        [format!(
            "spec.version is v0.0.9, Cargo.toml's version makes {}",
            release.tag
        )]
    );
}

#[test]
fn a_tag_other_than_cargo_tomls_is_refused() {
    let release = release();
    let found = problems(&render(&template(), "v9.9.9").unwrap(), &release);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("spec.version is v9.9.9")),
        "{found:?}"
    );
    // Every uri then points at another release's assets.
    assert_eq!(
        found.iter().filter(|p| p.contains(".uri is")).count(),
        4,
        "{found:?}"
    );
}

#[test]
fn a_version_without_its_v_is_refused() {
    let release = Release {
        tag: "0.1.0".into(),
        ..release()
    };
    let found = problems(&render(&template(), "0.1.0").unwrap(), &release);
    assert!(
        found.contains(&"spec.version 0.1.0 is not v + a semantic version".to_string()),
        "{found:?}"
    );
}

#[test]
fn a_sha256_that_is_not_64_hex_digits_is_refused() {
    let (manifest, release) = rendered();
    let sha = manifest
        .split("sha256: ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let found = problems(&edited(&manifest, sha, &sha.to_uppercase()), &release);
    assert_eq!(
        found,
        [format!(
            "spec.platforms[0].sha256 {} is not 64 lowercase hex digits",
            sha.to_uppercase()
        )]
    );
}

#[test]
fn a_bin_the_archive_does_not_hold_is_refused() {
    let (manifest, release) = rendered();
    let found = problems(
        &edited(
            &manifest,
            "bin: kubectl-distroless_debug",
            "bin: kubectl-distroless-debug",
        ),
        &release,
    );
    assert_eq!(
        found,
        [
            "spec.platforms[0].bin is kubectl-distroless-debug, the plugin is kubectl-distroless_debug"
        ]
    );
}

#[test]
fn a_platform_that_leaves_the_license_or_the_completion_helper_behind_is_refused() {
    let (manifest, release) = rendered();
    let found = problems(
        &edited(&manifest, "    - from: LICENSE\n      to: .\n", ""),
        &release,
    );
    assert_eq!(
        found,
        ["spec.platforms[0].files does not install the archive's LICENSE"]
    );
    let found = problems(
        &edited(
            &manifest,
            "    - from: kubectl_complete-distroless_debug\n      to: .\n",
            "",
        ),
        &release,
    );
    assert_eq!(
        found,
        [
            "spec.platforms[0].files does not install the archive's kubectl_complete-distroless_debug"
        ]
    );
}

#[test]
fn a_file_the_archive_does_not_hold_is_refused() {
    let (manifest, release) = rendered();
    let found = problems(
        &edited(&manifest, "from: LICENSE", "from: LICENSE.txt"),
        &release,
    );
    assert!(
        found.iter().any(|p| p
            .starts_with("spec.platforms[0].files moves LICENSE.txt, which is not in the archive")),
        "{found:?}"
    );
}

#[test]
fn overlapping_platforms_are_refused() {
    let (manifest, release) = rendered();
    let broken = edited(
        &manifest,
        "        os: darwin\n        arch: amd64\n",
        "        os: linux\n        arch: amd64\n",
    );
    let found = problems(&broken, &release);
    assert!(
        found.contains(
            &"spec.platforms[2] selects linux/amd64 again: platforms overlap".to_string()
        ),
        "{found:?}"
    );
}

#[test]
fn a_misspelt_field_is_refused() {
    let (manifest, release) = rendered();
    let found = problems(&edited(&manifest, "matchLabels:", "matchlabels:"), &release);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("not a krew plugin manifest"),
        "{found:?}"
    );
}

#[test]
fn a_long_short_description_is_refused() {
    let (manifest, release) = rendered();
    let long = format!("shortDescription: {}", "word ".repeat(15));
    let found = problems(
        &edited(
            &manifest,
            "shortDescription: Debug distroless pods with ephemeral containers",
            &long,
        ),
        &release,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("spec.shortDescription should be one line"),
        "{found:?}"
    );
}

#[test]
fn rendering_refuses_actions_it_does_not_know() {
    let template = edited(
        &template(),
        "version: {{ .TagName }}",
        "version: {{ .Tag }}",
    );
    assert_eq!(
        render(&template, "v0.1.0"),
        Err("unknown template action `{{.Tag}}`".to_string())
    );
}

#[test]
fn rendering_writes_uri_and_sha256_as_krew_release_bot_does() {
    let rendered = render(
        "  - {{addURIAndSha \"https://x/{{ .TagName }}/a_{{ .Version }}.tar.gz\" .TagName }}\n",
        "v1.2.3",
    )
    .unwrap();
    let sha = stand_in_sha256("https://x/v1.2.3/a_1.2.3.tar.gz");
    assert_eq!(
        rendered,
        format!("  - uri: https://x/v1.2.3/a_1.2.3.tar.gz\n    sha256: {sha}\n")
    );
}

#[test]
fn semantic_versions_as_krew_reads_them() {
    for good in ["v0.1.0", "v1.20.3", "v1.0.0-rc.1", "v1.0.0+build.5"] {
        assert!(is_semantic_version(good), "{good}");
    }
    for bad in [
        "0.1.0",
        "v0.1",
        "v01.0.0",
        "v1.0.0-",
        "v1.0.0-rc..1",
        "vx.y.z",
        "",
    ] {
        assert!(!is_semantic_version(bad), "{bad}");
    }
}
