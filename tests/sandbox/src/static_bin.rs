//! Static binaries of this workspace, for use inside container images.
//!
//! Images in the sandbox have no libc of their own (the distroless-app image holds one binary
//! and nothing else), so the programs we put in them must be fully static. There is no musl
//! target on our machines; glibc with `crt-static` works for programs that do no NSS lookups.
//! Installs ship prebuilt binaries and point `SANDBOX_STATIC_DIR` at them.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Path of a static (crt-static glibc) binary `bin` of workspace package `package`, building
/// it once per process if needed.
///
/// `SANDBOX_STATIC_DIR`, when set, is a directory of prebuilt binaries and nothing is built.
/// Otherwise runs `cargo build --locked --target x86_64-unknown-linux-gnu -p PACKAGE --bin BIN`
/// with `RUSTFLAGS=-C target-feature=+crt-static` in the workspace (honouring
/// `CARGO_TARGET_DIR`). With an explicit `--target`, those flags do not reach build scripts
/// and proc-macros, which stay dynamic as they must.
pub fn static_binary(package: &str, bin: &str) -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SANDBOX_STATIC_DIR") {
        let path = Path::new(&dir).join(bin);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "SANDBOX_STATIC_DIR={} has no binary {bin}; build it with \
                     `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
                     --target {TARGET} -p {package} --bin {bin}` and copy it there",
                    path.parent().unwrap_or(Path::new("")).display()
                ),
            ))
        };
    }

    static BUILT: OnceLock<Mutex<HashMap<(String, String), PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Held across the build: concurrent callers wait for the one cargo run instead of
    // racing on the target directory lock.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let key = (package.to_string(), bin.to_string());
    if let Some(path) = built.get(&key) {
        return Ok(path.clone());
    }
    let path = build(package, bin)?;
    built.insert(key, path.clone());
    Ok(path)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn build(package: &str, bin: &str) -> io::Result<PathBuf> {
    let root = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_relative() { root.join(d) } else { d })
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let command_line = format!(
        "RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked --target {TARGET} -p {package} --bin {bin}"
    );
    let output = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build", "--locked", "--target", TARGET, "-p", package, "--bin", bin,
        ])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run cargo to build static {bin} ({e}); run `{command_line}` in {}",
                    root.display()
                ),
            )
        })?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "building static {bin} failed ({}); run `{command_line}` in {} to see why:\n{}",
            output.status,
            root.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let path = target_dir.join(TARGET).join("debug").join(bin);
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cargo built {bin} but {} is missing", path.display()),
        ))
    }
}
