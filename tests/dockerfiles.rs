//! The debug images' definition, checked without a Docker engine: debug-images/Dockerfile holds
//! every toolkit as a stage (the agent built once), and the image each `TOOLKIT` selects has
//! every base image pinned by version (never `latest`), the agent as entrypoint, a numeric
//! `USER` set after everything that runs as root, `/target` prepared, its OCI labels, and the
//! toolkit's package list as the single source of the packages it installs; hadolint clean
//! when hadolint is installed (tests/run.sh installs it). The local builder's `net` and `full`
//! images stay within their size budgets and their tools work (where this machine can build
//! them: root, Debian's apt).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLKITS: &[&str] = &["base", "net", "full", "jvm", "python", "go", "node"];
const AGENT: &str = "/usr/local/bin/distroless-debug-agent";

fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("debug-images")
}

fn dockerfile() -> String {
    let path = images_dir().join("Dockerfile");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (current.is_empty() && trimmed.is_empty()) {
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

/// Expands `${NAME}` from the ARG values given.
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

/// One build stage: `FROM base AS name` and its instructions.
struct Stage {
    base: String,
    name: Option<String>,
    body: Vec<(String, String)>,
}

/// The stages of a Dockerfile, with `FROM` expanded from the ARGs before the first `FROM`
/// (`build_args` override their defaults, as `--build-arg` does).
fn stages(text: &str, build_args: &[(&str, &str)]) -> Vec<Stage> {
    let mut global = BTreeMap::new();
    let mut out: Vec<Stage> = Vec::new();
    for (word, rest) in instructions(text) {
        match word.as_str() {
            "ARG" if out.is_empty() => {
                // An ARG without a default stays `${NAME}` unless a build arg sets it.
                if let Some((k, v)) = rest.split_once('=') {
                    global.insert(k.to_string(), v.to_string());
                }
            }
            "FROM" => {
                for (k, v) in build_args {
                    global.insert(k.to_string(), v.to_string());
                }
                let words: Vec<&str> = rest.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                    _ => None,
                };
                out.push(Stage {
                    base: expand(words.first().copied().unwrap_or(""), &global),
                    name,
                    body: Vec::new(),
                });
            }
            _ => match out.last_mut() {
                Some(stage) => stage.body.push((word, rest)),
                None => panic!("{word} before the first FROM"),
            },
        }
    }
    out
}

/// The image a build of the last stage makes: its instructions from the external base image
/// down through every stage it derives from, and that base image.
fn image(stages: &[Stage]) -> (String, Vec<&(String, String)>) {
    let mut chain = vec![stages.last().expect("a FROM")];
    while let Some(parent) = stages
        .iter()
        .find(|s| s.name.as_deref() == Some(chain.last().unwrap().base.as_str()))
    {
        assert!(
            chain.len() < stages.len(),
            "stages derive from each other in a loop"
        );
        chain.push(parent);
    }
    let base = chain.last().unwrap().base.clone();
    (base, chain.iter().rev().flat_map(|s| &s.body).collect())
}

/// `LABEL k="v" k2=v2` as pairs (values may hold spaces inside their quotes).
fn labels(rest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            value.extend(chars.by_ref().take_while(|&c| c != '"'));
        } else {
            value.extend(chars.by_ref().take_while(|c| !c.is_whitespace()));
        }
        out.push((key, value));
    }
}

#[test]
fn one_dockerfile_builds_every_toolkit_and_the_agent_once() {
    let text = dockerfile();
    for toolkit in TOOLKITS {
        assert!(
            !images_dir().join(toolkit).join("Dockerfile").exists(),
            "debug-images/{toolkit}/Dockerfile: every toolkit is a stage of debug-images/Dockerfile"
        );
    }
    let all = stages(&text, &[]);
    let builds: Vec<_> = all
        .iter()
        .filter(|s| {
            s.body
                .iter()
                .any(|(w, r)| w == "RUN" && r.contains("cargo build"))
        })
        .collect();
    assert_eq!(builds.len(), 1, "the agent is built in exactly one stage");
    assert_eq!(builds[0].name.as_deref(), Some("agent"));
    for toolkit in TOOLKITS {
        assert!(
            all.iter().any(|s| s.name.as_deref() == Some(toolkit)),
            "no stage named {toolkit} (build.sh builds --target {toolkit})"
        );
    }
    assert_eq!(
        all.last().map(|s| s.base.as_str()),
        Some("${TOOLKIT}"),
        "the last stage is the one TOOLKIT names"
    );
}

#[test]
fn every_toolkit_has_a_pinned_nonroot_agent_image() {
    let text = dockerfile();
    assert!(!text.contains(":latest"), "mentions a :latest image");
    for stage in stages(&text, &[]) {
        let known = stage.base == "${TOOLKIT}"
            || stages(&text, &[])
                .iter()
                .any(|s| s.name.as_deref() == Some(stage.base.as_str()));
        assert!(
            known || is_pinned(&stage.base),
            "FROM {} is not pinned to a version",
            stage.base
        );
    }
    for toolkit in TOOLKITS {
        let all = stages(&text, &[("TOOLKIT", toolkit)]);
        let (base, body) = image(&all);
        assert!(is_pinned(&base), "{toolkit}: FROM {base} is not pinned");
        let mut args = BTreeMap::from([("TOOLKIT".to_string(), toolkit.to_string())]);
        let (mut user, mut entrypoint) = (None, None);
        let (mut last_run, mut first_user) = (0, None);
        let (mut runs, mut copies) = (String::new(), String::new());
        let mut label = BTreeMap::new();
        for (i, (word, rest)) in body.iter().enumerate() {
            match word.as_str() {
                "ARG" => {
                    if let Some((k, v)) = rest.split_once('=') {
                        args.insert(k.to_string(), v.to_string());
                    }
                }
                "USER" => {
                    user = Some(rest.clone());
                    first_user = first_user.or(Some(i));
                }
                "ENTRYPOINT" => entrypoint = Some(rest.clone()),
                "RUN" => (runs, last_run) = (runs + rest + "\n", i),
                "COPY" => copies = copies + rest + "\n",
                "LABEL" => label.extend(
                    labels(rest)
                        .into_iter()
                        .map(|(k, v)| (k, expand(&v, &args))),
                ),
                _ => {}
            }
        }
        let user = user.unwrap_or_else(|| panic!("{toolkit}: the image has no USER"));
        assert!(
            user.split(':').all(|p| p.parse::<u32>().is_ok()) && !user.starts_with("0"),
            "{toolkit}: USER {user} must be numeric and not root (runs under any uid, no name lookups)"
        );
        assert!(
            first_user > Some(last_run),
            "{toolkit}: every RUN must run as root, before the image's USER"
        );
        let entrypoint =
            entrypoint.unwrap_or_else(|| panic!("{toolkit}: the image has no ENTRYPOINT"));
        assert!(
            entrypoint.contains(AGENT),
            "{toolkit}: ENTRYPOINT {entrypoint} is not the agent"
        );
        assert!(
            copies.contains(&format!("--from=agent /out/distroless-debug-agent {AGENT}")),
            "{toolkit}: the agent is not copied from the agent stage"
        );
        assert!(
            runs.contains("ln -s /tmp/.distroless-debug/target /target")
                && runs.contains("chmod 1777 /tmp"),
            "{toolkit}: /target and a world-writable /tmp must be prepared"
        );
        assert!(
            runs.contains("ln -s distroless-debug-agent /usr/local/bin/start"),
            "{toolkit}: `start` must be on PATH as a link to the agent"
        );
        let get = |k: &str| label.get(k).map(String::as_str).unwrap_or_default();
        assert_eq!(
            get("org.opencontainers.image.title"),
            format!("distroless-debug-{toolkit}")
        );
        assert_eq!(get("io.distroless-debug.toolkit"), *toolkit);
        assert!(
            get("org.opencontainers.image.description")
                .starts_with(&format!("kubectl-distroless-debug toolkit '{toolkit}': ")),
            "{toolkit}: description {:?}",
            get("org.opencontainers.image.description")
        );
        assert_eq!(
            get("org.opencontainers.image.version"),
            "0.1.0",
            "{toolkit}"
        );
        assert_eq!(
            get("org.opencontainers.image.licenses"),
            "Apache-2.0",
            "{toolkit}"
        );
        assert!(
            get("org.opencontainers.image.source").starts_with("https://github.com/"),
            "{toolkit}: OCI source label"
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
                runs.contains("/tmp/debug-images/${TOOLKIT:?")
                    && runs.contains("}/packages.txt")
                    && runs.contains("--no-install-recommends"),
                "{toolkit}: the image must install debug-images/{toolkit}/packages.txt"
            );
            // dpkg reads only files of dpkg.cfg.d whose names have no dot.
            assert!(
                copies.contains(
                    "debug-images/dpkg-slim.cfg /etc/dpkg/dpkg.cfg.d/distroless-debug-slim"
                ),
                "{toolkit}: the dpkg filters (no docs, man pages, translations) must be installed"
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
    let path = images_dir().join("Dockerfile");
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
            && stdout.contains("--build-arg TOOLKIT=net --target net")
            && stdout.contains("-f /")
            && stdout.contains("/debug-images/Dockerfile "),
        "unexpected dry run:\n{stdout}"
    );
    let out = Command::new(images_dir().join("build.sh"))
        .arg("nosuch")
        .output()
        .expect("run build.sh");
    assert_eq!(out.status.code(), Some(2));
}

/// Skips (after saying why) when this machine cannot build and run the local images: they need
/// root (chroot, a PID namespace for ptrace) and Debian's apt. Under CI=true that fails.
fn can_build_local_images() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")));
    let apt = Command::new("apt-get").arg("--version").output().is_ok();
    if root && apt {
        return true;
    }
    let why = "the local images need root and Debian's apt-get";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("skipping: {why}");
    false
}

/// Builds TOOLKIT with debug-images/build-local.sh; its rootfs and the sizes it printed
/// (MiB on disk, MiB gzipped).
fn build_local(toolkit: &str) -> (PathBuf, f64, f64) {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.join(format!("local-images/{toolkit}-{}", std::process::id()));
    let output = Command::new("bash")
        .arg(images_dir().join("build-local.sh"))
        .arg(toolkit)
        .arg(&out)
        // The agent in its own target directory (as tests/support does): the outer
        // `cargo test` holds the lock on ours.
        .env(
            "CARGO_TARGET_DIR",
            tmp.parent().unwrap_or(tmp).join("test-agent"),
        )
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run build-local.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "build-local.sh {toolkit}: {stdout}"
    );
    // "full: 136.0 MiB on disk, 50.2 MiB gzipped"
    let sizes: Vec<f64> = stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix(&format!("{toolkit}: ")))
        .map(|l| {
            l.split(", ")
                .filter_map(|part| part.split(' ').next()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        sizes.len(),
        2,
        "build-local.sh {toolkit} printed no sizes: {stdout}"
    );
    (out.join("rootfs"), sizes[0], sizes[1])
}

/// Runs SCRIPT with /bin/sh inside ROOTFS (chroot, its own PID namespace and /proc, this
/// machine's /dev) in an xterm, as a debug shell runs.
fn run_in(rootfs: &Path, script: &str) -> (bool, String) {
    let out = Command::new("unshare")
        .args(["--mount", "--pid", "--fork"])
        .arg(format!("--mount-proc={}", rootfs.join("proc").display()))
        .args([
            "sh",
            "-c",
            r#"mount --rbind /dev "$0/dev" && exec chroot "$0" /bin/sh -c "$1""#,
        ])
        .arg(rootfs)
        .arg(script)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run unshare");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Files (not directories) under DIR of ROOTFS, as paths inside the image.
fn files_under(rootfs: &Path, dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![rootfs.join(dir)];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(path);
            } else {
                out.push(format!("/{}", path.strip_prefix(rootfs).unwrap().display()));
            }
        }
    }
    out
}

const NET_TOOLS: &[&str] = &[
    "curl -V",
    "dig -v",
    "ss -V",
    "ip -V",
    "tcpdump --version",
    "openssl version",
    "socat -V",
    "nc -h",
    "ping -V",
    "bash --version",
];
const FULL_TOOLS: &[&str] = &[
    "strace -V",
    "ltrace -V",
    "gdb --version",
    "lsof -v",
    "ps -e",
    "top -b -n 1",
    "jq --version",
    "vim --version",
    "vi --version",
    "less --version",
    "file /bin/bash",
    "killall -V",
];

/// docs/toolkits.md: issue 16's budgets for full (60 MB gzipped, 150 MB on disk), and net's
/// measured size with a little room. Tools run, gdb attaches to a process and prints its stack,
/// and what dpkg-slim.cfg filters out is not there (copyrights are).
#[test]
fn local_net_and_full_images_fit_their_budgets_and_their_tools_run() {
    if !can_build_local_images() {
        return;
    }
    for (toolkit, max_disk, max_gzipped) in [("net", 120.0, 48.0), ("full", 150.0, 60.0)] {
        let (rootfs, disk, gzipped) = build_local(toolkit);
        assert!(
            disk <= max_disk && gzipped <= max_gzipped,
            "{toolkit}: {disk} MiB on disk, {gzipped} MiB gzipped; the budget is \
             {max_disk} MiB and {max_gzipped} MiB (docs/toolkits.md)"
        );
        let docs = files_under(&rootfs, "usr/share/doc");
        assert!(
            docs.iter().any(|f| f.ends_with("/copyright")),
            "{toolkit}: the licences are kept"
        );
        for dir in ["usr/share/man", "usr/share/locale", "usr/share/info"] {
            let mut left = files_under(&rootfs, dir);
            left.truncate(5);
            assert!(
                left.is_empty(),
                "{toolkit}: /{dir} is filtered out, yet: {left:?}"
            );
        }
        let mut filtered: Vec<_> = docs.iter().filter(|f| !f.ends_with("/copyright")).collect();
        filtered.truncate(5);
        assert!(filtered.is_empty(), "{toolkit}: docs left: {filtered:?}");
        for heavy in ["usr/bin/perl", "usr/share/perl", "usr/lib/python3.11"] {
            assert!(!rootfs.join(heavy).exists(), "{toolkit}: /{heavy} is there");
        }
        let mut tools = NET_TOOLS.to_vec();
        if toolkit == "full" {
            tools.extend_from_slice(FULL_TOOLS);
        }
        let script: String = tools
            .iter()
            .map(|t| format!("{t} >/tmp/out 2>&1 || {{ echo 'FAIL {t}:'; cat /tmp/out; }}\n"))
            .collect();
        let (ok, text) = run_in(&rootfs, &script);
        assert!(ok && !text.contains("FAIL"), "{toolkit}: {text}");
        if toolkit == "full" {
            // gdb-minimal still debugs: it attaches to a running process and walks its stack.
            let (ok, text) = run_in(
                &rootfs,
                "sleep 60 & pid=$!; gdb -p $pid -batch -ex bt 2>&1; kill $pid",
            );
            assert!(
                ok && text.contains("#0 ")
                    && text.contains("nanosleep")
                    && text.contains("detached"),
                "gdb -p: {text}"
            );
        }
        let _ = std::fs::remove_dir_all(rootfs.parent().unwrap());
    }
}
